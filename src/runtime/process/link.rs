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

use super::codec;
use super::ghost::Ghost;
use super::proxy::{InArena, Remote};
use super::transport::{Inbox, Transport};
use super::wire::{Msg, Op, Packet, Request, WireError};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::arena::{Arena, Words};
use crate::runtime::engine::{Backoff, Spin};
use crate::runtime::handoff::Handoff;
use crate::runtime::int_hash::IntMap;
use crate::runtime::waits::{block_until, BlockOn, WaitQueue};
use crate::runtime::{Context, Handle, SendsAhead, ThreadRef};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
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
/// Under control: how many times a closing connection lets every other
/// thread run before it gives up waiting for its stand-ins.
const STAND_INS_LOOKS: usize = 100;

pub struct Link {
    /// Who is at the other end, for messages: "process worker-1 (pid 42)".
    pub peer: String,
    /// This is a child's connection to its parent: its own objects may not
    /// go up it (the parent's deadlock detection could not see their waits).
    pub to_parent: bool,
    writer: Transport,
    ctx: OnceLock<Weak<Context>>,
    next_req: AtomicU64,
    pending: Mutex<HashMap<u64, Arc<ReplySlot>>>,
    /// Objects of ours the other side holds proxies for, by our object id.
    exports: Mutex<HashMap<u64, Handle>>,
    /// Proxies we made for the other side's objects, by their object id.
    imports: Mutex<HashMap<u64, Weak<Remote>>>,
    /// Each proxy's id here -> the object's id at the other side, kept
    /// after the proxy is gone (a trace names objects by their owner's ids).
    aliases: Mutex<IntMap<u64, u64>>,
    pub(super) ghosts: Mutex<HashMap<u64, Arc<Ghost>>>,
    /// Signalled whenever a stand-in runs out of work (see `close`).
    pub(super) ghost_idle: Condvar,
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
    /// The parent's arena (ours on the parent's side, the parent's on the
    /// child's), mapped by both: lock words and lease counters live there.
    arena: Option<Arc<Arena>>,
    /// On a child's side: the id of each of our threads' stand-in at the
    /// parent, which that thread writes into a lock word it takes.
    stand_ins: Mutex<HashMap<u64, u64>>,
    /// Operations sent without waiting (`post`), and how many of them are
    /// known to have taken effect at the other side: all those sent before
    /// a request whose reply has come. While some are not, nothing here
    /// may go around the connection (see `settled`).
    posts_sent: AtomicU64,
    posts_applied: AtomicU64,
    /// The object the last post went to: `settle` asks it a question.
    last_posted: AtomicU64,
}

impl Link {
    pub fn new(
        peer: String,
        writer: Transport,
        to_parent: bool,
        arena: Option<Arc<Arena>>,
    ) -> Arc<Link> {
        Arc::new(Link {
            peer,
            to_parent,
            writer,
            ctx: OnceLock::new(),
            next_req: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            exports: Mutex::new(HashMap::new()),
            imports: Mutex::new(HashMap::new()),
            aliases: Mutex::new(IntMap::default()),
            ghosts: Mutex::new(HashMap::new()),
            ghost_idle: Condvar::new(),
            broken: Mutex::new(None),
            replies_in: AtomicU64::new(0),
            replies_out: Mutex::new(0),
            quiet: Arc::new(AtomicBool::new(false)),
            probing: AtomicBool::new(false),
            arena,
            stand_ins: Mutex::new(HashMap::new()),
            posts_sent: AtomicU64::new(0),
            posts_applied: AtomicU64::new(0),
            last_posted: AtomicU64::new(0),
        })
    }

    pub fn arena(&self) -> Option<&Arc<Arena>> {
        self.arena.as_ref()
    }

    /// Our thread `thread`'s stand-in at the other end, once known.
    pub fn stand_in(&self, thread: u64) -> Option<u64> {
        self.stand_ins.lock().get(&thread).copied()
    }

    pub fn learn_stand_in(&self, thread: u64, stand_in: u64) {
        self.stand_ins.lock().insert(thread, stand_in);
    }

    pub fn attach(self: &Arc<Link>, ctx: &Arc<Context>) {
        let _ = self.ctx.set(Arc::downgrade(ctx));
        let mut links = ctx.links.lock();
        links.retain(|l| l.strong_count() > 0);
        let me: Arc<dyn SendsAhead> = self.clone();
        links.push(Arc::downgrade(&me));
    }

    fn context(&self) -> Option<Arc<Context>> {
        self.ctx.get().and_then(Weak::upgrade)
    }

