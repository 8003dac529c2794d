//! Operators, indexing and slicing on values. Pure functions: they return
//! span-less errors and the evaluator attaches the span.

use super::{describe, Key, Value};
use crate::ast::{BinOp, UnaryOp};
use crate::diagnostics::{kind, RuntimeError};
use std::cmp::Ordering;
use std::sync::Arc;

type Res = Result<Value, RuntimeError>;

pub fn binary(op: BinOp, a: &Value, b: &Value) -> Res {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        return int_binary(op, *x, *y);
    }
    match op {
        BinOp::Add => add(a, b),
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::FloorDiv | BinOp::Mod | BinOp::Pow => {
            arith(op, a, b)
        }
        BinOp::Eq => Ok(Value::Bool(a.equals(b))),
        BinOp::Ne => Ok(Value::Bool(!a.equals(b))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = compare(a, b)?;
            Ok(Value::Bool(ordering_matches(op, ord)))
        }
        BinOp::In => contains(b, a).map(Value::Bool),
        BinOp::NotIn => contains(b, a).map(|c| Value::Bool(!c)),
        // Short-circuit forms are handled by the evaluator; this is the value form.
        BinOp::And => Ok(if a.truthy() { b.clone() } else { a.clone() }),
        BinOp::Or => Ok(if a.truthy() { a.clone() } else { b.clone() }),
    }
}

/// Int arithmetic and comparison, the one definition, with Python's
/// semantics: `//` rounds toward minus infinity and `%` takes the divisor's
/// sign. `None` when the answer is not an int or bool that fits (overflow,
/// a zero divisor, `/` and negative powers, which give floats, operators ints
/// do not have): `int_binary` says which. Always inlined, so a caller with a
/// fixed `op` (the fused nodes) keeps only that operator's few instructions.
#[inline(always)]
pub fn int_arith(op: BinOp, x: i64, y: i64) -> Option<Value> {
    Some(match op {
        BinOp::Add => Value::Int(x.checked_add(y)?),
        BinOp::Sub => Value::Int(x.checked_sub(y)?),
        BinOp::Mul => Value::Int(x.checked_mul(y)?),
        BinOp::FloorDiv => Value::Int(floor_div(x, y)?),
        BinOp::Mod => Value::Int(floor_mod(x, y)?),
        BinOp::Pow => Value::Int(x.checked_pow(u32::try_from(y).ok()?)?),
        _ => Value::Bool(int_test(op, x, y)?),
    })
}

/// An int comparison; `None` for operators that are not comparisons.
#[inline(always)]
pub fn int_test(op: BinOp, x: i64, y: i64) -> Option<bool> {
    Some(match op {
        BinOp::Eq => x == y,
        BinOp::Ne => x != y,
        BinOp::Lt => x < y,
        BinOp::Le => x <= y,
        BinOp::Gt => x > y,
        BinOp::Ge => x >= y,
        _ => return None,
    })
}

#[inline(always)]
fn floor_div(x: i64, y: i64) -> Option<i64> {
    let q = x.checked_div(y)?;
    // Floor, not truncate: -7 // 2 == -4.
    Some(if x % y != 0 && ((x < 0) != (y < 0)) {
        q - 1
    } else {
        q
    })
}

#[inline(always)]
fn floor_mod(x: i64, y: i64) -> Option<i64> {
    if y == 0 {
        return None;
    }
    // `i64::MIN % -1` is 0, not an overflow.
    let r = x.wrapping_rem(y);
    Some(if r != 0 && ((r < 0) != (y < 0)) {
        r + y
    } else {
        r
    })
}

fn ordering_matches(op: BinOp, ord: Ordering) -> bool {
    match op {
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Le => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    }
}

fn overflow(op: BinOp, x: i64, y: i64) -> RuntimeError {
    RuntimeError::new(
        kind::OVERFLOW,
        format!("{} {} {} does not fit in a 64-bit int", x, op.symbol(), y),
    )
}

fn zero_division(op: BinOp) -> RuntimeError {
    RuntimeError::new(kind::ZERO_DIVISION, format!("`{}` by zero", op.symbol()))
}

fn int_binary(op: BinOp, x: i64, y: i64) -> Res {
    match int_arith(op, x, y) {
        Some(v) => Ok(v),
        None => int_special(op, x, y),
    }
}

