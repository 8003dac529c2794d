//! A run drawn as swim lanes: one column per thread, one row per visible
//! step, each with its source line; steps that race are starred, steps
//! that block are marked.

use super::log::{Event, Log};
use super::texts::Texts;
use crate::runtime::engine::controlled::strategy::{TransitionEnd, TIME_PASSES};
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
        None => e.thread == TIME_PASSES,
        Some(s) if s.op == Op::BackEdge => false,
        Some(s) if !super::tree::is_data(s.object) => true,
        Some(_) => e.footprint.iter().any(|a| shared.contains(&a.key)),
    }
}

/// What a step does, in a word.
pub fn op_word(op: Op) -> &'static str {
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

fn cell(e: &Event, texts: &Texts, racing: bool) -> String {
    let mut text = String::new();
    if racing {
        text.push('*');
    }
    match e.step {
        Some(step) => {
            text.push_str(op_word(step.op));
            if let Some(p) = step.at.and_then(|at| texts.place(at)) {
                text.push_str(&format!(" L{} {}", p.line, p.code));
            }
        }
        None if e.thread == TIME_PASSES => text.push_str("to the next deadline"),
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
pub fn draw(log: &Log, texts: &Texts, width: usize) -> String {
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
                cell(e, texts, racing[k])
            } else {
                String::new()
            };
            line.push_str(&fit(&text, column - 1));
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if racing.iter().any(|r| *r) {
        out.push_str(
            "(* a step in a data race: only the order of the accesses themselves orders it)\n",
        );
    }
    out
}

/// Lanes drawn by `draw`, coloured for a terminal: names bold, blocked
/// steps red, ends dim, race marks yellow. The codes take no columns, so
/// what fits stays fitted.
pub fn paint(lanes: &str) -> String {
    const BOLD: &str = "\x1b[1m";
    const RED: &str = "\x1b[31m";
    const DIM: &str = "\x1b[2m";
    const YELLOW: &str = "\x1b[33m";
    const OFF: &str = "\x1b[0m";
    let mut out = String::with_capacity(lanes.len() * 2);
    for (i, line) in lanes.lines().enumerate() {
        if i == 0 {
            out.push_str(&format!("{BOLD}{line}{OFF}\n"));
            continue;
        }
        let line = line
            .replace("[blocks]", &format!("{RED}[blocks]{OFF}"))
            .replace("[ends]", &format!("{DIM}[ends]{OFF}"))
            .replace(" *", &format!(" {YELLOW}*{OFF}"));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_and_cells_fit() {
        let texts = Texts::script("t.conc", "let x = 0\n  x += 1\nprint(x)");
        let at = |start| crate::span::Span {
            src: crate::span::SourceId(0),
            start,
            end: start,
        };
        let p = texts.place(at(14)).map(|p| (p.line, p.code));
        assert_eq!(p, Some((2, "x += 1")));
        assert_eq!(
            texts.place(at(0)).map(|p| (p.line, p.code)),
            Some((1, "let x = 0"))
        );
        assert_eq!(fit("abcdef", 4), "abc~");
        assert_eq!(fit("ab", 4), "ab  ");
    }

    #[test]
    fn paint_colours_without_moving_anything() {
        let plain = "     main     w-1\n  1  start\n  2           *get L3 get q [blocks]\n";
        let painted = paint(plain);
        let bare: String = painted
            .split('\x1b')
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    part.split_once('m').map_or("", |p| p.1)
                }
            })
            .collect();
        assert_eq!(bare, plain);
        assert!(painted.contains("\x1b[31m[blocks]"));
    }
}
