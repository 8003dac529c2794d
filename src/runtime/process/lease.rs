//! Leases: items of a queue a child process took ahead of use, still the
//! queue's until the child uses them.
//!
//! A `get` from another process costs a round trip. To save most of them, a
//! consumer may take every item waiting in one trip; but then the items
//! must still *be in the queue* for everybody else: counted by `size()`,
//! next in line for any getter, and not lost if the consumer dies. So the
//! owner keeps them (the lease) and the consumer only gets copies; which of
//! them the consumer has used is one counter in memory the two processes
//! share (the board). The consumer uses an item by a compare-and-swap on
//! that counter; the owner ends a lease (for another getter, or to lease
//! again) by setting its closed bit. Whichever comes first wins, so every
//! item is got exactly once, wherever the getter is, and the owner knows at
//! once how many the consumer used, even if it was killed.
//!
//! A counter word: bits 0-31 the items used, bit 32 closed, bits 33-63 the
//! slot's generation, so a consumer still holding copies of an ended lease
//! can never use them on the slot's next lease.

use parking_lot::Mutex;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counter slots per connection: as many queues as a child can hold leases
/// on at once (past that, its gets are one item per trip).
const SLOTS: usize = 512;
const BYTES: usize = SLOTS * std::mem::size_of::<AtomicU64>();

const USED: u64 = 0xffff_ffff;
const CLOSED: u64 = 1 << 32;
const GEN_SHIFT: u32 = 33;

/// One lease's slot and generation, as the owner hands it to the consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    slot: u32,
    generation: u32,
}

impl Ticket {
    /// As it travels in a reply (an int).
    pub fn to_int(self) -> i64 {
        (i64::from(self.slot) << 32) | i64::from(self.generation)
    }

    pub fn from_int(n: i64) -> Option<Ticket> {
        let slot = u32::try_from(n >> 32).ok()?;
        ((slot as usize) < SLOTS).then_some(Ticket {
            slot,
            generation: n as u32 & (u32::MAX >> 1),
        })
    }
}

/// The counters of one parent-child connection, mapped in both processes.
pub struct Board {
    words: *const AtomicU64,
    /// Slots no lease holds (the owner's side only).
    free: Mutex<Vec<u32>>,
    _fd: OwnedFd,
}

// SAFETY: the mapping lives as long as the Board, and it is only ever
// accessed through atomics.
unsafe impl Send for Board {}
unsafe impl Sync for Board {}

impl Board {
    /// A new board (the parent's side of a connection about to start).
    pub fn create() -> io::Result<Board> {
        // SAFETY: a plain system call on a static, NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"conc-leases".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create gave us this fd, nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ftruncate on an fd we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), BYTES as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Board::map(fd, (0..SLOTS as u32).rev().collect())
    }

    /// The child's side: the parent's board, received over the connection.
    pub fn open(fd: OwnedFd) -> io::Result<Board> {
        Board::map(fd, Vec::new())
    }

    fn map(fd: OwnedFd, free: Vec<u32>) -> io::Result<Board> {
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
        Ok(Board {
            words: ptr as *const AtomicU64,
            free: Mutex::new(free),
            _fd: fd,
        })
    }

    fn word(&self, slot: u32) -> &AtomicU64 {
        // SAFETY: slot < SLOTS (tickets are checked when made), inside the
        // mapping, which is aligned to a page.
        unsafe { &*self.words.add(slot as usize) }
    }

    /// The owner starts a lease whose first item the consumer already has.
    /// `None` when every slot is taken.
    pub fn grant(&self) -> Option<Ticket> {
        let slot = self.free.lock().pop()?;
        let word = self.word(slot);
        let generation = ((word.load(Ordering::Acquire) >> GEN_SHIFT) as u32 + 1) & (u32::MAX >> 1);
        word.store((u64::from(generation) << GEN_SHIFT) | 1, Ordering::Release);
        Some(Ticket { slot, generation })
    }

    /// How many of the lease's items the consumer has used so far.
    pub fn used(&self, t: Ticket) -> usize {
        (self.word(t.slot).load(Ordering::Acquire) & USED) as usize
    }

    /// The owner ends a lease: no item of it can be used from now on.
    /// Gives how many were.
    pub fn revoke(&self, t: Ticket) -> usize {
        let was = self.word(t.slot).fetch_or(CLOSED, Ordering::AcqRel);
        self.free.lock().push(t.slot);
        (was & USED) as usize
    }

    /// The consumer uses item `index` of its lease (0 is the one it got
    /// with the lease): false if the owner ended the lease first.
    pub fn claim(&self, t: Ticket, index: u32) -> bool {
        let open = u64::from(t.generation) << GEN_SHIFT;
        self.word(t.slot)
            .compare_exchange(
                open | u64::from(index),
                open | u64::from(index + 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Hand the board to the child at the other end of `stream`, with the
    /// one byte that comes before its start message.
    pub fn send(board: Option<&Board>, stream: &UnixStream) -> io::Result<()> {
        send_byte(stream, board.map(|b| b._fd.as_raw_fd()))
    }

    /// The child's side of `send`: the board, if the parent had one.
    pub fn receive(stream: &UnixStream) -> io::Result<Option<Board>> {
        receive_byte(stream)?.map(Board::open).transpose()
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe {
            libc::munmap(self.words as *mut libc::c_void, BYTES);
        }
    }
}

/// One byte, carrying `fd` (SCM_RIGHTS) when there is one.
fn send_byte(stream: &UnixStream, fd: Option<RawFd>) -> io::Result<()> {
    let mut byte = [u8::from(fd.is_some())];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; every pointer set below outlives the
    // sendmsg call, and the control buffer has room for one fd's header
    // (CMSG_SPACE(4) is 24 bytes on Linux; it is 32).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = fd {
            let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
        if libc::sendmsg(stream.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn receive_byte(stream: &UnixStream) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: as in `send_byte`; the kernel writes at most msg_controllen
    // bytes of control data, and an fd it passes is ours from then on.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n != 1 {
            return Err(if n < 0 {
                io::Error::last_os_error()
            } else {
                io::ErrorKind::UnexpectedEof.into()
            });
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Ok(None);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(Some(OwnedFd::from_raw_fd(fd)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_and_a_revoke_never_both_win() {
        let board = Board::create().unwrap();
        let t = board.grant().unwrap();
        assert!(board.claim(t, 1));
        assert!(!board.claim(t, 1), "item 1 was used already");
        assert_eq!(board.used(t), 2);
        assert_eq!(board.revoke(t), 2);
        assert!(!board.claim(t, 2), "the lease is over");
        // The slot's next lease is a new generation: the old ticket stays dead.
        let next = board.grant().unwrap();
        assert_eq!(next.slot, t.slot);
        assert!(!board.claim(t, 1));
        assert!(board.claim(next, 1));
        assert_eq!(Ticket::from_int(next.to_int()), Some(next));
    }

    #[test]
    fn the_board_crosses_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let board = Board::create().unwrap();
        Board::send(Some(&board), &a).unwrap();
        let theirs = Board::receive(&b).unwrap().unwrap();
        let t = board.grant().unwrap();
        assert!(theirs.claim(t, 1));
        assert_eq!(board.used(t), 2);
        Board::send(None, &a).unwrap();
        assert!(Board::receive(&b).unwrap().is_none());
    }
}
