//! How far down the native stack a call may start. The evaluator recurses
//! on the native stack: once per call, and once per level of a nested
//! expression in between (`g(g(g(...)))` is a few hundred bytes a level).
//! The call-depth limit alone cannot bound that, so each call also checks
//! that it starts above a floor, set when the thread starts evaluating: the
//! reserve below it holds anything one call's expressions can need (the
//! parser bounds their nesting) until the next call checks again.
//!
//! On an OS thread the floor is measured from the thread's own stack, as
//! the OS reports it. A fiber of the controlled engine runs on a stack of
//! its own, `THREAD_STACK` bytes from about where its thread starts to
//! evaluate, which the floor is then measured from.

use crate::runtime::threads::THREAD_STACK;
use std::cell::Cell;

/// The reserve: this much, or a quarter of a smaller stack.
const RESERVE: usize = 4 << 20;

fn reserve(stack: usize) -> usize {
    RESERVE.min(stack / 4)
}

/// The current stack pointer (near enough: the address of this frame).
#[inline(always)]
pub fn stack_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let sp: usize;
        // SAFETY: reads a register, touches no memory.
        unsafe {
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(target_arch = "aarch64")]
    {
        let sp: usize;
        // SAFETY: reads a register, touches no memory.
        unsafe {
            std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let here = 0u8;
        std::hint::black_box(&here) as *const u8 as usize
    }
}

thread_local! {
    /// This OS thread's stack, lowest and highest address (0, 0: unknown).
    static BOUNDS: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// The lowest address a call may start at, for a thread about to evaluate
/// from here.
pub fn floor() -> usize {
    let sp = stack_pointer();
    let (low, high) = BOUNDS.with(|b| match b.get() {
        Some(bounds) => bounds,
        None => {
            let bounds = os_thread_stack().unwrap_or((0, 0));
            b.set(Some(bounds));
            bounds
        }
    });
    if low < sp && sp <= high {
        low + reserve(high - low)
    } else {
        sp.saturating_sub(THREAD_STACK - reserve(THREAD_STACK))
    }
}

#[cfg(target_os = "linux")]
fn os_thread_stack() -> Option<(usize, usize)> {
    // SAFETY: `attr` is initialised by pthread_getattr_np before it is read
    // and destroyed after; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let got = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if got != 0 || addr.is_null() {
            return None;
        }
        let low = addr as usize;
        Some((low, low + size))
    }
}

#[cfg(not(target_os = "linux"))]
fn os_thread_stack() -> Option<(usize, usize)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test thread's stack is known, and the floor leaves most of it.
    #[test]
    fn the_floor_is_inside_this_threads_stack() {
        let size = 4 << 20;
        let t = std::thread::Builder::new()
            .stack_size(size)
            .spawn(move || {
                let sp = stack_pointer();
                let floor = floor();
                assert!(floor < sp, "floor {floor:#x} above sp {sp:#x}");
                let room = sp - floor;
                assert!(room > size / 2 && room < size, "room {room} of {size}");
            })
            .unwrap();
        t.join().unwrap();
    }
}
