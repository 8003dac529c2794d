//! Statements. `exec` dispatches to one small function per statement kind.

use super::value::{Key, Value};
use super::{describe, Flow, Frame, Interp, R};
use crate::ast::*;
use crate::diagnostics::{kind, RuntimeError};
use parking_lot::Mutex;
use std::sync::Arc;

impl Interp {
    pub(super) fn exec_body(&mut self, stmts: &[Stmt], frame: Frame) -> R<Flow> {
        for stmt in stmts {
            match self.exec(stmt, frame)? {
                Flow::Normal => {}
                flow => return Ok(flow),
            }
        }
        Ok(Flow::Normal)
    }

    /// Hot statement kinds inline, the rest out of line (see `eval`).
    #[inline]
    pub(super) fn exec(&mut self, stmt: &Stmt, frame: Frame) -> R<Flow> {
        match &stmt.node {
            StmtKind::Expr(e) => {
                self.eval(e, frame)?;
                Ok(Flow::Normal)
            }
            StmtKind::Assign {
                target:
                    Expr {
                        node: ExprKind::Var(var),
                        span,
                    },
                op: None,
                value,
            } => {
                let v = self.eval(value, frame)?;
                self.write_var(var, v, *span, frame)?;
                Ok(Flow::Normal)
            }
            StmtKind::Return(Some(e)) => Ok(Flow::Return(self.eval(e, frame)?)),
            StmtKind::If {
                branches,
                otherwise,
            } => self.exec_if(branches, otherwise.as_ref(), frame),
            _ => self.exec_cold(stmt, frame),
        }
    }

    #[inline(never)]
    fn exec_cold(&mut self, stmt: &Stmt, frame: Frame) -> R<Flow> {
        match &stmt.node {
            // Handled by `exec` itself; never sent here.
            StmtKind::Expr(_) | StmtKind::If { .. } => self.exec(stmt, frame),
            StmtKind::Let { target, value } => {
                let v = self.eval(value, frame)?;
                self.bind(target, v, frame)?;
                Ok(Flow::Normal)
            }
            StmtKind::Assign { target, op, value } => {
                self.exec_assign(target, *op, value, frame)?;
                Ok(Flow::Normal)
            }
            StmtKind::While { cond, body } => self.exec_while(cond, body, frame),
            StmtKind::For { target, iter, body } => self.exec_for(target, iter, body, frame),
            StmtKind::Return(value) => {
                let v = match value {
                    Some(e) => self.eval(e, frame)?,
                    None => Value::Nil,
                };
                Ok(Flow::Return(v))
            }
            StmtKind::Break => Ok(Flow::Break),
            StmtKind::Continue => Ok(Flow::Continue),
            StmtKind::Fn { decl, func } => {
                self.exec_fn(decl, func, frame);
                Ok(Flow::Normal)
            }
            StmtKind::Try {
                body,
                name,
                handler,
            } => self.exec_try(body, name.as_ref(), handler, frame),
            StmtKind::Raise(e) => Err(self.exec_raise(e, frame)),
            StmtKind::Assert { cond, message } => {
                self.exec_assert(cond, message.as_ref(), stmt, frame)
            }
            StmtKind::Lock { target, body } => self.exec_lock(target, body, frame),
            StmtKind::Put {
                target,
                value,
                timeout,
            } => {
                self.exec_put(target, value, timeout.as_ref(), stmt.span, frame)?;
                Ok(Flow::Normal)
            }
            StmtKind::Select { cases } => self.exec_select(cases, stmt.span, frame),
        }
    }

    /// Store into a declaration: a global cell, a plain slot, or (for
    /// captured locals) a fresh shared cell, so each loop iteration's closures
    /// see their own variable.
    #[inline]
    pub(super) fn declare(&mut self, decl: &Decl, v: Value, frame: Frame) {
        match &decl.res {
            Res::Global(cell) => cell.set(v),
            Res::Local(slot) => {
                let v = if decl.captured {
                    Value::Cell(Arc::new(Mutex::new(v)))
                } else {
                    v
                };
                self.stack[frame.base + *slot as usize] = v;
            }
            Res::Upval(_) | Res::Unresolved => {}
        }
    }

    #[inline]
    pub(super) fn bind(&mut self, pattern: &Pattern, v: Value, frame: Frame) -> R<()> {
        match pattern {
            Pattern::Name(decl) => {
                self.declare(decl, v, frame);
                Ok(())
            }
            Pattern::List(items, span) => {
                let values = match &v {
                    Value::List(l) => l.lock().clone(),
                    other => {
                        return Err(Box::new(
                            RuntimeError::new(
                                kind::TYPE,
                                format!(
                                    "cannot destructure {} into a list pattern",
                                    describe(other)
                                ),
                            )
                            .at(*span),
                        ))
                    }
                };
                if values.len() != items.len() {
                    return Err(Box::new(
                        RuntimeError::new(
                            kind::VALUE,
                            format!(
                                "expected {} values to unpack, got {}",
                                items.len(),
                                values.len()
                            ),
                        )
                        .at(*span),
                    ));
                }
                for (p, v) in items.iter().zip(values) {
                    self.bind(p, v, frame)?;
                }
                Ok(())
            }
        }
    }

