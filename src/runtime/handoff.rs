//! A handoff: an item passed from a putter straight into the hands of a
//! getter that waits for it, through memory both processes map
//! (`arena.rs`), with no message and no thread woken on the way.
//!
//! A round trip to a queue's owner costs several thread wake-ups (the
//! owner's reading thread, a stand-in, the caller's reading thread), tens
//! of microseconds each on a busy machine: a ping-pong between processes
//! is all wake-ups. Here a getter that finds the queue empty *announces*
//! itself in the queue's handoff word and spins a little; a putter anywhere
//! that sees the announcement writes the encoded item next to the word
//! (`value/plain.rs`) and marks it full. Both were running, so nobody
//! sleeps.
//!
//! The other way round, the owner *offers* an item put into an empty queue
//! when nobody is announced: it writes it into the same words, where it is
//! the queue's front item (counted by `size()`, next for any getter), and
//! any getter anywhere takes it with one compare-and-swap (`claim`; the
//! owner's own gets take it back the same way).
//!
//! Exact, because the owner keeps the word's NONEMPTY bit true to the
//! queue behind the offered item (its items and any lease) under the
//! queue's lock, and a getter may only announce on an empty queue: an item
//! handed over never overtakes one already waiting. Anything put into the
//! queue while a getter is announced withdraws the announcement (the
//! getter then takes its turn as usual). A handed item is got at that
//! moment (the put and the get happen together, so `size()` never counts
//! it), and is never lost: a getter that dies before taking it has it put
//! back at the front by the owner (`forget`). A getter that waited long
//! enough withdraws and parks (at the owner, where deadlock detection sees
//! it), as any getter does.
//!
//! The word: bits 0-1 the phase, bit 2 NONEMPTY, bit 3 the getter is in
//! another process, bits 4-31 the getter (a thread id at the owner: its
//! own, or its stand-in's; 0 for an offer, which is for anyone), bits
//! 32-63 the putter while WRITING (0 for the owner), then the item's
//! generation once FULL (so a claim never takes a later item for the one
//! it read).

