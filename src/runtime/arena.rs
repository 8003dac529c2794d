//! Words in memory a process shares with the children it spawns.
//!
//! Each process (on the OS engine) maps one arena, a memfd, the first time
//! it makes a lock or leases queue items; every child it starts receives
//! the arena's fd over its connection (SCM_RIGHTS) and maps it too. What
//! lives there is what must be exact in both processes without a round
//! trip: the owner word of each lock (so a child takes a free lock with
//! one compare-and-swap, see `locks.rs`) and the counter of each lease of
//! queue items (`lease.rs`). Everything else about an object stays
//! with its owner.
//!
//! The arena is cut into blocks of `BLOCK` words. A lock's block and a
//! lease's block come from separate free lists, so a block that counted a
//! lease is only ever a lease's again (its generation keeps growing, see
//! `lease.rs`), never a lock's word.

use super::fd_pass;
use parking_lot::Mutex;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Words per block: a lock's owner word and where it was taken (2 words).
pub const BLOCK: usize = 4;
/// Blocks in an arena. Pages are only backed once touched, so the size is
/// a limit, not a cost; past it, new locks keep their words on the heap
/// (and take a round trip from a child) and gets lease nothing.
const BLOCKS: usize = 1 << 16;
const BYTES: usize = BLOCKS * BLOCK * std::mem::size_of::<AtomicU64>();

/// Blocks in a handoff's span (`handoff.rs`): its state, the length and
/// the encoded item, 1 KiB in all.
pub const HANDOFF_BLOCKS: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Lock,
    Lease,
    /// The first block of `HANDOFF_BLOCKS` in a row.
    Handoff,
}

pub struct Arena {
    base: *const AtomicU64,
    /// Blocks never handed out start here.
    fresh: AtomicUsize,
    free_locks: Mutex<Vec<u32>>,
    free_leases: Mutex<Vec<u32>>,
    free_handoffs: Mutex<Vec<u32>>,
    fd: OwnedFd,
}

// SAFETY: the mapping lives as long as the Arena and is only accessed
// through atomics.
unsafe impl Send for Arena {}
unsafe impl Sync for Arena {}

impl Arena {
    /// This process's own arena.
    pub fn create() -> io::Result<Arc<Arena>> {
        // SAFETY: a plain system call on a static, NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"conc-shared".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create gave us this fd; nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ftruncate on an fd we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), BYTES as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Arena::map(fd)
    }

    /// The parent's arena, received over the connection.
    pub fn open(fd: OwnedFd) -> io::Result<Arc<Arena>> {
        // A child never allocates in its parent's arena.
        let arena = Arena::map(fd)?;
        arena.fresh.store(BLOCKS, Ordering::Relaxed);
        Ok(arena)
    }

    fn map(fd: OwnedFd) -> io::Result<Arc<Arena>> {
        // SAFETY: a fresh shared mapping of a file at least BYTES long; a
        // memfd's pages read as zero until written.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Arc::new(Arena {
            base: ptr as *const AtomicU64,
            fresh: AtomicUsize::new(0),
            free_locks: Mutex::new(Vec::new()),
            free_leases: Mutex::new(Vec::new()),
            free_handoffs: Mutex::new(Vec::new()),
            fd,
        }))
    }

    fn free_list(&self, what: Use) -> &Mutex<Vec<u32>> {
        match what {
            Use::Lock => &self.free_locks,
            Use::Lease => &self.free_leases,
            Use::Handoff => &self.free_handoffs,
        }
    }

    /// A block for `what`, or `None` when the arena is full.
    pub fn alloc(self: &Arc<Self>, what: Use) -> Option<u32> {
        if let Some(block) = self.free_list(what).lock().pop() {
            return Some(block);
        }
        let n = if what == Use::Handoff {
            HANDOFF_BLOCKS
        } else {
            1
        };
        let block = self.fresh.fetch_add(n, Ordering::Relaxed);
        if block + n > BLOCKS {
            self.fresh.store(BLOCKS, Ordering::Relaxed);
            return None;
        }
        Some(block as u32)
    }

    /// Give a block back (its words keep their last values).
    pub fn free(&self, what: Use, block: u32) {
        self.free_list(what).lock().push(block);
    }

    /// Word `i` of `block`; `None` outside the arena (a block number from
    /// another process is checked here).
    pub fn word(&self, block: u32, i: usize) -> Option<&AtomicU64> {
        ((block as usize) < BLOCKS && i < BLOCK).then(|| {
            // SAFETY: inside the mapping (checked above), 8-byte aligned.
            unsafe { &*self.base.add(block as usize * BLOCK + i) }
        })
    }

    /// The `n` words from the start of `block` on; `None` past the arena's
    /// end (a block number from another process is checked here).
    pub fn span(&self, block: u32, n: usize) -> Option<&[AtomicU64]> {
        let start = (block as usize).checked_mul(BLOCK)?;
        (start.checked_add(n)? <= BLOCKS * BLOCK).then(|| {
            // SAFETY: inside the mapping (checked above), 8-byte aligned;
            // only ever accessed through atomics.
            unsafe { std::slice::from_raw_parts(self.base.add(start), n) }
        })
    }

    /// Hand the arena (if any) to the child at the other end of `stream`,
    /// on the one byte that comes before its start message.
    pub fn send(arena: Option<&Arena>, stream: &UnixStream) -> io::Result<()> {
        fd_pass::send(stream, arena.map(|a| a.fd.as_raw_fd()))
    }

    /// The child's side of `send`: the parent's arena, if it had one.
    pub fn receive(stream: &UnixStream) -> io::Result<Option<Arc<Arena>>> {
        fd_pass::receive(stream)?.map(Arena::open).transpose()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, BYTES);
        }
    }
}

