//! One connection between two conc processes (a parent and a child it
//! spawned), the same code on both ends.
//!
//! Each side can *serve* the objects it exported to the other (queues,
//! locks, events ... it owns or proxies) and *call* objects the other side
//! exported, through `Remote` proxies. A call sends a `Request` and blocks
//! its thread in the waits layer until the `Reply` comes. On the serving
//! side every remote thread gets a stand-in thread (a "ghost") that performs
//! its operations, so several threads of one child can block on different
//! objects at once and the owner's registry sees every waiter.

use super::wire::{self, Msg, Op, Packet, Request, WireError};
use crate::diagnostics::{kind, RuntimeError};
use crate::eval::Interp;
use crate::runtime::engine::{Backoff, Spin};
use crate::runtime::locks::Lock;
use crate::runtime::value::Value;
use crate::runtime::waits::{block_until, BlockOn, WaitQueue};
use crate::runtime::{next_object_id, Context, Handle, ThreadRecord, ThreadRef};
use crate::span::Span;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// A reply usually comes within microseconds: a caller yields this many
/// times, looking for it, before it parks (a futex sleep and wake-up).
const SPIN_FOR_REPLY: Backoff = Backoff {
    spins: 0,
    yields: 50,
};

/// How long a connection that closes waits for its stand-ins to finish
/// the operation each has in hand.
const STAND_INS_STOP: Duration = Duration::from_secs(5);

pub struct Link {
    /// Who is at the other end, for messages: "process worker-1 (pid 42)".
    pub peer: String,
    /// This is a child's connection to its parent: its own objects may not
    /// go up it (the parent's deadlock detection could not see their waits).
    pub to_parent: bool,
    writer: Mutex<UnixStream>,
    ctx: OnceLock<Weak<Context>>,
    next_req: AtomicU64,
    pending: Mutex<HashMap<u64, Arc<ReplySlot>>>,
    /// Objects of ours the other side holds proxies for, by our object id.
    exports: Mutex<HashMap<u64, Handle>>,
    /// Proxies we made for the other side's objects, by their object id.
    imports: Mutex<HashMap<u64, Weak<Remote>>>,
    ghosts: Mutex<HashMap<u64, Arc<Ghost>>>,
    /// Signalled whenever a stand-in runs out of work (see `close`).
    ghost_idle: Condvar,
    /// Set once the connection is gone: why.
    broken: Mutex<Option<String>>,
    /// Replies received (a child tells its parent when it turns quiet) and
    /// sent (a parent only believes a child quiet that has seen them all).
    pub replies_in: AtomicU64,
    pub replies_out: Mutex<u64>,
    /// The other side (a child) is quiet: see `BlockOn::quiet`.
    pub quiet: Arc<AtomicBool>,
    /// A probe is on its way to the child, or its answer back.
    probing: AtomicBool,
}

impl Link {
    pub fn new(peer: String, stream: UnixStream, to_parent: bool) -> Arc<Link> {
        Arc::new(Link {
            peer,
            to_parent,
            writer: Mutex::new(stream),
            ctx: OnceLock::new(),
            next_req: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            exports: Mutex::new(HashMap::new()),
            imports: Mutex::new(HashMap::new()),
            ghosts: Mutex::new(HashMap::new()),
            ghost_idle: Condvar::new(),
            broken: Mutex::new(None),
            replies_in: AtomicU64::new(0),
            replies_out: Mutex::new(0),
            quiet: Arc::new(AtomicBool::new(false)),
            probing: AtomicBool::new(false),
        })
    }

    pub fn attach(&self, ctx: &Arc<Context>) {
        let _ = self.ctx.set(Arc::downgrade(ctx));
    }

    fn context(&self) -> Option<Arc<Context>> {
        self.ctx.get().and_then(Weak::upgrade)
    }

    pub fn send(&self, msg: &Msg) -> Result<(), RuntimeError> {
        let mut w = self.writer.lock();
        wire::write_msg(&mut *w, msg).map_err(|e| self.lost(&e.to_string()))
    }

    fn lost(&self, why: &str) -> RuntimeError {
        let reason = self
            .broken
            .lock()
            .clone()
            .unwrap_or_else(|| why.to_string());
        RuntimeError::new(
            kind::PROCESS,
            format!("the connection to {} is lost ({})", self.peer, reason),
        )
    }

    /// Ask the process holding items of our queue `id` to hand back the
    /// ones it has not used.
    pub fn recall(&self, id: u64) {
        let _ = self.send(&Msg::Recall { id });
    }

