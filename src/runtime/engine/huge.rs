//! A fixed-size buffer of plain values on memory the kernel may back with
//! one huge page: a traced thread's marks fill tens of megabytes, and on a
//! virtual machine every 4 KiB page touched for the first time costs a
//! fault of a couple of microseconds (a fifth of what tracing a tight
//! locking loop cost, measured on 2 cores).

use std::alloc::Layout;
use std::ptr::NonNull;

/// One huge page.
const BYTES: usize = 2 << 20;

pub struct HugeBuf<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
}

// SAFETY: the buffer owns its values (plain `Copy` data) like a Vec does.
unsafe impl<T: Copy + Send> Send for HugeBuf<T> {}
unsafe impl<T: Copy + Sync> Sync for HugeBuf<T> {}

impl<T: Copy> HugeBuf<T> {
    /// `None` when the memory cannot be had (the caller keeps to small
    /// buffers then).
    pub fn new() -> Option<HugeBuf<T>> {
        if std::mem::size_of::<T>() == 0 || std::mem::align_of::<T>() > BYTES {
            return None;
        }
        let layout = Self::layout()?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let ptr = NonNull::new(raw.cast::<T>())?;
        // SAFETY: advice on the range just allocated; failing is harmless.
        unsafe { libc::madvise(raw.cast(), BYTES, libc::MADV_HUGEPAGE) };
        Some(HugeBuf { ptr, len: 0 })
    }

    fn layout() -> Option<Layout> {
        Layout::from_size_align(BYTES, BYTES).ok()
    }

    pub fn capacity(&self) -> usize {
        BYTES / std::mem::size_of::<T>()
    }

    /// False when full.
    #[inline]
    pub fn push(&mut self, v: T) -> bool {
        if self.len == self.capacity() {
            return false;
        }
        // SAFETY: len < capacity: inside the allocation, aligned for T.
        unsafe { self.ptr.as_ptr().add(self.len).write(v) };
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` values were written by `push`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeBuf<T> {
    fn drop(&mut self) {
        if let Some(layout) = Self::layout() {
            // SAFETY: allocated in `new` with this very layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_buffer_holds_what_was_pushed_until_full() {
        let mut b = HugeBuf::<u64>::new().unwrap();
        let cap = b.capacity();
        assert_eq!(cap, BYTES / 8);
        for i in 0..cap as u64 {
            assert!(b.push(i));
        }
        assert!(!b.push(0), "full");
        assert_eq!(b.as_slice().len(), cap);
        assert_eq!(b.as_slice()[cap - 1], cap as u64 - 1);
    }
}
