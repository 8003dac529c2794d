//! A traced run (`--trace` on the OS engine) across processes: a child
//! sends its threads' steps, and those its own children sent it, to its
//! parent just before it reports that it is done; times travel on the
//! machine's monotonic clock, the same in every process, and each side
//! converts from and to its own session clock.

use super::wire::{WireMark, WireProcess, WireTrace, WireTrack};
use crate::runtime::engine::recorder::{Mark, ProcessTracks, Track};
use crate::runtime::engine::Step;

fn mark_to_wire(m: Mark, epoch: u64) -> WireMark {
    WireMark {
        op: m.step.map(|s| s.op),
        object: m.step.map_or(0, |s| s.object),
        span: m.step.and_then(|s| s.at).map(Into::into),
        at: m.at + epoch,
        parked: m.parked.map(|(p, w)| (p + epoch, w + epoch)),
        spawned_by: m.spawned_by,
        ended: m.ended,
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
    }
}

fn tracks_to_wire(tracks: Vec<Track>, epoch: u64) -> Vec<WireTrack> {
    tracks
        .into_iter()
        .map(|t| WireTrack {
            thread: t.thread,
            name: t.name,
            marks: t
                .marks
                .into_iter()
                .map(|m| mark_to_wire(m, epoch))
                .collect(),
        })
        .collect()
}

/// This process's part (`pid`, `name`, its own threads' tracks) and what
/// its children sent (`others`), for the parent; `epoch` is where this
/// session's clock starts on the monotonic clock.
pub fn to_wire(
    pid: u32,
    name: String,
    own: Vec<Track>,
    others: Vec<ProcessTracks>,
    epoch: u64,
) -> WireTrace {
    let mut processes = vec![WireProcess {
        pid,
        name,
        threads: tracks_to_wire(own, epoch),
    }];
    processes.extend(others.into_iter().map(|p| WireProcess {
        pid: p.pid,
        name: p.name,
        threads: tracks_to_wire(p.tracks, epoch),
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