    /// Hand back every item taken ahead (this process is quiet, or ending).
    pub fn return_all_ahead(&self) {
        let proxies: Vec<_> = self
            .imports
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for r in proxies {
            r.hand_back();
        }
    }

    /// Ask the child to say when it is quiet (once; see `Registry::probe`).
    pub fn probe(&self) {
        if !self.probing.swap(true, Ordering::AcqRel) {
            let _ = self.send(&Msg::Probe);
        }
    }

    /// The child answered a probe: the next one may be sent.
    pub fn probe_answered(&self) {
        self.probing.store(false, Ordering::Release);
    }

    pub fn is_broken(&self) -> bool {
        self.broken.lock().is_some()
    }

    /// Let the other side reach `handle` (one of ours) by `id`.
    pub fn export(&self, id: u64, handle: Handle) {
        self.exports.lock().entry(id).or_insert(handle);
    }

    pub fn exported(&self, id: u64) -> Option<Handle> {
        self.exports.lock().get(&id).cloned()
    }

    /// The one proxy for the other side's object `id` (so `==` holds).
    pub fn import(
        self: &Arc<Link>,
        id: u64,
        kind: &str,
        label: String,
        unbounded: bool,
    ) -> Arc<Remote> {
        let mut imports = self.imports.lock();
        if let Some(r) = imports.get(&id).and_then(Weak::upgrade) {
            return r;
        }
        let r = Arc::new(Remote {
            id: next_object_id(),
            remote_id: id,
            kind: static_kind(kind),
            label,
            unbounded,
            link: self.clone(),
            ahead: Mutex::new(VecDeque::new()),
            recalled: AtomicBool::new(false),
        });
        imports.insert(id, Arc::downgrade(&r));
        r
    }

