//! Builtin functions of the language core. Constructors of shared objects
//! (`lock()`, `queue()`, ...) are in `runtime::objects`.

use super::describe;
use super::value::{Key, Value};
use super::Interp;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::engine::{Op, Step};
use std::sync::Arc;

pub use super::value::args::{arity, expect_int, expect_seconds, iteration_items};
pub use super::value::Builtin;

/// Output is one object at scheduling points: two prints conflict.
const PRINT_OBJECT: u64 = u64::MAX;

pub type BuiltinFn = fn(&mut Interp, Vec<Value>) -> Result<Value, RuntimeError>;

/// A builtin whose body is `f`: the runtime calls builtins with the
/// evaluator as `Any` (it cannot name `Interp`).
#[macro_export]
macro_rules! builtin {
    ($name:expr, $f:path) => {
        $crate::eval::builtins::Builtin {
            name: $name,
            call: |it, args| $crate::eval::builtins::run(it, args, $f),
        }
    };
}

/// Run `f` on the evaluator the runtime handed over.
#[inline(always)]
pub fn run(it: super::value::function::Erased<'_>, args: Vec<Value>, f: BuiltinFn) -> Res {
    match it.get::<Interp>() {
        Some(it) => f(it, args),
        None => Err(RuntimeError::new(
            kind::ERROR,
            "internal error: a builtin was called without an evaluator",
        )),
    }
}

type Res = Result<Value, RuntimeError>;

macro_rules! builtins {
    ($($name:literal => $f:path),* $(,)?) => {
        pub static CORE: &[Builtin] = &[$($crate::builtin!($name, $f)),*];
    };
}

builtins! {
    "print" => print,
    "write" => write,
    "exit" => exit,
    "sleep" => sleep,
    "time" => time,
    "range" => range,
    "len" => len,
    "str" => to_str,
    "repr" => repr,
    "int" => to_int,
    "float" => to_float,
    "bool" => to_bool,
    "type" => type_of,
    "append" => append,
    "pop" => pop,
    "keys" => keys,
    "values" => values,
    "items" => items,
    "sorted" => super::seq::sorted,
    "reversed" => reversed,
    "sum" => sum,
    "min" => min,
    "max" => max,
    "abs" => abs,
    "random" => random,
    "randint" => randint,
    "getpid" => getpid,
    "getppid" => getppid,
    "cpu_count" => cpu_count,
    "argv" => argv,
    "error" => error,
    "format" => format,
    "round" => super::seq::round,
    "enumerate" => super::seq::enumerate,
    "zip" => super::seq::zip,
    "any" => super::seq::any,
    "all" => super::seq::all,
    "map" => super::seq::map,
    "filter" => super::seq::filter,
    "read_file" => super::files::read_file,
    "write_file" => super::files::write_file,
    "append_file" => super::files::append_file,
}

/// `range` is recognised by `for` so it can count without building a list.
pub fn is_range(v: &Value) -> bool {
    matches!(v, Value::Builtin(b) if b.name == "range")
}

fn expect_list(name: &str, v: &Value) -> Result<super::value::List, RuntimeError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("{}() needs a list, not {}", name, describe(other)),
        )),
    }
}

fn expect_map(name: &str, v: &Value) -> Result<super::value::Map, RuntimeError> {
    match v {
        Value::Map(m) => Ok(m.clone()),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("{}() needs a map, not {}", name, describe(other)),
        )),
    }
}

fn print(it: &mut Interp, args: Vec<Value>) -> Res {
    let line = output_point(it, &args)?;
    it.ctx.out.line(&line);
    Ok(Value::Nil)
}

/// `print` without the newline (Python's `print(..., end="")`).
fn write(it: &mut Interp, args: Vec<Value>) -> Res {
    let text = output_point(it, &args)?;
    it.ctx.out.text(&text);
    Ok(Value::Nil)
}

/// What `print` and `write` share: the interrupt check, the scheduling
/// point, and the values joined by one space.
fn output_point(it: &mut Interp, args: &[Value]) -> Result<String, RuntimeError> {
    // A thread told to stop (Ctrl-C, a deadlock that ended the run) prints
    // nothing more.
    if let Some(err) = it.thread.take_interrupt() {
        return Err(err);
    }
    let step = Step::new(Op::Print, PRINT_OBJECT, None);
    it.ctx.engine().point(&it.thread, step);
    Ok(args
        .iter()
        .map(Value::to_display)
        .collect::<Vec<_>>()
        .join(" "))
}

