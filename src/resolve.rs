//! Resolution: every variable use becomes a frame slot, a closure upvalue or a
//! global cell before anything runs, so the evaluator never looks names up.
//!
//! Each function (and each program) gets one frame; every declaration in it
//! gets its own slot. A local that an inner function uses is marked
//! `captured`, so the evaluator keeps it in a shared cell (closures capture by
//! reference). Direct `let`/`fn` bindings of a program are globals.

use crate::ast::*;
use crate::diagnostics::SyntaxError;
use crate::eval::globals::Globals;
use crate::span::Span;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub fn resolve(program: &mut Program, globals: &Globals) -> Result<(), SyntaxError> {
    let mut r = Resolver {
        globals,
        fns: vec![FnScope::new(true)],
        functions: Vec::new(),
    };
    let mut stmts = std::mem::take(&mut program.stmts);
    let result = stmts.iter_mut().try_for_each(|s| r.stmt(s));
    let top = r.fns.pop().unwrap_or_else(|| FnScope::new(true));
    mark_captured_stmts(&mut stmts, &top.captured);
    program.stmts = stmts;
    program.nslots = top.nslots;
    program.functions = r.functions;
    result
}

struct FnScope {
    /// The program's own frame: its outermost scope holds globals.
    is_program: bool,
    scopes: Vec<HashMap<Name, u32>>,
    nslots: u32,
    upvals: Vec<UpvalSource>,
    captured: HashSet<u32>,
    loop_depth: u32,
}

impl FnScope {
    fn new(is_program: bool) -> FnScope {
        FnScope {
            is_program,
            scopes: vec![HashMap::new()],
            nslots: 0,
            upvals: Vec::new(),
            captured: HashSet::new(),
            loop_depth: 0,
        }
    }

    fn lookup(&self, name: &str) -> Option<u32> {
        let skip = usize::from(self.is_program);
        self.scopes
            .iter()
            .skip(skip)
            .rev()
            .find_map(|s| s.get(name).copied())
    }

    fn add_upval(&mut self, source: UpvalSource) -> u32 {
        if let Some(i) = self.upvals.iter().position(|u| *u == source) {
            return i as u32;
        }
        self.upvals.push(source);
        (self.upvals.len() - 1) as u32
    }
}

struct Resolver<'g> {
    globals: &'g Globals,
    fns: Vec<FnScope>,
    functions: Vec<Arc<FnDecl>>,
}