    /// Read messages until the other side goes away. Messages that belong
    /// to the process's lifecycle (`Done`, `Deadlock`) go to `other`.
    pub fn serve(self: &Arc<Link>, stream: UnixStream, mut other: impl FnMut(Msg)) {
        let mut reader = BufReader::with_capacity(64 * 1024, stream);
        let mut inline = None;
        let why = loop {
            match wire::read_msg(&mut reader) {
                Ok(Some(msg)) => self.dispatch(msg, &mut inline, &mut other),
                Ok(None) => break "it exited".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        self.close(&why);
    }

    fn dispatch(
        self: &Arc<Link>,
        msg: Msg,
        inline: &mut Option<Interp>,
        other: &mut impl FnMut(Msg),
    ) {
        let Some(ctx) = self.context() else { return };
        match msg {
            Msg::Request(request) => self.request(&ctx, *request, inline),
            Msg::Reply { req, result } => {
                if let Some(slot) = self.pending.lock().remove(&req) {
                    slot.fill(&ctx, result.map_err(RuntimeError::from));
                }
                // Counted only once its thread is marked woken: a "quiet"
                // report can never claim this reply while it is unseen.
                self.replies_in.fetch_add(1, Ordering::AcqRel);
            }
            Msg::Cancel { req } => {
                let ghosts: Vec<_> = self.ghosts.lock().values().cloned().collect();
                for g in ghosts
                    .iter()
                    .filter(|g| g.current.load(Ordering::Acquire) == req)
                {
                    let err = RuntimeError::new(kind::INTERRUPTED, "the requester gave up");
                    ctx.registry.interrupt(&g.record, err);
                }
            }
            Msg::Print(line) => ctx.out.line(&line),
            Msg::Probe => ctx.registry.probe(),
            Msg::Recall { id } => {
                let proxy = self.imports.lock().get(&id).and_then(Weak::upgrade);
                if let Some(r) = proxy {
                    r.recall();
                }
            }
            Msg::Report(text) => ctx.out.report(&text),
            other_msg => other(other_msg),
        }
    }

    /// The stand-in for the requesting thread (made on its first request).
    fn ghost(&self, ctx: &Context, request: &Request) -> Arc<Ghost> {
        self.ghosts
            .lock()
            .entry(request.tid)
            .or_insert_with(|| {
                let id = ctx.registry.next_thread_id();
                Arc::new(Ghost {
                    record: ThreadRecord::new_stand_in(id, self.ghost_name(&request.thread)),
                    jobs: Mutex::new(GhostJobs::default()),
                    current: AtomicU64::new(0),
                    locks: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    /// Most operations can complete at once (an item is there, the lock is
    /// free): do those right here on the reading thread, which saves a
    /// thread switch each; only an operation that must wait goes to the
    /// stand-in's own thread.
    fn request(
        self: &Arc<Link>,
        ctx: &Arc<Context>,
        request: Request,
        inline: &mut Option<Interp>,
    ) {
        let ghost = self.ghost(ctx, &request);
        if ghost.idle() {
            let interp =
                inline.get_or_insert_with(|| Interp::new(ctx.clone(), ghost.record.clone()));
            interp.thread = ghost.record.clone();
            if let Some(result) = ghost.perform(interp, self, &request, true) {
                self.reply(request.req, result);
                return;
            }
        }
        self.to_ghost(ctx, ghost, request);
    }

    fn reply(&self, req: u64, result: Result<Packet, WireError>) {
        if req != 0 {
            // Whatever the child reported, it is about to be busy again.
            let mut out = self.replies_out.lock();
            self.quiet.store(false, Ordering::Release);
            *out += 1;
            drop(out);
            let _ = self.send(&Msg::Reply { req, result });
        }
    }

    /// Queue a request on the stand-in for its thread, and start an OS
    /// thread to work through its queue unless one already is.
    fn to_ghost(self: &Arc<Link>, ctx: &Arc<Context>, ghost: Arc<Ghost>, request: Request) {
        let mut jobs = ghost.jobs.lock();
        jobs.queue.push_back(request);
        if jobs.active {
            return;
        }
        // Registered from now until its reply is sent, so this process
        // never sees a moment where a child's operation is in nobody's
        // hands (which could look like a deadlock).
        jobs.active = true;
        ctx.registry.register(ghost.record.clone());
        drop(jobs);
        let (link, ctx2, g) = (self.clone(), ctx.clone(), ghost.clone());
        let started = ctx.engine().start_thread(
            &ghost.record,
            crate::runtime::threads::THREAD_STACK,
            Box::new(move || g.run(&link, &ctx2)),
        );
        if started.is_err() {
            let requests: Vec<Request> = {
                let mut jobs = ghost.jobs.lock();
                jobs.active = false;
                jobs.queue.drain(..).collect()
            };
            ctx.registry.unregister(ghost.record.id);
            self.ghost_idle.notify_all();
            let err = RuntimeError::new(kind::PROCESS, "the OS refused to start a thread");
            for r in requests {
                self.reply(r.req, Err(WireError::from(&err)));
            }
        }
    }

    /// "process worker-1" out of "process worker-1 (pid 42)".
    fn peer_short(&self) -> &str {
        self.peer.split(" (").next().unwrap_or(&self.peer)
    }

    /// How a thread of the other process is named here: "process w-1" for
    /// its main thread (named like the process), else "process w-1 thread t-2".
    fn ghost_name(&self, thread: &str) -> String {
        let peer = self.peer_short();
        if peer.strip_prefix("process ") == Some(thread) {
            peer.to_string()
        } else {
            format!("{} thread {}", peer, thread)
        }
    }

    /// The connection is gone: fail every call still waiting for a reply,
    /// stop every stand-in, and free the locks they held ("owner died").
    pub fn close(&self, why: &str) {
        {
            let mut broken = self.broken.lock();
            if broken.is_none() {
                *broken = Some(why.to_string());
            }
        }
        let Some(ctx) = self.context() else { return };
        let pending: Vec<_> = self.pending.lock().drain().map(|(_, s)| s).collect();
        for slot in pending {
            slot.fill(&ctx, Err(self.lost(why)));
        }
        let ghosts: Vec<_> = self.ghosts.lock().drain().map(|(_, g)| g).collect();
        for g in &ghosts {
            let err = RuntimeError::new(
                kind::PROCESS,
                format!("{} ended ({})", self.peer_short(), why),
            );
            ctx.registry.interrupt(&g.record, err);
        }
        // Whoever joins the dead process must not find one of its stand-ins
        // still waiting (it would take the next item put, for nobody).
        let mut all = self.ghosts.lock();
        while ghosts.iter().any(|g| !g.idle()) {
            if ctx
                .engine()
                .helper_wait(&self.ghost_idle, &mut all, STAND_INS_STOP)
            {
                break;
            }
        }
        drop(all);
        for g in ghosts {
            for lock in g.locks.lock().drain(..) {
                lock.release_dead(&ctx, &g.record, &self.peer);
            }
        }
        self.exports.lock().clear();
    }

    /// Send an operation that cannot block and needs no answer (a put into
    /// an unbounded queue): the connection keeps it in order with the
    /// thread's later operations.
    pub fn post(
        &self,
        me: &ThreadRef,
        target: u64,
        op: Op,
        on: &BlockOn,
    ) -> Result<(), RuntimeError> {
        self.send(&Msg::Request(Box::new(Request::new(0, me, target, op, on))))
    }

    /// Call an object at the other end and wait for its reply.
    pub fn call(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        target: u64,
        op: Op,
        on: &BlockOn,
    ) -> Result<Packet, RuntimeError> {
        if let Some(err) = me.take_interrupt() {
            return Err(err);
        }
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(ReplySlot::default());
        self.pending.lock().insert(req, slot.clone());
        if self.is_broken() {
            self.pending.lock().remove(&req);
            return Err(self.lost("closed"));
        }
        let request = Request::new(req, me, target, op, on);
        if let Err(e) = self.send(&Msg::Request(Box::new(request))) {
            self.pending.lock().remove(&req);
            return Err(e);
        }
        // The owner applies the timeout; here only the reply is awaited, and
        // the other process can always send it, so this wait is never "stuck".
        let wait = BlockOn {
            deadline: None,
            external: true,
            ..on.clone()
        };
        ctx.engine().spin(SPIN_FOR_REPLY, || {
            if slot.state.lock().result.is_some() {
                Spin::Done
            } else {
                Spin::Again
            }
        });
        let mut state = slot.state.lock();
        let got = block_until(
            &ctx.registry,
            me,
            &mut state,
            &wait,
            |s| &mut s.waiters,
            |s| s.result.take(),
        );
        drop(state);
        match got {
            Ok(Some(result)) => result,
            Ok(None) => Err(self.lost("no reply")),
            Err(e) => {
                self.pending.lock().remove(&req);
                let _ = self.send(&Msg::Cancel { req });
                Err(e)
            }
        }
    }
}

impl Request {
    fn new(req: u64, me: &ThreadRef, target: u64, op: Op, on: &BlockOn) -> Request {
        Request {
            req,
            tid: me.id,
            thread: me.name.clone(),
            target,
            op,
            what: on.what.clone(),
            span: on.span.map(Into::into),
        }
    }
}

/// Where a reply lands and its caller waits.
#[derive(Default)]
struct ReplySlot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    result: Option<Result<Packet, RuntimeError>>,
    waiters: WaitQueue,
}

impl ReplySlot {
    fn fill(&self, ctx: &Context, result: Result<Packet, RuntimeError>) {
        let mut s = self.state.lock();
        s.result = Some(result);
        s.waiters.wake_all(&ctx.registry);
    }
}

#[derive(Default)]
struct GhostJobs {
    queue: VecDeque<Request>,
    /// It has work queued or in hand (and is in the registry, and an OS
    /// thread works through its queue).
    active: bool,
}

/// The stand-in for one thread of the other process: it performs that
/// thread's operations here, under a record of its own, so it can own locks
/// and show up in deadlock reports with the remote thread's name and spans.
pub struct Ghost {
    record: ThreadRef,
    jobs: Mutex<GhostJobs>,
    /// The request being performed (to cancel it), 0 when idle.
    current: AtomicU64,
    /// Locks it holds for its thread, freed if that process dies.
    locks: Mutex<Vec<Arc<Lock>>>,
}

impl Ghost {
    /// Work through the queued requests; when none is left the OS thread
    /// goes back to the engine (which keeps it a moment for the next one).
    fn run(&self, link: &Arc<Link>, ctx: &Arc<Context>) {
        let mut interp = Interp::new(ctx.clone(), self.record.clone());
        loop {
            let next = {
                let mut jobs = self.jobs.lock();
                match jobs.queue.pop_front() {
                    Some(next) => next,
                    None => {
                        jobs.active = false;
                        ctx.registry.unregister(self.record.id);
                        drop(jobs);
                        // Under the ghosts' lock, so `close` cannot miss it.
                        let _ghosts = link.ghosts.lock();
                        link.ghost_idle.notify_all();
                        return;
                    }
                }
            };
            self.current.store(next.req, Ordering::Release);
            let result = self.perform(&mut interp, link, &next, false);
            if let Some(result) = result {
                link.reply(next.req, result);
            }
            self.current.store(0, Ordering::Release);
            self.record.clear_interrupt();
        }
    }

    fn idle(&self) -> bool {
        !self.jobs.lock().active
    }

    /// Perform one request on the object it names and encode the outcome.
    /// `at_once`: only if it can complete without waiting (else `None`).
    fn perform(
        &self,
        interp: &mut Interp,
        link: &Arc<Link>,
        request: &Request,
        at_once: bool,
    ) -> Option<Result<Packet, WireError>> {
        let on = BlockOn::new(request.what.clone(), request.span.map(Span::from), None);
        if let Op::Select { arms, timeout } = &request.op {
            if at_once {
                return None;
            }
            return Some(
                interp
                    .serve_select(link, arms.clone(), *timeout, on)
                    .and_then(|values| super::codec::encode(link, &values))
                    .map_err(|e| WireError::from(&e)),
            );
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
        let (acquire, release) = (
            matches!(request.op, Op::Acquire { .. }),
            matches!(request.op, Op::Release),
        );
        let op = if at_once {
            right_now(&request.op, &handle)?
        } else {
            request.op.clone()
        };
        let outcome = interp.serve(link, &handle, op, on);
        if at_once && would_block(&request.op, &outcome) {
            return None;
        }
        if let (Ok(values), Some(lock)) = (&outcome, handle.lock()) {
            let mut held = self.locks.lock();
            if acquire && matches!(values.first(), Some(Value::Bool(true))) {
                held.push(lock.clone());
            } else if release {
                if let Some(i) = held.iter().position(|l| Arc::ptr_eq(l, lock)) {
                    held.remove(i);
                }
            }
        }
        Some(
            outcome
                .and_then(|values| super::codec::encode(link, &values))
                .map_err(|e| WireError::from(&e)),
        )
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
        Op::Return { .. } => Some(op.clone()),
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
    matches!(outcome, Ok(values) if matches!(values.as_slice(), [] | [Value::Bool(false)]))
}

/// A proxy for a shared object that another process owns (or proxies).
pub struct Remote {
    /// Ours, so the proxy can be passed on to a grandchild.
    pub id: u64,
    /// The object's id at the other end of `link`.
    pub remote_id: u64,
    pub kind: &'static str,
    /// As the owner names it (`queue#3`), so reports agree across processes.
    pub label: String,
    /// A queue or pipe end that never blocks a put.
    pub unbounded: bool,
    pub link: Arc<Link>,
    /// Items taken ahead of use (`Op::Take`), used by the next gets here.
    pub ahead: Mutex<VecDeque<Value>>,
    /// The owner asked for them back while more were on their way.
    recalled: AtomicBool,
}

impl Remote {
    /// Whether gets may take several items at a time: FIFO, unbounded.
    pub fn can_take_ahead(&self) -> bool {
        self.unbounded && matches!(self.kind, "queue" | "pipe")
    }

    /// Keep items taken ahead, unless the owner has asked for them back.
    pub fn keep_ahead(&self, items: Vec<Value>) {
        if items.is_empty() {
            return;
        }
        if self.recalled.swap(false, Ordering::AcqRel) {
            self.give_back(items);
        } else {
            self.ahead.lock().extend(items);
        }
    }

    /// The owner has a getter about to wait: hand back what is unused (or,
    /// if nothing is here yet, what arrives next).
    fn recall(&self) {
        let items: Vec<Value> = self.ahead.lock().drain(..).collect();
        if items.is_empty() {
            self.recalled.store(true, Ordering::Release);
        } else {
            self.give_back(items);
        }
    }

    pub fn hand_back(&self) {
        let items: Vec<Value> = self.ahead.lock().drain(..).collect();
        if !items.is_empty() {
            self.give_back(items);
        }
    }

    fn give_back(&self, items: Vec<Value>) {
        let Ok(packet) = super::codec::encode(&self.link, &items) else {
            return;
        };
        let request = Request {
            req: 0,
            tid: 0,
            thread: "items taken ahead".to_string(),
            target: self.remote_id,
            op: Op::Return { items: packet },
            what: String::new(),
            span: None,
        };
        let _ = self.link.send(&Msg::Request(Box::new(request)));
    }

    pub fn call(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        op: Op,
        on: &BlockOn,
    ) -> Result<Vec<Value>, RuntimeError> {
        let packet = self.link.call(ctx, me, self.remote_id, op, on)?;
        super::codec::decode(&self.link, ctx, packet)
    }
}

/// Kinds are a closed set; keep them `'static` like local handles' kinds.
fn static_kind(kind: &str) -> &'static str {
    match kind {
        "lock" => "lock",
        "rlock" => "rlock",
        "semaphore" => "semaphore",
        "event" => "event",
        "condition" => "condition",
        "barrier" => "barrier",
        "queue" => "queue",
        "lifo" => "lifo",
        "priority" => "priority",
        "pipe" => "pipe",
        _ => "object",
    }
}
