//! Compiling loops. Every back-edge goes through `Interp::back_edge`, and
//! every `for` (over a range, into a plain local or not, or over items) runs
//! the one loop in `ForLoop::each`.

use super::calls::eval_all;
use super::stmt::Target;
use super::store::put;
use super::{tri, Block, Compiler, Ctl, StmtCode};
use crate::ast::{self, Expr, ExprKind, Pattern};
use crate::diagnostics::RuntimeError;
use crate::eval::builtins::{is_range, iteration_items, Range};
use crate::eval::value::Value;
use crate::eval::{Frame, Interp, R};
use crate::span::Span;

impl Compiler<'_> {
    pub(super) fn while_stmt(&self, test: &Expr, body: &ast::Block) -> StmtCode {
        let (test, body) = (self.cond(test), self.block(body));
        Box::new(move |it, f| {
            while tri!(it, test(it, f)) {
                match body.run(it, f) {
                    Ctl::Break => break,
                    ctl @ (Ctl::Return | Ctl::Error) => return ctl,
                    Ctl::Normal | Ctl::Continue => {}
                }
                tri!(it, it.back_edge());
            }
            Ctl::Normal
        })
    }

    pub(super) fn for_stmt(&self, target: &Pattern, iter: &Expr, body: &ast::Block) -> StmtCode {
        let l = ForLoop {
            target: self.target(target),
            body: self.block(body),
            iter_span: iter.span,
        };
        let ExprKind::Call { callee, args } = &iter.node else {
            let iter = self.expr(iter);
            return Box::new(move |it, f| {
                let v = tri!(it, iter(it, f));
                l.items(it, &v, f)
            });
        };
        let (callee, args) = (self.expr(callee), self.exprs(args));
        Box::new(move |it, f| {
            let callee = tri!(it, callee(it, f));
            let args = tri!(it, eval_all(&args, it, f));
            if is_range(&callee) {
                return l.range(it, &args, f);
            }
            let iterable = tri!(it, it.call_value(&callee, args, l.iter_span));
            l.items(it, &iterable, f)
        })
    }
}

/// The parts of a `for` loop that do not depend on what it walks.
struct ForLoop {
    target: Target,
    body: Block,
    iter_span: Span,
}

impl ForLoop {
    /// `for i in range(..)`: counts without building a list.
    #[inline]
    fn range(&self, it: &mut Interp, args: &[Value], f: Frame) -> Ctl {
        let range = tri!(it, Range::new(args).map_err(|e| self.at_iter(e)));
        match self.target {
            // The commonest loop of all: the counter is a plain local.
            Target::Slot(slot) => self.each(it, range, f, |it, i, f| {
                match &mut it.stack[f.base + slot] {
                    // Still the int the loop put there: only the number
                    // changes (reading the whole old value back costs a
                    // stalled load).
                    Value::Int(n) => *n = i,
                    place => put(place, Value::Int(i)),
                }
                Ok(())
            }),
            _ => self.each(it, range, f, |it, i, f| {
                self.target.bind(it, Value::Int(i), f)
            }),
        }
    }

    fn items(&self, it: &mut Interp, iterable: &Value, f: Frame) -> Ctl {
        let items = tri!(it, iteration_items(iterable).map_err(|e| self.at_iter(e)));
        self.each(it, items, f, |it, item, f| self.target.bind(it, item, f))
    }

    /// The loop: bind, run the body, take the back-edge.
    #[inline(always)]
    fn each<T>(
        &self,
        it: &mut Interp,
        values: impl IntoIterator<Item = T>,
        f: Frame,
        bind: impl Fn(&mut Interp, T, Frame) -> R<()>,
    ) -> Ctl {
        for v in values {
            tri!(it, bind(it, v, f));
            match self.body.run(it, f) {
                Ctl::Break => break,
                ctl @ (Ctl::Return | Ctl::Error) => return ctl,
                Ctl::Normal | Ctl::Continue => {}
            }
            tri!(it, it.back_edge());
        }
        Ctl::Normal
    }

    fn at_iter(&self, e: RuntimeError) -> Box<RuntimeError> {
        Box::new(e.at(self.iter_span))
    }
}
