//! Fields and methods of handles (`t.name`, `q.size()`, `m.acquire()`,
//! `p.map(f, xs)`, `f.then(cb)`, ...): each kind defines its own in the
//! runtime (`runtime::object`); here a method that asks for a callback to
//! run gets it run, and a method a kind does not have is named as such.

use super::methods::no_method;
use super::value::Value;
use super::{Interp, R};
use crate::runtime::object::{Cx, Reply};
use crate::runtime::{ops, Handle};
use crate::span::Span;

impl Interp {
    pub(super) fn handle_field(&mut self, h: &Handle, name: &str) -> Option<Value> {
        let cx = Cx::new(&self.ctx, &self.thread, Span::default(), Span::default());
        ops::field(&cx, h, name)
    }

    pub(super) fn handle_method(
        &mut self,
        h: &Handle,
        name: &str,
        args: Vec<Value>,
        span: Span,
    ) -> R<Value> {
        let cx = Cx::new(&self.ctx, &self.thread, span, span);
        match ops::method(&cx, h, name, args) {
            Some(Ok(Reply::Value(v))) => Ok(v),
            Some(Ok(Reply::Callback(callback, arg))) => {
                self.run_callback(&callback, &Ok(arg));
                Ok(Value::Nil)
            }
            Some(Err(e)) => Err(Box::new(e)),
            None => Err(Box::new(
                no_method(&Value::Handle(h.clone()), name).at(span),
            )),
        }
    }
}
