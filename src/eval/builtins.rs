//! Builtin functions.

use crate::diagnostics::RuntimeError;
use crate::eval::value::Value;
use crate::eval::Interp;

pub type BuiltinFn = fn(&mut Interp, Vec<Value>) -> Result<Value, RuntimeError>;

pub struct Builtin {
    pub name: &'static str,
    pub call: BuiltinFn,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<builtin {}>", self.name)
    }
}
