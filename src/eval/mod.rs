//! The evaluator: one `Interp` per OS thread, running the shared, resolved
//! AST compiled to closures (`compile/`, the one evaluator).
//!
//! Frames live on one value stack per thread: a call pushes its arguments,
//! grows the stack to the function's slot count and truncates it on the way
//! out. Operators are in `ops.rs`; builtins, methods, handle fields and
//! methods, and constructors of shared objects in their own files; the
//! blocking operations (`join`, `get`, `lock`, `select`, ...) and spawning
//! in `blocking.rs`.

mod blocking;
pub mod builtins;
pub(crate) mod compile;
mod files;
pub mod format;
mod handles;
mod methods;
mod native_stack;
mod objects;
mod process_pool;
mod seq;

// Values, operators and globals live in the runtime, which both use.
pub use crate::runtime::value;
pub use crate::runtime::value::{describe, globals, ops, Function};

use crate::ast::{FnDecl, Program};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::engine::Op;
use crate::runtime::footprint::Shared;
use crate::runtime::{Context, ThreadRef};
use crate::span::Span;
use globals::{GlobalCell, GlobalWrite};
use std::sync::Arc;
use value::{Cell, Closure, Value};

pub type R<T> = Result<T, Box<RuntimeError>>;

/// Builtins that need the runtime (`current()`, constructors of shared objects).
pub fn concurrency_builtins() -> impl Iterator<Item = &'static builtins::Builtin> {
    objects::BUILTINS.iter()
}

/// The builtin called `name`, however the program has rebound that name
/// (a builtin sent by another process arrives by name).
pub fn builtin_named(name: &str) -> Option<&'static builtins::Builtin> {
    all_builtins().find(|b| b.name == name)
}

/// Every builtin, the internal ones (the process pool's worker) too.
pub fn all_builtins() -> impl Iterator<Item = &'static builtins::Builtin> {
    builtins::CORE
        .iter()
        .chain(objects::BUILTINS.iter())
        .chain(std::iter::once(&process_pool::POOL_WORKER))
}

/// Deeper calls than this raise `RecursionError` instead of overflowing the
/// OS stack (every interpreter thread is started with a stack sized for it).
/// So does a call when the native stack is nearly used up, which calls made
/// inside deeply nested expressions reach sooner (see `native_stack`).
pub const MAX_CALL_DEPTH: u32 = 2_000;

/// The running function's view of its frame.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    base: usize,
    /// A thin reference (not `&[Cell]`), so a `Frame` is two words and is
    /// passed in registers.
    #[allow(clippy::borrowed_box)]
    upvals: &'a Box<[Cell]>,
}

pub struct Interp {
    pub ctx: Arc<Context>,
    /// The runtime record of the OS thread this interpreter runs on.
    pub thread: ThreadRef,
    stack: Vec<Value>,
    depth: u32,
    /// No call starts below this native stack address (set whenever this
    /// thread starts evaluating at depth 0).
    stack_floor: usize,
    callees: compile::CalleeCache,
    pending: compile::Pending,
    /// Under the controlled engine: reads and writes of globals and loop
    /// back-edges are scheduling points (on the OS engine they cost one
    /// predictable branch on this flag).
    controlled: bool,
    /// Back-edges since this thread's last back-edge point.
    edges: std::cell::Cell<u32>,
    /// Where the builtin being called was called: a builtin that calls a
    /// function (`map`, `sorted` with a key) names it in the call chain.
    builtin_site: Span,
}

/// Under control, a loop gives the scheduler a point every this many
/// back-edges, so a loop with no other visible operation (a computation,
/// or `while not done { }` on a local) cannot hold the turn for ever.
const EDGES_PER_POINT: u32 = 32;

impl Interp {
    pub fn new(ctx: Arc<Context>, thread: ThreadRef) -> Interp {
        let controlled = ctx.engine().scheduler().is_some();
        Interp {
            ctx,
            thread,
            stack: Vec::with_capacity(256),
            depth: 0,
            stack_floor: native_stack::floor(),
            callees: compile::CalleeCache::default(),
            pending: compile::Pending::default(),
            controlled,
            edges: std::cell::Cell::new(0),
            builtin_site: Span::default(),
        }
    }

    /// Run a resolved program (a file, `-c` code or a REPL entry). Gives the
    /// value of a final expression statement, for the REPL to echo.
    pub fn run_program(&mut self, program: &Program) -> R<Option<Value>> {
        // Under control each entry runs on a fiber of its own.
        if self.depth == 0 {
            self.stack_floor = native_stack::floor();
        }
        let base = self.stack.len();
        self.stack
            .resize(base + program.nslots as usize, Value::Nil);
        let no_upvals = Box::default();
        let frame = Frame {
            base,
            upvals: &no_upvals,
        };
        let code = compile::Compiler { ctx: &self.ctx }.program(program);
        let result = code.run(self, frame);
        self.stack.truncate(base);
        result
    }