/// `exit(code)`: end the program with that status. An error that `catch`
/// does not stop carries it out, so the CLI (not this thread) ends the
/// process, after the usual clean-up of child processes.
fn exit(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("exit", &args, 0, 1)?;
    let code = match args.first() {
        None => 0,
        Some(v) => expect_int("exit", v)?,
    };
    match u8::try_from(code) {
        Ok(code) => Err(RuntimeError::exit(code)),
        Err(_) => Err(RuntimeError::new(
            kind::VALUE,
            format!("exit() status must be 0 to 255, not {}", code),
        )),
    }
}

fn sleep(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("sleep", &args, 1, 1)?;
    let d = expect_seconds("sleep()", &args[0])?;
    crate::runtime::threads::sleep(&it.ctx, &it.thread, d)?;
    Ok(Value::Nil)
}

fn time(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("time", &args, 0, 0)?;
    Ok(Value::Float(it.ctx.engine().now().as_secs_f64()))
}

pub fn range_bounds(args: &[Value]) -> Result<(i64, i64, i64), RuntimeError> {
    arity("range", args, 1, 3)?;
    let ints: Vec<i64> = args
        .iter()
        .map(|a| expect_int("range", a))
        .collect::<Result<_, _>>()?;
    let bounds = match ints[..] {
        [end] => (0, end, 1),
        [start, end] => (start, end, 1),
        [start, end, step] => (start, end, step),
        _ => (0, 0, 1),
    };
    if bounds.2 == 0 {
        return Err(RuntimeError::new(
            kind::VALUE,
            "range() step cannot be zero",
        ));
    }
    Ok(bounds)
}

/// The ints of `range(..)`, counted without a list: the one definition that
/// `for i in range(..)` and `range()` share. It stops rather than overflow.
#[derive(Clone, Copy)]
pub struct Range {
    next: i64,
    end: i64,
    step: i64,
}

impl Range {
    pub fn new(args: &[Value]) -> Result<Range, RuntimeError> {
        let (next, end, step) = range_bounds(args)?;
        Ok(Range { next, end, step })
    }
}

impl Iterator for Range {
    type Item = i64;

    #[inline(always)]
    fn next(&mut self) -> Option<i64> {
        let i = self.next;
        let more = (self.step > 0 && i < self.end) || (self.step < 0 && i > self.end);
        if !more {
            return None;
        }
        self.next = i.checked_add(self.step).unwrap_or(self.end);
        Some(i)
    }
}

fn range(_: &mut Interp, args: Vec<Value>) -> Res {
    let (start, end, step) = range_bounds(&args)?;
    // In i128: `range(0, 10, 2**63 - 1)` must not overflow on the way.
    let (from, to, by) = (i128::from(start), i128::from(end), i128::from(step));
    let count = if by > 0 {
        (to - from + by - 1) / by
    } else {
        (from - to - by - 1) / -by
    };
    if count > 100_000_000 {
        return Err(RuntimeError::new(
            kind::VALUE,
            format!("range() of {} items is too large to build as a list", count),
        )
        .with_help("use it directly in a `for` loop, which counts without a list"));
    }
    let mut items = Vec::with_capacity(count.max(0) as usize);
    items.extend(
        Range {
            next: start,
            end,
            step,
        }
        .map(Value::Int),
    );
    Ok(Value::list(items))
}

fn len(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("len", &args, 1, 1)?;
    let n = match &args[0] {
        Value::Str(s) => s.chars().count(),
        Value::List(l) => l.lock().len(),
        Value::Map(m) => m.lock().len(),
        // A queue's items (another process's queue: its owner counts them).
        Value::Handle(h) => {
            let span = crate::span::Span::default();
            let cx = crate::runtime::object::Cx::new(&it.ctx, &it.thread, span, span);
            match crate::runtime::ops::len(&cx, h) {
                Some(n) => n?,
                None => return Err(no_len(&args[0])),
            }
        }
        other => return Err(no_len(other)),
    };
    Ok(Value::Int(n as i64))
}

