//! `event()`, `condition(m)` and `barrier(n)`: things a thread `wait`s on.

use super::engine::{Op, Time};
use super::locks::{Lock, LockKind};
use super::object::{call_method, names, Cx, Members, Method, Object, Reply, Res};
use super::value::args::positive;
use super::value::Value;
use super::waits::{block_until, BlockOn, ThreadId, WaitQueue};
use super::{Context, ThreadRef};
use crate::diagnostics::{kind, RuntimeError};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;

struct EventState {
    set: bool,
    /// How many times `set` was called: a thread waiting when it was
    /// returns even if a `clear` came before it got to run (as Python's
    /// `Event.wait` does).
    sets: u64,
    waiters: WaitQueue,
}

pub struct Event {
    pub id: u64,
    state: Mutex<EventState>,
}

impl Event {
    pub fn new(ctx: &Context) -> Arc<Event> {
        Arc::new(Event {
            id: ctx.registry.next_object_id(),
            state: Mutex::new(EventState {
                set: false,
                sets: 0,
                waiters: WaitQueue::default(),
            }),
        })
    }

    pub fn label(&self) -> String {
        format!("event#{}", self.id)
    }

    /// `wait e [timeout t]`: true once set, false on timeout.
    pub fn wait(&self, ctx: &Context, me: &ThreadRef, on: BlockOn) -> Result<bool, RuntimeError> {
        ctx.engine().point_on(me, Op::Wait, self.id, on.span);
        let mut s = self.state.lock();
        let sets = s.sets;
        let done = block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.waiters,
            |s| (s.set || s.sets != sets).then_some(()),
        )?;
        Ok(done.is_some())
    }

    pub fn set(&self, ctx: &Context) {
        let mut s = self.state.lock();
        s.set = true;
        s.sets += 1;
        s.waiters.wake_all(&ctx.registry);
    }

    pub fn clear(&self) {
        self.state.lock().set = false;
    }

    pub fn is_set(&self) -> bool {
        self.state.lock().set
    }
}

struct ConditionState {
    /// Threads inside `wait c`, oldest first; `notify` moves them to `notified`.
    pending: Vec<ThreadId>,
    notified: HashSet<ThreadId>,
    waiters: WaitQueue,
}

pub struct Condition {
    pub id: u64,
    pub lock: Arc<Lock>,
    state: Mutex<ConditionState>,
}

impl Condition {
    pub fn new(ctx: &Context, lock: Option<Arc<Lock>>) -> Result<Arc<Condition>, RuntimeError> {
        let lock = lock.unwrap_or_else(|| Lock::new(ctx, LockKind::Reentrant, 0));
        if lock.kind == LockKind::Semaphore {
            return Err(RuntimeError::new(
                kind::TYPE,
                "condition() needs a lock or rlock, not a semaphore",
            ));
        }
        Ok(Arc::new(Condition {
            id: ctx.registry.next_object_id(),
            lock,
            state: Mutex::new(ConditionState {
                pending: Vec::new(),
                notified: HashSet::new(),
                waiters: WaitQueue::default(),
            }),
        }))
    }

    pub fn label(&self) -> String {
        format!("condition#{}", self.id)
    }

