//! `queue(n)`, `lifo()`, `priority()`, `pipe()` and `select`.

use super::arena::Arena;
use super::engine::{Op, Time};
use super::handoff::{self, Handoff};
use super::lease::{self, Ticket};
use super::object::{call_method, names, Cx, Members, Method, Object, Reply, Res};
use super::waits::{BlockOn, WaitQueue};
use super::{Context, ThreadRef};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::value::ops::compare;
use crate::runtime::value::{plain, Value};
use crate::span::Span;
use parking_lot::{Mutex, MutexGuard};
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Fifo,
    Lifo,
    Priority,
}

pub struct QueueState {
    items: VecDeque<Value>,
    getters: WaitQueue,
    putters: WaitQueue,
    /// Items a consumer in another process took ahead of use and may not
    /// all have used: still this queue's, ahead of `items` (see
    /// `lease.rs`). At most one at a time: any get ends it first.
    lease: Option<Lease>,
    /// The item on offer in the handoff (`handoff.rs`), the front of the
    /// queue unless a getter in another process took it: its generation
    /// there, and the value, which our own gets take without decoding.
    offered: Option<(u32, Value)>,
}

struct Lease {
    arena: Arc<Arena>,
    ticket: Ticket,
    /// Its items, the first (used at once by the consumer) included.
    items: Vec<Value>,
}

impl Lease {
    fn unused(&self) -> usize {
        self.items
            .len()
            .saturating_sub(lease::used(&self.arena, self.ticket))
    }
}

/// What a consumer in another process gets: an item, and, when it may keep
/// using them, the lease of the items waiting behind it.
pub struct Leased {
    pub ticket: Option<Ticket>,
    pub items: Vec<Value>,
}

pub struct Queue {
    pub id: u64,
    pub order: Order,
    pub capacity: Option<usize>,
    state: Mutex<QueueState>,
    /// Made when the queue is first sent to a child (`share`): getters
    /// anywhere that find it empty may be handed the next item there.
    handoff: OnceLock<Handoff>,
}

