//! A run drawn as swim lanes: one column per thread, one row per visible
//! step, each with its source line; steps that race are starred, steps
//! that block are marked.

use super::log::{Event, Log};
use crate::runtime::engine::controlled::strategy::TransitionEnd;
use crate::runtime::engine::Op;
use crate::runtime::waits::ThreadId;

/// Steps of the run in a data race (the ones whose order made the
/// outcome).
pub fn shared_steps(log: &Log) -> usize {
    super::tree::racing(&log.events)
        .iter()
        .filter(|r| **r)
        .count()
}

/// Preemptions in the run: a switch away from a thread that could go on.
pub fn preemptions(log: &Log) -> u32 {
    let switches = log.events.windows(2).filter(|pair| {
        super::log::could_go_on(&pair[0], &pair[1]).is_some_and(|t| t != pair[1].thread)
    });
    switches.count() as u32
}

/// Data keys more than one thread touches.
fn shared_keys(events: &[Event]) -> std::collections::HashSet<u64> {
    let mut first: std::collections::HashMap<u64, ThreadId> = Default::default();
    let mut shared = std::collections::HashSet::new();
    for e in events {
        for a in &e.footprint {
            match first.get(&a.key) {
                None => {
                    first.insert(a.key, e.thread);
                }
                Some(t) if *t != e.thread => {
                    shared.insert(a.key);
                }
                Some(_) => {}
            }
        }
    }
    shared
}

/// A step is shown when it synchronises, prints, or touches data another
/// thread touches too; a thread's private work is left out.
fn worth_showing(e: &Event, shared: &std::collections::HashSet<u64>) -> bool {
    match e.step {
        None => false,
        Some(s) if s.op == Op::BackEdge => false,
        Some(s) if !super::tree::is_data(s.object) => true,
        Some(_) => e.footprint.iter().any(|a| shared.contains(&a.key)),
    }
}

pub(super) fn op_word(op: Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Write => "write",
        Op::Acquire => "acquire",
        Op::Release => "release",
        Op::Put => "put",
        Op::Get => "get",
        Op::Wait => "wait",
        Op::Join => "join",
        Op::Signal => "signal",
        Op::Inspect => "look",
        Op::Spawn => "spawn",
        Op::Print => "print",
        Op::BackEdge => "loop",
        Op::End => "end",
    }
}

/// The line number of byte `offset` in `text`, and that line trimmed.
fn line_of(text: &str, offset: u32) -> (usize, &str) {
    let (line, _, code) = crate::span::line_at(text, offset);
    (line, code.trim())
}

fn cell(e: &Event, source: &str, racing: bool) -> String {
    let mut text = String::new();
    if racing {
        text.push('*');
    }
    match e.step {
        Some(step) => {
            text.push_str(op_word(step.op));
            if let Some(at) = step.at {
                let (line, code) = line_of(source, at.start);
                text.push_str(&format!(" L{} {}", line, code));
            }
        }
        None => text.push_str("start"),
    }
    match e.end {
        TransitionEnd::Blocked => text.push_str(" [blocks]"),
        TransitionEnd::Ended => text.push_str(" [ends]"),
        TransitionEnd::Point => {}
    }
    text
}

fn fit(text: &str, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width {
        format!("{:<width$}", text, width = width)
    } else {
        let mut s: String = chars[..width.saturating_sub(1)].iter().collect();
        s.push('~');
        s
    }
}

/// Rows a drawing shows at most.
const MAX_ROWS: usize = 40;

/// The lanes, at most `width` columns wide.
pub fn draw(log: &Log, source: &str, width: usize) -> String {
    let racing = super::tree::racing(&log.events);
    let shared = shared_keys(&log.events);
    let mut threads: Vec<ThreadId> = Vec::new();
    for e in &log.events {
        if !threads.contains(&e.thread) {
            threads.push(e.thread);
        }
    }
    let names: Vec<String> = threads
        .iter()
        .map(|t| {
            log.names
                .get(t)
                .cloned()
                .unwrap_or_else(|| format!("thread {}", t))
        })
        .collect();
    const GUTTER: usize = 5;
    let column = ((width.saturating_sub(GUTTER)) / threads.len().max(1)).max(8);
    let mut out = String::new();
    out.push_str(&" ".repeat(GUTTER));
    for n in &names {
        out.push_str(&fit(n, column - 1));
        out.push(' ');
    }
    out = out.trim_end().to_string();
    out.push('\n');
    let shown: Vec<usize> = (0..log.events.len())
        .filter(|&k| racing[k] || worth_showing(&log.events[k], &shared))
        .collect();
    // A long run shows its start and its end.
    let (head, tail) = if shown.len() > MAX_ROWS {
        (MAX_ROWS / 4, MAX_ROWS - MAX_ROWS / 4)
    } else {
        (shown.len(), 0)
    };
    for (row, &k) in shown.iter().enumerate() {
        let e = &log.events[k];
        if row == head && tail > 0 {
            out.push_str(&format!(
                "  ... {} more steps ...\n",
                shown.len() - head - tail
            ));
        }
        if row >= head && row < shown.len() - tail {
            continue;
        }
        let row = row + 1;
        let col = threads.iter().position(|t| *t == e.thread).unwrap_or(0);
        let mut line = format!("{:>3}  ", row);
        for c in 0..threads.len() {
            let text = if c == col {
                cell(e, source, racing[k])
            } else {
                String::new()
            };
            line.push_str(&fit(&text, column - 1));
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(
        "(* a step in a data race: only the order of the accesses themselves orders it)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_and_cells_fit() {
        let text = "let x = 0\n  x += 1\nprint(x)";
        assert_eq!(line_of(text, 14), (2, "x += 1"));
        assert_eq!(line_of(text, 0), (1, "let x = 0"));
        assert_eq!(fit("abcdef", 4), "abc~");
        assert_eq!(fit("ab", 4), "ab  ");
    }
}
