//! One byte over a Unix socket, carrying a file descriptor (SCM_RIGHTS)
//! when there is one: how a parent hands its arena to a child, and the
//! connection of a new child to the spawner.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// A header for a message of the one byte `iov` points at, with `room`
/// bytes of `control` for an fd (0: none). The pointers it holds are into
/// the caller's `iov` and `control`, which outlive the call using it.
fn header(iov: &mut libc::iovec, control: &mut [u64; 4], room: usize) -> libc::msghdr {
    // SAFETY: msghdr is plain data; all zeroes is an empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    if room > 0 {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = room.min(std::mem::size_of_val(control)) as _;
    }
    msg
}

/// One byte, carrying `fd` (SCM_RIGHTS) when there is one.
pub fn send(stream: &UnixStream, fd: Option<RawFd>) -> io::Result<()> {
    let mut byte = [u8::from(fd.is_some())];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE(4) is 24 bytes on Linux, within the 32 of the
    // control buffer; every pointer in the header outlives sendmsg.
    unsafe {
        let room = fd.map_or(0, |_| {
            libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize
        });
        let msg = header(&mut iov, &mut control, room);
        if let Some(fd) = fd {
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

/// The byte `send` sent, and the fd it carried, if any.
pub fn receive(stream: &UnixStream) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    let room = std::mem::size_of_val(&control);
    let mut msg = header(&mut iov, &mut control, room);
    // SAFETY: the kernel writes at most msg_controllen bytes of control
    // data into the header's buffers, and an fd it passes is ours from
    // then on.
    unsafe {
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