impl Queue {
    pub fn new(ctx: &Context, order: Order, capacity: Option<usize>) -> Arc<Queue> {
        Arc::new(Queue {
            id: ctx.registry.next_object_id(),
            order,
            capacity,
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                getters: WaitQueue::default(),
                putters: WaitQueue::default(),
                lease: None,
                offered: None,
            }),
            handoff: OnceLock::new(),
        })
    }

    pub fn type_name(&self) -> &'static str {
        match self.order {
            Order::Fifo => "queue",
            Order::Lifo => "lifo",
            Order::Priority => "priority",
        }
    }

    pub fn label(&self) -> String {
        format!("{}#{}", self.type_name(), self.id)
    }

    fn full(&self, s: &QueueState) -> bool {
        self.capacity.is_some_and(|c| s.items.len() >= c)
    }

    /// Priority items are `[priority, item]` lists (or any comparable value),
    /// compared whole as Python's `PriorityQueue` compares tuples; items
    /// that compare equal keep their arrival order.
    fn check_item(&self, v: &Value) -> Result<(), RuntimeError> {
        if self.order == Order::Priority {
            if let Value::List(l) = v {
                if l.lock().is_empty() {
                    return Err(RuntimeError::new(
                        kind::VALUE,
                        "a priority item cannot be an empty list",
                    ));
                }
            }
        }
        Ok(())
    }

    fn insert(&self, s: &mut QueueState, v: Value) {
        if self.order != Order::Priority {
            s.items.push_back(v);
            return;
        }
        let pos = s
            .items
            .iter()
            .position(|x| compare(&v, x).unwrap_or(Ordering::Greater) == Ordering::Less)
            .unwrap_or(s.items.len());
        s.items.insert(pos, v);
    }

    fn take(&self, s: &mut QueueState) -> Option<Value> {
        match self.order {
            Order::Lifo => s.items.pop_back(),
            _ => s.items.pop_front(),
        }
    }

    fn try_put(&self, s: &mut QueueState, v: &mut Option<Value>, ctx: &Context) -> Option<()> {
        if self.full(s) {
            return None;
        }
        let v = v.take()?;
        if let Some(h) = self.handoff.get() {
            return self.put_shared(h, s, v, ctx);
        }
        self.insert(s, v);
        s.getters.wake_one(&ctx.registry);
        Some(())
    }

    /// `try_put` on a queue with a handoff (kept out of the way of
    /// queues no other process uses).
    #[inline(never)]
    fn put_shared(&self, h: &Handoff, s: &mut QueueState, v: Value, ctx: &Context) -> Option<()> {
        match self.hand_over(h, s, v) {
            None if s.offered.is_some() => {}
            None => return Some(()),
            Some(v) => {
                self.insert(s, v);
                self.note(s);
            }
        }
        s.getters.wake_one(&ctx.registry);
        Some(())
    }

    /// Into an empty queue with a handoff (`handoff.rs`), `v` goes
    /// straight to a getter in another process announced there, or on
    /// offer, where a getter anywhere takes it without asking us (a getter
    /// of ours is woken for it). `v` back if it went neither way.
    fn hand_over(&self, h: &Handoff, s: &mut QueueState, v: Value) -> Option<Value> {
        if !self.on_offer(s) {
            s.offered = None;
        }
        if holds_any(s) || s.offered.is_some() {
            return Some(v);
        }
        let remote = match h.announced() {
            Some(true) => true,
            None => false,
            // Ours: it will find the item the usual way.
            Some(false) => return Some(v),
        };
        let Some(bytes) = plain::encode(&v, handoff::CAPACITY) else {
            return Some(v);
        };
        if remote {
            return if h.hand(0, &bytes) { None } else { Some(v) };
        }
        match h.offer(&bytes) {
            Some(generation) => {
                s.offered = Some((generation, v));
                None
            }
            None => Some(v),
        }
    }

    /// The item on offer, taken back for a get of ours, unless a getter
    /// in another process took it first.
    fn take_offered(&self, s: &mut QueueState) -> Option<Value> {
        let (generation, v) = s.offered.take()?;
        self.handoff.get()?.reclaim(generation).then_some(v)
    }

    /// Whether the item on offer is still there.
    fn on_offer(&self, s: &QueueState) -> bool {
        let (Some((generation, _)), Some(h)) = (&s.offered, self.handoff.get()) else {
            return false;
        };
        h.offered() == Some(*generation)
    }

    /// Keep the handoff's word true to whether the queue holds anything.
    fn note(&self, s: &QueueState) {
        if let Some(h) = self.handoff.get() {
            h.set_nonempty(holds_any(s));
        }
    }

    fn try_get(&self, s: &mut QueueState, ctx: &Context) -> Option<Value> {
        if self.handoff.get().is_some() {
            return self.get_shared(s, ctx);
        }
        let v = self.take(s)?;
        s.putters.wake_one(&ctx.registry);
        Some(v)
    }

    /// `try_get` on a queue with a handoff: the item on offer is the
    /// front, then any lease's items (only such a queue has leases).
    #[inline(never)]
    fn get_shared(&self, s: &mut QueueState, ctx: &Context) -> Option<Value> {
        if let Some(v) = self.take_offered(s) {
            return Some(v);
        }
        self.settle(s, ctx);
        let v = self.take(s)?;
        self.note(s);
        s.putters.wake_one(&ctx.registry);
        Some(v)
    }

    /// Put without waiting, from any thread (registered or not): false if
    /// the queue is full.
    pub fn put_now(&self, ctx: &Context, v: Value) -> bool {
        let mut slot = Some(v);
        let mut s = self.state.lock();
        self.try_put(&mut s, &mut slot, ctx).is_some()
    }

    /// `put q, v [timeout t]`: false if the queue stayed full until the deadline.
    #[inline]
    pub fn put(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        v: Value,
        at: Option<Span>,
        describe: impl FnOnce() -> BlockOn,
    ) -> Result<bool, RuntimeError> {
        ctx.engine().point_on(me, Op::Put, self.id, at);
        self.check_item(&v)?;
        if self.order == Order::Priority {
            self.check_comparable(&v)?;
        }
        let mut slot = Some(v);
        let mut s = self.state.lock();
        if self.try_put(&mut s, &mut slot, ctx).is_some() {
            return Ok(true);
        }
        // Only a thread that really blocks pays for describing its wait.
        let on = describe();
        let done = super::waits::block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.putters,
            |s| self.try_put(s, &mut slot, ctx),
        )?;
        Ok(done.is_some())
    }

    /// A priority item must order against every item waiting (the insert
    /// compares it with them): a TypeError at the `put`, as in Python.
    fn check_comparable(&self, item: &Value) -> Result<(), RuntimeError> {
        let s = self.state.lock();
        for waiting in &s.items {
            compare(item, waiting).map_err(|e| {
                RuntimeError::new(
                    kind::TYPE,
                    format!("priority items must be comparable: {}", e.message),
                )
            })?;
        }
        Ok(())
    }

    /// `get q [timeout t]`: `None` if still empty at the deadline. On a
    /// queue shared with children, a getter that finds it empty first
    /// waits a moment for a handoff (`handoff.rs`), then parks.
    #[inline]
    pub fn get(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        at: Option<Span>,
        describe: impl FnOnce() -> BlockOn,
    ) -> Result<Option<Value>, RuntimeError> {
        ctx.engine().point_on(me, Op::Get, self.id, at);
        let mut s = self.state.lock();
        if let Some(got) = self.try_get(&mut s, ctx) {
            return Ok(Some(got));
        }
        let on = describe();
        if let Some(h) = self.handoff.get() {
            let left = ctx.seconds_left(on.deadline);
            let wait = || h.wait_for(ctx.engine(), me, me.id, false, left, || false);
            if let Some(v) = MutexGuard::unlocked(&mut s, wait)? {
                return Ok(Some(v));
            }
        }
        let attempt = |s: &mut QueueState| self.try_get(s, ctx);
        super::waits::block_until(&ctx.registry, me, &mut s, &on, |s| &mut s.getters, attempt)
    }

    /// A get: take what `attempt` takes, waiting (as `describe` says) until
    /// it can or the deadline passes.
    #[inline]
    fn get_with<T>(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        at: Option<Span>,
        describe: impl FnOnce() -> BlockOn,
        mut attempt: impl FnMut(&mut QueueState) -> Option<T>,
    ) -> Result<Option<T>, RuntimeError> {
        ctx.engine().point_on(me, Op::Get, self.id, at);
        let mut s = self.state.lock();
        if let Some(got) = attempt(&mut s) {
            return Ok(Some(got));
        }
        let on = describe();
        super::waits::block_until(&ctx.registry, me, &mut s, &on, |s| &mut s.getters, attempt)
    }

    /// Exact at the moment it answers: items leased to another process
    /// and not used yet are still in the queue.
    pub fn size(&self) -> usize {
        let s = self.state.lock();
        s.items.len() + s.lease.as_ref().map_or(0, Lease::unused) + usize::from(self.on_offer(&s))
    }

    /// Whether a consumer in another process may take the waiting items
    /// on a lease: only for unbounded FIFO queues, where that changes
    /// neither the order anyone sees nor how producers are held back.
    pub fn can_lease(&self) -> bool {
        self.order == Order::Fifo && self.capacity.is_none()
    }

    /// A get for a consumer in another process (our child, which maps our
    /// arena): with the item, up to `max - 1` more waiting behind it,
    /// leased. `None` if still empty at the deadline.
    pub fn get_leasing(
        &self,
        cx: &Cx,
        label: String,
        deadline: Option<Time>,
        max: usize,
        arena: Option<&Arc<Arena>>,
    ) -> Result<Option<Leased>, RuntimeError> {
        let ctx = cx.ctx;
        self.get_with(
            ctx,
            cx.me,
            Some(cx.at),
            || cx.block_on(format!("an item from {}", label), deadline),
            |s| self.try_lease(s, ctx, max, arena),
        )
    }

    fn try_lease(
        &self,
        s: &mut QueueState,
        ctx: &Context,
        max: usize,
        arena: Option<&Arc<Arena>>,
    ) -> Option<Leased> {
        let first = self.try_get(s, ctx)?;
        let alone = |first| Leased {
            ticket: None,
            items: vec![first],
        };
        // Only a queue with a handoff settles leases (see `try_get`).
        let leasable = self.handoff.get().is_some() && max > 1 && !s.items.is_empty();
        let Some(arena) = arena.filter(|_| leasable) else {
            return Some(alone(first));
        };
        let Some(ticket) = lease::grant(arena) else {
            return Some(alone(first));
        };
        let n = (max - 1).min(s.items.len());
        let mut items = Vec::with_capacity(n + 1);
        items.push(first);
        items.extend(s.items.drain(..n));
        s.lease = Some(Lease {
            arena: arena.clone(),
            ticket,
            items: items.clone(),
        });
        self.note(s);
        Some(Leased {
            ticket: Some(ticket),
            items,
        })
    }

    /// End the lease, if there is one: the items its consumer has not used
    /// go back to the front, in their order, for whoever gets next.
    fn settle(&self, s: &mut QueueState, ctx: &Context) {
        let Some(lease) = s.lease.take() else {
            return;
        };
        let used = lease::revoke(&lease.arena, lease.ticket);
        for v in lease.items.into_iter().skip(used).rev() {
            s.items.push_front(v);
            s.getters.wake_one(&ctx.registry);
        }
    }

    /// This queue's handoff block in `arena`, made on first use, for a
    /// child the queue is sent to: only unbounded FIFO queues have one
    /// (a handoff skips the queue, so it must be empty and never full).
    pub fn share(&self, arena: &Arc<Arena>) -> Option<u32> {
        if !self.can_lease() {
            return None;
        }
        if self.handoff.get().is_none() {
            let s = self.state.lock();
            if self.handoff.get().is_none() {
                let h = Handoff::new(arena, holds_any(&s))?;
                let _ = self.handoff.set(h);
            }
        }
        self.handoff.get().map(Handoff::block)
    }

    /// A child whose threads' stand-ins are `dead` has ended: an item
    /// handed to it and not taken goes back to the front.
    pub fn forget(&self, ctx: &Context, dead: impl Fn(u64) -> bool) {
        let Some(h) = self.handoff.get() else {
            return;
        };
        let mut s = self.state.lock();
        if let Some(v) = h.forget(dead) {
            self.settle(&mut s, ctx);
            s.items.push_front(v);
            self.note(&s);
            s.getters.wake_one(&ctx.registry);
        }
    }

    pub fn is_full(&self) -> bool {
        self.full(&self.state.lock())
    }

    pub fn describe(&self) -> String {
        format!("<{} #{} size {}>", self.type_name(), self.id, self.size())
    }
}