/// What `int_arith` leaves to others: floats, zero divisors, overflow.
#[cold]
fn int_special(op: BinOp, x: i64, y: i64) -> Res {
    match op {
        BinOp::Div | BinOp::FloorDiv | BinOp::Mod if y == 0 => Err(zero_division(op)),
        BinOp::Div => Ok(Value::Float(x as f64 / y as f64)),
        BinOp::Pow if y < 0 => Ok(Value::Float((x as f64).powf(y as f64))),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::FloorDiv | BinOp::Mod | BinOp::Pow => {
            Err(overflow(op, x, y))
        }
        _ => binary_slow(op, x, y),
    }
}

fn binary_slow(op: BinOp, x: i64, y: i64) -> Res {
    Err(RuntimeError::new(
        kind::TYPE,
        format!("`{}` is not defined for ints {} and {}", op.symbol(), x, y),
    ))
}

fn type_mismatch(op: BinOp, a: &Value, b: &Value) -> RuntimeError {
    RuntimeError::new(
        kind::TYPE,
        format!(
            "unsupported operand types for `{}`: {} and {}",
            op.symbol(),
            a.type_name(),
            b.type_name()
        ),
    )
}

fn add(a: &Value, b: &Value) -> Res {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => {
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            Ok(Value::Str(Arc::from(s)))
        }
        (Value::List(x), Value::List(y)) => {
            let mut items = x.lock().clone();
            items.extend(y.lock().iter().cloned());
            Ok(Value::list(items))
        }
        (Value::Str(_), _) | (_, Value::Str(_)) => Err(type_mismatch(BinOp::Add, a, b)
            .with_help("convert with str(...) first: \"n = \" + str(n)")),
        _ => arith(BinOp::Add, a, b),
    }
}

fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Res {
    if op == BinOp::Mul {
        if let Some(v) = repeat(a, b)? {
            return Ok(v);
        }
    }
    let (Some(x), Some(y)) = (as_float(a), as_float(b)) else {
        return Err(type_mismatch(op, a, b));
    };
    let needs_nonzero = matches!(op, BinOp::Div | BinOp::FloorDiv | BinOp::Mod);
    if needs_nonzero && y == 0.0 {
        return Err(zero_division(op));
    }
    Ok(Value::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::FloorDiv => (x / y).floor(),
        BinOp::Mod => x - y * (x / y).floor(),
        _ => x.powf(y),
    }))
}

/// `"ab" * 3`, `[0] * 5`.
fn repeat(a: &Value, b: &Value) -> Result<Option<Value>, RuntimeError> {
    let (seq, n) = match (a, b) {
        (Value::Int(n), s) | (s, Value::Int(n)) if matches!(s, Value::Str(_) | Value::List(_)) => {
            (s, *n)
        }
        _ => return Ok(None),
    };
    let n = usize::try_from(n.max(0)).unwrap_or(0);
    let too_big = || RuntimeError::new(kind::VALUE, "repetition result is too large");
    match seq {
        Value::Str(s) => {
            if s.len().saturating_mul(n) > 1 << 30 {
                return Err(too_big());
            }
            Ok(Some(Value::str(&s.repeat(n))))
        }
        Value::List(l) => {
            let items = l.lock().clone();
            if items.len().saturating_mul(n) > 1 << 27 {
                return Err(too_big());
            }
            // `[] * 9223372036854775807` is empty at once, not after 2^63
            // turns of copying nothing.
            if items.is_empty() {
                return Ok(Some(Value::list(Vec::new())));
            }
            let mut out = Vec::with_capacity(items.len() * n);
            for _ in 0..n {
                out.extend(items.iter().cloned());
            }
            Ok(Some(Value::list(out)))
        }
        _ => Ok(None),
    }
}

/// Ordering for `< <= > >=`, `sorted`, `min`, `max`.
pub fn compare(a: &Value, b: &Value) -> Result<Ordering, RuntimeError> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::List(x), Value::List(y)) => super::deep::compare_lists(x, y, compare),
        _ => match (as_float(a), as_float(b)) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| RuntimeError::new(kind::VALUE, "cannot order nan")),
            _ => Err(RuntimeError::new(
                kind::TYPE,
                format!("cannot compare {} with {}", a.type_name(), b.type_name()),
            )),
        },
    }
}

fn contains(container: &Value, item: &Value) -> Result<bool, RuntimeError> {
    match container {
        Value::List(l) => {
            // A snapshot, let go before comparing: `item` may hold the
            // list itself, and comparing locks what it holds.
            let items = l.lock().clone();
            Ok(items.iter().any(|v| v.equals(item)))
        }
        Value::Map(m) => match Key::from_value(item) {
            Ok(k) => Ok(m.lock().contains_key(&k)),
            Err(_) => Ok(false),
        },
        Value::Str(s) => match item {
            Value::Str(sub) => Ok(s.contains(&**sub)),
            other => Err(RuntimeError::new(
                kind::TYPE,
                format!(
                    "`in <string>` needs a string on the left, not {}",
                    other.type_name()
                ),
            )),
        },
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!(
                "`in` needs a list, map or string on the right, not {}",
                describe(other)
            ),
        )),
    }
}

