//! Deadlock detection over the registry's waits, and the report that names
//! each thread, what it holds, what it waits for and where.

use super::table::{Threads, Waiting};
use super::ThreadId;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::threads::{Held, ThreadRecord};
use crate::span::SourceMap;
use std::sync::atomic::Ordering;

/// A deadlock: the threads involved and what to call it.
pub(super) struct Cycle {
    ids: Vec<ThreadId>,
    message: String,
}

/// A deadlock with its report, ready to hand out.
pub(super) struct Found {
    pub(super) ids: Vec<ThreadId>,
    pub(super) error: RuntimeError,
}

/// If nothing but child processes could still wake anyone here, ask each
/// of those children whether it is quiet (each answers once, when it is).
pub(super) fn probe_children(threads: &Threads) {
    let mut children = Vec::new();
    for e in threads.values() {
        if e.waiting.as_ref().is_some_and(Waiting::blocked) {
            continue;
        }
        match &e.thread.process {
            Some(p) => children.push(p),
            None => return,
        }
    }
    for p in children {
        p.link.probe();
    }
}

/// Every thread is blocked with no timeout and nothing outside can wake it.
pub(super) fn all_stuck(threads: &Threads) -> Option<Cycle> {
    if threads.is_empty() {
        return None;
    }
    let stuck = threads
        .values()
        .all(|e| e.waiting.as_ref().is_some_and(Waiting::stuck));
    if !stuck {
        return None;
    }
    let ids: Vec<ThreadId> = threads.keys().copied().collect();
    let message = if ids.len() == 1 {
        "the only thread is blocked and nothing can wake it".to_string()
    } else {
        format!(
            "all {} threads are blocked and none of them can wake another",
            ids.len()
        )
    };
    Some(Cycle { ids, message })
}

/// Follow "waits for a lock owned by" and "joins" edges from `start`; a
/// path back to it is a cycle, definite whatever other threads do.
pub(super) fn lock_cycle(threads: &Threads, start: ThreadId) -> Option<Cycle> {
    let mut path = vec![start];
    let mut current = start;
    let (mut through_join, mut through_lock) = (false, false);
    loop {
        let waiting = threads.get(&current)?.waiting.as_ref()?;
        if !waiting.stuck() {
            return None;
        }
        // The thread it waits for: the owner of the lock, or the one joined.
        let owner = match (&waiting.on.owner, waiting.on.joins) {
            (Some(word), _) => {
                through_lock = true;
                crate::runtime::locks::owner_of(word.get(0).load(Ordering::Acquire))
            }
            (None, Some(joined)) => {
                through_join = true;
                joined
            }
            (None, None) => return None,
        };
        if owner == 0 || path.len() > threads.len() {
            return None;
        }
        if owner == start {
            break;
        }
        if path.contains(&owner) {
            return None;
        }
        path.push(owner);
        current = owner;
    }
    let message = if path.len() == 1 {
        "a thread waits for a lock it already holds".to_string()
    } else if through_join {
        let of = if through_lock {
            "joins and locks"
        } else {
            "joins"
        };
        format!(
            "{} threads wait for each other in a cycle of {of}",
            path.len()
        )
    } else {
        format!(
            "{} threads wait for each other's locks in a cycle",
            path.len()
        )
    };
    // Name every other stuck thread too (e.g. main joining one of the cycle).
    let others: Vec<ThreadId> = threads
        .iter()
        .filter(|(id, e)| !path.contains(id) && e.waiting.as_ref().is_some_and(Waiting::stuck))
        .map(|(id, _)| *id)
        .collect();
    path.extend(others);
    Some(Cycle { ids: path, message })
}

/// What the threads of a quiet child wait for inside it (waits on the
/// parent's objects show up there, with their stand-ins).
pub(super) fn inner_waits(threads: &Threads, sources: &SourceMap) -> Vec<String> {
    threads
        .values()
        .filter_map(|e| {
            let w = e.waiting.as_ref().filter(|w| w.stuck())?;
            let place = w.on.span.map(|s| sources.location(s)).unwrap_or_default();
            Some(format!(
                "{} {} waits for {} ({})",
                e.thread.noun(),
                e.thread.name,
                w.on.what,
                place
            ))
        })
        .collect()
}

/// What `thread` holds, named as in reports.
pub(super) fn holdings(held: &[Held], sources: &SourceMap) -> Vec<String> {
    held.iter().map(|h| describe_held(h, sources)).collect()
}

/// "lock#3 (forks[i])": the object and the expression that acquired it.
fn describe_held(h: &Held, sources: &SourceMap) -> String {
    let text = h.span.and_then(|span| {
        let source = sources.get(span.src)?;
        let line = source.text.get(span.start as usize..span.end as usize)?;
        let name = line
            .trim_start_matches("lock ")
            .split([' ', '{', '.'])
            .next()?
            .to_string();
        (!name.is_empty()).then_some(name)
    });
    match text {
        Some(t) => format!("{}#{} ({})", h.kind, h.id, t),
        None => format!("{}#{}", h.kind, h.id),
    }
}

/// The report of a deadlock: each thread of `cycle`, what it holds (`held`)
/// and what it waits for, where.
pub(super) fn report(
    threads: &Threads,
    cycle: Cycle,
    sources: &SourceMap,
    held: impl Fn(&ThreadRecord) -> Vec<Held>,
) -> Found {
    let mut error = RuntimeError::new(kind::DEADLOCK, cycle.message).with_help(
        "take locks in one global order, make sure every get has a put, or add a timeout",
    );
    for id in &cycle.ids {
        let Some(entry) = threads.get(id) else {
            continue;
        };
        let held = holdings(&held(&entry.thread), sources);
        let holds = if held.is_empty() {
            "holds nothing".to_string()
        } else {
            format!("holds {}", held.join(", "))
        };
        let (what, span) = match &entry.waiting {
            Some(w) => (w.on.what.clone(), w.on.span),
            None => ("nothing".to_string(), None),
        };
        let who = if entry.thread.name.starts_with("process ") {
            entry.thread.name.clone()
        } else {
            format!("{} {}", entry.thread.noun(), entry.thread.name)
        };
        error = error.note(format!("{} {}, waits for {}", who, holds, what), span);
    }
    error.span = error.notes.first().and_then(|n| n.span);
    Found {
        ids: cycle.ids,
        error,
    }
}