/// Whether the queue holds items behind its handoff: waiting ones, or a
/// lease's (what the handoff's NONEMPTY bit says, see `handoff.rs`).
fn holds_any(s: &QueueState) -> bool {
    !s.items.is_empty() || s.lease.is_some()
}

/// One end of a `pipe()`: puts go to the other end, gets come from it.
pub struct PipeEnd {
    pub id: u64,
    pub send: Arc<Queue>,
    pub recv: Arc<Queue>,
}

impl PipeEnd {
    pub fn pair(ctx: &Context) -> (Arc<PipeEnd>, Arc<PipeEnd>) {
        let (ab, ba) = (
            Queue::new(ctx, Order::Fifo, None),
            Queue::new(ctx, Order::Fifo, None),
        );
        let a = Arc::new(PipeEnd {
            id: ctx.registry.next_object_id(),
            send: ab.clone(),
            recv: ba.clone(),
        });
        let b = Arc::new(PipeEnd {
            id: ctx.registry.next_object_id(),
            send: ba,
            recv: ab,
        });
        (a, b)
    }

    pub fn label(&self) -> String {
        format!("pipe-end#{}", self.id)
    }
}

/// One arm of a `select`, already evaluated.
pub enum Arm {
    Get(Arc<Queue>),
    Put(Arc<Queue>, Value),
}

