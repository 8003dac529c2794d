//! The blocking operations of the language and the threads and processes
//! it starts: `spawn`, `join`, `get`, `put`, `wait`, `submit`, `lock X { }`
//! and `select`, each on operands already evaluated (the compiled nodes in
//! `compile/concurrency.rs` evaluate them). Each is one call of the
//! runtime's operation (`runtime::ops`), which picks the object's
//! implementation, local or another process's.

use super::builtins::expect_seconds;
use super::value::Value;
use super::{Interp, R};
use crate::ast::SpawnKind;
use crate::runtime::engine::{Op, Step, Time};
use crate::runtime::locks::Lock;
use crate::runtime::object::Cx;
use crate::runtime::process::ssh::Host;
use crate::runtime::{ops, threads, Context, Handle};
use crate::span::Span;

pub(super) use crate::runtime::ops::Select as SelectArms;
pub(super) use crate::runtime::value::args::check_callable as callable;

/// Where a blocking operation is written: the whole expression (the
/// report's location) and its operand (named in reports by its source text).
#[derive(Clone, Copy)]
pub(super) struct Site {
    pub span: Span,
    pub target: Span,
}

/// `timeout v` as an absolute deadline (`at`: where `v` is written).
pub(super) fn deadline_of(ctx: &Context, v: &Value, at: Span) -> R<Time> {
    let d = expect_seconds("a timeout", v).map_err(|err| Box::new(err.at(at)))?;
    Ok(ctx.deadline_after(d))
}

/// Only functions can be spawned or submitted.
pub(super) fn check_callable(callee: &Value, span: Span) -> R<()> {
    callable(callee).map_err(|e| Box::new(e.at(span)))
}

impl Interp {
    /// The operation's context: this thread, at `site`.
    #[inline]
    pub(super) fn cx(&self, site: Site) -> Cx<'_> {
        Cx::new(&self.ctx, &self.thread, site.span, site.target)
    }

    /// Run `callee(args)` on a new thread or process named `name`.
    pub(super) fn start(
        &mut self,
        (kind, daemon): (SpawnKind, bool),
        callee: Value,
        args: Vec<Value>,
        name: String,
        host: Option<Host>,
        span: Span,
    ) -> R<Value> {
        let step = Step::new(Op::Spawn, 0, Some(span));
        self.ctx.engine().point(&self.thread, step);
        if kind == SpawnKind::Process {
            let handle =
                crate::runtime::process::spawn(&self.ctx, name, daemon, &callee, &args, span, host)
                    .map_err(|e| Box::new(e.at(span)))?;
            return Ok(Value::Handle(Handle::Thread(handle)));
        }
        let ctx = self.ctx.clone();
        let body = Box::new(move |record| {
            let mut it = Interp::new(ctx, record);
            it.call_value(&callee, args, span).map_err(|e| *e)
        });
        let handle =
            threads::spawn(&self.ctx, name, daemon, body).map_err(|e| Box::new(e.at(span)))?;
        Ok(Value::Handle(Handle::Thread(handle)))
    }

    /// `join t`: a thread's, process's, timer's or future's result.
    pub(super) fn join_value(&mut self, t: &Value, deadline: Option<Time>, site: Site) -> R<Value> {
        ops::join(&self.cx(site), t, deadline).map_err(Box::new)
    }

    /// `get t`: an item from a queue or a pipe end.
    pub(super) fn get_from(&mut self, t: &Value, deadline: Option<Time>, site: Site) -> R<Value> {
        ops::get(&self.cx(site), t, deadline).map_err(Box::new)
    }

    /// `put t, v`: into a queue or a pipe end.
    pub(super) fn put_into(
        &mut self,
        t: &Value,
        v: Value,
        deadline: Option<Time>,
        site: Site,
    ) -> R<()> {
        ops::put(&self.cx(site), t, v, deadline).map_err(Box::new)
    }

    /// `wait t`: on an event, a condition or a barrier.
    pub(super) fn wait_on(&mut self, t: &Value, deadline: Option<Time>, site: Site) -> R<Value> {
        ops::wait(&self.cx(site), t, deadline).map_err(Box::new)
    }

    /// `submit p, f(args)`: `pool` is the value of `p`, written at `at`.
    pub(super) fn submit_to(
        &mut self,
        pool: &Value,
        at: Span,
        callee: Value,
        args: Vec<Value>,
        span: Span,
    ) -> R<Value> {
        let Value::Handle(Handle::Pool(p)) = pool else {
            let e = crate::diagnostics::RuntimeError::new(
                crate::diagnostics::kind::TYPE,
                format!("cannot submit to {}", super::describe(pool)),
            )
            .at(at)
            .with_help("submit takes a pool: submit p, work(x)");
            return Err(Box::new(e));
        };
        let site = Site { span, target: at };
        p.submit_call(&self.cx(site), callee, args)
            .map_err(|e| Box::new(e.at(span)))
    }

    /// Acquire what `lock X { }` names (`t`, the value of `X`, written at `at`).
    pub(super) fn lock_enter(&mut self, t: &Value, at: Span) -> R<Handle> {
        ops::lock_enter(&self.cx(lock_site(at)), t).map_err(Box::new)
    }

    /// Release at the end of `lock X { }`, however the block ended.
    pub(super) fn lock_exit(&mut self, held: &Handle, at: Span) -> R<()> {
        ops::lock_exit(&self.cx(lock_site(at)), held).map_err(Box::new)
    }

    /// Take `lock` for the block of `lock X { }` (`at`: a reference, as
    /// the hot `lock m { }` node passes it without copying).
    #[inline]
    pub(super) fn acquire_for_block(&mut self, lock: &Lock, at: &Span) -> R<()> {
        let cx = self.cx(lock_site(*at));
        let describe = || cx.block_on(lock.label(), None);
        lock.acquire(&self.ctx, &self.thread, None, Some(*at), describe)
            .map(|_| ())
            .map_err(|e| Box::new(e.at(*at)))
    }

    pub(super) fn release_for_block(&mut self, lock: &Lock, at: &Span) -> R<()> {
        lock.release(&self.ctx, &self.thread)
            .map_err(|e| Box::new(e.at(*at)))
    }

    /// Wait until one of the cases of `select` can go, or until `deadline`.
    /// Gives the case (its index among the get and put cases) and what a get
    /// got; `None` on timeout.
    pub(super) fn select_wait(
        &mut self,
        cases: SelectArms,
        deadline: Option<Time>,
        span: Span,
    ) -> R<Option<(usize, Option<Value>)>> {
        let site = Site { span, target: span };
        cases.wait(&self.cx(site), deadline).map_err(Box::new)
    }
}

/// A lock block names its lock by the lock expression, and is reported there.
fn lock_site(at: Span) -> Site {
    Site {
        span: at,
        target: at,
    }
}

/// What a thread spawned to run `f` is called by default (and a counter).
pub(super) fn function_name(f: &Value) -> String {
    match f {
        Value::Func(c) => c
            .func
            .decl
            .name
            .as_ref()
            .map_or("thread".to_string(), |n| n.name.to_string()),
        Value::Builtin(b) => b.name.to_string(),
        _ => "thread".to_string(),
    }
}
