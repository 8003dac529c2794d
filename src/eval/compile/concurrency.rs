//! Compiling the concurrency nodes: `spawn`, `join`, `get`, `wait`,
//! `submit`, `put`, `lock X { }` and `select`. Each evaluates its operands,
//! left to right, and hands the values to one operation in
//! `eval/blocking.rs`; a `select` case's body is a block like any other.

use super::calls::eval_all;
use super::stmt::Target;
use super::{tri, Block, Compiler, Ctl, ExprCode, StmtCode};
use crate::ast::{self, Expr, SelectKind, Spawn, SpawnBody};
use crate::eval::blocking::{check_callable, deadline_of, function_name, SelectArms, Site};
use crate::eval::globals::GlobalRef;
use crate::eval::value::Value;
use crate::eval::{Frame, Interp, R};
use crate::runtime::engine::Time;
use crate::runtime::process::ssh::Host;
use crate::runtime::threads::check_thread_name;
use crate::runtime::Handle;
use crate::span::Span;

/// `timeout EXPR`, if there is one.
struct Timeout(Option<(ExprCode, Span)>);

impl Timeout {
    #[inline]
    fn deadline(&self, it: &mut Interp, f: Frame) -> R<Option<Time>> {
        match &self.0 {
            None => Ok(None),
            Some((seconds, at)) => {
                let v = seconds(it, f)?;
                Ok(Some(deadline_of(&it.ctx, &v, *at)?))
            }
        }
    }
}

impl Compiler<'_> {
    fn timeout(&self, e: Option<&Expr>) -> Timeout {
        Timeout(e.map(|e| (self.expr(e), e.span)))
    }

    /// An operand and the timeout after it, with the site they make.
    fn operand(
        &self,
        target: &Expr,
        timeout: Option<&Expr>,
        span: Span,
    ) -> (ExprCode, Timeout, Site) {
        let site = Site {
            span,
            target: target.span,
        };
        (self.expr(target), self.timeout(timeout), site)
    }

    pub(super) fn spawn(&self, spawn: &Spawn, span: Span) -> ExprCode {
        let how = (spawn.kind, spawn.daemon);
        let name = spawn.name.as_ref().map(|e| (self.expr(e), e.span));
        let thread_name = move |it: &mut Interp, f: Frame, callee: &Value| -> R<String> {
            match &name {
                Some((e, at)) => {
                    let name = e(it, f)?.to_display();
                    check_thread_name(&name).map_err(|e| Box::new(e.at(*at)))?;
                    Ok(name)
                }
                None => Ok(it.ctx.next_name(&function_name(callee))),
            }
        };
        let on = spawn.on.as_ref().map(|e| (self.expr(e), e.span));
        let on = move |it: &mut Interp, f: Frame| -> R<Option<Host>> {
            match &on {
                Some((e, at)) => {
                    let v = e(it, f)?;
                    Host::from_value(&v)
                        .map(Some)
                        .map_err(|e| Box::new(e.at(*at)))
                }
                None => Ok(None),
            }
        };
        match &spawn.body {
            SpawnBody::Call { callee, args } => {
                let (callee, args) = (self.expr(callee), self.exprs(args));
                Box::new(move |it, f| {
                    let callee = callee(it, f)?;
                    let args = eval_all(&args, it, f)?;
                    check_callable(&callee, span)?;
                    let name = thread_name(it, f, &callee)?;
                    let host = on(it, f)?;
                    it.start(how, callee, args, name, host, span)
                })
            }
            SpawnBody::Block(decl) => {
                let func = self.function_object(decl);
                Box::new(move |it, f| {
                    let callee = it.make_closure(&func, f);
                    let name = thread_name(it, f, &Value::Nil)?;
                    let host = on(it, f)?;
                    it.start(how, callee, Vec::new(), name, host, span)
                })
            }
        }
    }

    pub(super) fn join(&self, target: &Expr, timeout: Option<&Expr>, span: Span) -> ExprCode {
        let (target, timeout, site) = self.operand(target, timeout, span);
        Box::new(move |it, f| {
            let t = target(it, f)?;
            let deadline = timeout.deadline(it, f)?;
            it.join_value(&t, deadline, site)
        })
    }

    pub(super) fn get(&self, target: &Expr, timeout: Option<&Expr>, span: Span) -> ExprCode {
        let (target, timeout, site) = self.operand(target, timeout, span);
        Box::new(move |it, f| {
            let q = target(it, f)?;
            let deadline = timeout.deadline(it, f)?;
            it.get_from(&q, deadline, site)
        })
    }

    pub(super) fn wait(&self, target: &Expr, timeout: Option<&Expr>, span: Span) -> ExprCode {
        let (target, timeout, site) = self.operand(target, timeout, span);
        Box::new(move |it, f| {
            let t = target(it, f)?;
            let deadline = timeout.deadline(it, f)?;
            it.wait_on(&t, deadline, site)
        })
    }

    pub(super) fn submit(&self, pool: &Expr, callee: &Expr, args: &[Expr], span: Span) -> ExprCode {
        let (at, pool) = (pool.span, self.expr(pool));
        let (callee, args) = (self.expr(callee), self.exprs(args));
        Box::new(move |it, f| {
            let p = pool(it, f)?;
            let callee = callee(it, f)?;
            let args = eval_all(&args, it, f)?;
            it.submit_to(&p, at, callee, args, span)
        })
    }

    pub(super) fn put_stmt(
        &self,
        target: &Expr,
        value: &Expr,
        timeout: Option<&Expr>,
        span: Span,
    ) -> StmtCode {
        let (queue, timeout, site) = self.operand(target, timeout, span);
        let item = self.expr(value);
        Box::new(move |it, f| {
            let q = tri!(it, queue(it, f));
            let v = tri!(it, item(it, f));
            let deadline = tri!(it, timeout.deadline(it, f));
            tri!(it, it.put_into(&q, v, deadline, site));
            Ctl::Normal
        })
    }

    /// `lock X { }`: released on every way out of the block.
    pub(super) fn lock_stmt(&self, target: &Expr, body: &ast::Block) -> StmtCode {
        let (at, body) = (target.span, self.block(body));
        if let Some(cell) = self.global_of(target) {
            return lock_global(cell, at, body);
        }
        let value = self.expr(target);
        Box::new(move |it, f| {
            let t = tri!(it, value(it, f));
            let held = tri!(it, it.lock_enter(&t, at));
            let ctl = body.run(it, f);
            let released = it.lock_exit(&held, at);
            after_lock(it, ctl, released)
        })
    }

    pub(super) fn select(&self, cases: &[ast::SelectCase], span: Span) -> StmtCode {
        let cases: Box<[_]> = cases
            .iter()
            .map(|c| (self.select_case(&c.kind), self.block(&c.body)))
            .collect();
        Box::new(move |it, f| {
            let (chosen, got) = tri!(it, choose(it, &cases, span, f));
            let Some((case, body)) = chosen.and_then(|i| cases.get(i)) else {
                return Ctl::Normal;
            };
            if let (Case::Get { name: Some(t), .. }, Some(v)) = (case, got) {
                tri!(it, t.bind(it, v, f));
            }
            body.run(it, f)
        })
    }

    fn select_case(&self, kind: &SelectKind) -> Case {
        match kind {
            SelectKind::Get { name, target } => Case::Get {
                queue: self.expr(target),
                at: target.span,
                name: name.as_ref().map(|d| self.declared(d)),
            },
            SelectKind::Put { target, value } => Case::Put {
                queue: self.expr(target),
                at: target.span,
                item: self.expr(value),
            },
            SelectKind::Timeout { seconds } => Case::Timeout {
                seconds: self.expr(seconds),
                at: seconds.span,
            },
        }
    }
}

