//! Closure compilation: the one evaluator. Before a function first runs,
//! its resolved body is turned into a tree of Rust closures, one per node,
//! each specialised for what the node is (a local read, `n < 2`,
//! `total = total + i`, a call of a global function, `for i in range(..)`).
//! Running a node is one indirect call: no `match` on the node kind, and the
//! int fast paths neither allocate nor lock.
//!
//! Every node kind is compiled here, the rare ones too (spawn, select,
//! lock, ...): those evaluate their operands and hand the values to one
//! runtime operation (`eval/blocking.rs`). Operands are evaluated left to
//! right everywhere.

mod assign;
mod calls;
mod concurrency;
mod expr;
mod fstring;
mod fused;
mod loops;
mod stmt;
mod store;

use super::globals::GlobalRef;
use super::value::{Function, Value};
use super::{Frame, Interp, R};
use crate::ast::{self, FnDecl, GlobalId, Program, StmtKind};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::Context;
use std::sync::Arc;

pub(super) use calls::CalleeCache;

type ExprCode = Box<dyn Fn(&mut Interp, Frame) -> R<Value> + Send + Sync>;
type StmtCode = Box<dyn Fn(&mut Interp, Frame) -> Ctl + Send + Sync>;
/// A node that gives a `T`.
type Code<T> = Box<dyn Fn(&mut Interp, Frame) -> R<T> + Send + Sync>;
/// A condition: compiled to give a bool straight away (`if n < 2`).
type CondCode = Code<bool>;

/// How a compiled statement ended. One byte, so it comes back in a register
/// (a `Result<Flow, _>` goes through memory); what does not fit waits in
/// `Interp::pending`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctl {
    Normal,
    Break,
    Continue,
    /// The value is in `Pending::ret`.
    Return,
    /// The error is in `Pending::err`.
    Error,
}

/// What a `Ctl` refers to: a `return`'s value or the error being raised.
#[derive(Default)]
pub(super) struct Pending {
    ret: Value,
    err: Option<Box<RuntimeError>>,
}

impl Interp {
    #[cold]
    fn fail(&mut self, e: Box<RuntimeError>) -> Ctl {
        self.pending.err = Some(e);
        Ctl::Error
    }

    fn take_error(&mut self) -> Box<RuntimeError> {
        self.pending.err.take().unwrap_or_else(|| {
            Box::new(RuntimeError::new(
                kind::ERROR,
                "internal error: an error was lost",
            ))
        })
    }

    /// The result of a function body that ended with `ctl`.
    #[inline]
    pub(super) fn finish_call(&mut self, ctl: Ctl) -> R<Value> {
        match ctl {
            Ctl::Return => Ok(std::mem::take(&mut self.pending.ret)),
            Ctl::Error => Err(self.take_error()),
            Ctl::Normal | Ctl::Break | Ctl::Continue => Ok(Value::Nil),
        }
    }
}

/// `expr?` for statement closures: an error becomes `Ctl::Error`.
macro_rules! tri {
    ($it:ident, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => return $it.fail(err),
        }
    };
}
use tri;

/// Drop a frame's slots. Most hold ints, which need no drop call.
#[inline]
pub(super) fn pop_frame(stack: &mut Vec<Value>, base: usize) {
    while stack.len() > base {
        if let Some(v) = stack.pop() {
            store::forget_or_drop(v);
        }
    }
}

/// A compiled block: its statements in order.
pub(super) struct Block(Box<[StmtCode]>);

impl Block {
    #[inline]
    fn run(&self, it: &mut Interp, frame: Frame) -> Ctl {
        for stmt in self.0.iter() {
            match stmt(it, frame) {
                Ctl::Normal => {}
                ctl => return ctl,
            }
        }
        Ctl::Normal
    }
}

/// A function body ready to run.
pub struct FnCode {
    body: Block,
    /// The body's last statements as one expression (see `is_tail`): its
    /// value is the call's, without a trip through `Pending::ret`.
    tail: Option<ExprCode>,
    /// Parameter slots that closures capture: they start in a shared cell.
    captured_params: Box<[usize]>,
    /// Slots past the parameters.
    locals: usize,
}

impl FnCode {
    #[inline]
    pub(super) fn captured_params(&self) -> &[usize] {
        &self.captured_params
    }

    #[inline]
    pub(super) fn locals(&self) -> usize {
        self.locals
    }

    /// Whether a call must do more than push the arguments.
    #[inline(always)]
    pub(super) fn needs_setup(&self) -> bool {
        self.locals != 0 || !self.captured_params.is_empty()
    }