fn no_len(v: &Value) -> RuntimeError {
    RuntimeError::new(kind::TYPE, format!("{} has no length", describe(v)))
}

fn to_str(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("str", &args, 1, 1)?;
    Ok(match &args[0] {
        Value::Str(s) => Value::Str(s.clone()),
        other => Value::str(&other.to_display()),
    })
}

fn repr(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("repr", &args, 1, 1)?;
    Ok(Value::str(&args[0].to_repr()))
}

fn to_int(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("int", &args, 1, 1)?;
    match &args[0] {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Bool(b) => Ok(Value::Int(*b as i64)),
        Value::Float(f) => {
            if !f.is_finite() || f.abs() >= 9.2e18 {
                return Err(RuntimeError::new(
                    kind::OVERFLOW,
                    format!(
                        "{} does not fit in a 64-bit int",
                        super::value::format_float(*f)
                    ),
                ));
            }
            Ok(Value::Int(f.trunc() as i64))
        }
        Value::Str(s) => s
            .trim()
            .replace('_', "")
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| {
                RuntimeError::new(
                    kind::VALUE,
                    format!("invalid int literal: {}", args[0].to_repr()),
                )
            }),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("int() cannot convert {}", describe(other)),
        )),
    }
}

fn to_float(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("float", &args, 1, 1)?;
    match &args[0] {
        Value::Int(i) => Ok(Value::Float(*i as f64)),
        Value::Float(f) => Ok(Value::Float(*f)),
        Value::Bool(b) => Ok(Value::Float(*b as i64 as f64)),
        Value::Str(s) => s.trim().parse::<f64>().map(Value::Float).map_err(|_| {
            RuntimeError::new(
                kind::VALUE,
                format!("invalid float literal: {}", args[0].to_repr()),
            )
        }),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("float() cannot convert {}", describe(other)),
        )),
    }
}

fn to_bool(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("bool", &args, 1, 1)?;
    Ok(Value::Bool(args[0].truthy()))
}

fn type_of(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("type", &args, 1, 1)?;
    Ok(Value::str(args[0].type_name()))
}

fn append(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("append", &args, 2, 2)?;
    let list = expect_list("append", &args[0])?;
    list.lock().push(args[1].clone());
    Ok(Value::Nil)
}

pub fn pop_list(list: &super::value::List, index: Option<&Value>) -> Res {
    let mut items = list.lock();
    if items.is_empty() {
        return Err(RuntimeError::new(kind::INDEX, "pop from an empty list"));
    }
    let i = match index {
        Some(v) => super::ops::list_position(v, items.len())?,
        None => items.len() - 1,
    };
    Ok(items.remove(i))
}

fn pop(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("pop", &args, 1, 2)?;
    match &args[0] {
        Value::Map(m) => {
            let key = Key::from_value(args.get(1).unwrap_or(&Value::Nil))?;
            m.lock().shift_remove(&key).ok_or_else(|| {
                RuntimeError::new(
                    kind::KEY,
                    format!("key {} is not in the map", key.to_value().to_repr()),
                )
            })
        }
        other => pop_list(&expect_list("pop", other)?, args.get(1)),
    }
}

fn keys(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("keys", &args, 1, 1)?;
    let m = expect_map("keys", &args[0])?;
    let out = m.lock().keys().map(Key::to_value).collect();
    Ok(Value::list(out))
}

fn values(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("values", &args, 1, 1)?;
    let m = expect_map("values", &args[0])?;
    let out = m.lock().values().cloned().collect();
    Ok(Value::list(out))
}

fn items(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("items", &args, 1, 1)?;
    let m = expect_map("items", &args[0])?;
    let out = m
        .lock()
        .iter()
        .map(|(k, v)| Value::list(vec![k.to_value(), v.clone()]))
        .collect();
    Ok(Value::list(out))
}

/// Sort a copy of `items`, reporting the first pair that cannot be ordered.
pub fn sort_values(items: &mut [Value]) -> Result<(), RuntimeError> {
    let mut failure = None;
    items.sort_by(|a, b| {
        super::ops::compare(a, b).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            std::cmp::Ordering::Equal
        })
    });
    failure.map_or(Ok(()), Err)
}

