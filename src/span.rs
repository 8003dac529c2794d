//! Source positions. A `Span` is a byte range inside one registered source;
//! lines and columns are computed only when an error is rendered.

use parking_lot::RwLock;
use std::sync::Arc;

/// Which source text a span points into (an index into a [`SourceMap`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SourceId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub src: SourceId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(src: SourceId, start: usize, end: usize) -> Span {
        Span {
            src,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both (they must share a source).
    pub fn to(self, other: Span) -> Span {
        Span {
            src: self.src,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

/// One named source text: a file, a `-c` string, a REPL entry.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: Arc<str>,
}

impl Source {
    /// 1-based line and column (in chars) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let (line, col, _) = line_at(&self.text, offset);
        (line, col)
    }
}

/// The lines of a text, for finding the line of many offsets: one pass
/// over the text, then a binary search each (`line_at` scans from the
/// start every time).
pub struct LineIndex {
    /// Byte offset of the first byte after each newline.
    starts: Vec<u32>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let starts = text
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .map(|(i, _)| i as u32 + 1)
            .collect();
        LineIndex { starts }
    }

    /// The 1-based line of byte `offset`, as `line_at` gives it.
    pub fn line(&self, offset: u32) -> usize {
        self.starts.partition_point(|&s| s <= offset) + 1
    }
}

/// The 1-based line and column (in chars) of byte `offset` in `text`, and
/// that whole line (without its newline).
pub fn line_at(text: &str, offset: u32) -> (usize, usize, &str) {
    let offset = (offset as usize).min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    let rest = &text[line_start..];
    let line_text = rest.find('\n').map_or(rest, |end| &rest[..end]);
    (line, col, line_text)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Every source text a session has seen. Shared by all threads of a session;
/// append-only, so a `SourceId` stays valid for the life of the session.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    sources: Arc<RwLock<Vec<Arc<Source>>>>,
}

impl SourceMap {
    pub fn add(&self, name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceId {
        let mut sources = self.sources.write();
        sources.push(Arc::new(Source {
            name: name.into(),
            text: text.into(),
        }));
        SourceId((sources.len() - 1) as u32)
    }

    pub fn get(&self, id: SourceId) -> Option<Arc<Source>> {
        self.sources.read().get(id.0 as usize).cloned()
    }

    /// "file.conc:3:7" for a span, used in thread listings and deadlock reports.
    pub fn location(&self, span: Span) -> String {
        match self.get(span.src) {
            Some(source) => {
                let (line, col) = source.line_col(span.start);
                format!("{}:{}:{}", source.name, line, col)
            }
            None => "<unknown>".to_string(),
        }
    }

    /// Every source, in id order (sent to child processes so spans stay valid).
    pub fn all(&self) -> Vec<Arc<Source>> {
        self.sources.read().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_index_agrees_with_line_at() {
        for text in ["", "a", "\n", "ab\ncd\n\nxé\nlast", "\n\n\n", "é\né"] {
            let index = LineIndex::new(text);
            for offset in 0..text.len() as u32 + 3 {
                assert_eq!(
                    index.line(offset),
                    line_at(text, offset).0,
                    "{text:?} at {offset}"
                );
            }
        }
    }
}
