//! Where the evaluator meets the runtime: `spawn`, `join`, `lock`, `wait`,
//! `put`, `get`, `select`, `submit`, handle fields and methods. Everything
//! here evaluates operands, then calls one runtime operation with the span
//! to record while blocked.

use super::builtins::{arity, expect_seconds, Builtin};
use super::value::Value;
use super::{Flow, Frame, Interp, R};
use crate::ast::*;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::{threads, Handle, ThreadHandle};
use crate::span::Span;
use std::time::Instant;

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "current",
    call: current,
}];

fn current(it: &mut Interp, args: Vec<Value>) -> Result<Value, RuntimeError> {
    arity("current", &args, 0, 0)?;
    Ok(Value::Handle(Handle::Thread(ThreadHandle::for_record(
        &it.thread, &it.ctx,
    ))))
}

fn not_yet(what: &str, span: Span) -> Box<RuntimeError> {
    Box::new(RuntimeError::new(kind::ERROR, format!("{} is not available in this build yet", what)).at(span))
}

impl Interp {
    /// `timeout EXPR` as an absolute deadline.
    fn deadline(&mut self, timeout: Option<&Expr>, frame: Frame) -> R<Option<Instant>> {
        let Some(e) = timeout else { return Ok(None) };
        let v = self.eval(e, frame)?;
        let d = expect_seconds("a timeout", &v).map_err(|err| Box::new(err.at(e.span)))?;
        Ok(Some(crate::runtime::clock::deadline_after(d)))
    }

    pub(super) fn eval_spawn(&mut self, spawn: &Spawn, span: Span, frame: Frame) -> R<Value> {
        let (callee, args, base_name) = match &spawn.body {
            SpawnBody::Call { callee, args } => {
                let f = self.eval(callee, frame)?;
                let args = self.eval_args(args, frame)?;
                let name = function_name(&f);
                (f, args, name)
            }
            SpawnBody::Block(decl) => (self.make_closure(decl, frame), Vec::new(), "thread".to_string()),
        };
        if !matches!(callee, Value::Func(_) | Value::Builtin(_)) {
            return Err(super::not_callable(&callee, span));
        }
        let name = match &spawn.name {
            Some(e) => self.eval(e, frame)?.to_display(),
            None => self.ctx.next_name(&base_name),
        };
        if spawn.kind == SpawnKind::Process {
            return Err(not_yet("spawn process", span));
        }
        let ctx = self.ctx.clone();
        let body = Box::new(move |record| {
            let mut it = Interp::new(ctx, record);
            it.call_value(&callee, args, span).map_err(|e| *e)
        });
        let handle = threads::spawn(&self.ctx, name, spawn.daemon, body).map_err(|e| Box::new(e.at(span)))?;
        Ok(Value::Handle(Handle::Thread(handle)))
    }

    pub(super) fn eval_join(
        &mut self,
        target: &Expr,
        timeout: Option<&Expr>,
        span: Span,
        frame: Frame,
    ) -> R<Value> {
        let t = self.eval(target, frame)?;
        let deadline = self.deadline(timeout, frame)?;
        match &t {
            Value::Handle(Handle::Thread(h)) => h
                .join(&self.ctx, &self.thread, deadline, span)
                .map_err(|e| Box::new(e.at(span))),
            other => Err(Box::new(
                RuntimeError::new(
                    kind::TYPE,
                    format!("cannot join {}", super::describe(other)),
                )
                .at(target.span)
                .with_help("join takes a thread, a process or a future"),
            )),
        }
    }

    pub(super) fn eval_get(&mut self, _t: &Expr, _timeout: Option<&Expr>, span: Span, _f: Frame) -> R<Value> {
        Err(not_yet("get", span))
    }

    pub(super) fn eval_wait(&mut self, _t: &Expr, _timeout: Option<&Expr>, span: Span, _f: Frame) -> R<Value> {
        Err(not_yet("wait", span))
    }

    pub(super) fn eval_submit(&mut self, _p: &Expr, _c: &Expr, _a: &[Expr], span: Span, _f: Frame) -> R<Value> {
        Err(not_yet("submit", span))
    }

    pub(super) fn exec_lock(&mut self, target: &Expr, _body: &Block, _frame: Frame) -> R<Flow> {
        Err(not_yet("lock", target.span))
    }

    pub(super) fn exec_put(&mut self, _t: &Expr, _v: &Expr, _timeout: Option<&Expr>, span: Span, _f: Frame) -> R<()> {
        Err(not_yet("put", span))
    }

    pub(super) fn exec_select(&mut self, _cases: &[SelectCase], span: Span, _f: Frame) -> R<Flow> {
        Err(not_yet("select", span))
    }

    pub(super) fn handle_field(&mut self, h: &Handle, name: &str) -> Option<Value> {
        match h {
            Handle::Thread(t) => match name {
                "name" => Some(Value::str(&t.record.name)),
                "ident" => Some(Value::Int(t.record.id as i64)),
                "native_id" => Some(Value::Int(t.record.os_id() as i64)),
                "daemon" => Some(Value::Bool(t.record.daemon)),
                _ => None,
            },
        }
    }

    pub(super) fn handle_method(&mut self, h: &Handle, name: &str, args: Vec<Value>, span: Span) -> R<Value> {
        let result = match h {
            Handle::Thread(t) => match name {
                "alive" | "is_alive" => arity(name, &args, 0, 0).map(|_| Value::Bool(t.record.alive())),
                "terminate" | "kill" => Err(RuntimeError::new(
                    kind::TYPE,
                    format!("thread {} cannot be terminated: only processes can", t.record.name),
                )
                .with_help("ask the thread to stop with an event it checks, or use `spawn process`")),
                _ => Err(super::methods::no_method(&Value::Handle(h.clone()), name)),
            },
        };
        result.map_err(|e| Box::new(e.at(span)))
    }
}

fn function_name(f: &Value) -> String {
    match f {
        Value::Func(c) => c.decl.name.as_ref().map_or("thread".to_string(), |n| n.name.to_string()),
        Value::Builtin(b) => b.name.to_string(),
        _ => "thread".to_string(),
    }
}
