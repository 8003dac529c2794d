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
mod fused;
mod loops;
mod stmt;

use super::globals::GlobalRef;
use super::value::Value;
use super::{Frame, Interp, R};
use crate::ast::{self, FnDecl, GlobalId, Program, StmtKind};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::Context;
use std::sync::{Arc, OnceLock};

pub(super) use calls::CalleeCache;

type ExprCode = Box<dyn Fn(&mut Interp, Frame) -> R<Value> + Send + Sync>;
type StmtCode = Box<dyn Fn(&mut Interp, Frame) -> Ctl + Send + Sync>;

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
            stmt::forget_or_drop(v);
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
    /// Parameter slots that closures capture: they start in a shared cell.
    captured_params: Box<[usize]>,
}

impl FnCode {
    #[inline]
    pub(super) fn captured_params(&self) -> &[usize] {
        &self.captured_params
    }

    #[inline]
    pub(super) fn run(&self, it: &mut Interp, frame: Frame) -> Ctl {
        self.body.run(it, frame)
    }
}

/// A function object: a declaration and its body, compiled on the first
/// call. Closures share it; `runtime::FnIndex` finds it by where it is
/// declared (a closure sent by another process arrives that way).
pub struct Function {
    pub decl: Arc<FnDecl>,
    code: OnceLock<FnCode>,
}

impl Function {
    pub fn new(decl: Arc<FnDecl>) -> Function {
        Function {
            decl,
            code: OnceLock::new(),
        }
    }

    #[inline]
    pub(super) fn code(&self, ctx: &Context) -> &FnCode {
        self.code
            .get_or_init(|| Compiler { ctx }.function(&self.decl))
    }
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<fn {}>", self.decl.display_name())
    }
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
        FnCode {
            body: self.block(&decl.body),
            captured_params,
        }
    }

    pub(super) fn program(&self, program: &Program) -> ProgramCode {
        let stmts = program.stmts.iter().map(|s| match &s.node {
            StmtKind::Expr(e) => TopStmt::Expr(self.expr(e)),
            _ => TopStmt::Stmt(self.stmt(s)),
        });
        ProgramCode(stmts.collect())
    }

    /// The cell of a global; `None` only for an id from another session.
    fn global(&self, id: GlobalId) -> Option<GlobalRef> {
        self.ctx.globals.cell(id)
    }

    fn function_object(&self, decl: &Arc<FnDecl>) -> Arc<Function> {
        self.ctx.functions.of(decl)
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