impl Resolver<'_> {
    fn current(&mut self) -> &mut FnScope {
        let last = self.fns.len() - 1;
        &mut self.fns[last]
    }

    fn declare(&mut self, decl: &mut Decl) {
        let f = self.current();
        if f.is_program && f.scopes.len() == 1 {
            decl.res = Res::Global(self.globals.id(&decl.ident.name));
            return;
        }
        let slot = f.nslots;
        f.nslots += 1;
        if let Some(scope) = f.scopes.last_mut() {
            scope.insert(decl.ident.name.clone(), slot);
        }
        decl.res = Res::Local(slot);
    }

    fn use_name(&mut self, var: &mut VarRef) {
        let depth = self.fns.len() - 1;
        var.res = match self.find(depth, &var.name) {
            Some(res) => res,
            None => Res::Global(self.globals.id(&var.name)),
        };
    }

    /// Lua-style upvalue resolution through the enclosing functions.
    fn find(&mut self, depth: usize, name: &str) -> Option<Res> {
        if let Some(slot) = self.fns[depth].lookup(name) {
            return Some(Res::Local(slot));
        }
        if depth == 0 {
            return None;
        }
        let source = match self.find(depth - 1, name)? {
            Res::Local(slot) => {
                self.fns[depth - 1].captured.insert(slot);
                UpvalSource::Local(slot)
            }
            Res::Upval(i) => UpvalSource::Upval(i),
            other => return Some(other),
        };
        Some(Res::Upval(self.fns[depth].add_upval(source)))
    }

    fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.current().scopes.push(HashMap::new());
        let out = f(self);
        self.current().scopes.pop();
        out
    }

    fn block(&mut self, block: &mut Block) -> Result<(), SyntaxError> {
        self.scoped(|r| block.stmts.iter_mut().try_for_each(|s| r.stmt(s)))
    }

    fn loop_body(&mut self, block: &mut Block) -> Result<(), SyntaxError> {
        self.current().loop_depth += 1;
        let out = self.block(block);
        self.current().loop_depth -= 1;
        out
    }

    fn pattern(&mut self, pattern: &mut Pattern) {
        match pattern {
            Pattern::Name(decl) => self.declare(decl),
            Pattern::List(items, _) => items.iter_mut().for_each(|p| self.pattern(p)),
        }
    }

    fn function(&mut self, shared: &mut Arc<FnDecl>) -> Result<(), SyntaxError> {
        let result = self.function_body(Arc::make_mut(shared));
        self.functions.push(shared.clone());
        result
    }

    fn function_body(&mut self, func: &mut FnDecl) -> Result<(), SyntaxError> {
        self.fns.push(FnScope::new(false));
        func.params.iter_mut().for_each(|p| self.declare(p));
        let result = func.body.stmts.iter_mut().try_for_each(|s| self.stmt(s));
        let scope = self.fns.pop().unwrap_or_else(|| FnScope::new(false));
        for p in &mut func.params {
            mark_decl(p, &scope.captured);
        }
        mark_captured_stmts(&mut func.body.stmts, &scope.captured);
        func.nslots = scope.nslots;
        func.upvals = scope.upvals;
        result
    }

    fn stmt(&mut self, stmt: &mut Stmt) -> Result<(), SyntaxError> {
        let span = stmt.span;
        match &mut stmt.node {
            StmtKind::Let { target, value } => {
                self.expr(value)?;
                self.pattern(target);
            }
            StmtKind::Assign { target, value, .. } => {
                self.expr(target)?;
                self.expr(value)?;
            }
            StmtKind::Fn { decl, func } => {
                // Declared first so the function can call itself.
                self.declare(decl);
                self.function(func)?;
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    self.expr(cond)?;
                    self.block(body)?;
                }
                if let Some(body) = otherwise {
                    self.block(body)?;
                }
            }
            StmtKind::While { cond, body } => {
                self.expr(cond)?;
                self.loop_body(body)?;
            }
            StmtKind::For { target, iter, body } => {
                self.expr(iter)?;
                self.current().scopes.push(HashMap::new());
                self.pattern(target);
                let out = self.loop_body(body);
                self.current().scopes.pop();
                out?;
            }
            StmtKind::Break | StmtKind::Continue => {
                self.check_in_loop(stmt_word(&stmt.node), span)?
            }
            StmtKind::Return(value) => {
                if self.fns.len() == 1 {
                    return Err(SyntaxError::new(
                        "`return` outside a function",
                        span,
                        "not inside any function",
                    )
                    .with_help("at the top level of a script, the script simply ends"));
                }
                if let Some(v) = value {
                    self.expr(v)?;
                }
            }
            StmtKind::Try {
                body,
                name,
                handler,
                finally,
            } => {
                self.block(body)?;
                if let Some(handler) = handler {
                    self.scoped(|r| {
                        if let Some(decl) = name {
                            r.declare(decl);
                        }
                        r.block(handler)
                    })?;
                }
                if let Some(finally) = finally {
                    self.block(finally)?;
                }
            }
            StmtKind::Raise(e) => self.expr(e)?,
            StmtKind::Assert { cond, message } => {
                self.expr(cond)?;
                if let Some(m) = message {
                    self.expr(m)?;
                }
            }
            StmtKind::Lock { target, body } => {
                self.expr(target)?;
                self.block(body)?;
            }
            StmtKind::Put {
                target,
                value,
                timeout,
            } => {
                self.expr(target)?;
                self.expr(value)?;
                self.opt_expr(timeout)?;
            }
            StmtKind::Select { cases } => {
                for case in cases {
                    self.select_case(case)?;
                }
            }
            StmtKind::Expr(e) => self.expr(e)?,
        }
        Ok(())
    }

    fn check_in_loop(&mut self, word: &str, span: Span) -> Result<(), SyntaxError> {
        if self.current().loop_depth == 0 {
            return Err(SyntaxError::new(
                format!("`{}` outside a loop", word),
                span,
                "not inside any `while` or `for`",
            ));
        }
        Ok(())
    }

    fn select_case(&mut self, case: &mut SelectCase) -> Result<(), SyntaxError> {
        match &mut case.kind {
            SelectKind::Get { name, target } => {
                self.expr(target)?;
                return self.scoped(|r| {
                    if let Some(decl) = name {
                        r.declare(decl);
                    }
                    r.block(&mut case.body)
                });
            }
            SelectKind::Put { target, value } => {
                self.expr(target)?;
                self.expr(value)?;
            }
            SelectKind::Timeout { seconds } => self.expr(seconds)?,
        }
        self.block(&mut case.body)
    }

    fn opt_expr(&mut self, e: &mut Option<Expr>) -> Result<(), SyntaxError> {
        match e {
            Some(e) => self.expr(e),
            None => Ok(()),
        }
    }

    fn opt_box(&mut self, e: &mut Option<Box<Expr>>) -> Result<(), SyntaxError> {
        match e {
            Some(e) => self.expr(e),
            None => Ok(()),
        }
    }

    fn exprs(&mut self, es: &mut [Expr]) -> Result<(), SyntaxError> {
        es.iter_mut().try_for_each(|e| self.expr(e))
    }

    fn expr(&mut self, expr: &mut Expr) -> Result<(), SyntaxError> {
        match &mut expr.node {
            ExprKind::Nil
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_) => Ok(()),
            ExprKind::FString(pieces) => pieces.iter_mut().try_for_each(|piece| match piece {
                FPiece::Text(_) => Ok(()),
                FPiece::Field { expr, .. } => self.expr(expr),
            }),
            ExprKind::List(items) => self.exprs(items),
            ExprKind::Map(entries) => entries.iter_mut().try_for_each(|(k, v)| {
                self.expr(k)?;
                self.expr(v)
            }),
            ExprKind::Var(var) => {
                self.use_name(var);
                Ok(())
            }
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs)?;
                self.expr(rhs)
            }
            ExprKind::Index { target, index } => {
                self.expr(target)?;
                self.expr(index)
            }
            ExprKind::Slice {
                target,
                start,
                end,
                step,
            } => {
                self.expr(target)?;
                self.opt_box(start)?;
                self.opt_box(end)?;
                self.opt_box(step)
            }
            ExprKind::Field { target, .. } => self.expr(target),
            ExprKind::Call { callee, args } => {
                self.expr(callee)?;
                self.exprs(args)
            }
            ExprKind::MethodCall { target, args, .. } => {
                self.expr(target)?;
                self.exprs(args)
            }
            ExprKind::Fn(func) => self.function(func),
            ExprKind::Spawn(spawn) => self.spawn(spawn),
            ExprKind::Join { target, timeout }
            | ExprKind::Get { target, timeout }
            | ExprKind::Wait { target, timeout } => {
                self.expr(target)?;
                self.opt_box(timeout)
            }
            ExprKind::Submit { pool, callee, args } => {
                self.expr(pool)?;
                self.expr(callee)?;
                self.exprs(args)
            }
        }
    }

    fn spawn(&mut self, spawn: &mut Spawn) -> Result<(), SyntaxError> {
        match &mut spawn.body {
            SpawnBody::Call { callee, args } => {
                self.expr(callee)?;
                self.exprs(args)?;
            }
            SpawnBody::Block(func) => self.function(func)?,
        }
        self.opt_expr(&mut spawn.name)?;
        self.opt_expr(&mut spawn.on)
    }
}