    /// The call's result.
    #[inline]
    pub(super) fn run(&self, it: &mut Interp, frame: Frame) -> R<Value> {
        match self.body.run(it, frame) {
            Ctl::Normal => match &self.tail {
                Some(value) => value(it, frame),
                None => Ok(Value::Nil),
            },
            ctl => it.finish_call(ctl),
        }
    }
}

/// The compiled body of `func`, compiled on its first call.
#[inline(always)]
pub(super) fn code_of<'f>(func: &'f Function, ctx: &Context) -> Option<&'f FnCode> {
    func.code(|| Compiler { ctx }.function(&func.decl))
}

/// Turns resolved syntax into closures. It reads the session once per node,
/// at compile time: a global's id becomes its cell, a declaration its
/// function object.
pub(super) struct Compiler<'c> {
    pub(super) ctx: &'c Context,
}

impl Compiler<'_> {
    pub(super) fn block(&self, block: &ast::Block) -> Block {
        Block(block.stmts.iter().map(|s| self.stmt(s)).collect())
    }

    fn function(&self, decl: &FnDecl) -> FnCode {
        let captured_params = decl
            .params
            .iter()
            .enumerate()
            .filter(|(_, p)| p.captured)
            .map(|(i, _)| i)
            .collect();
        let stmts = &decl.body.stmts;
        let split = (0..stmts.len())
            .find(|&i| is_tail(&stmts[i..]))
            .unwrap_or(stmts.len());
        let (body, tail) = (&stmts[..split], self.tail(&stmts[split..]));
        FnCode {
            body: Block(body.iter().map(|s| self.stmt(s)).collect()),
            tail,
            captured_params,
            locals: (decl.nslots as usize).saturating_sub(decl.params.len()),
        }
    }

    pub(super) fn program(&self, program: &Program) -> ProgramCode {
        let stmts = program.stmts.iter().map(|s| match &s.node {
            StmtKind::Expr(e) => TopStmt::Expr(self.expr(e)),
            _ => TopStmt::Stmt(self.stmt(s)),
        });
        ProgramCode(stmts.collect())
    }

    /// The value of statements that `is_tail` accepts: `return e` is `e`,
    /// and `if c { return a }; rest` is `c ? a : rest`.
    fn tail(&self, stmts: &[ast::Stmt]) -> Option<ExprCode> {
        match stmts.split_first()? {
            (first, []) => returned(first).map(|e| self.expr(e)),
            (first, rest) => {
                let (test, value) = guard(first)?;
                let otherwise = self.tail(rest)?;
                Some(self.guard(test, value, otherwise))
            }
        }
    }

    /// The cell of a global; `None` only for an id from another session.
    fn global(&self, id: GlobalId) -> Option<GlobalRef> {
        self.ctx.globals.cell(id)
    }

    fn function_object(&self, decl: &Arc<FnDecl>) -> Arc<Function> {
        self.ctx.functions.of(decl)
    }
}

/// Whether a function body's last statements make one value: guards
/// `if c { return a }` and a final `return e`. Such a tail runs as one
/// expression (the base case of a recursion and the recursive case are
/// then a conditional, with no statement, `Ctl` or `Pending` on the way
/// out).
fn is_tail(stmts: &[ast::Stmt]) -> bool {
    match stmts.split_last() {
        Some((last, guards)) => {
            returned(last).is_some() && guards.iter().all(|s| guard(s).is_some())
        }
        None => false,
    }
}

/// `e` of `return e`.
fn returned(s: &ast::Stmt) -> Option<&ast::Expr> {
    match &s.node {
        StmtKind::Return(Some(e)) => Some(e),
        _ => None,
    }
}

/// `c` and `a` of `if c { return a }` (no other branch).
fn guard(s: &ast::Stmt) -> Option<(&ast::Expr, &ast::Expr)> {
    match &s.node {
        StmtKind::If {
            branches,
            otherwise: None,
        } => match &branches[..] {
            [(test, body)] => match &body.stmts[..] {
                [only] => returned(only).map(|value| (test, value)),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A compiled program: a top-level expression statement gives its value
/// (the REPL echoes the last one).
pub(super) struct ProgramCode(Box<[TopStmt]>);

enum TopStmt {
    Expr(ExprCode),
    Stmt(StmtCode),
}

impl ProgramCode {
    pub(super) fn run(&self, it: &mut Interp, frame: Frame) -> R<Option<Value>> {
        let mut last = None;
        for stmt in self.0.iter() {
            last = None;
            match stmt {
                TopStmt::Expr(e) => last = Some(e(it, frame)?),
                TopStmt::Stmt(s) => {
                    if s(it, frame) == Ctl::Error {
                        return Err(it.take_error());
                    }
                }
            }
        }
        Ok(last)
    }
}