pub fn unary(op: UnaryOp, v: Value) -> Res {
    match (op, v) {
        (UnaryOp::Not, v) => Ok(Value::Bool(!v.truthy())),
        (UnaryOp::Neg, Value::Int(i)) => i.checked_neg().map(Value::Int).ok_or_else(|| {
            RuntimeError::new(
                kind::OVERFLOW,
                format!("-({}) does not fit in a 64-bit int", i),
            )
        }),
        (UnaryOp::Neg, Value::Float(f)) => Ok(Value::Float(-f)),
        (UnaryOp::Neg, other) => Err(RuntimeError::new(
            kind::TYPE,
            format!("cannot negate {}", describe(&other)),
        )),
    }
}

/// A Python-style index (negative counts from the end) checked against `len`.
pub fn list_position(index: &Value, len: usize) -> Result<usize, RuntimeError> {
    let i = match index {
        Value::Int(i) => *i,
        other => {
            return Err(RuntimeError::new(
                kind::TYPE,
                format!("an index must be an int, not {}", other.type_name()),
            ))
        }
    };
    let pos = if i < 0 { i + len as i64 } else { i };
    if pos < 0 || pos >= len as i64 {
        return Err(RuntimeError::new(
            kind::INDEX,
            format!("index {} is out of range for length {}", i, len),
        ));
    }
    Ok(pos as usize)
}

pub fn index(target: &Value, index: &Value) -> Res {
    match target {
        Value::List(l) => {
            let items = l.lock();
            let i = list_position(index, items.len())?;
            Ok(items[i].clone())
        }
        Value::Map(m) => {
            let key = Key::from_value(index)?;
            m.lock().get(&key).cloned().ok_or_else(|| {
                RuntimeError::new(
                    kind::KEY,
                    format!("key {} is not in the map", index.to_repr()),
                )
            })
        }
        Value::Str(s) => {
            let count = s.chars().count();
            let i = list_position(index, count)?;
            let c = s.chars().nth(i).unwrap_or_default();
            Ok(Value::str(c.encode_utf8(&mut [0; 4])))
        }
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("{} cannot be indexed", describe(other)),
        )),
    }
}

/// `container[index] = v`.
pub fn store_index(container: &Value, index: Value, v: Value) -> Result<(), RuntimeError> {
    match container {
        Value::List(l) => {
            let mut items = l.lock();
            let i = list_position(&index, items.len())?;
            items[i] = v;
            Ok(())
        }
        Value::Map(m) => {
            let key = Key::from_value(&index)?;
            m.lock().insert(key, v);
            Ok(())
        }
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("{} does not support item assignment", describe(other)),
        )),
    }
}

/// Python slice semantics: bounds clamp, negative bounds count from the end.
pub fn slice(target: &Value, [start, end, step]: [Option<i64>; 3]) -> Res {
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(RuntimeError::new(kind::VALUE, "slice step cannot be zero"));
    }
    let pick = |len: usize| slice_indices(len, start, end, step);
    match target {
        Value::List(l) => {
            let items = l.lock();
            Ok(Value::list(
                pick(items.len()).map(|i| items[i].clone()).collect(),
            ))
        }
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            Ok(Value::str(
                &pick(chars.len()).map(|i| chars[i]).collect::<String>(),
            ))
        }
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("{} cannot be sliced", describe(other)),
        )),
    }
}

fn slice_indices(
    len: usize,
    start: Option<i64>,
    end: Option<i64>,
    step: i64,
) -> impl Iterator<Item = usize> {
    let len = len as i64;
    let clamp = |v: i64, lo: i64, hi: i64| {
        let v = if v < 0 { v + len } else { v };
        v.clamp(lo, hi)
    };
    let (mut i, stop) = if step > 0 {
        (
            clamp(start.unwrap_or(0), 0, len),
            clamp(end.unwrap_or(len), 0, len),
        )
    } else {
        (
            clamp(start.unwrap_or(len - 1), -1, len - 1),
            end.map_or(-1, |e| clamp(e, -1, len - 1)),
        )
    };
    std::iter::from_fn(move || {
        let more = if step > 0 { i < stop } else { i > stop };
        if !more {
            return None;
        }
        let out = i as usize;
        i += step;
        Some(out)
    })
}