/// `lock m { }` where `m` is a global: the lock comes from this thread's
/// cache, so taking it touches no shared reference count and no global's
/// lock (threads contending for `m` would otherwise fight over both).
fn lock_global(cell: GlobalRef, at: Span, body: Block) -> StmtCode {
    Box::new(move |it, f| {
        let m = tri!(it, it.cached_global(&cell, at));
        let Value::Handle(Handle::Lock(lock)) = &m.value else {
            let held = tri!(it, it.lock_enter(&m.value, at));
            let ctl = body.run(it, f);
            let released = it.lock_exit(&held, at);
            return after_lock(it, ctl, released);
        };
        tri!(it, it.acquire_for_block(lock, &at));
        let ctl = body.run(it, f);
        let released = it.release_for_block(lock, &at);
        after_lock(it, ctl, released)
    })
}

/// How a `lock` block ended, given how the release went: an error from the
/// block wins over one from the release.
fn after_lock(it: &mut Interp, ctl: Ctl, released: R<()>) -> Ctl {
    match (ctl, released) {
        (Ctl::Error, _) => Ctl::Error,
        (ctl, Ok(())) => ctl,
        (_, Err(e)) => it.fail(e),
    }
}

/// A `select` case, compiled.
enum Case {
    Get {
        queue: ExprCode,
        at: Span,
        name: Option<Target>,
    },
    Put {
        queue: ExprCode,
        at: Span,
        item: ExprCode,
    },
    Timeout {
        seconds: ExprCode,
        at: Span,
    },
}

/// Evaluate the cases in order (a timeout after the first is not
/// evaluated) and wait: which case goes (its index in `cases`), and what
/// its get got. No case: a timeout without a timeout case.
fn choose(
    it: &mut Interp,
    cases: &[(Case, Block)],
    span: Span,
    f: Frame,
) -> R<(Option<usize>, Option<Value>)> {
    let mut arms = SelectArms::default();
    let mut arm_cases = Vec::with_capacity(cases.len());
    let mut timeout = None;
    for (i, (case, _)) in cases.iter().enumerate() {
        match case {
            Case::Get { queue, at, .. } => {
                let q = queue(it, f)?;
                arms.get(q, *at)?;
                arm_cases.push(i);
            }
            Case::Put { queue, at, item } => {
                let q = queue(it, f)?;
                let v = item(it, f)?;
                arms.put(q, v, *at)?;
                arm_cases.push(i);
            }
            Case::Timeout { seconds, at } if timeout.is_none() => {
                let v = seconds(it, f)?;
                let d = deadline_of(&it.ctx, &v, *at)?;
                timeout = Some((i, d));
            }
            Case::Timeout { .. } => {}
        }
    }
    let deadline = timeout.map(|(_, d)| d);
    Ok(match it.select_wait(arms, deadline, span)? {
        Some((arm, got)) => (arm_cases.get(arm).copied(), got),
        None => (timeout.map(|(i, _)| i), None),
    })
}