    fn exec_assign(
        &mut self,
        target: &Expr,
        op: Option<BinOp>,
        value: &Expr,
        frame: Frame,
    ) -> R<()> {
        match &target.node {
            ExprKind::Var(var) => {
                let mut v = self.eval(value, frame)?;
                if let Some(op) = op {
                    let old = self.read_var(var, target.span, frame)?;
                    v = self.binary_values(op, old, v, target.span.to(value.span))?;
                }
                self.write_var(var, v, target.span, frame)
            }
            ExprKind::Index {
                target: container,
                index,
            } => {
                let container = self.eval(container, frame)?;
                let index = self.eval(index, frame)?;
                let mut v = self.eval(value, frame)?;
                if let Some(op) = op {
                    let old =
                        super::ops::index(&container, &index).map_err(|e| e.at(target.span))?;
                    v = self.binary_values(op, old, v, target.span.to(value.span))?;
                }
                store_index(&container, index, v).map_err(|e| Box::new(e.at(target.span)))
            }
            _ => Err(Box::new(
                RuntimeError::new(kind::TYPE, "cannot assign to this expression").at(target.span),
            )),
        }
    }

    #[inline]
    pub(super) fn write_var(
        &mut self,
        var: &VarRef,
        v: Value,
        span: crate::span::Span,
        frame: Frame,
    ) -> R<()> {
        match &var.res {
            Res::Local(slot) => {
                let place = &mut self.stack[frame.base + *slot as usize];
                match place {
                    Value::Cell(c) => *c.lock() = v,
                    _ => *place = v,
                }
            }
            Res::Upval(i) => *frame.upvals[*i as usize].lock() = v,
            Res::Global(cell) => {
                if !cell.assign(v) {
                    return Err(not_declared(&var.name, span));
                }
            }
            Res::Unresolved => {}
        }
        Ok(())
    }

    fn exec_if(
        &mut self,
        branches: &[(Expr, Block)],
        otherwise: Option<&Block>,
        frame: Frame,
    ) -> R<Flow> {
        for (cond, body) in branches {
            if self.eval(cond, frame)?.truthy() {
                return self.exec_body(&body.stmts, frame);
            }
        }
        match otherwise {
            Some(body) => self.exec_body(&body.stmts, frame),
            None => Ok(Flow::Normal),
        }
    }

    fn exec_while(&mut self, cond: &Expr, body: &Block, frame: Frame) -> R<Flow> {
        while self.eval(cond, frame)?.truthy() {
            match self.exec_body(&body.stmts, frame)? {
                Flow::Break => break,
                Flow::Return(v) => return Ok(Flow::Return(v)),
                Flow::Normal | Flow::Continue => {}
            }
            self.check_interrupt()?;
        }
        Ok(Flow::Normal)
    }

    fn exec_for(&mut self, target: &Pattern, iter: &Expr, body: &Block, frame: Frame) -> R<Flow> {
        // `for i in range(..)` is the hot path: count without building the list.
        if let ExprKind::Call { callee, args } = &iter.node {
            let f = self.eval(callee, frame)?;
            if super::builtins::is_range(&f) {
                let args = self.eval_args(args, frame)?;
                let (start, end, step) =
                    super::builtins::range_bounds(&args).map_err(|e| Box::new(e.at(iter.span)))?;
                return self.exec_for_range(target, (start, end, step), body, frame);
            }
            let args = self.eval_args(args, frame)?;
            let iterable = self.call_value(&f, args, iter.span)?;
            return self.exec_for_items(target, &iterable, iter, body, frame);
        }
        let iterable = self.eval(iter, frame)?;
        self.exec_for_items(target, &iterable, iter, body, frame)
    }

    fn exec_for_range(
        &mut self,
        target: &Pattern,
        (start, end, step): (i64, i64, i64),
        body: &Block,
        frame: Frame,
    ) -> R<Flow> {
        let mut i = start;
        while (step > 0 && i < end) || (step < 0 && i > end) {
            self.bind(target, Value::Int(i), frame)?;
            if let Some(flow) = self.loop_step(body, frame)? {
                return Ok(flow);
            }
            i = match i.checked_add(step) {
                Some(next) => next,
                None => break,
            };
        }
        Ok(Flow::Normal)
    }

