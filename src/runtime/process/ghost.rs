//! Stand-ins ("ghosts"): on the owner's side, every thread of the other
//! process that uses our objects gets a thread record of its own here, which
//! performs that thread's operations with the same runtime calls a local
//! thread would make. So several threads of one child can block on
//! different objects at once, a stand-in can own a lock, and the owner's
//! deadlock reports name the child's threads at the child's own lines.

use super::link::Link;
use super::serve;
use super::wire::{Op, Packet, Request, WireError};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::locks::Lock;
use crate::runtime::object::Cx;
use crate::runtime::value::Value;
use crate::runtime::{Context, Handle, ThreadRecord, ThreadRef};
use crate::span::Span;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct GhostJobs {
    queue: VecDeque<Request>,
    /// It has work queued or in hand (and is in the registry, and an OS
    /// thread works through its queue).
    active: bool,
    /// Under control: its fiber exists (parked while idle).
    fiber: bool,
    /// Its connection is gone: an idle fiber ends.
    retired: bool,
}

/// The stand-in for one thread of the other process.
pub struct Ghost {
    pub(super) record: ThreadRef,
    jobs: Mutex<GhostJobs>,
    /// The request being performed (to cancel it), 0 when idle.
    pub(super) current: AtomicU64,
    /// Locks it holds for its thread, freed if that process dies.
    pub(super) locks: Mutex<Vec<Arc<Lock>>>,
}