    /// `wait c`: release the lock, wait for a notify, take the lock back.
    /// Gives false if the timeout passed first.
    pub fn wait(&self, ctx: &Context, me: &ThreadRef, on: BlockOn) -> Result<bool, RuntimeError> {
        ctx.engine().point_on(me, Op::Wait, self.id, on.span);
        if !self.lock.held_by(me) {
            return Err(RuntimeError::new(
                kind::LOCK,
                format!("wait on {} without holding its lock", self.label()),
            )
            .with_help("wait inside `lock m { ... }` where m is the condition's lock"));
        }
        self.state.lock().pending.push(me.id);
        let depth = self.lock.release_all(ctx, me)?;
        let mut s = self.state.lock();
        let waited = block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.waiters,
            |s| s.notified.remove(&me.id).then_some(()),
        );
        s.pending.retain(|id| *id != me.id);
        drop(s);
        let relock = BlockOn::new(
            format!(
                "{} to re-acquire the lock after a condition wait",
                self.lock.label()
            ),
            on.span,
            None,
        );
        self.lock.reacquire(ctx, me, depth, relock)?;
        Ok(waited?.is_some())
    }

    /// Wake up to `n` waiters (all when `None`). The caller must hold the lock.
    pub fn notify(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        n: Option<usize>,
    ) -> Result<(), RuntimeError> {
        ctx.engine().point_on(me, Op::Signal, self.id, None);
        if !self.lock.held_by(me) {
            return Err(RuntimeError::new(
                kind::LOCK,
                format!("notify on {} without holding its lock", self.label()),
            ));
        }
        let mut s = self.state.lock();
        let count = n.unwrap_or(s.pending.len()).min(s.pending.len());
        let chosen: Vec<ThreadId> = s.pending.drain(..count).collect();
        s.notified.extend(chosen);
        s.waiters.wake_all(&ctx.registry);
        Ok(())
    }
}

struct BarrierState {
    arrived: usize,
    generation: u64,
    waiters: WaitQueue,
}

pub struct Barrier {
    pub id: u64,
    pub parties: usize,
    state: Mutex<BarrierState>,
}

impl Barrier {
    pub fn new(ctx: &Context, parties: usize) -> Arc<Barrier> {
        Arc::new(Barrier {
            id: ctx.registry.next_object_id(),
            parties,
            state: Mutex::new(BarrierState {
                arrived: 0,
                generation: 0,
                waiters: WaitQueue::default(),
            }),
        })
    }

    pub fn label(&self) -> String {
        format!("barrier#{}", self.id)
    }

    /// `wait b`: the arrival index (0 for the first); `None` on timeout, in
    /// which case this thread's arrival is withdrawn.
    pub fn wait(
        &self,
        ctx: &Context,
        me: &ThreadRef,
        on: BlockOn,
    ) -> Result<Option<usize>, RuntimeError> {
        ctx.engine().point_on(me, Op::Wait, self.id, on.span);
        let mut s = self.state.lock();
        let index = s.arrived;
        s.arrived += 1;
        if s.arrived == self.parties {
            s.arrived = 0;
            s.generation += 1;
            s.waiters.wake_all(&ctx.registry);
            return Ok(Some(index));
        }
        let generation = s.generation;
        let done = block_until(
            &ctx.registry,
            me,
            &mut s,
            &on,
            |s| &mut s.waiters,
            |s| (s.generation != generation).then_some(()),
        );
        if !matches!(done, Ok(Some(()))) && s.generation == generation {
            s.arrived -= 1;
        }
        Ok(done?.map(|_| index))
    }

    pub fn waiting(&self) -> usize {
        self.state.lock().arrived
    }
}

fn set_method(e: &Event, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Signal, e.id);
    e.set(cx.ctx);
    Ok(Value::Nil.into())
}

fn clear_method(e: &Event, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Signal, e.id);
    e.clear();
    Ok(Value::Nil.into())
}

fn is_set_method(e: &Event, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Inspect, e.id);
    Ok(Value::Bool(e.is_set()).into())
}

static EVENT_METHODS: &[Method<Event>] = &[
    Method {
        name: "set",
        args: (0, 0),
        call: set_method,
    },
    Method {
        name: "clear",
        args: (0, 0),
        call: clear_method,
    },
    Method {
        name: "is_set",
        args: (0, 0),
        call: is_set_method,
    },
];

impl Object for Event {
    fn kind(&self) -> &'static str {
        "event"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn describe(&self) -> String {
        let state = if self.is_set() { "set" } else { "clear" };
        format!("<event #{} {}>", self.id, state)
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        call_method(EVENT_METHODS, self, cx, name, args)
    }