    fn exec_for_items(
        &mut self,
        target: &Pattern,
        iterable: &Value,
        iter: &Expr,
        body: &Block,
        frame: Frame,
    ) -> R<Flow> {
        let items = iteration_items(iterable).map_err(|e| Box::new(e.at(iter.span)))?;
        for item in items {
            self.bind(target, item, frame)?;
            if let Some(flow) = self.loop_step(body, frame)? {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// One loop iteration; `Some` when the loop must end with that flow.
    #[inline]
    fn loop_step(&mut self, body: &Block, frame: Frame) -> R<Option<Flow>> {
        let flow = self.exec_body(&body.stmts, frame)?;
        self.check_interrupt()?;
        Ok(match flow {
            Flow::Break => Some(Flow::Normal),
            Flow::Return(v) => Some(Flow::Return(v)),
            Flow::Normal | Flow::Continue => None,
        })
    }

    fn exec_fn(&mut self, decl: &Decl, func: &Arc<FnDecl>, frame: Frame) {
        if decl.captured {
            // The cell exists before the closure so a local function can call itself.
            self.declare(decl, Value::Nil, frame);
            let closure = self.make_closure(func, frame);
            let _ = self.write_var(
                &VarRef {
                    name: decl.ident.name.clone(),
                    res: decl.res.clone(),
                },
                closure,
                decl.ident.span,
                frame,
            );
        } else {
            let closure = self.make_closure(func, frame);
            self.declare(decl, closure, frame);
        }
    }

    fn exec_try(
        &mut self,
        body: &Block,
        name: Option<&Decl>,
        handler: &Block,
        frame: Frame,
    ) -> R<Flow> {
        match self.exec_body(&body.stmts, frame) {
            Err(e) if is_catchable(&e) => {
                if let Some(decl) = name {
                    self.declare(decl, Value::Error(Arc::new(*e)), frame);
                }
                self.exec_body(&handler.stmts, frame)
            }
            other => other,
        }
    }

    fn exec_raise(&mut self, e: &Expr, frame: Frame) -> Box<RuntimeError> {
        let v = match self.eval(e, frame) {
            Ok(v) => v,
            Err(err) => return err,
        };
        let err = match v {
            Value::Error(err) => {
                // Re-raising a caught error keeps its kind; the new location wins.
                let mut err = (*err).clone();
                err.span = None;
                err.notes.clear();
                err
            }
            Value::Str(s) => RuntimeError::new(kind::ERROR, s.to_string()),
            other => RuntimeError::new(kind::ERROR, other.to_display()),
        };
        Box::new(err.at(e.span))
    }

    fn exec_assert(
        &mut self,
        cond: &Expr,
        message: Option<&Expr>,
        stmt: &Stmt,
        frame: Frame,
    ) -> R<Flow> {
        if self.eval(cond, frame)?.truthy() {
            return Ok(Flow::Normal);
        }
        let text = match message {
            Some(m) => self.eval(m, frame)?.to_display(),
            None => "assertion failed".to_string(),
        };
        Err(Box::new(
            RuntimeError::new(kind::ASSERTION, text).at(cond.span.to(stmt.span)),
        ))
    }
}

/// Deadlock and interrupts end the program or entry: `catch` does not stop them.
pub(super) fn is_catchable(e: &RuntimeError) -> bool {
    !e.is(kind::DEADLOCK) && !e.is(kind::INTERRUPTED)
}

/// What `for x in v` walks: list items, map keys, string chars.
pub fn iteration_items(v: &Value) -> Result<Vec<Value>, RuntimeError> {
    match v {
        Value::List(l) => Ok(l.lock().clone()),
        Value::Map(m) => Ok(m.lock().keys().map(Key::to_value).collect()),
        Value::Str(s) => Ok(s
            .chars()
            .map(|c| Value::str(c.encode_utf8(&mut [0; 4])))
            .collect()),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("cannot iterate over {}", describe(other)),
        )),
    }
}

fn store_index(container: &Value, index: Value, v: Value) -> Result<(), RuntimeError> {
    match container {
        Value::List(l) => {
            let mut items = l.lock();
            let i = super::ops::list_position(&index, items.len())?;
            items[i] = v;
            Ok(())
        }
        Value::Map(m) => {
            let key = Key::from_value(&index)?;
            m.lock().insert(key, v);
            Ok(())
        }
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("{} does not support item assignment", describe(other)),
        )),
    }
}

/// An assignment to a global no `let` has defined yet.
#[cold]
pub(super) fn not_declared(name: &str, span: crate::span::Span) -> Box<RuntimeError> {
    Box::new(
        RuntimeError::new(kind::NAME, format!("`{}` is not defined", name))
            .at(span)
            .with_help(format!("declare it first: let {} = ...", name)),
    )
}