impl Ghost {
    pub(super) fn new(id: u64, name: String) -> Ghost {
        Ghost {
            record: ThreadRecord::new_stand_in(id, name),
            jobs: Mutex::new(GhostJobs::default()),
            current: AtomicU64::new(0),
            locks: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn idle(&self) -> bool {
        !self.jobs.lock().active
    }

    /// Its connection is gone: under control its parked fiber ends.
    pub(super) fn retire(&self, ctx: &Context) {
        let mut jobs = self.jobs.lock();
        jobs.retired = true;
        if jobs.fiber && !jobs.active {
            drop(jobs);
            ctx.engine().unpark(&self.record);
        }
    }

    /// Queue a request, and start an OS thread to work through the queue
    /// unless one already is.
    pub(super) fn take(self: Arc<Ghost>, link: &Arc<Link>, ctx: &Arc<Context>, request: Request) {
        let mut jobs = self.jobs.lock();
        jobs.queue.push_back(request);
        if jobs.active {
            return;
        }
        // Registered from now until its reply is sent, so this process
        // never sees a moment where a child's operation is in nobody's
        // hands (which could look like a deadlock).
        jobs.active = true;
        ctx.registry.register(self.record.clone());
        if jobs.fiber {
            drop(jobs);
            ctx.engine().unpark(&self.record);
            return;
        }
        jobs.fiber = !ctx.engine().fast_paths();
        drop(jobs);
        // A stand-in is a thread of this process like any other: it counts
        // against the same cap, so a child with many threads cannot take
        // this process past what it can map.
        let started = crate::runtime::thread_slots::reserve().and_then(|slot| {
            let (link2, ctx2, g) = (link.clone(), ctx.clone(), self.clone());
            ctx.engine()
                .start_thread(
                    &self.record,
                    crate::runtime::threads::THREAD_STACK,
                    Box::new(move || {
                        let _slot = slot;
                        g.run(&link2, &ctx2)
                    }),
                )
                .map_err(|_| RuntimeError::new(kind::PROCESS, "the OS refused to start a thread"))
        });
        if let Err(err) = started {
            self.refuse(link, ctx, &err);
        }
    }

    /// No thread to serve the queued requests: each fails with `err`.
    fn refuse(&self, link: &Arc<Link>, ctx: &Arc<Context>, err: &RuntimeError) {
        let requests: Vec<Request> = {
            let mut jobs = self.jobs.lock();
            jobs.active = false;
            jobs.fiber = false;
            jobs.queue.drain(..).collect()
        };
        ctx.registry.unregister(self.record.id);
        link.ghost_idle.notify_all();
        for r in requests {
            link.reply(r.req, Err(WireError::from(err)));
        }
    }

    /// Work through the queued requests; when none is left the OS thread
    /// goes back to the engine (which keeps it a moment for the next one).
    /// Under control the fiber stays, parked, until more work comes or
    /// the connection closes: a stand-in is one thread for the scheduler.
    fn run(&self, link: &Arc<Link>, ctx: &Arc<Context>) {
        loop {
            let next = {
                let mut jobs = self.jobs.lock();
                match jobs.queue.pop_front() {
                    Some(next) => next,
                    None => {
                        if jobs.active {
                            jobs.active = false;
                            ctx.registry.unregister(self.record.id);
                        }
                        if !jobs.fiber {
                            drop(jobs);
                            // Under the ghosts' lock, so `close` cannot miss it.
                            let _ghosts = link.ghosts.lock();
                            link.ghost_idle.notify_all();
                            return;
                        }
                        if jobs.retired {
                            drop(jobs);
                            ctx.engine().helper_ended(&self.record);
                            return;
                        }
                        drop(jobs);
                        ctx.engine().park(&self.record, None);
                        continue;
                    }
                }
            };
            self.current.store(next.req, Ordering::Release);
            if next.req == 0 {
                // Posted before the other side went away (a put, the
                // release of a lock): it takes effect, as a write that
                // reached the socket before its writer died would. Such an
                // operation never waits, so an interrupt has nothing to end
                // (and each request's interrupt ends with it, below).
                self.record.clear_interrupt();
                self.perform(ctx, link, &next, false);
            } else if !link.is_broken() {
                // (Nobody is left to answer: a get would take an item for
                // no one.)
                if let Some(result) = self.perform(ctx, link, &next, false) {
                    link.reply(next.req, result);
                }
            }
            self.current.store(0, Ordering::Release);
            self.record.clear_interrupt();
        }
    }

    /// Perform one request on the object it names and encode the outcome.
    /// `at_once`: only if it can complete without waiting (else `None`).
    pub(super) fn perform(
        &self,
        ctx: &Arc<Context>,
        link: &Arc<Link>,
        request: &Request,
        at_once: bool,
    ) -> Option<Result<Packet, WireError>> {
        let at = request.span.map(Span::from).unwrap_or_default();
        let cx = Cx {
            told: Some(&request.what),
            ..Cx::new(ctx, &self.record, at, at)
        };
        let encode = |outcome: Result<Vec<Value>, RuntimeError>| {
            outcome
                .and_then(|values| super::codec::encode(link, &values))
                .map_err(|e| WireError::from(&e))
        };
        if let Op::Select { arms, timeout } = &request.op {
            if at_once {
                return None;
            }
            return Some(encode(serve::serve_select(
                &cx,
                link,
                arms.clone(),
                *timeout,
            )));
        }
        let Some(handle) = link.exported(request.target) else {
            let err = RuntimeError::new(
                kind::PROCESS,
                format!(
                    "object #{} is not shared with {}",
                    request.target, link.peer
                ),
            );
            return Some(Err(WireError::from(&err)));
        };
        let op = if at_once {
            right_now(&request.op, &handle)?
        } else {
            request.op.clone()
        };
        let outcome = serve::serve(&cx, link, &handle, op);
        if at_once && would_block(&request.op, &outcome) {
            return None;
        }
        if let (Ok(values), Some(lock)) = (&outcome, handle.lock()) {
            self.track(&request.op, values, lock);
        }
        Some(encode(outcome))
    }

    /// Keep the list of locks held for the remote thread up to date.
    fn track(&self, op: &Op, outcome: &[Value], lock: &Arc<Lock>) {
        let mut held = self.locks.lock();
        match op {
            Op::Acquire { .. } if matches!(outcome.first(), Some(Value::Bool(true))) => {
                held.push(lock.clone())
            }
            Op::Release => {
                if let Some(i) = held.iter().position(|l| Arc::ptr_eq(l, lock)) {
                    held.remove(i);
                }
            }
            _ => {}
        }
    }
}

/// `op` with a zero timeout, if trying it that way is harmless: a condition
/// or barrier wait is never tried (it would release a lock or count an
/// arrival).
fn right_now(op: &Op, handle: &Handle) -> Option<Op> {
    let now = Some(0.0);
    match op {
        Op::Get { .. } => Some(Op::Get { timeout: now }),
        Op::Put { item, .. } => Some(Op::Put {
            item: item.clone(),
            timeout: now,
        }),
        Op::Acquire { .. } => Some(Op::Acquire { timeout: now }),
        Op::Take { max, .. } => Some(Op::Take {
            timeout: now,
            max: *max,
        }),
        Op::Wait { .. } if matches!(handle, Handle::Event(_)) => Some(Op::Wait { timeout: now }),
        Op::Release | Op::Method { .. } => Some(op.clone()),
        _ => None,
    }
}

/// Whether an at-once try ran into a wait the real request would make
/// (a request whose own timeout is 0 takes the try's answer as final).
fn would_block(op: &Op, outcome: &Result<Vec<Value>, RuntimeError>) -> bool {
    let timeout = match op {
        Op::Get { timeout }
        | Op::Take { timeout, .. }
        | Op::Put { timeout, .. }
        | Op::Acquire { timeout }
        | Op::Wait { timeout } => *timeout,
        _ => return false,
    };
    if timeout == Some(0.0) {
        return false;
    }
    let Ok(values) = outcome else {
        return false;
    };
    match op {
        // An item got is final, whatever it is (`false` too).
        Op::Get { .. } | Op::Take { .. } => values.is_empty(),
        _ => matches!(values.first(), Some(Value::Bool(false))),
    }
}