    fn members(&self) -> Members {
        Members {
            methods: names(EVENT_METHODS),
            fields: &[],
        }
    }

    fn wait(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Value>> {
        let on = cx.block_on(format!("{} to be set", self.label()), deadline);
        Some(Event::wait(self, cx.ctx, cx.me, on).map(Value::Bool))
    }
}

fn notify_method(c: &Condition, cx: &Cx, args: Vec<Value>) -> Res<Reply> {
    let n = positive("notify", args.first(), 1, 0)?;
    c.notify(cx.ctx, cx.me, Some(n as usize))?;
    Ok(Value::Nil.into())
}

fn notify_all_method(c: &Condition, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    c.notify(cx.ctx, cx.me, None)?;
    Ok(Value::Nil.into())
}

static CONDITION_METHODS: &[Method<Condition>] = &[
    Method {
        name: "notify",
        args: (0, 1),
        call: notify_method,
    },
    Method {
        name: "notify_all",
        args: (0, 0),
        call: notify_all_method,
    },
];

impl Object for Condition {
    fn kind(&self) -> &'static str {
        "condition"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn describe(&self) -> String {
        format!("<condition #{} on {}>", self.id, self.lock.label())
    }

    /// Its own methods, then its lock's (`c.acquire()`).
    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        match call_method(CONDITION_METHODS, self, cx, name, args.clone()) {
            Some(done) => Some(done),
            None => self.lock.method(cx, name, args),
        }
    }

    fn members(&self) -> Members {
        let mut methods = names(CONDITION_METHODS);
        methods.extend(names(super::locks::METHODS));
        Members {
            methods,
            fields: &[],
        }
    }

    fn wait(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Value>> {
        let on = cx.block_on(format!("{} to be notified", self.label()), deadline);
        Some(Condition::wait(self, cx.ctx, cx.me, on).map(Value::Bool))
    }

    fn acquire(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<bool>> {
        Object::acquire(&*self.lock, cx, deadline)
    }

    fn release(&self, cx: &Cx, held: bool) -> Option<Res<()>> {
        Object::release(&*self.lock, cx, held)
    }
}

fn waiting_method(b: &Barrier, cx: &Cx, _: Vec<Value>) -> Res<Reply> {
    cx.point(Op::Inspect, b.id);
    Ok(Value::Int(b.waiting() as i64).into())
}

static BARRIER_METHODS: &[Method<Barrier>] = &[Method {
    name: "waiting",
    args: (0, 0),
    call: waiting_method,
}];

impl Object for Barrier {
    fn kind(&self) -> &'static str {
        "barrier"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn describe(&self) -> String {
        format!(
            "<barrier #{} {}/{} waiting>",
            self.id,
            self.waiting(),
            self.parties
        )
    }

    fn field(&self, _cx: &Cx, name: &str) -> Option<Value> {
        (name == "parties").then(|| Value::Int(self.parties as i64))
    }

    fn method(&self, cx: &Cx, name: &str, args: Vec<Value>) -> Option<Res<Reply>> {
        call_method(BARRIER_METHODS, self, cx, name, args)
    }

    fn members(&self) -> Members {
        Members {
            methods: names(BARRIER_METHODS),
            fields: &["parties"],
        }
    }

    /// The arrival index (0 for the first); a Timeout when the parties
    /// did not all come in time.
    fn wait(&self, cx: &Cx, deadline: Option<Time>) -> Option<Res<Value>> {
        let label = format!("{} ({} parties)", self.label(), self.parties);
        let on = cx.block_on(label, deadline);
        Some(match Barrier::wait(self, cx.ctx, cx.me, on) {
            Ok(Some(i)) => Ok(Value::Int(i as i64)),
            Ok(None) => Err(RuntimeError::new(
                kind::TIMEOUT,
                format!(
                    "{} was not reached by {} parties in time",
                    self.label(),
                    self.parties
                ),
            )),
            Err(e) => Err(e),
        })
    }
}