    pub fn send(&self, msg: &Msg) -> Result<(), RuntimeError> {
        self.writer.send(msg).map_err(|e| self.lost(&e.to_string()))
    }

    /// This side sends nothing more: the other side reads what is on its
    /// way, then sees the connection end.
    pub fn hang_up(&self) {
        self.writer.close();
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
        ctx: &Context,
        id: u64,
        kind: &str,
        label: String,
        unbounded: bool,
        words: Option<u32>,
    ) -> Arc<Remote> {
        let mut imports = self.imports.lock();
        if let Some(r) = imports.get(&id).and_then(Weak::upgrade) {
            return r;
        }
        // Only a child maps its parent's arena, where the words are.
        let shared = words.zip(self.arena.as_ref().filter(|_| self.to_parent));
        let mut in_arena = InArena::default();
        if let Some((block, arena)) = shared {
            let view = |block| Handoff::view(arena, block).map(Arc::new);
            match kind {
                "lock" => in_arena.words = Words::view(arena, block),
                "queue" => {
                    in_arena.get = view(block);
                    in_arena.put = in_arena.get.clone();
                }
                "pipe" => {
                    let (send, recv) = codec::pipe_blocks_of(block);
                    in_arena.get = view(recv);
                    in_arena.put = view(send);
                }
                _ => {}
            }
        }
        let r = Arc::new(Remote::new(
            ctx.registry.next_object_id(),
            id,
            kind,
            label,
            unbounded,
            in_arena,
            self.clone(),
        ));
        imports.insert(id, Arc::downgrade(&r));
        self.aliases.lock().insert(r.id, id);
        r
    }

    /// Our proxies' ids -> the objects' ids at the other side.
    pub fn aliases(&self) -> IntMap<u64, u64> {
        self.aliases.lock().clone()
    }

    /// Read messages until the other side goes away. Messages that belong
    /// to the process's lifecycle (`Done`, `Deadlock`) go to `other`.
    pub fn serve(self: &Arc<Link>, inbox: Inbox, other: impl FnMut(Msg)) {
        self.serve_until(inbox, other, false)
    }

    /// `serve`; with `done_ends`, the child's `Done` is the end already: a
    /// remote connection closes only once `ssh` has finished its session,
    /// which takes it a tenth of a second more.
    pub fn serve_until(
        self: &Arc<Link>,
        mut inbox: Inbox,
        mut other: impl FnMut(Msg),
        done_ends: bool,
    ) {
        let why = loop {
            match inbox.receive() {
                Ok(Some(msg)) if done_ends && matches!(msg, Msg::Done(_)) => {
                    self.dispatch(msg, &mut other);
                    break "it exited".to_string();
                }
                Ok(Some(msg)) => self.dispatch(msg, &mut other),
                Ok(None) => break "it exited".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        self.close(&why, inbox.reader());
    }

    fn dispatch(self: &Arc<Link>, msg: Msg, other: &mut impl FnMut(Msg)) {
        let Some(ctx) = self.context() else { return };
        match msg {
            Msg::Request(request) => self.request(&ctx, *request),
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
            Msg::Text(text) => ctx.out.text(&text),
            Msg::Probe => ctx.registry.probe(),
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
                Arc::new(Ghost::new(id, self.ghost_name(&request.thread)))
            })
            .clone()
    }

    /// Most operations can complete at once (an item is there, the lock is
    /// free): do those right here on the reading thread, which saves a
    /// thread switch each; only an operation that must wait goes to the
    /// stand-in's own thread.
    fn request(self: &Arc<Link>, ctx: &Arc<Context>, request: Request) {
        let ghost = self.ghost(ctx, &request);
        // Under control every operation is the stand-in's own step.
        if !ctx.engine().fast_paths() {
            return ghost.take(self, ctx, request);
        }
        // A posted operation must take effect before whatever the other side
        // sends after it, from any of its threads: done here, in the order
        // read, once its stand-in has finished what it had in hand (the end
        // of a reply just sent, or a request its thread gave up on).
        if request.req == 0 {
            self.wait_for_stand_ins(ctx, || ghost.idle());
        }
        if ghost.idle() {
            if let Some(result) = ghost.perform(ctx, self, &request, true) {
                self.reply(request.req, result);
                return;
            }
        }
        ghost.take(self, ctx, request);
    }

    /// Wait until `done` (about stand-ins finishing their work), checked
    /// again each time one runs out of work, for `STAND_INS_STOP` at most.
    fn wait_for_stand_ins(&self, ctx: &Context, done: impl Fn() -> bool) {
        if done() {
            return;
        }
        let mut all = self.ghosts.lock();
        let until = std::time::Instant::now() + STAND_INS_STOP;
        while !done() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || ctx.engine().helper_wait(&self.ghost_idle, &mut all, left) {
                break;
            }
        }
    }

