//! The OS engine's parking spot for one thread.

use parking_lot::{Condvar, Mutex};
use std::time::Instant;

/// A one-permit parking spot for one thread (like `std::thread::park`, but
/// ours, so an interrupt or a deadlock report can wake any blocked thread).
/// Only the engine touches it.
#[derive(Default)]
pub struct Parker {
    permit: Mutex<bool>,
    cv: Condvar,
}

impl Parker {
    /// Wait for a permit or the deadline. Callers re-check their condition:
    /// a stale permit may make this return early.
    pub(super) fn park(&self, deadline: Option<Instant>) {
        let mut permit = self.permit.lock();
        while !*permit {
            match deadline {
                Some(d) => {
                    if self.cv.wait_until(&mut permit, d).timed_out() {
                        break;
                    }
                }
                None => self.cv.wait(&mut permit),
            }
        }
        *permit = false;
    }

    pub(super) fn unpark(&self) {
        *self.permit.lock() = true;
        self.cv.notify_one();
    }
}