    /// Call any callable value with already evaluated arguments.
    pub fn call_value(&mut self, callee: &Value, args: Vec<Value>, span: Span) -> R<Value> {
        if self.depth == 0 {
            // A thread's body, a pool job or a callback: this may be
            // another stack than the one the floor was measured on.
            self.stack_floor = native_stack::floor();
        }
        match callee {
            Value::Func(closure) => {
                let base = self.stack.len();
                self.stack.extend(args);
                self.call_closure(closure, base, span)
            }
            Value::Builtin(b) => {
                self.builtin_site = span;
                (b.call)(value::function::Erased::new(self), args).map_err(|e| Box::new(e.at(span)))
            }
            other => Err(not_callable(other, span)),
        }
    }

    /// Run a closure whose arguments are already on the stack from `base`.
    #[inline(always)]
    fn call_closure(&mut self, closure: &Closure, base: usize, span: Span) -> R<Value> {
        self.call_function(&closure.func, &closure.upvals, base, span)
    }

    /// Run `func` over `upvals`, its arguments on the stack from `base`.
    /// (`&Box`: the frame keeps a thin reference, see `Frame`.)
    #[allow(clippy::borrowed_box)]
    #[inline(always)]
    fn call_function(
        &mut self,
        func: &Function,
        upvals: &Box<[Cell]>,
        base: usize,
        span: Span,
    ) -> R<Value> {
        let decl = &*func.decl;
        let given = self.stack.len() - base;
        if given != decl.params.len()
            || self.depth >= MAX_CALL_DEPTH
            || native_stack::stack_pointer() < self.stack_floor
        {
            self.stack.truncate(base);
            return Err(call_refused(decl, given, self.depth, span));
        }
        let Some(code) = compile::code_of(func, &self.ctx) else {
            return Err(self.no_code(base));
        };
        if code.needs_setup() {
            self.set_up_frame(code, base);
        }
        self.depth += 1;
        let frame = Frame { base, upvals };
        let result = code.run(self, frame);
        self.depth -= 1;
        compile::pop_frame(&mut self.stack, base);
        result.map_err(|e| add_call_note(e, decl, span))
    }

    #[cold]
    fn no_code(&mut self, base: usize) -> Box<RuntimeError> {
        self.stack.truncate(base);
        Box::new(RuntimeError::new(
            kind::ERROR,
            "internal error: a function's body was compiled as something else",
        ))
    }

    /// The slots of a frame past its arguments, and the cells of captured
    /// parameters (out of line: most calls need neither).
    #[inline(never)]
    fn set_up_frame(&mut self, code: &compile::FnCode, base: usize) {
        let locals = code.locals();
        self.stack.reserve(locals);
        for _ in 0..locals {
            self.stack.push(Value::Nil);
        }
        for &slot in code.captured_params() {
            let v = std::mem::take(&mut self.stack[base + slot]);
            self.stack[base + slot] = Value::Cell(Arc::new(Shared::new(v)));
        }
    }

    /// Build a closure value over `func`, capturing cells from the frame.
    fn make_closure(&mut self, func: &Arc<Function>, frame: Frame) -> Value {
        let upvals = func
            .decl
            .upvals
            .iter()
            .map(|source| match *source {
                crate::ast::UpvalSource::Local(slot) => self.cell_at(frame.base + slot as usize),
                crate::ast::UpvalSource::Upval(i) => frame.upvals[i as usize].clone(),
            })
            .collect();
        Value::Func(Arc::new(Closure {
            func: func.clone(),
            upvals,
        }))
    }

    /// The shared cell of a captured slot (made on first need, e.g. when a
    /// closure is created before the variable's `let` ran).
    fn cell_at(&mut self, index: usize) -> Cell {
        match &self.stack[index] {
            Value::Cell(c) => c.clone(),
            other => {
                let cell = Arc::new(Shared::new(other.clone()));
                self.stack[index] = Value::Cell(cell.clone());
                cell
            }
        }
    }

    /// Every read of a global goes through here; `read` says what is read
    /// (its value, its int, its version).
    #[inline(always)]
    fn read_global<T>(
        &self,
        cell: &GlobalCell,
        at: Span,
        read: impl FnOnce(&GlobalCell) -> T,
    ) -> T {
        if self.controlled {
            self.point_at(Op::Read, cell.object_id(), Some(at));
        }
        read(cell)
    }

    /// Every write of a global goes through here. `false`: an assignment
    /// to a global not defined yet (nothing was written).
    #[inline(always)]
    fn write_global(
        &self,
        cell: &GlobalCell,
        at: Option<Span>,
        v: Value,
        how: GlobalWrite,
    ) -> bool {
        if self.controlled {
            self.point_at(Op::Write, cell.object_id(), at);
        }
        cell.write_as(v, how)
    }

    /// Every loop back-edge (`while`, `for` over a range or over items)
    /// goes through here.
    #[inline(always)]
    fn back_edge(&self) -> R<()> {
        if self.controlled {
            self.controlled_back_edge();
        }
        self.check_interrupt()
    }

    #[inline(never)]
    fn controlled_back_edge(&self) {
        let n = self.edges.get() + 1;
        if n < EDGES_PER_POINT {
            self.edges.set(n);
            return;
        }
        self.edges.set(0);
        self.point(Op::BackEdge, 0);
    }

