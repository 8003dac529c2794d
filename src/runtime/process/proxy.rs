//! Proxies: a script's handle on an object another process owns. Every
//! operation on one becomes a request over the link to the owner, who
//! performs it on the real object (`serve.rs`); a `get` on an unbounded
//! FIFO queue may lease the items already waiting, to save round trips
//! (`lease.rs`).

use super::codec;
use super::link::Link;
use super::wire::Op as WireOp;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::arena::Words;
use crate::runtime::engine::{Backoff, Op, Spin, Time};
use crate::runtime::handoff::{self, Handoff};
use crate::runtime::lease::{self, Ticket};
use crate::runtime::locks::{note_taken, FLAGS};
use crate::runtime::object::{Cx, Members, Object, Reply, Res};
use crate::runtime::threads::Held;
use crate::runtime::value::args::expect_seconds;
use crate::runtime::value::{plain, Value};
use crate::runtime::waits::BlockOn;
use crate::runtime::{Context, ThreadRef};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How many items a get on another process's queue leases at most, when
/// they are already waiting: one round trip then serves the next ones.
const TAKE_AHEAD: u32 = 1024;

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
    /// Copies of items leased to this process (`Op::Take`), used by the
    /// next gets here as long as the owner has not ended the lease.
    ahead: Mutex<Ahead>,
    /// What of the object lives in the owner's arena.
    in_arena: InArena,
}

/// What of the owner's object lives in its arena, used here directly.
#[derive(Default)]
pub struct InArena {
    /// A plain lock's words: taken and freed here with a compare-and-swap
    /// while no flag is set.
    pub words: Option<Arc<Words>>,
    /// The handoff of the queue gets here take from (`handoff.rs`), and of
    /// the one puts go into (the same queue, but not for a pipe end).
    pub get: Option<Arc<Handoff>>,
    pub put: Option<Arc<Handoff>>,
}

/// A child's quick take of a free lock spins this long first: a lock is
/// mostly held for a few statements, and a request costs a round trip.
const QUICK_TAKE: Backoff = Backoff {
    spins: 4,
    yields: 6,
};

#[derive(Default)]
struct Ahead {
    ticket: Option<Ticket>,
    /// The index in the lease of the front item.
    next: u32,
    items: VecDeque<Value>,
}

impl Remote {
    pub(super) fn new(
        id: u64,
        remote_id: u64,
        kind: &str,
        label: String,
        unbounded: bool,
        in_arena: InArena,
        link: Arc<Link>,
    ) -> Remote {
        Remote {
            id,
            remote_id,
            kind: static_kind(kind),
            label,
            unbounded,
            link,
            ahead: Mutex::new(Ahead::default()),
            in_arena,
        }
    }

    /// Whether gets may lease several items at a time: FIFO, unbounded,
    /// with the owner's arena mapped here.
    fn can_take_ahead(&self) -> bool {
        self.unbounded && matches!(self.kind, "queue" | "pipe") && self.link.arena().is_some()
    }

    /// Whether a put may be sent without waiting for its reply: into an
    /// unbounded FIFO or LIFO queue or a pipe (where it cannot block or
    /// fail at the owner), on the OS engine. Nothing can tell it from a put
    /// that waited, except that it is quicker (no round trip, over SSH or
    /// a socket): every later request of every thread here travels behind
    /// it and the owner applies it before any of them (`Link::request`),
    /// and until a reply says it has, nothing here goes through shared
    /// memory instead (`fast`).
    fn can_post_put(&self, cx: &Cx) -> bool {
        self.unbounded
            && matches!(self.kind, "queue" | "lifo" | "pipe")
            && cx.ctx.engine().fast_paths()
    }

    /// Whether an operation may go through the owner's arena (a lock word,
    /// a handoff, a lease) instead of the connection: on the OS engine, and
    /// only once every put posted over the connection is known to have
    /// arrived, or it could overtake them (see `Link::settled`).
    fn fast(&self, cx: &Cx) -> bool {
        cx.ctx.engine().fast_paths() && self.link.settled()
    }

