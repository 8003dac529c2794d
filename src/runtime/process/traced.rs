//! A traced run (`--trace` on the OS engine) across processes: a child
//! sends its threads' steps, and those its own children sent it, to its
//! parent just before it reports that it is done; times travel on the
//! machine's monotonic clock, the same in every process, and each side
//! converts from and to its own session clock.
//!
//! Object ids are each process's own. So that a `put` in a child and the
//! `get` in its parent name one queue, a child sends a step on a proxy with
//! the id the object has at its parent (`Mark::home` stays `None`: "yours");
//! a step on an object of its own gets its pid as `home`. Each hop up does
//! the same, so at the top every step's object is named by its owner.

use super::wire::{WireMark, WireProcess, WireTrace, WireTrack};
use crate::runtime::engine::recorder::{Mark, ProcessTracks, Track};
use crate::runtime::engine::Step;
use crate::runtime::int_hash::IntMap;

/// `m`'s object as the parent names it: through `aliases` (our proxies'
/// ids -> the ids at the parent), else ours, with our `pid`.
fn rehome(mut m: Mark, aliases: &IntMap<u64, u64>, pid: u32) -> Mark {
    let Some(step) = m.step.as_mut() else {
        return m;
    };
    // Only shared objects have ids that travel (not globals or threads).
    if m.home.is_some() || step.object == 0 || step.object >> 60 != 0 {
        return m;
    }
    match aliases.get(&step.object) {
        Some(&theirs) => step.object = theirs,
        None => m.home = Some(pid),
    }
    m
}

fn mark_to_wire(m: Mark, epoch: u64) -> WireMark {
    WireMark {
        op: m.step.map(|s| s.op),
        object: m.step.map_or(0, |s| s.object),
        span: m.step.and_then(|s| s.at).map(Into::into),
        at: m.at + epoch,
        parked: m.parked.map(|(p, w)| (p + epoch, w + epoch)),
        spawned_by: m.spawned_by,
        ended: m.ended,
        home: m.home,
    }
}

fn mark_from_wire(m: WireMark, epoch: u64) -> Mark {
    Mark {
        step: m
            .op
            .map(|op| Step::new(op, m.object, m.span.map(Into::into))),
        at: m.at.saturating_sub(epoch),
        parked: m
            .parked
            .map(|(p, w)| (p.saturating_sub(epoch), w.saturating_sub(epoch))),
        spawned_by: m.spawned_by,
        ended: m.ended,
        home: m.home,
    }
}

fn tracks_to_wire(
    tracks: Vec<Track>,
    epoch: u64,
    aliases: &IntMap<u64, u64>,
    pid: u32,
) -> Vec<WireTrack> {
    tracks
        .into_iter()
        .map(|t| WireTrack {
            thread: t.thread,
            name: t.name,
            marks: t
                .marks
                .into_iter()
                .map(|m| mark_to_wire(rehome(m, aliases, pid), epoch))
                .collect(),
        })
        .collect()
}

/// This process's part (`pid`, `name`, its own threads' tracks) and what
/// its children sent (`others`), for the parent; `epoch` is where this
/// session's clock starts on the monotonic clock; `aliases` maps the ids
/// of this process's proxies to the objects' ids at the parent.
pub fn to_wire(
    pid: u32,
    name: String,
    own: Vec<Track>,
    others: Vec<ProcessTracks>,
    epoch: u64,
    aliases: &IntMap<u64, u64>,
) -> WireTrace {
    let mut processes = vec![WireProcess {
        pid,
        name,
        threads: tracks_to_wire(own, epoch, aliases, pid),
    }];
    processes.extend(others.into_iter().map(|p| WireProcess {
        pid: p.pid,
        name: p.name,
        threads: tracks_to_wire(p.tracks, epoch, aliases, pid),
    }));
    WireTrace { processes }
}

/// A child's part, on this session's clock (which starts at `epoch`).
pub fn from_wire(trace: WireTrace, epoch: u64) -> Vec<ProcessTracks> {
    trace
        .processes
        .into_iter()
        .map(|p| ProcessTracks {
            pid: p.pid,
            name: p.name,
            tracks: p
                .threads
                .into_iter()
                .map(|t| Track {
                    thread: t.thread,
                    name: t.name,
                    marks: t
                        .marks
                        .into_iter()
                        .map(|m| mark_from_wire(m, epoch))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}
