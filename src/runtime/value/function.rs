//! Functions as values. The runtime holds them, names them and sends them
//! to other processes; only the evaluator runs them, so what it runs is
//! opaque here: a function's compiled body and a builtin's entry point.

use super::Value;
use crate::ast::FnDecl;
use crate::diagnostics::RuntimeError;
use std::any::{Any, TypeId};
use std::sync::{Arc, OnceLock};

/// A function object: a declaration and its body, compiled by the
/// evaluator on the first call. Closures share it; `runtime::FnIndex`
/// finds it by where it is declared (a closure sent by another process
/// arrives that way).
pub struct Function {
    pub decl: Arc<FnDecl>,
    code: OnceLock<Compiled>,
}

/// A compiled body of a type only the evaluator knows, with that type's id
/// beside it, so getting it back is a compare, not a virtual call.
struct Compiled {
    type_id: TypeId,
    body: Box<dyn Any + Send + Sync>,
}

impl Function {
    pub fn new(decl: Arc<FnDecl>) -> Function {
        Function {
            decl,
            code: OnceLock::new(),
        }
    }

    /// The compiled body, made by `compile` on the first call. `None` only
    /// if it was made as another type, which the evaluator never does.
    #[inline(always)]
    pub fn code<T: Any + Send + Sync>(&self, compile: impl FnOnce() -> T) -> Option<&T> {
        let c = self.code.get_or_init(|| Compiled {
            type_id: TypeId::of::<T>(),
            body: Box::new(compile()),
        });
        if c.type_id != TypeId::of::<T>() {
            return None;
        }
        let body: *const (dyn Any + Send + Sync) = &*c.body;
        // SAFETY: `body` was boxed from a value of the type whose id is
        // `type_id` (the constructor above is the only one), and that id
        // is `T`'s; the box lives as long as `self`.
        Some(unsafe { &*(body as *const T) })
    }
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<fn {}>", self.decl.display_name())
    }
}

/// A function value: a function object and the cells it captured.
#[derive(Debug)]
pub struct Closure {
    pub func: Arc<Function>,
    pub upvals: Box<[super::Cell]>,
}

/// How the evaluator runs a builtin: it passes itself, type-erased.
pub type Native = fn(Erased<'_>, Vec<Value>) -> Result<Value, RuntimeError>;

/// A `&mut T` whose type only its maker and its user know, with the type's
/// id beside it: getting it back is a compare, not a virtual call.
pub struct Erased<'a> {
    ptr: *mut (),
    type_id: TypeId,
    _borrow: std::marker::PhantomData<&'a mut ()>,
}

impl<'a> Erased<'a> {
    #[inline(always)]
    pub fn new<T: Any>(value: &'a mut T) -> Erased<'a> {
        Erased {
            ptr: value as *mut T as *mut (),
            type_id: TypeId::of::<T>(),
            _borrow: std::marker::PhantomData,
        }
    }

    #[inline(always)]
    pub fn get<T: Any>(self) -> Option<&'a mut T> {
        if self.type_id != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: `ptr` came from a `&'a mut` of the type whose id is
        // `type_id` (`new` is the only constructor), and that is `T`.
        Some(unsafe { &mut *(self.ptr as *mut T) })
    }
}

/// A builtin function: its name (builtins cross between processes by
/// name) and the evaluator's entry point for it.
pub struct Builtin {
    pub name: &'static str,
    pub call: Native,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<builtin {}>", self.name)
    }
}
