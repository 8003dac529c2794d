//! Leases: items of a queue a child process took ahead of use, still the
//! queue's until the child uses them.
//!
//! A `get` from another process costs a round trip. To save most of them, a
//! consumer may take every item waiting in one trip; but then the items
//! must still *be in the queue* for everybody else: counted by `size()`,
//! next in line for any getter, and not lost if the consumer dies. So the
//! owner keeps them (the lease) and the consumer only gets copies; which of
//! them the consumer has used is one counter in the owner's arena, which
//! the consumer maps too (`runtime/arena.rs`). The consumer uses an item by a compare-and-swap on
//! that counter; the owner ends a lease (for another getter, or to lease
//! again) by setting its closed bit. Whichever comes first wins, so every
//! item is got exactly once, wherever the getter is, and the owner knows at
//! once how many the consumer used, even if it was killed.
//!
//! A counter word: bits 0-31 the items used, bit 32 closed, bits 33-63 the
//! block's generation, so a consumer still holding copies of an ended lease
//! can never use them on the block's next lease (lease blocks are only
//! ever reused for leases).

use crate::runtime::arena::{Arena, Use};
use std::sync::atomic::{AtomicU64, Ordering};

const USED: u64 = 0xffff_ffff;
const CLOSED: u64 = 1 << 32;
const GEN_SHIFT: u32 = 33;
const GEN_MASK: u32 = u32::MAX >> 1;

/// One lease's block and generation, as the owner hands it to the consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    block: u32,
    generation: u32,
}

impl Ticket {
    /// As it travels in a reply (an int).
    pub fn to_int(self) -> i64 {
        (i64::from(self.block) << 32) | i64::from(self.generation)
    }

    pub fn from_int(n: i64) -> Option<Ticket> {
        Some(Ticket {
            block: u32::try_from(n >> 32).ok()?,
            generation: n as u32 & GEN_MASK,
        })
    }
}

fn counter(arena: &Arena, t: Ticket) -> Option<&AtomicU64> {
    arena.word(t.block, 0)
}

/// The owner starts a lease whose first item the consumer already has.
/// `None` when the arena is full.
pub fn grant(arena: &std::sync::Arc<Arena>) -> Option<Ticket> {
    let block = arena.alloc(Use::Lease)?;
    let word = arena.word(block, 0)?;
    let generation =
        ((word.load(Ordering::Acquire) >> GEN_SHIFT) as u32).wrapping_add(1) & GEN_MASK;
    word.store((u64::from(generation) << GEN_SHIFT) | 1, Ordering::Release);
    Some(Ticket { block, generation })
}

/// How many of the lease's items the consumer has used so far.
pub fn used(arena: &Arena, t: Ticket) -> usize {
    counter(arena, t).map_or(0, |w| (w.load(Ordering::Acquire) & USED) as usize)
}

/// The owner ends a lease: no item of it can be used from now on. Gives
/// how many were.
pub fn revoke(arena: &Arena, t: Ticket) -> usize {
    let Some(word) = counter(arena, t) else {
        return 0;
    };
    let was = word.fetch_or(CLOSED, Ordering::AcqRel);
    arena.free(Use::Lease, t.block);
    (was & USED) as usize
}

/// The consumer uses item `index` of its lease (0 is the one it got with
/// the lease): false if the owner ended the lease first.
pub fn claim(arena: &Arena, t: Ticket, index: u32) -> bool {
    let open = u64::from(t.generation) << GEN_SHIFT;
    counter(arena, t).is_some_and(|w| {
        w.compare_exchange(
            open | u64::from(index),
            open | u64::from(index + 1),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_and_a_revoke_never_both_win() {
        let arena = Arena::create().unwrap();
        let t = grant(&arena).unwrap();
        assert!(claim(&arena, t, 1));
        assert!(!claim(&arena, t, 1), "item 1 was used already");
        assert_eq!(used(&arena, t), 2);
        assert_eq!(revoke(&arena, t), 2);
        assert!(!claim(&arena, t, 2), "the lease is over");
        // The block's next lease is a new generation: the old ticket stays dead.
        let next = grant(&arena).unwrap();
        assert_eq!(next.block, t.block);
        assert!(!claim(&arena, t, 1));
        assert!(claim(&arena, next, 1));
        assert_eq!(Ticket::from_int(next.to_int()), Some(next));
    }
}
