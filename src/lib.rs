//! conc: a scriptable language for concurrency on real OS threads and processes.
//!
//! The pipeline: source text is parsed into an AST (`parser`), names are
//! resolved to slots and global cells (`resolve`), and an `Interp` per OS
//! thread evaluates it against the shared `runtime`. `Session` ties it
//! together for the CLI, the REPL and the fixture runner.
//!
//! ```
//! use conc::session::{Session, SessionOptions};
//! use conc::runtime::output::Capture;
//! use std::sync::Arc;
//!
//! let out = Capture::default();
//! let mut session = Session::new(SessionOptions { out: Arc::new(out.clone()), ..Default::default() });
//! session.run("example", "fn double(x) { return x * 2 }\nlet t = spawn double(21)\nprint(join t)").unwrap();
//! assert_eq!(out.lines.lock().clone(), vec!["42".to_string()]);
//! ```

pub mod ast;
pub mod child;
pub mod diagnostics;
pub mod eval;
pub mod explore;
pub mod fixture;
pub mod parser;
pub mod remote;
pub mod repl;
pub mod resolve;
pub mod runtime;
pub mod session;
pub mod span;
