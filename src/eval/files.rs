//! `read_file`, `write_file`, `append_file`: whole-file text I/O. A failure
//! is an IOError naming the path and the OS's reason, never a panic.

use super::describe;
use super::value::Value;
use super::Interp;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::engine::Op;
use std::io::Write;

use super::value::args::arity;

/// The file system is one object at scheduling points: reads of any files
/// commute, a write conflicts with every read and write. (Per-path objects
/// would miss `"a.txt"` and `"./a.txt"` being one file.)
const FILES_OBJECT: u64 = u64::MAX - 1;

type Res = Result<Value, RuntimeError>;

pub fn read_file(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("read_file", &args, 1, 1)?;
    let path = expect_text("read_file", "path", &args[0])?;
    point(it, Op::Read)?;
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(Value::Str(std::sync::Arc::new(text))),
            Err(_) => Err(RuntimeError::new(
                kind::IO,
                format!("cannot read {:?}: it is not UTF-8 text", path),
            )),
        },
        Err(e) => Err(io_error("read", path, &e)),
    }
}

pub fn write_file(it: &mut Interp, args: Vec<Value>) -> Res {
    store("write_file", it, args, false)
}

pub fn append_file(it: &mut Interp, args: Vec<Value>) -> Res {
    store("append_file", it, args, true)
}

/// `write_file` (replace the contents, creating the file) and
/// `append_file` (add at the end, creating the file).
fn store(name: &str, it: &mut Interp, args: Vec<Value>, append: bool) -> Res {
    arity(name, &args, 2, 2)?;
    let path = expect_text(name, "path", &args[0])?;
    let text = expect_text(name, "text", &args[1])?;
    point(it, Op::Write)?;
    // Whoever reads the file may then look at a queue this process put
    // into without waiting: the put must be there.
    it.ctx.settle_posts(&it.thread);
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .open(path);
    let verb = if append { "append to" } else { "write" };
    let mut file = opened.map_err(|e| io_error(verb, path, &e))?;
    // One write_all: an append of a whole text lands in one piece.
    file.write_all(text.as_bytes())
        .map_err(|e| io_error(verb, path, &e))?;
    Ok(Value::Nil)
}

/// A scheduling point before touching the file system, after the
/// interrupt check (a stopped thread touches no more files).
fn point(it: &mut Interp, op: Op) -> Result<(), RuntimeError> {
    if let Some(err) = it.thread.take_interrupt() {
        return Err(err);
    }
    it.ctx.engine().point_on(&it.thread, op, FILES_OBJECT, None);
    Ok(())
}

fn expect_text<'v>(name: &str, what: &str, v: &'v Value) -> Result<&'v str, RuntimeError> {
    match v {
        Value::Str(s) => Ok(s.as_str()),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!(
                "{}() needs a string {}, not {}",
                name,
                what,
                describe(other)
            ),
        )),
    }
}

/// "cannot read "x.txt": no such file or directory": the OS's own words
/// without Rust's " (os error 2)" tail, which says nothing to a script.
fn io_error(verb: &str, path: &str, e: &std::io::Error) -> RuntimeError {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
        _ => {
            let text = e.to_string();
            match text.rfind(" (os error ") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    };
    RuntimeError::new(kind::IO, format!("cannot {} {:?}: {}", verb, path, reason))
}
