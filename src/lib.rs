//! conc: a scriptable language for concurrency on real OS threads and processes.

pub mod ast;
pub mod diagnostics;
pub mod eval;
pub mod fixture;
pub mod parser;
pub mod runtime;
pub mod span;
