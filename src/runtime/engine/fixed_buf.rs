//! A buffer of plain values that never grows: a traced thread's marks are
//! kept in a row of these, so noting one is a bounds check and a write (no
//! reallocation, no copy of what was noted). A big one sits on memory the
//! kernel may back with one huge page: a traced thread's marks fill
//! megabytes, and on a virtual machine every 4 KiB page touched for the
//! first time costs a fault of a couple of microseconds.

use std::alloc::Layout;
use std::ptr::NonNull;

/// One huge page.
const HUGE: usize = 2 << 20;

pub struct FixedBuf<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
    huge: bool,
}

impl<T: Copy> Default for FixedBuf<T> {
    /// No room at all: full from the start.
    fn default() -> FixedBuf<T> {
        FixedBuf {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
            huge: false,
        }
    }
}

// SAFETY: the buffer owns its values (plain `Copy` data) like a Vec does.
unsafe impl<T: Copy + Send> Send for FixedBuf<T> {}
unsafe impl<T: Copy + Sync> Sync for FixedBuf<T> {}

impl<T: Copy> FixedBuf<T> {
    /// Room for `cap` values; `None` when the memory cannot be had.
    pub fn new(cap: usize) -> Option<FixedBuf<T>> {
        Self::alloc(cap, false)
    }

    /// A huge page's worth; `None` when the memory cannot be had.
    pub fn huge() -> Option<FixedBuf<T>> {
        let buf = Self::alloc(HUGE / std::mem::size_of::<T>().max(1), true)?;
        // SAFETY: advice on the range just allocated; failing is harmless.
        unsafe { libc::madvise(buf.ptr.as_ptr().cast(), HUGE, libc::MADV_HUGEPAGE) };
        Some(buf)
    }

    fn alloc(cap: usize, huge: bool) -> Option<FixedBuf<T>> {
        let layout = Self::layout(cap, huge)?;
        // SAFETY: the layout has a non-zero size (checked in `layout`).
        let raw = unsafe { std::alloc::alloc(layout) };
        let ptr = NonNull::new(raw.cast::<T>())?;
        Some(FixedBuf {
            ptr,
            len: 0,
            cap,
            huge,
        })
    }

    /// A huge page's worth is aligned to a huge page (so the kernel can
    /// back it with one).
    fn layout(cap: usize, huge: bool) -> Option<Layout> {
        let bytes = cap.checked_mul(std::mem::size_of::<T>())?;
        let align = match huge {
            true => HUGE,
            false => std::mem::align_of::<T>(),
        };
        (bytes > 0 && std::mem::align_of::<T>() <= align)
            .then(|| Layout::from_size_align(bytes, align).ok())
            .flatten()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// False when full.
    #[inline(always)]
    pub fn push(&mut self, v: T) -> bool {
        if self.len == self.cap {
            return false;
        }
        // SAFETY: len < cap: inside the allocation, aligned for T.
        unsafe { self.ptr.as_ptr().add(self.len).write(v) };
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` values were written by `push`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Clone for FixedBuf<T> {
    /// A copy of what it holds, with no room to spare (a copy is read,
    /// never added to).
    fn clone(&self) -> FixedBuf<T> {
        let mut copy = FixedBuf::new(self.len.max(1))
            .unwrap_or_else(|| std::alloc::handle_alloc_error(Layout::new::<T>()));
        for v in self.as_slice() {
            copy.push(*v);
        }
        copy
    }
}

impl<T: Copy> Drop for FixedBuf<T> {
    fn drop(&mut self) {
        // An empty one (`default`) has no layout and nothing to free.
        if let Some(layout) = Self::layout(self.cap, self.huge) {
            // SAFETY: allocated in `alloc` with this very layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_holds_what_was_pushed_until_full() {
        for mut b in [
            FixedBuf::<u64>::huge().unwrap(),
            FixedBuf::new(100).unwrap(),
        ] {
            let cap = b.capacity();
            for i in 0..cap as u64 {
                assert!(b.push(i));
            }
            assert!(!b.push(0), "full");
            assert_eq!(b.as_slice().len(), cap);
            assert_eq!(b.as_slice()[cap - 1], cap as u64 - 1);
            assert_eq!(b.clone().as_slice(), b.as_slice());
        }
        assert!(!FixedBuf::<u64>::default().push(1));
        assert_eq!(FixedBuf::<u64>::huge().unwrap().capacity(), HUGE / 8);
    }
}