use super::arena::{Arena, Use, BLOCK, HANDOFF_BLOCKS};
use super::engine::{Backoff, Engine, Spin};
use super::threads::ThreadRecord;
use super::value::{plain, Value};
use crate::diagnostics::{kind, RuntimeError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PHASE: u64 = 0b11;
const IDLE: u64 = 0;
const WAITING: u64 = 1;
const WRITING: u64 = 2;
const FULL: u64 = 3;
const NONEMPTY: u64 = 1 << 2;
const REMOTE: u64 = 1 << 3;
const GETTER_SHIFT: u32 = 4;
const GETTER_MAX: u64 = (1 << 28) - 1;
const PUTTER_SHIFT: u32 = 32;

/// The state word, the length (and generation), then the item's bytes.
const WORDS: usize = HANDOFF_BLOCKS * BLOCK;
/// The largest encoded item a handoff carries.
pub const CAPACITY: usize = (WORDS - 2) * 8;

/// A getter waits this long for a handoff (a few hundred microseconds,
/// time for the other side of a ping-pong to answer), then parks as
/// usual. It yields rather than spins: on a machine with few cores the
/// putter it waits for may need the very core it would spin on (measured
/// on 2 cores, yielding only was twice as fast as spinning first).
const WAIT_FOR_HANDOFF: Backoff = Backoff {
    spins: 2,
    yields: 200,
};

/// A putter writes a few words between WRITING and FULL; a getter waits
/// that out, looking this often once it has yielded for a while.
const WRITER_LOOK: Duration = Duration::from_micros(200);

fn damaged() -> RuntimeError {
    RuntimeError::new(
        kind::PROCESS,
        "an item handed over by another process is damaged",
    )
}

impl Waited {
    /// As a get sees it: the item, or nothing (take a turn the usual way).
    fn into_item(self) -> Result<Option<Value>, RuntimeError> {
        match self {
            Waited::Got(v) => Ok(Some(v)),
            Waited::Withdrawn => Ok(None),
            Waited::Damaged => Err(damaged()),
        }
    }
}

pub struct Handoff {
    arena: Arc<Arena>,
    block: u32,
    base: *const AtomicU64,
    /// Made here (freed with it), not a view of the owner's.
    owned: bool,
}

// SAFETY: `base` points into the arena mapping that `arena` keeps alive,
// and is only accessed through atomics.
unsafe impl Send for Handoff {}
unsafe impl Sync for Handoff {}

/// How a getter's wait for a handoff ended.
enum Waited {
    Got(Value),
    /// Nothing was handed over: take a turn the usual way.
    Withdrawn,
    /// The bytes were not an item (only a damaged peer writes those).
    Damaged,
}

impl Handoff {
    /// The owner's handoff for one of its queues, in its arena.
    pub fn new(arena: &Arc<Arena>, nonempty: bool) -> Option<Handoff> {
        let block = arena.alloc(Use::Handoff)?;
        let h = Handoff::at(arena, block, true)?;
        let state = if nonempty { NONEMPTY } else { IDLE };
        h.state().store(state, Ordering::Release);
        Some(h)
    }

    /// Another process's view of the owner's handoff at `block`.
    pub fn view(arena: &Arc<Arena>, block: u32) -> Option<Handoff> {
        Handoff::at(arena, block, false)
    }

    fn at(arena: &Arc<Arena>, block: u32, owned: bool) -> Option<Handoff> {
        let base = arena.span(block, WORDS)?.as_ptr();
        Some(Handoff {
            arena: arena.clone(),
            block,
            base,
            owned,
        })
    }

    pub fn block(&self) -> u32 {
        self.block
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < WORDS);
        // SAFETY: i < WORDS, inside the span checked in `at`.
        unsafe { &*self.base.add(i.min(WORDS - 1)) }
    }

    fn state(&self) -> &AtomicU64 {
        self.word(0)
    }

    /// The owner tells whether the queue holds anything (items or a
    /// lease), under the queue's lock, after every change. Holding
    /// something withdraws an announced getter: it must queue behind.
    pub fn set_nonempty(&self, nonempty: bool) {
        let w = self.state();
        let mut cur = w.load(Ordering::Acquire);
        loop {
            let new = match (nonempty, cur & PHASE) {
                (true, WAITING) => NONEMPTY,
                (true, _) => cur | NONEMPTY,
                (false, _) => cur & !NONEMPTY,
            };
            if new == cur {
                return;
            }
            match w.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Whether a getter is announced, and if so whether it is in another
    /// process (then only a handoff reaches it).
    pub fn announced(&self) -> Option<bool> {
        let cur = self.state().load(Ordering::Acquire);
        (cur & PHASE == WAITING).then_some(cur & REMOTE != 0)
    }

    /// A getter that found the queue empty waits for a handoff: false if
    /// the queue is not empty, or another getter is announced already.
    pub fn announce(&self, getter: u64, remote: bool) -> bool {
        if getter == 0 || getter > GETTER_MAX {
            return false;
        }
        let me = WAITING | (getter << GETTER_SHIFT) | if remote { REMOTE } else { 0 };
        self.state()
            .compare_exchange(IDLE, me, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Put `bytes` into the announced getter's hands: false if no getter
    /// is announced (any more), or they do not fit.
    pub fn hand(&self, putter: u32, bytes: &[u8]) -> bool {
        let cur = self.state().load(Ordering::Acquire);
        cur & PHASE == WAITING && self.write(cur, putter, bytes).is_some()
    }

    /// The owner offers `bytes` as the front item of its empty queue, for
    /// any getter: its generation, or `None` if the queue is not empty,
    /// a getter is announced, or they do not fit.
    pub fn offer(&self, bytes: &[u8]) -> Option<u32> {
        self.write(IDLE, 0, bytes)
    }

    /// Write an item while the word is `cur`: a handoff to the getter it
    /// names, or an offer (no getter).
    fn write(&self, cur: u64, putter: u32, bytes: &[u8]) -> Option<u32> {
        if bytes.len() > CAPACITY {
            return None;
        }
        let w = self.state();
        let keep = cur & !PHASE & !(u64::MAX << PUTTER_SHIFT);
        let writing = keep | WRITING | (u64::from(putter) << PUTTER_SHIFT);
        w.compare_exchange(cur, writing, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let generation = ((self.word(1).load(Ordering::Relaxed) >> 32) as u32).wrapping_add(1);
        let header = bytes.len() as u64 | u64::from(generation) << 32;
        self.word(1).store(header, Ordering::Relaxed);
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.word(2 + i)
                .store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        // Release: the bytes are there before FULL is. The owner may have
        // marked the queue non-empty meanwhile (the item came first).
        let full = |c: u64| (c & !PHASE & !(u64::MAX << PUTTER_SHIFT)) | FULL;
        let _ = w.fetch_update(Ordering::Release, Ordering::Acquire, |c| {
            Some(full(c) | u64::from(generation) << PUTTER_SHIFT)
        });
        Some(generation)
    }

    /// The generation of the item on offer, if one is.
    pub fn offered(&self) -> Option<u32> {
        let c = self.state().load(Ordering::Acquire);
        (c & PHASE == FULL && getter(c) == 0).then_some((c >> PUTTER_SHIFT) as u32)
    }

    /// The owner takes back its offer of `generation`: false if a getter
    /// took it first.
    pub fn reclaim(&self, generation: u32) -> bool {
        let w = self.state();
        loop {
            let c = w.load(Ordering::Acquire);
            if c & PHASE != FULL || getter(c) != 0 || (c >> PUTTER_SHIFT) as u32 != generation {
                return false;
            }
            if w.compare_exchange(c, c & NONEMPTY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return true;
            }
        }
    }

    /// A getter in another process takes the item on offer, if there is
    /// one: it reads the item, then takes it if it is still the one on
    /// offer.
    pub fn claim(&self) -> Result<Option<Value>, RuntimeError> {
        let w = self.state();
        loop {
            let c = w.load(Ordering::Acquire);
            if c & PHASE != FULL || getter(c) != 0 {
                return Ok(None);
            }
            let got = self.read();
            if w.compare_exchange(c, c & NONEMPTY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return got.map(Some).ok_or_else(damaged);
            }
        }
    }

    /// A get by `me` (`getter` here: its own id, or, `remote`, its
    /// stand-in's at the owner) that found the queue empty, with
    /// `seconds_left` to its deadline: announce it and wait a moment for
    /// an item handed over. `None`: nothing was (or a wait was not worth
    /// it: another engine than the OS one, a deadline about now, the queue
    /// not empty, another getter announced); park or ask the usual way.
    /// A traced run notes the wait as a park (`Engine::busy_wait`).
    pub fn wait_for(
        &self,
        engine: &Engine,
        me: &ThreadRecord,
        getter: u64,
        remote: bool,
        seconds_left: Option<f64>,
        gone: impl Fn() -> bool,
    ) -> Result<Option<Value>, RuntimeError> {
        let worth_it = engine.fast_paths() && seconds_left.is_none_or(|s| s > 0.001);
        if !worth_it || !self.announce(getter, remote) {
            return Ok(None);
        }
        engine
            .busy_wait(me, || self.wait(engine, getter, gone))
            .into_item()
    }

    /// The announced `getter` waits for an item: spinning, then yielding;
    /// then it withdraws, unless a putter came first.
    fn wait(&self, engine: &Engine, getter: u64, gone: impl Fn() -> bool) -> Waited {
        let w = self.state();
        let mine = |c: u64| c & PHASE != IDLE && self::getter(c) == getter;
        engine.spin(WAIT_FOR_HANDOFF, || {
            let c = w.load(Ordering::Acquire);
            match c & PHASE {
                _ if !mine(c) => Spin::Stop,
                FULL => Spin::Done,
                _ => Spin::Again,
            }
        });
        let mut looks = 0u32;
        loop {
            let c = w.load(Ordering::Acquire);
            if !mine(c) {
                return Waited::Withdrawn;
            }
            match c & PHASE {
                WAITING => {
                    let withdrawn = c & NONEMPTY;
                    if w.compare_exchange(c, withdrawn, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return Waited::Withdrawn;
                    }
                }
                FULL => {
                    let got = self.read();
                    let _ =
                        w.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| Some(c & NONEMPTY));
                    return got.map_or(Waited::Damaged, Waited::Got);
                }
                // A putter is writing: a few words, unless it died doing
                // so (then its owner's `forget` ends the phase).
                _ => {
                    if gone() {
                        return Waited::Withdrawn;
                    }
                    looks += 1;
                    if looks < 1000 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(WRITER_LOOK);
                    }
                }
            }
        }
    }

    /// The item written: `None` if the words do not hold one.
    fn read(&self) -> Option<Value> {
        let len = (self.word(1).load(Ordering::Relaxed) & u64::from(u32::MAX)) as usize;
        if len > CAPACITY {
            return None;
        }
        let mut bytes = Vec::with_capacity(len.div_ceil(8) * 8);
        for i in 0..len.div_ceil(8) {
            bytes.extend_from_slice(&self.word(2 + i).load(Ordering::Relaxed).to_le_bytes());
        }
        bytes.truncate(len);
        plain::decode(&bytes)
    }

    /// The owner, once the process whose threads' stand-ins are `dead`
    /// has ended: its announcement ends, an item it was writing was never
    /// put, and an item handed to it that it had not taken comes back
    /// (the caller puts it at the front of the queue).
    pub fn forget(&self, dead: impl Fn(u64) -> bool) -> Option<Value> {
        let w = self.state();
        let mut looks = 0u32;
        loop {
            let c = w.load(Ordering::Acquire);
            let getter_dead = c & REMOTE != 0 && dead(getter(c));
            let back = match c & PHASE {
                WAITING if getter_dead => None,
                WRITING if dead(c >> PUTTER_SHIFT) => None,
                FULL if getter_dead => self.read(),
                // A live putter is writing for the dead getter: it will
                // be done in a moment, and the item is to come back.
                WRITING if getter_dead && looks < 10_000 => {
                    looks += 1;
                    std::thread::yield_now();
                    continue;
                }
                _ => return None,
            };
            if w.compare_exchange(c, c & NONEMPTY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return back;
            }
        }
    }
}

/// The getter a word names (0: none, or anyone for an offer).
fn getter(c: u64) -> u64 {
    (c >> GETTER_SHIFT) & GETTER_MAX
}

impl Drop for Handoff {
    fn drop(&mut self) {
        if self.owned {
            self.arena.free(Use::Handoff, self.block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Handoff, Handoff) {
        let arena = Arena::create().unwrap();
        let owner = Handoff::new(&arena, false).unwrap();
        let view = Handoff::view(&arena, owner.block()).unwrap();
        (owner, view)
    }

    #[test]
    fn an_announced_getter_gets_what_is_handed_over() {
        let (owner, child) = pair();
        let engine = Engine::os(Some(1));
        assert!(!child.hand(7, b"x"), "nobody waits");
        assert!(owner.announce(5, false));
        assert!(!child.announce(6, true), "one getter at a time");
        let item = plain::encode(&Value::str("hi"), CAPACITY).unwrap();
        assert!(child.hand(7, &item));
        assert!(!child.hand(7, &item), "the hands are full");
        match owner.wait(&engine, 5, || false) {
            Waited::Got(v) => assert_eq!(v.to_repr(), "\"hi\""),
            _ => panic!("not handed over"),
        }
        assert!(child.announce(6, true), "free again");
    }

    #[test]
    fn an_item_waiting_withdraws_the_announcement() {
        let (owner, child) = pair();
        let engine = Engine::os(Some(1));
        assert!(child.announce(6, true));
        owner.set_nonempty(true);
        assert!(!owner.hand(0, &[0]), "the queue holds something");
        assert!(matches!(
            child.wait(&engine, 6, || false),
            Waited::Withdrawn
        ));
        assert!(!child.announce(6, true), "not on a non-empty queue");
        owner.set_nonempty(false);
        assert!(child.announce(6, true));
        assert!(matches!(
            child.wait(&engine, 6, || false),
            Waited::Withdrawn
        ));
        assert_eq!(owner.announced(), None, "a getter that gave up is gone");
    }

    #[test]
    fn an_offer_is_taken_once_by_whoever_comes_first() {
        let (owner, child) = pair();
        let one = plain::encode(&Value::Int(1), CAPACITY).unwrap();
        let first = owner.offer(&one).unwrap();
        assert_eq!(child.offered(), Some(first));
        assert!(owner.offer(&one).is_none(), "one item on offer at a time");
        assert!(!child.announce(6, true), "the queue is not empty");
        assert!(matches!(child.claim(), Ok(Some(Value::Int(1)))));
        assert!(matches!(child.claim(), Ok(None)));
        assert!(!owner.reclaim(first), "taken already");
        let second = owner.offer(&one).unwrap();
        assert_ne!(first, second);
        assert!(!owner.reclaim(first), "an older offer is not this one");
        assert!(owner.reclaim(second));
        assert!(matches!(child.claim(), Ok(None)));
    }

    #[test]
    fn an_item_handed_to_a_process_that_died_comes_back() {
        let (owner, child) = pair();
        assert!(child.announce(6, true));
        assert!(owner.hand(0, &plain::encode(&Value::Int(3), CAPACITY).unwrap()));
        assert_eq!(owner.forget(|id| id == 9).map(|v| v.to_repr()), None);
        assert_eq!(
            owner.forget(|id| id == 6).map(|v| v.to_repr()),
            Some("3".into())
        );
        assert!(owner.announce(5, false), "the word is free again");
    }
}
