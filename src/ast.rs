//! The syntax tree. Plain data built by `parser.rs`; `resolve.rs` then fills in
//! the resolution fields (`Res`, slot counts, upvalues) so the evaluator never
//! looks a variable up by name. It depends on nothing but `span`: what runs
//! (compiled code, global cells) lives in `eval`, keyed by what is here.

use crate::span::{Span, Spanned};
use std::sync::Arc;

pub type Name = Arc<str>;

#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: Name,
    pub span: Span,
}

/// Where a variable lives at run time. The parser writes `Unresolved`;
/// the resolver replaces every one of them.
#[derive(Debug, Clone, Default)]
pub enum Res {
    #[default]
    Unresolved,
    /// A slot in the current function's frame.
    Local(u32),
    /// A captured variable of the running closure (index into its upvalues).
    Upval(u32),
    /// A global variable, shared by every thread of the process: its id in
    /// the session's table of globals.
    Global(GlobalId),
}

/// A global's place in the session's table of globals (`eval::globals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlobalId(pub u32);

/// A use of a variable.
#[derive(Debug, Clone)]
pub struct VarRef {
    pub name: Name,
    pub res: Res,
}

/// A place that a `let`, a parameter, a `for`, `catch` or `fn` binds.
#[derive(Debug, Clone)]
pub struct Decl {
    pub ident: Ident,
    /// `Local` or `Global` once resolved.
    pub res: Res,
    /// A closure refers to this local, so it lives in a shared cell.
    pub captured: bool,
}

impl Decl {
    pub fn new(ident: Ident) -> Decl {
        Decl {
            ident,
            res: Res::Unresolved,
            captured: false,
        }
    }
}

/// `let x = ...` or `let [a, [b, c]] = ...`
#[derive(Debug, Clone)]
pub enum Pattern {
    Name(Decl),
    List(Vec<Pattern>, Span),
}

impl Pattern {
    pub fn span(&self) -> Span {
        match self {
            Pattern::Name(decl) => decl.ident.span,
            Pattern::List(_, span) => *span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

/// Where a closure's captured variable comes from in the enclosing frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpvalSource {
    Local(u32),
    Upval(u32),
}

/// A function: `fn name(a, b) { }`, a lambda `fn(x) { }`, or the body of
/// `spawn { ... }` (no name, no parameters).
#[derive(Debug, Clone)]
pub struct FnDecl {
    pub name: Option<Ident>,
    pub params: Vec<Decl>,
    pub body: Block,
    pub span: Span,
    /// Filled by the resolver: frame size (parameters first) and captures.
    pub nslots: u32,
    pub upvals: Vec<UpvalSource>,
}

impl FnDecl {
    pub fn display_name(&self) -> &str {
        self.name.as_ref().map_or("<fn>", |n| &n.name)
    }
}

/// A whole file, `-c` string or REPL entry. Its direct `let`/`fn` bindings are
/// globals; anything declared in nested blocks lives in the top-level frame.
#[derive(Debug, Clone)]
pub struct Program {
    pub stmts: Vec<Stmt>,
    pub span: Span,
    pub nslots: u32,
    /// Every function declared in it, filled by the resolver: a function
    /// crosses into another process as its source and span.
    pub functions: Vec<Arc<FnDecl>>,
}

pub type Stmt = Spanned<StmtKind>;

#[derive(Debug, Clone)]
pub enum StmtKind {
    Let {
        target: Pattern,
        value: Expr,
    },
    /// `x = v`, `xs[i] = v`, and the sugar `x += v` (op is `Some(Add)`).
    Assign {
        target: Expr,
        op: Option<BinOp>,
        value: Expr,
    },
    Fn {
        decl: Decl,
        func: Arc<FnDecl>,
    },
    If {
        branches: Vec<(Expr, Block)>,
        otherwise: Option<Block>,
    },
    While {
        cond: Expr,
        body: Block,
    },
    For {
        target: Pattern,
        iter: Expr,
        body: Block,
    },
    Break,
    Continue,
    Return(Option<Expr>),
    /// `try { } catch e { } finally { }`: at least one of `handler` and
    /// `finally`; `name` only with a handler.
    Try {
        body: Block,
        name: Option<Decl>,
        handler: Option<Block>,
        finally: Option<Block>,
    },
    Raise(Expr),
    Assert {
        cond: Expr,
        message: Option<Expr>,
    },
    /// `lock m { ... }`
    Lock {
        target: Expr,
        body: Block,
    },
    /// `put q, v [timeout t]`
    Put {
        target: Expr,
        value: Expr,
        timeout: Option<Expr>,
    },
    Select {
        cases: Vec<SelectCase>,
    },
    Expr(Expr),
}

#[derive(Debug, Clone)]
pub struct SelectCase {
    pub kind: SelectKind,
    pub body: Block,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum SelectKind {
    /// `case x = get q { }` or `case get q { }`
    Get { name: Option<Decl>, target: Expr },
    /// `case put q, v { }`
    Put { target: Expr, value: Expr },
    /// `case timeout 1.5 { }`
    Timeout { seconds: Expr },
}

pub type Expr = Spanned<ExprKind>;

#[derive(Debug, Clone)]
pub enum ExprKind {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<String>),
    /// `f"..."`: text and fields, in order.
    FString(Vec<FPiece>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Var(VarRef),
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    /// Includes the short-circuit `and` / `or`.
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
    },
    /// `xs[a:b]`, `xs[a:b:step]`; each bound optional.
    Slice {
        target: Box<Expr>,
        start: Option<Box<Expr>>,
        end: Option<Box<Expr>>,
        step: Option<Box<Expr>>,
    },
    Field {
        target: Box<Expr>,
        name: Ident,
    },
    Call {
        callee: Box<Expr>,
        args: Vec<Expr>,
    },
    MethodCall {
        target: Box<Expr>,
        method: Ident,
        args: Vec<Expr>,
    },
    Fn(Arc<FnDecl>),
    Spawn(Box<Spawn>),
    /// `join t [timeout s]`
    Join {
        target: Box<Expr>,
        timeout: Option<Box<Expr>>,
    },
    /// `get q [timeout s]`
    Get {
        target: Box<Expr>,
        timeout: Option<Box<Expr>>,
    },
    /// `wait e [timeout s]`
    Wait {
        target: Box<Expr>,
        timeout: Option<Box<Expr>>,
    },
    /// `submit pool, f(args)`
    Submit {
        pool: Box<Expr>,
        callee: Box<Expr>,
        args: Vec<Expr>,
    },
}

/// A part of an f-string.
#[derive(Debug, Clone)]
pub enum FPiece {
    Text(Arc<str>),
    /// `{expr!r:spec}`; `spec` is checked by the parser and may be empty.
    Field {
        expr: Expr,
        /// `r` (repr) or `s` (str).
        conversion: Option<char>,
        spec: Arc<str>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnKind {
    Thread,
    Process,
}

#[derive(Debug, Clone)]
pub struct Spawn {
    pub kind: SpawnKind,
    pub daemon: bool,
    pub body: SpawnBody,
    /// `named EXPR`
    pub name: Option<Expr>,
    /// `on EXPR`: the host a process runs on.
    pub on: Option<Expr>,
}

#[derive(Debug, Clone)]
pub enum SpawnBody {
    /// `spawn f(a, b)`: callee and arguments are evaluated by the spawner.
    Call { callee: Expr, args: Vec<Expr> },
    /// `spawn { ... }`: an anonymous function with no parameters.
    Block(Arc<FnDecl>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }
}