fn stmt_word(stmt: &StmtKind) -> &'static str {
    match stmt {
        StmtKind::Break => "break",
        _ => "continue",
    }
}

// After a function is resolved we know which of its slots closures capture;
// this walk flags their declarations (not descending into nested functions,
// which have frames of their own).

fn mark_decl(decl: &mut Decl, captured: &HashSet<u32>) {
    if let Res::Local(slot) = decl.res {
        decl.captured = captured.contains(&slot);
    }
}

fn mark_pattern(p: &mut Pattern, captured: &HashSet<u32>) {
    match p {
        Pattern::Name(decl) => mark_decl(decl, captured),
        Pattern::List(items, _) => items.iter_mut().for_each(|i| mark_pattern(i, captured)),
    }
}

fn mark_captured_stmts(stmts: &mut [Stmt], captured: &HashSet<u32>) {
    if captured.is_empty() {
        return;
    }
    for stmt in stmts {
        match &mut stmt.node {
            StmtKind::Let { target, .. } => mark_pattern(target, captured),
            StmtKind::Fn { decl, .. } => mark_decl(decl, captured),
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (_, body) in branches {
                    mark_captured_stmts(&mut body.stmts, captured);
                }
                if let Some(body) = otherwise {
                    mark_captured_stmts(&mut body.stmts, captured);
                }
            }
            StmtKind::While { body, .. } | StmtKind::Lock { body, .. } => {
                mark_captured_stmts(&mut body.stmts, captured)
            }
            StmtKind::For { target, body, .. } => {
                mark_pattern(target, captured);
                mark_captured_stmts(&mut body.stmts, captured);
            }
            StmtKind::Try {
                body,
                name,
                handler,
                finally,
            } => {
                mark_captured_stmts(&mut body.stmts, captured);
                if let Some(decl) = name {
                    mark_decl(decl, captured);
                }
                if let Some(handler) = handler {
                    mark_captured_stmts(&mut handler.stmts, captured);
                }
                if let Some(finally) = finally {
                    mark_captured_stmts(&mut finally.stmts, captured);
                }
            }
            StmtKind::Select { cases } => {
                for case in cases {
                    if let SelectKind::Get {
                        name: Some(decl), ..
                    } = &mut case.kind
                    {
                        mark_decl(decl, captured);
                    }
                    mark_captured_stmts(&mut case.body.stmts, captured);
                }
            }
            _ => {}
        }
    }
}
