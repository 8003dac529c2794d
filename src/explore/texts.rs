//! The source texts a run's steps point into: one script, or everything a
//! REPL session was given (its entries and `:load`ed files), by source id.

use crate::span::{Source, SourceMap, Span};
use std::sync::Arc;

pub struct Texts {
    /// What the run is called (the script's file; `repl` for a session).
    pub name: String,
    sources: Vec<Arc<Source>>,
}

/// Where a step is: its source's name, line and column, and that line.
pub struct Place<'a> {
    pub file: &'a str,
    pub line: usize,
    pub col: usize,
    pub code: &'a str,
    /// The text the span itself covers (its first line).
    pub text: &'a str,
}

impl Texts {
    /// One script, `source`, named `name`.
    pub fn script(name: &str, source: &str) -> Texts {
        Texts {
            name: name.to_string(),
            sources: vec![Arc::new(Source {
                name: name.to_string(),
                text: Arc::from(source),
            })],
        }
    }

    /// Every source of a session, the run named `name`.
    pub fn of(name: &str, map: &SourceMap) -> Texts {
        Texts {
            name: name.to_string(),
            sources: map.all(),
        }
    }

    /// Where `at` is; `None` for a source this run never saw.
    pub fn place(&self, at: Span) -> Option<Place<'_>> {
        let source = self.sources.get(at.src.0 as usize)?;
        let (file, text) = (source.name.as_str(), &*source.text);
        let (line, col, code) = crate::span::line_at(text, at.start);
        let covered = text
            .get(at.start as usize..(at.end as usize).max(at.start as usize))
            .unwrap_or_default();
        Some(Place {
            file,
            line,
            col,
            code: code.trim(),
            text: covered.lines().next().unwrap_or_default().trim(),
        })
    }
}
