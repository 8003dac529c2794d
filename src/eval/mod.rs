//! The evaluator: one `Interp` per OS thread, walking the shared, resolved AST.

pub mod builtins;
pub mod globals;
pub mod value;

pub struct Interp {}
