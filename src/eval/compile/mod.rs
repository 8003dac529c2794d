//! Closure compilation. Before a function first runs, its resolved body is
//! turned into a tree of Rust closures, one per node, each specialised for
//! what the node is (a local read, `n < 2`, `total = total + i`, a call of a
//! global function, `for i in range(..)`). Running a node is one indirect
//! call: no `match` on the node kind, and the int fast paths neither
//! allocate nor lock.
//!
//! Kinds that are rare in hot code (spawn, select, lock, put, slices, ...)
//! are not compiled: their node keeps a copy of its syntax tree and hands it
//! to the tree-walking evaluator (`expr.rs`, `exec.rs`), which stays the one
//! reference for what each construct means. Compiled nodes build their
//! errors with the same helpers and spans, so reports do not change.

mod calls;
mod expr;
mod fused;
mod stmt;

use super::value::Value;
use super::{Frame, Interp, R};
use crate::ast::{FnDecl, Program, StmtKind};
use crate::diagnostics::{kind, RuntimeError};
use std::sync::OnceLock;

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
struct Block(Box<[StmtCode]>);

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

/// Where a function keeps its compiled body; empty until the first call.
#[derive(Default)]
pub struct CodeSlot(OnceLock<FnCode>);

impl CodeSlot {
    #[inline]
    pub(super) fn get(&self, decl: &FnDecl) -> &FnCode {
        self.0.get_or_init(|| compile_fn(decl))
    }
}

/// A copied declaration (the resolver's `Arc::make_mut`) compiles afresh.
impl Clone for CodeSlot {
    fn clone(&self) -> CodeSlot {
        CodeSlot::default()
    }
}

impl std::fmt::Debug for CodeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.0.get().is_some() {
            "compiled"
        } else {
            "not compiled"
        };
        f.write_str(state)
    }
}

fn compile_fn(decl: &FnDecl) -> FnCode {
    let captured_params = decl
        .params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.captured)
        .map(|(i, _)| i)
        .collect();
    FnCode {
        body: stmt::block(&decl.body.stmts),
        captured_params,
    }
}

/// A compiled program: a top-level expression statement gives its value
/// (the REPL echoes the last one).
pub(super) struct ProgramCode(Box<[TopStmt]>);

enum TopStmt {
    Expr(ExprCode),
    Stmt(StmtCode),
}

pub(super) fn compile_program(program: &Program) -> ProgramCode {
    let stmts = program.stmts.iter().map(|s| match &s.node {
        StmtKind::Expr(e) => TopStmt::Expr(expr::expr(e)),
        _ => TopStmt::Stmt(stmt::stmt(s)),
    });
    ProgramCode(stmts.collect())
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