impl Arm {
    fn queue(&self) -> &Arc<Queue> {
        match self {
            Arm::Get(q) | Arm::Put(q, _) => q,
        }
    }
}

/// `select`: the index of the arm that completed (and the value got), or
/// `None` when the deadline passed first.
pub fn select(
    ctx: &Context,
    me: &ThreadRef,
    arms: &mut [Arm],
    on: &BlockOn,
) -> Result<Option<(usize, Option<Value>)>, RuntimeError> {
    let mut site = Select { ctx, arms };
    super::waits::block(&ctx.registry, me, on, &mut site)
}

/// The arms of a select as one place to wait. The thread enlists in each
/// arm's wait queue as it tries that arm, under that queue's lock, so no
/// put or get on an arm already tried can be missed; on leaving it passes
/// on any wake-up it did not use, so another waiter of that queue is not
/// left asleep.
struct Select<'a> {
    ctx: &'a Context,
    arms: &'a mut [Arm],
}

impl super::waits::WaitSite for Select<'_> {
    type Done = (usize, Option<Value>);

    fn attempt(&mut self, me: &ThreadRef) -> Option<(usize, Option<Value>)> {
        let ctx = self.ctx;
        for (i, arm) in self.arms.iter_mut().enumerate() {
            let q = arm.queue().clone();
            let mut s: MutexGuard<QueueState> = q.state.lock();
            match arm {
                Arm::Get(_) => {
                    if let Some(v) = q.try_get(&mut s, ctx) {
                        drop(s);
                        self.leave(me);
                        return Some((i, Some(v)));
                    }
                    s.getters.enlist(me.clone());
                }
                Arm::Put(_, v) => {
                    let mut slot = Some(v.clone());
                    if q.try_put(&mut s, &mut slot, ctx).is_some() {
                        drop(s);
                        self.leave(me);
                        return Some((i, None));
                    }
                    s.putters.enlist(me.clone());
                }
            }
        }
        None
    }

    fn leave(&mut self, me: &super::threads::ThreadRecord) {
        for arm in self.arms.iter() {
            let q = arm.queue();
            let mut s = q.state.lock();
            s.getters.leave(me.id);
            s.putters.leave(me.id);
            if !s.items.is_empty() || s.offered.is_some() {
                s.getters.wake_one(&self.ctx.registry);
            }
            if !q.full(&s) {
                s.putters.wake_one(&self.ctx.registry);
            }
        }
    }
}