    /// The next leased item, if the lease still holds: using it is one
    /// compare-and-swap on its counter in the owner's arena, which the
    /// owner's ending the lease may beat (then the copies here are stale
    /// and dropped).
    fn use_ahead(&self, cx: &Cx) -> Option<Value> {
        let mut ahead = self.ahead.lock();
        let ticket = ahead.ticket?;
        let arena = self.link.arena()?;
        if !ahead.items.is_empty() && self.fast(cx) && lease::claim(arena, ticket, ahead.next) {
            ahead.next += 1;
            return ahead.items.pop_front();
        }
        *ahead = Ahead::default();
        None
    }

    /// A `Take`'s reply (the lease's ticket, the caller's stand-in, the
    /// items): the item got, and the lease's other items kept.
    fn taken(&self, me: &ThreadRef, got: Vec<Value>) -> Option<Value> {
        let mut got = got.into_iter();
        let ticket = match got.next()? {
            Value::Int(n) => Ticket::from_int(n),
            _ => None,
        };
        self.learn_stand_in(me, got.next().as_ref());
        let first = got.next();
        if let Some(ticket) = ticket {
            *self.ahead.lock() = Ahead {
                ticket: Some(ticket),
                next: 1,
                items: got.collect(),
            };
        }
        first
    }

    /// The caller's stand-in at the owner, as a reply names it.
    fn learn_stand_in(&self, me: &ThreadRef, stand_in: Option<&Value>) {
        if let Some(Value::Int(id)) = stand_in {
            self.link.learn_stand_in(me.id, *id as u64);
        }
    }