/// A lock's words: in the arena (a child can use them too) or, without
/// one, on the heap. Freed with the last handle.
pub struct Words {
    base: *const AtomicU64,
    place: Place,
}

enum Place {
    Heap(#[allow(dead_code)] Box<[AtomicU64; BLOCK]>),
    Arena(Arc<Arena>, u32),
}

// SAFETY: `base` points into the heap box or the arena mapping, both kept
// alive by `place`, and is only accessed through atomics.
unsafe impl Send for Words {}
unsafe impl Sync for Words {}

impl Words {
    pub fn new(arena: Option<&Arc<Arena>>) -> Words {
        if let Some((arena, block)) = arena.and_then(|a| Some((a, a.alloc(Use::Lock)?))) {
            if let Some(first) = arena.word(block, 0) {
                for i in 0..BLOCK {
                    if let Some(w) = arena.word(block, i) {
                        w.store(0, Ordering::Relaxed);
                    }
                }
                return Words {
                    base: first,
                    place: Place::Arena(arena.clone(), block),
                };
            }
        }
        let heap = Box::new([const { AtomicU64::new(0) }; BLOCK]);
        Words {
            base: heap.as_ptr(),
            place: Place::Heap(heap),
        }
    }

    /// The words of a block of another process's arena (a child's view of
    /// its parent's lock); not freed here.
    pub fn view(arena: &Arc<Arena>, block: u32) -> Option<Arc<Words>> {
        let first = arena.word(block, 0)?;
        Some(Arc::new(Words {
            base: first,
            place: Place::Arena(arena.clone(), u32::MAX),
        }))
    }

    /// Where these words are in the arena, if they are.
    pub fn block(&self) -> Option<u32> {
        match self.place {
            Place::Arena(_, block) if block != u32::MAX => Some(block),
            _ => None,
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < BLOCK);
        // SAFETY: i < BLOCK, inside the words `place` keeps alive.
        unsafe { &*self.base.add(i) }
    }
}

impl Drop for Words {
    fn drop(&mut self) {
        if let Place::Arena(arena, block) = &self.place {
            if *block != u32::MAX {
                arena.free(Use::Lock, *block);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arena_crosses_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let arena = Arena::create().unwrap();
        Arena::send(Some(&arena), &a).unwrap();
        let theirs = Arena::receive(&b).unwrap().unwrap();
        let words = Words::new(Some(&arena));
        let block = words.block().unwrap();
        words.get(0).store(42, Ordering::Relaxed);
        let view = Words::view(&theirs, block).unwrap();
        assert_eq!(view.get(0).load(Ordering::Relaxed), 42);
        assert!(theirs.alloc(Use::Lock).is_none(), "a child never allocates");
        Arena::send(None, &a).unwrap();
        assert!(Arena::receive(&b).unwrap().is_none());
    }

    #[test]
    fn lock_and_lease_blocks_are_kept_apart() {
        let arena = Arena::create().unwrap();
        let lease = arena.alloc(Use::Lease).unwrap();
        arena.free(Use::Lease, lease);
        let words = Words::new(Some(&arena));
        assert_ne!(words.block(), Some(lease));
        assert_eq!(arena.alloc(Use::Lease), Some(lease));
    }
}