fn reversed(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("reversed", &args, 1, 1)?;
    let mut items = iteration_items(&args[0])?;
    items.reverse();
    Ok(Value::list(items))
}

fn sum(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("sum", &args, 1, 1)?;
    let items = iteration_items(&args[0])?;
    let mut total = Value::Int(0);
    for item in items {
        total = super::ops::binary(crate::ast::BinOp::Add, &total, &item)?;
    }
    Ok(total)
}

/// `min(list)` or `min(a, b, ...)`.
fn extreme(name: &str, args: Vec<Value>, want: std::cmp::Ordering) -> Res {
    let items = match &args[..] {
        [] => {
            return Err(RuntimeError::new(
                kind::TYPE,
                format!("{}() needs arguments", name),
            ))
        }
        [single] => iteration_items(single)?,
        _ => args,
    };
    let mut best: Option<Value> = None;
    for item in items {
        best = Some(match best {
            Some(b) if super::ops::compare(&item, &b)? != want => b,
            _ => item,
        });
    }
    best.ok_or_else(|| RuntimeError::new(kind::VALUE, format!("{}() of an empty list", name)))
}

fn min(_: &mut Interp, args: Vec<Value>) -> Res {
    extreme("min", args, std::cmp::Ordering::Less)
}

fn max(_: &mut Interp, args: Vec<Value>) -> Res {
    extreme("max", args, std::cmp::Ordering::Greater)
}

fn abs(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("abs", &args, 1, 1)?;
    match &args[0] {
        Value::Int(i) => i.checked_abs().map(Value::Int).ok_or_else(|| {
            RuntimeError::new(
                kind::OVERFLOW,
                format!("abs({}) does not fit in a 64-bit int", i),
            )
        }),
        Value::Float(f) => Ok(Value::Float(f.abs())),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("abs() of {}", describe(other)),
        )),
    }
}

fn random(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("random", &args, 0, 0)?;
    let bits = it.ctx.engine().random() >> 11;
    Ok(Value::Float(bits as f64 / (1u64 << 53) as f64))
}

fn randint(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("randint", &args, 2, 2)?;
    let (a, b) = (
        expect_int("randint", &args[0])?,
        expect_int("randint", &args[1])?,
    );
    if a > b {
        return Err(RuntimeError::new(
            kind::VALUE,
            format!("randint({}, {}): the lower bound is above the upper", a, b),
        ));
    }
    let span = (b as i128 - a as i128 + 1) as u128;
    Ok(Value::Int(
        (a as i128 + (it.ctx.engine().random() as u128 % span) as i128) as i64,
    ))
}

fn getpid(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("getpid", &args, 0, 0)?;
    Ok(Value::Int(i64::from(it.ctx.engine().pid())))
}

fn getppid(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("getppid", &args, 0, 0)?;
    Ok(Value::Int(i64::from(it.ctx.engine().parent_pid())))
}

fn cpu_count(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("cpu_count", &args, 0, 0)?;
    Ok(Value::Int(it.ctx.engine().cpu_count() as i64))
}

fn argv(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("argv", &args, 0, 0)?;
    Ok(Value::list(
        it.ctx.argv.iter().map(|a| Value::str(a)).collect(),
    ))
}

/// `error(kind, message)`: an error value to `raise`, e.g. `raise error("ValueError", "bad")`.
fn error(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("error", &args, 1, 2)?;
    let (k, msg) = match &args[..] {
        [k, m] => (k.to_display(), m.to_display()),
        _ => (kind::ERROR.to_string(), args[0].to_display()),
    };
    Ok(Value::Error(Arc::new(RuntimeError::new(&k, msg))))
}

/// `format(v)` is `str(v)`; `format(v, spec)` applies a format spec
/// (`format(3.14159, ".2f")`), as in an f-string's `{v:spec}`.
fn format(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("format", &args, 1, 2)?;
    let text = match args.get(1) {
        None => args[0].to_display(),
        Some(Value::Str(spec)) => super::format::format_text_spec(&args[0], spec)?,
        Some(other) => {
            return Err(RuntimeError::new(
                kind::TYPE,
                format!("format() needs a spec string, not {}", describe(other)),
            ))
        }
    };
    Ok(Value::str(&text))
}