    /// A scheduling point (under control only: the callers check).
    #[cold]
    #[inline(never)]
    fn point(&self, op: Op, object: u64) {
        self.point_at(op, object, None)
    }

    /// A scheduling point that says where in the script it is.
    #[cold]
    #[inline(never)]
    fn point_at(&self, op: Op, object: u64, at: Option<Span>) {
        self.ctx.engine().point_on(&self.thread, op, object, at);
    }

    /// Check whether this thread was asked to stop (Ctrl-C in the REPL, or
    /// the program is ending after a deadlock).
    #[inline]
    fn check_interrupt(&self) -> R<()> {
        match self.thread.take_interrupt() {
            Some(err) => Err(Box::new(err)),
            None => Ok(()),
        }
    }
}

/// A read of a name that is not defined (yet).
#[cold]
pub(super) fn name_error(it: &Interp, name: &str, span: Span) -> Box<RuntimeError> {
    if let Some(why) = it.ctx.globals.left_out(name) {
        return Box::new(
            RuntimeError::new(
                kind::TYPE,
                format!("`{}` is not in this process: {}", name, why),
            )
            .at(span)
            .with_help(
                "processes share queues, locks, events, conditions, barriers and pipes; \
                 pass data or one of those instead",
            ),
        );
    }
    let attrs = attributes_after(it, span);
    let attrs: Vec<&str> = attrs.iter().map(String::as_str).collect();
    let help = crate::runtime::habits::name_help(name, &attrs).unwrap_or_else(|| {
        format!(
            "declare it with `let {} = ...` or define `fn {}(...)` before this line runs",
            name, name
        )
    });
    Box::new(
        RuntimeError::new(kind::NAME, format!("`{}` is not defined", name))
            .at(span)
            .with_help(help),
    )
}

/// `Lock` and `ThreadPoolExecutor` of `threading.Lock` and
/// `concurrent.futures.ThreadPoolExecutor`: a module the script still names
/// is told by what it was to give.
fn attributes_after(it: &Interp, span: Span) -> Vec<String> {
    let Some(source) = it.ctx.sources.get(span.src) else {
        return Vec::new();
    };
    let mut rest = source.text.get(span.end as usize..).unwrap_or_default();
    let mut attrs = Vec::new();
    while let Some(after_dot) = rest.strip_prefix('.') {
        let len = after_dot
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after_dot.len());
        if len == 0 {
            break;
        }
        attrs.push(after_dot[..len].to_string());
        rest = &after_dot[len..];
    }
    attrs
}

/// An assignment to a global no `let` has defined yet: `total = 0`, as
/// Python writes a first assignment.
#[cold]
pub(super) fn not_declared(
    it: &Interp,
    name: &str,
    target: Span,
    value: Span,
) -> Box<RuntimeError> {
    let value = it.ctx.source_text(value);
    Box::new(
        RuntimeError::new(
            kind::NAME,
            format!("`{}` is not defined, so it cannot be assigned", name),
        )
        .at(target)
        .with_help(crate::runtime::habits::undeclared_help(name, &value)),
    )
}

fn not_callable(v: &Value, span: Span) -> Box<RuntimeError> {
    Box::new(RuntimeError::new(kind::TYPE, format!("{} is not callable", describe(v))).at(span))
}

/// Why a call cannot start: the wrong number of arguments, too many
/// nested calls, or too little native stack left.
#[cold]
fn call_refused(decl: &FnDecl, given: usize, depth: u32, span: Span) -> Box<RuntimeError> {
    if given != decl.params.len() {
        return arity_error(decl, given, span);
    }
    if depth < MAX_CALL_DEPTH {
        return Box::new(
            RuntimeError::new(
                "RecursionError",
                format!("the native stack is nearly used up, {} calls deep", depth),
            )
            .at(span)
            .with_help(
                "calls made inside deeply nested expressions use more of the stack; \
                 is a recursive function missing its base case?",
            ),
        );
    }
    Box::new(
        RuntimeError::new(
            "RecursionError",
            format!("more than {} nested calls", MAX_CALL_DEPTH),
        )
        .at(span)
        .with_help("is a recursive function missing its base case?"),
    )
}

fn arity_error(decl: &FnDecl, given: usize, span: Span) -> Box<RuntimeError> {
    let want = decl.params.len();
    Box::new(
        RuntimeError::new(
            kind::TYPE,
            format!(
                "{}() takes {} argument{} but {} {} given",
                decl.display_name(),
                want,
                if want == 1 { "" } else { "s" },
                given,
                if given == 1 { "was" } else { "were" }
            ),
        )
        .at(span),
    )
}

/// Each function an error leaves adds one step to the call chain.
fn add_call_note(mut e: Box<RuntimeError>, decl: &FnDecl, call: Span) -> Box<RuntimeError> {
    if e.notes.len() < 12 {
        e.notes.push(crate::diagnostics::Note {
            message: format!("in {}(), called from here", decl.display_name()),
            span: Some(call),
        });
    }
    e
}
