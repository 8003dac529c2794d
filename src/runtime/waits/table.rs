//! The registry's table: every live thread of a session and what each
//! waits for, as the registry keeps it and deadlock detection reads it.

use super::{BlockOn, ThreadId};
use crate::runtime::threads::ThreadRef;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

pub(super) struct Waiting {
    pub(super) on: BlockOn,
    pub(super) woken: bool,
}

impl Waiting {
    /// Blocked with nothing but another thread of ours able to wake it.
    pub(super) fn stuck(&self) -> bool {
        !self.woken
            && self.on.deadline.is_none()
            && !self.on.external
            && self
                .on
                .quiet
                .as_ref()
                .is_none_or(|q| q.load(Ordering::Acquire))
    }

    /// Blocked until another process answers (a call on a shared object).
    pub(super) fn on_other_process(&self) -> bool {
        !self.woken && self.on.external && self.on.deadline.is_none()
    }

    /// Nothing in this process but another thread or process can end it.
    pub(super) fn blocked(&self) -> bool {
        self.stuck() || self.on_other_process()
    }
}

pub(super) struct Entry {
    pub(super) thread: ThreadRef,
    pub(super) waiting: Option<Waiting>,
    /// Woken while enlisted on some object but not yet in `waiting` (a
    /// `select` tries its arms one by one before it begins its wait): the
    /// wait that begins next starts out woken.
    pub(super) wake_pending: bool,
}

pub(super) type Threads = BTreeMap<ThreadId, Entry>;