fn size_method(q: &Queue, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Inspect, q.id);
    Ok(Value::Int(q.size() as i64).into())
}

fn empty_method(q: &Queue, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Inspect, q.id);
    Ok(Value::Bool(q.size() == 0).into())
}

fn full_method(q: &Queue, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Inspect, q.id);
    Ok(Value::Bool(q.is_full()).into())
}

/// The methods of a queue; a pipe end has them for what it receives.
static METHODS: &[Method<Queue>] = &[
    Method {
        name: "size",
        args: (0, 0),
        call: size_method,
    },
    Method {
        name: "qsize",
        args: (0, 0),
        call: size_method,
    },
    Method {
        name: "empty",
        args: (0, 0),
        call: empty_method,
    },
    Method {
        name: "full",
        args: (0, 0),
        call: full_method,
    },
];

impl Queue {
    /// `get` as a statement does it: the item, or `None` at the deadline.
    /// (`label` is made only if the thread has to wait: a get or put that
    /// goes straight through formats nothing.) Inlined: it is on every
    /// `get`, and a call of its own costs `queue_1m` about 5 %.
    #[inline]
    pub(super) fn get_op(
        &self,
        cx: &Cx,
        label: impl FnOnce() -> String,
        deadline: Option<Time>,
    ) -> Res<Option<Value>> {
        self.get(cx.ctx, cx.me, Some(cx.at), || {
            cx.block_on(format!("an item from {}", label()), deadline)
        })
    }

    #[inline]
    pub(super) fn put_op(
        &self,
        cx: &Cx,
        label: impl FnOnce() -> String,
        v: Value,
        deadline: Option<Time>,
    ) -> Res<bool> {
        self.put(cx.ctx, cx.me, v, Some(cx.at), || {
            cx.block_on(format!("room in {}", label()), deadline)
        })
    }
}

impl Object for Queue {
    fn kind(&self) -> &'static str {
        self.type_name()
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn describe(&self) -> String {
        Queue::describe(self)
    }

    fn field(&self, _cx: &Cx, name: &str) -> Option<Value> {
        (name == "capacity").then(|| self.capacity.map_or(Value::Nil, |c| Value::Int(c as i64)))
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        call_method(METHODS, self, cx, name, args)
    }

    fn members(&self) -> Members {
        Members {
            methods: names(METHODS),
            fields: &["capacity"],
        }
    }

    fn get(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Option<Value>>> {
        Some(self.get_op(cx, || self.label(), deadline))
    }

    fn put(&self, cx: &Cx, v: Value, deadline: Option<Time>) -> Option<Res<bool>> {
        Some(self.put_op(cx, || self.label(), v, deadline))
    }

    fn len(&self, cx: &Cx) -> Option<Res<usize>> {
        cx.point(Op::Inspect, self.id);
        Some(Ok(self.size()))
    }
}

impl Object for PipeEnd {
    fn kind(&self) -> &'static str {
        "pipe"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn label(&self) -> String {
        PipeEnd::label(self)
    }

    fn describe(&self) -> String {
        format!("<pipe end #{} {} waiting>", self.id, self.recv.size())
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        call_method(METHODS, &*self.recv, cx, name, args)
    }

    fn members(&self) -> Members {
        Members {
            methods: names(METHODS),
            fields: &[],
        }
    }

    fn get(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Option<Value>>> {
        Some(self.recv.get_op(cx, || self.label(), deadline))
    }

    fn put(&self, cx: &Cx, v: Value, deadline: Option<Time>) -> Option<Res<bool>> {
        Some(self.send.put_op(cx, || self.label(), v, deadline))
    }

    fn len(&self, cx: &Cx) -> Option<Res<usize>> {
        cx.point(Op::Inspect, self.recv.id);
        Some(Ok(self.recv.size()))
    }
}