    pub fn call(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        op: WireOp,
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

impl Remote {
    fn call_op(&self, cx: &Cx, op: WireOp, on: &BlockOn) -> Res<Vec<Value>> {
        self.call(cx.ctx, cx.me, op, on)
    }

    /// Take the lock in the owner's arena as our stand-in there, if it is
    /// free and no flag asks for the owner (a waiter parked there, a dead
    /// holder to report).
    fn quick_take(&self, cx: &Cx) -> bool {
        let (Some(words), Some(me)) = (&self.in_arena.words, self.link.stand_in(cx.me.id)) else {
            return false;
        };
        if !self.fast(cx) {
            return false;
        }
        let word = words.get(0);
        let take = || {
            word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        };
        let taken = take()
            || cx
                .ctx
                .engine()
                .spin(QUICK_TAKE, || match word.load(Ordering::Relaxed) {
                    0 if take() => Spin::Done,
                    w if w & FLAGS != 0 => Spin::Stop,
                    _ => Spin::Again,
                });
        if taken {
            note_taken(words, Some(cx.at));
        }
        taken
    }

    /// Free the lock in the owner's arena if we hold it and no flag is set.
    fn quick_release(&self, cx: &Cx) -> bool {
        let (Some(words), Some(me)) = (&self.in_arena.words, self.link.stand_in(cx.me.id)) else {
            return false;
        };
        self.fast(cx)
            && words
                .get(0)
                .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
    }

    fn acquire_op(&self, cx: &Cx, deadline: Option<Time>) -> Res<bool> {
        let got = self.quick_take(cx) || {
            let on = cx.block_on(self.label.clone(), deadline);
            let op = WireOp::Acquire {
                timeout: cx.ctx.seconds_left(deadline),
            };
            let reply = self.call_op(cx, op, &on)?;
            self.learn_stand_in(cx.me, reply.get(1));
            matches!(reply.first(), Some(Value::Bool(true)))
        };
        if got {
            cx.me.add_held(Held {
                kind: self.kind,
                id: self.id,
                span: Some(cx.at),
            });
        }
        Ok(got)
    }

    /// `held`: the caller knows it holds the lock (the end of `lock m { }`),
    /// so the release cannot fail and is sent without waiting for a reply.
    fn release_op(&self, cx: &Cx, held: bool) -> Res<()> {
        if self.quick_release(cx) {
            cx.me.remove_held(self.id);
            return Ok(());
        }
        let on = BlockOn::new(format!("{} to be released", self.label), Some(cx.at), None);
        if held {
            self.link
                .post(cx.me, self.remote_id, WireOp::Release, &on)?;
        } else {
            self.call_op(cx, WireOp::Release, &on)?;
        }
        cx.me.remove_held(self.id);
        Ok(())
    }

    /// Through the queue's handoff (`handoff.rs`): take the item on
    /// offer, or wait a moment for one handed over by a putter anywhere,
    /// announced as our stand-in at the owner. `None` if neither came (no
    /// handoff, nothing on offer and no stand-in known yet, or no wait
    /// worth it: see `Handoff::wait_for`).
    fn get_handed(&self, cx: &Cx, deadline: Option<Time>) -> Res<Option<Value>> {
        let Some(h) = self.in_arena.get.as_ref() else {
            return Ok(None);
        };
        if !self.fast(cx) {
            return Ok(None);
        }
        if let Some(v) = h.claim()? {
            return Ok(Some(v));
        }
        let Some(me) = self.link.stand_in(cx.me.id) else {
            return Ok(None);
        };
        let left = cx.ctx.seconds_left(deadline);
        h.wait_for(cx.ctx.engine(), cx.me, me, true, left, || {
            self.link.is_broken()
        })
    }

    /// Hand `v` straight to a getter announced at the queue's handoff:
    /// false if there is none, or `v` is not plain.
    fn hand_over(&self, cx: &Cx, v: &Value) -> bool {
        let (Some(h), Some(me)) = (&self.in_arena.put, self.link.stand_in(cx.me.id)) else {
            return false;
        };
        self.fast(cx)
            && h.announced().is_some()
            && u32::try_from(me).is_ok_and(|me| {
                plain::encode(v, handoff::CAPACITY).is_some_and(|bytes| h.hand(me, &bytes))
            })
    }

    /// The owner's answer to a method or a field (`.name`): `None` for no
    /// answer (a field the object does not have).
    fn answer(&self, cx: &Cx, name: String, args: Vec<Value>) -> Res<Option<Value>> {
        let op = WireOp::Method {
            name,
            args: codec::encode(&self.link, &args)?,
        };
        let on = BlockOn::new(format!("{} to answer", self.label), Some(cx.at), None);
        Ok(self.call_op(cx, op, &on)?.into_iter().next())
    }

    /// How many items the queue holds, as its owner counts them.
    fn size_op(&self, cx: &Cx) -> Res<i64> {
        match self.answer(cx, "size".to_string(), Vec::new())? {
            Some(Value::Int(n)) => Ok(n),
            _ => Ok(0),
        }
    }
}

impl Object for Remote {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    fn describe(&self) -> String {
        format!("<{} (shared by another process)>", self.label)
    }

    fn field(&self, cx: &Cx, name: &str) -> Option<Value> {
        self.answer(cx, format!(".{}", name), Vec::new())
            .ok()
            .flatten()
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        Some(match name {
            "acquire" => match args.as_slice() {
                [] => self.acquire_op(cx, None),
                [t] => expect_seconds("acquire()", t)
                    .and_then(|d| self.acquire_op(cx, Some(cx.ctx.deadline_after(d)))),
                _ => Err(RuntimeError::new(
                    kind::TYPE,
                    "acquire() takes at most one argument (a timeout)",
                )),
            }
            .map(|b| Value::Bool(b).into()),
            "release" => self.release_op(cx, false).map(|_| Value::Nil.into()),
            "size" | "qsize" => self.size_op(cx).map(|n| Value::Int(n).into()),
            "empty" => self.size_op(cx).map(|n| Value::Bool(n == 0).into()),
            _ => self
                .answer(cx, name.to_string(), args)
                .map(|v| v.unwrap_or_default().into()),
        })
    }

    /// What the owner's object has; a proxy does not know.
    fn members(&self) -> Members {
        Members {
            methods: Vec::new(),
            fields: &[],
        }
    }

    fn get(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Option<Value>>> {
        cx.point(Op::Get, self.id);
        if let Some(v) = self.use_ahead(cx) {
            return Some(Ok(Some(v)));
        }
        match self.get_handed(cx, deadline) {
            Ok(None) => {}
            got => return Some(got),
        }
        let on = cx.block_on(format!("an item from {}", self.label), deadline);
        let timeout = cx.ctx.seconds_left(deadline);
        if !self.can_take_ahead() {
            let got = self.call_op(cx, WireOp::Get { timeout }, &on);
            return Some(got.map(|got| got.into_iter().next()));
        }
        let op = WireOp::Take {
            timeout,
            max: TAKE_AHEAD,
        };
        Some(self.call_op(cx, op, &on).map(|got| self.taken(cx.me, got)))
    }

    fn put(&self, cx: &Cx, v: Value, deadline: Option<Time>) -> Option<Res<bool>> {
        cx.point(Op::Put, self.id);
        if self.hand_over(cx, &v) {
            return Some(Ok(true));
        }
        let on = cx.block_on(format!("room in {}", self.label), deadline);
        let put = || -> Res<bool> {
            let item = codec::encode(&self.link, &[v])?;
            if self.can_post_put(cx) {
                let op = WireOp::Put {
                    item,
                    timeout: None,
                };
                self.link.post(cx.me, self.remote_id, op, &on)?;
                return Ok(true);
            }
            let op = WireOp::Put {
                item,
                timeout: cx.ctx.seconds_left(deadline),
            };
            let reply = self.call_op(cx, op, &on)?;
            self.learn_stand_in(cx.me, reply.get(1));
            Ok(matches!(reply.first(), Some(Value::Bool(true))))
        };
        Some(put())
    }

    fn wait(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Value>> {
        cx.point(Op::Wait, self.id);
        let on = cx.block_on(self.label.clone(), deadline);
        let op = WireOp::Wait {
            timeout: cx.ctx.seconds_left(deadline),
        };
        Some(self.call_op(cx, op, &on).and_then(|got| {
            got.into_iter().next().ok_or_else(|| {
                RuntimeError::new(
                    kind::TIMEOUT,
                    format!("{} was not reached by all its parties in time", self.label),
                )
            })
        }))
    }

    fn acquire(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<bool>> {
        cx.point(Op::Acquire, self.id);
        Some(self.acquire_op(cx, deadline))
    }

    fn release(&self, cx: &Cx, held: bool) -> Option<Res<()>> {
        cx.point(Op::Release, self.id);
        Some(self.release_op(cx, held))
    }

    fn len(&self, cx: &Cx) -> Option<Res<usize>> {
        Some(self.size_op(cx).map(|n| n.max(0) as usize))
    }
}

/// `select` whose arms are all on objects of one other process: the owner
/// runs the whole select. Gives the arm and the value got.
pub fn select(
    cx: &Cx,
    arms: &[(Arc<Remote>, Option<Value>)],
    on: &BlockOn,
) -> Res<Option<(usize, Option<Value>)>> {
    let Some(link) = arms.first().map(|(r, _)| r.link.clone()) else {
        return Ok(None);
    };
    // An item leased here settles it at once.
    for (i, (r, put)) in arms.iter().enumerate() {
        if put.is_none() {
            if let Some(v) = r.use_ahead(cx) {
                return Ok(Some((i, Some(v))));
            }
        }
    }
    let mut wire_arms = Vec::with_capacity(arms.len());
    for (r, put) in arms {
        if !Arc::ptr_eq(&r.link, &link) {
            return Err(mixed_select());
        }
        let put = match put {
            Some(v) => Some(codec::encode(&link, std::slice::from_ref(v))?),
            None => None,
        };
        wire_arms.push((r.remote_id, put));
    }
    let op = WireOp::Select {
        arms: wire_arms,
        timeout: cx.ctx.seconds_left(on.deadline),
    };
    let packet = link.call(cx.ctx, cx.me, 0, op, on)?;
    let mut got = codec::decode(&link, cx.ctx, packet)?.into_iter();
    match got.next() {
        Some(Value::Int(i)) => Ok(Some((i as usize, got.next()))),
        _ => Ok(None),
    }
}

pub fn mixed_select() -> RuntimeError {
    RuntimeError::new(
        kind::TYPE,
        "one select cannot mix objects owned by different processes",
    )
    .with_help("select over objects that all belong to one process")
}