    pub(super) fn reply(&self, req: u64, result: Result<Packet, WireError>) {
        if req != 0 {
            // Whatever the child reported, it is about to be busy again.
            let mut out = self.replies_out.lock();
            self.quiet.store(false, Ordering::Release);
            *out += 1;
            drop(out);
            let _ = self.send(&Msg::Reply { req, result });
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
    /// `closer`: the conc thread that reads a connection in memory (under
    /// control), which lets the stand-ins run while it waits for them.
    pub fn close(&self, why: &str, closer: Option<&ThreadRef>) {
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
        match closer {
            Some(me) => {
                // Parked until every other thread is blocked: by then each
                // interrupted stand-in has run to its end.
                for _ in 0..STAND_INS_LOOKS {
                    if ghosts.iter().all(|g| g.idle()) {
                        break;
                    }
                    ctx.engine().park(me, Some(ctx.engine().now()));
                }
            }
            None => self.wait_for_stand_ins(&ctx, || ghosts.iter().all(|g| g.idle())),
        }
        for g in &ghosts {
            g.retire(&ctx);
        }
        // Plain locks its threads took in our arena without asking are
        // held in their stand-ins' names too.
        let quick: Vec<_> = self
            .exports
            .lock()
            .values()
            .filter_map(|h| match h {
                Handle::Lock(l) if l.shared_block().is_some() => Some(l.clone()),
                _ => None,
            })
            .collect();
        // Queues it had items handed to (or was handing one over in).
        let dead: Vec<u64> = ghosts.iter().map(|g| g.record.id).collect();
        let is_dead = |id: u64| dead.contains(&id);
        for h in self.exports.lock().values() {
            match h {
                Handle::Queue(q) => q.forget(&ctx, is_dead),
                Handle::Pipe(p) => {
                    p.send.forget(&ctx, is_dead);
                    p.recv.forget(&ctx, is_dead);
                }
                _ => {}
            }
        }
        for g in ghosts {
            for lock in g.locks.lock().drain(..).chain(quick.iter().cloned()) {
                lock.release_dead(&ctx, &g.record, &self.peer);
            }
        }
        self.exports.lock().clear();
    }

    /// Send an operation that cannot block and needs no answer (a put into
    /// an unbounded queue, the release of a lock held): the connection
    /// keeps it in order with everything sent after it, and the other side
    /// applies it before any of that (`request`).
    pub fn post(
        &self,
        me: &ThreadRef,
        target: u64,
        op: Op,
        on: &BlockOn,
    ) -> Result<(), RuntimeError> {
        self.send(&Msg::Request(Box::new(Request::new(0, me, target, op, on))))?;
        self.last_posted.store(target, Ordering::Relaxed);
        // After the send: a request that reads this count was sent behind it.
        self.posts_sent.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Whether every post sent so far is known to have taken effect. Until
    /// then this process must not act on the other side's objects through
    /// shared memory (a lock word, a handoff, a lease), which does not
    /// travel behind the posts: a lock freed that way could let another
    /// process in before a put made under it had arrived.
    pub fn settled(&self) -> bool {
        self.posts_applied.load(Ordering::Acquire) >= self.posts_sent.load(Ordering::Acquire)
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
        let posts_before = self.posts_sent.load(Ordering::Acquire);
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
            Ok(Some(result)) => {
                // The other side has read this request, so it has applied
                // every post sent before it.
                self.posts_applied.fetch_max(posts_before, Ordering::AcqRel);
                result
            }
            Ok(None) => Err(self.lost("no reply")),
            Err(e) => {
                self.pending.lock().remove(&req);
                let _ = self.send(&Msg::Cancel { req });
                Err(e)
            }
        }
    }
}

impl SendsAhead for Link {
    /// Wait until every post sent so far has taken effect: one question to
    /// the object posted to last, whose answer comes after them. Before
    /// this process acts on the world outside conc (a file written), so no
    /// one who sees that can miss a put made before it.
    fn settle(&self, ctx: &Context, me: &ThreadRef) {
        if self.settled() || self.is_broken() {
            return;
        }
        // Every object answers `str`, at once (the last post may have
        // released a lock).
        let op = Op::Method {
            name: "str".to_string(),
            args: Packet::default(),
        };
        let on = BlockOn::new("the owner to take what was sent", None, None);
        let target = self.last_posted.load(Ordering::Relaxed);
        let _ = self.call(ctx, me, target, op, &on);
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
