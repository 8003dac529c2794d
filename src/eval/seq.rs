//! Builtins over lists that a Python user reaches for in the first hour:
//! `enumerate zip any all map filter`, `sorted` with a key function and
//! reverse, and `round`. conc has no iterators: each gives a list.
//!
//! conc has no keyword arguments, so `sorted(xs, key=f, reverse=True)` is
//! `sorted(xs, f, true)`, and `sorted(xs, nil, true)` without a key;
//! `xs.sort(f, true)` is the same in place.

use super::value::args::{arity, expect_int, iteration_items};
use super::value::{Items, List, Value};
use super::{describe, ops, Interp};
use crate::diagnostics::{kind, RuntimeError};
use std::cmp::Ordering;

type Res = Result<Value, RuntimeError>;

/// Call `f(args)` from a builtin; a failure inside `f` gets its call chain
/// up to the builtin's call site.
fn call(it: &mut Interp, f: &Value, args: Vec<Value>) -> Res {
    let site = it.builtin_site;
    it.call_value(f, args, site).map_err(|e| *e)
}

fn is_callable(v: &Value) -> bool {
    matches!(v, Value::Func(_) | Value::Builtin(_))
}

fn expect_callable(what: &str, v: &Value) -> Result<(), RuntimeError> {
    if is_callable(v) {
        return Ok(());
    }
    Err(RuntimeError::new(
        kind::TYPE,
        format!("{} needs a function, not {}", what, describe(v)),
    ))
}

pub fn enumerate(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("enumerate", &args, 1, 2)?;
    let start = match args.get(1) {
        Some(v) => expect_int("enumerate", v)?,
        None => 0,
    };
    let items = iteration_items(&args[0])?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let n = start.checked_add(i as i64).ok_or_else(|| {
            RuntimeError::new(kind::OVERFLOW, "enumerate() counted past the largest int")
        })?;
        out.push(Value::list(vec![Value::Int(n), item]));
    }
    Ok(Value::list(out))
}

/// `zip(a, b, ...)`: `[a[i], b[i], ...]` up to the shortest.
pub fn zip(_: &mut Interp, args: Vec<Value>) -> Res {
    let columns = args
        .iter()
        .map(iteration_items)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::list(rows(columns)))
}

fn rows(columns: Vec<Vec<Value>>) -> Vec<Value> {
    let n = columns.iter().map(Vec::len).min().unwrap_or(0);
    let mut columns: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
    (0..n)
        .map(|_| Value::list(columns.iter_mut().filter_map(Iterator::next).collect()))
        .collect()
}

pub fn any(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("any", &args, 1, 1)?;
    Ok(Value::Bool(
        iteration_items(&args[0])?.iter().any(Value::truthy),
    ))
}

pub fn all(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("all", &args, 1, 1)?;
    Ok(Value::Bool(
        iteration_items(&args[0])?.iter().all(Value::truthy),
    ))
}

/// `map(f, xs)`, or `map(f, xs, ys)` calling `f(x, y)` up to the shortest.
pub fn map(it: &mut Interp, args: Vec<Value>) -> Res {
    if args.len() < 2 {
        return Err(RuntimeError::new(
            kind::TYPE,
            "map() needs a function and a list: map(f, xs)",
        ));
    }
    expect_callable("map()", &args[0])?;
    let f = args[0].clone();
    let columns = args[1..]
        .iter()
        .map(iteration_items)
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    if let [only] = &columns[..] {
        out.reserve(only.len());
        for x in only {
            out.push(call(it, &f, vec![x.clone()])?);
        }
        return Ok(Value::list(out));
    }
    for row in rows(columns) {
        let Value::List(row) = row else { continue };
        let row_args = row.lock().clone();
        out.push(call(it, &f, row_args)?);
    }
    Ok(Value::list(out))
}

/// `filter(f, xs)`: the items for which `f(x)` is true; `filter(nil, xs)`
/// keeps the true items.
pub fn filter(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("filter", &args, 2, 2)?;
    if !matches!(args[0], Value::Nil) {
        expect_callable("filter()", &args[0])?;
    }
    let mut out = Vec::new();
    for x in iteration_items(&args[1])? {
        let keep = match &args[0] {
            Value::Nil => x.truthy(),
            f => call(it, f, vec![x.clone()])?.truthy(),
        };
        if keep {
            out.push(x);
        }
    }
    Ok(Value::list(out))
}

/// `sorted(xs)`, `sorted(xs, key)`, `sorted(xs, key, reverse)`.
pub fn sorted(it: &mut Interp, args: Vec<Value>) -> Res {
    arity("sorted", &args, 1, 3)?;
    let mut items = iteration_items(&args[0])?;
    sort_with(it, &mut items, "sorted", &args[1..])?;
    Ok(Value::list(items))
}

/// `xs.sort(key)` / `xs.sort(key, reverse)`: sorted in place.
pub fn sort_list(it: &mut Interp, list: &List, args: &[Value]) -> Res {
    arity("sort", args, 0, 2)?;
    let mut items = list.lock().clone();
    sort_with(it, &mut items, "sort", args)?;
    *list.lock() = Items(items);
    Ok(Value::Nil)
}

/// Sort by `options`: `[key]` or `[key, reverse]`, key a function or nil.
/// Stable, also in reverse (as Python's `reverse=True`): equal items keep
/// their order.
fn sort_with(
    it: &mut Interp,
    items: &mut Vec<Value>,
    name: &str,
    options: &[Value],
) -> Result<(), RuntimeError> {
    let key = options.first().filter(|k| !matches!(k, Value::Nil));
    let reverse = match options.get(1) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(RuntimeError::new(
                kind::TYPE,
                format!(
                    "{}()'s third argument says whether to reverse: true or false, not {}",
                    name,
                    describe(other)
                ),
            ))
        }
    };
    if let Some(k) = key.filter(|k| !is_callable(k)) {
        let help = if matches!(k, Value::Bool(_)) {
            format!(
                "the key function comes first: {}(xs, nil, true) sorts in reverse",
                name
            )
        } else {
            format!(
                "pass a function of one item: {}(xs, fn(x) {{ return x[1] }})",
                name
            )
        };
        return Err(RuntimeError::new(
            kind::TYPE,
            format!(
                "{}()'s second argument is a key function (or nil), not {}",
                name,
                describe(k)
            ),
        )
        .with_help(help));
    }
    let keys = match key {
        Some(k) => {
            let mut keys = Vec::with_capacity(items.len());
            for x in items.iter() {
                keys.push(call(it, k, vec![x.clone()])?);
            }
            Some(keys)
        }
        None => None,
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    let by = keys.as_deref().unwrap_or(items);
    let mut failure = None;
    order.sort_by(|&a, &b| {
        let (x, y) = if reverse { (b, a) } else { (a, b) };
        ops::compare(&by[x], &by[y]).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            Ordering::Equal
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let mut taken: Vec<Option<Value>> = std::mem::take(items).into_iter().map(Some).collect();
    *items = order
        .into_iter()
        .filter_map(|i| taken.get_mut(i).and_then(Option::take))
        .collect();
    Ok(())
}

/// `round(x)`: the nearest int, a half to the even one (Python's banker's
/// rounding: `round(2.5)` is 2). `round(x, n)`: to n decimal places (n < 0:
/// to tens, hundreds...), of the float's exact value, so `round(2.675, 2)`
/// is 2.67 as in Python (2.675 is stored as 2.67499999...); a float stays a
/// float, an int an int.
pub fn round(_: &mut Interp, args: Vec<Value>) -> Res {
    arity("round", &args, 1, 2)?;
    let places = match args.get(1) {
        None | Some(Value::Nil) => None,
        Some(v) => Some(expect_int("round", v)?),
    };
    match (&args[0], places) {
        (Value::Int(i), None) => Ok(Value::Int(*i)),
        (Value::Int(i), Some(n)) if n >= 0 => Ok(Value::Int(*i)),
        (Value::Int(i), Some(n)) => {
            let digits = round_digits(&i.unsigned_abs().to_string(), n.unsigned_abs(), false);
            let magnitude = digits.parse::<i128>().unwrap_or(i128::MAX);
            let signed = if *i < 0 { -magnitude } else { magnitude };
            i64::try_from(signed).map(Value::Int).map_err(|_| {
                RuntimeError::new(
                    kind::OVERFLOW,
                    format!("round({}, {}) does not fit in a 64-bit int", i, n),
                )
            })
        }
        (Value::Float(f), None) => float_to_int(*f),
        (Value::Float(f), Some(n)) => Ok(Value::Float(round_float(*f, n))),
        (other, _) => Err(RuntimeError::new(
            kind::TYPE,
            format!("round() needs a number, not {}", describe(other)),
        )),
    }
}

fn float_to_int(f: f64) -> Res {
    if f.is_nan() {
        return Err(RuntimeError::new(
            kind::VALUE,
            "round(nan): nan is not a number",
        ));
    }
    let r = f.round_ties_even();
    if !r.is_finite() || r.abs() >= 9_223_372_036_854_775_808.0 {
        return Err(RuntimeError::new(
            kind::OVERFLOW,
            format!(
                "round({}) does not fit in a 64-bit int",
                super::value::format_float(f)
            ),
        ));
    }
    Ok(Value::Int(r as i64))
}

fn round_float(f: f64, places: i64) -> f64 {
    if !f.is_finite() || f == 0.0 {
        return f;
    }
    if places >= 0 {
        // Past 330 places every float is already exact.
        if places > 330 {
            return f;
        }
        // The exact decimal expansion, rounded half to even.
        return format!("{:.*}", places as usize, f).parse().unwrap_or(f);
    }
    let drop = places.unsigned_abs();
    if drop > 310 {
        return 0.0_f64.copysign(f);
    }
    let whole = format!("{:.0}", f.abs().trunc());
    let digits = round_digits(&whole, drop, f.fract() != 0.0);
    digits.parse::<f64>().map_or(f, |r| r.copysign(f))
}

/// The decimal `digits` rounded to a multiple of 10^drop, half to even;
/// `more` says nonzero digits follow the ones given (a fraction).
fn round_digits(digits: &str, drop: u64, more: bool) -> String {
    let drop = drop as usize;
    let padded = format!("{:0>width$}", digits, width = drop + 1);
    let (kept, dropped) = padded.split_at(padded.len() - drop);
    let first = dropped.as_bytes().first().copied().unwrap_or(b'0');
    let rest_nonzero = more || dropped.bytes().skip(1).any(|b| b != b'0');
    let last_odd = kept.bytes().last().is_some_and(|b| (b - b'0') % 2 == 1);
    let up = first > b'5' || (first == b'5' && (rest_nonzero || last_odd));
    let mut kept = kept.as_bytes().to_vec();
    if up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let mut out = String::from_utf8(kept).unwrap_or_default();
    out.extend(std::iter::repeat_n('0', drop));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_is_python_round() {
        let int = |f: f64| float_to_int(f).ok().map(|v| v.to_repr());
        assert_eq!(int(2.5).as_deref(), Some("2"));
        assert_eq!(int(3.5).as_deref(), Some("4"));
        assert_eq!(int(-2.5).as_deref(), Some("-2"));
        assert_eq!(int(0.5).as_deref(), Some("0"));
        assert!(int(1e300).is_none());
        assert!(int(f64::NAN).is_none());
        assert_eq!(round_float(2.675, 2), 2.67);
        assert_eq!(round_float(0.125, 2), 0.12);
        assert_eq!(round_float(0.375, 2), 0.38);
        assert_eq!(round_float(1234.5678, -2), 1200.0);
        assert_eq!(round_float(1250.0, -2), 1200.0);
        assert_eq!(round_float(1350.0, -2), 1400.0);
        assert_eq!(round_float(1250.5, -2), 1300.0);
        assert_eq!(round_float(-1250.0, -2), -1200.0);
        assert_eq!(round_float(5.0, -1), 0.0);
        assert_eq!(round_float(15.0, -1), 20.0);
        assert_eq!(round_float(999.9, -3), 1000.0);
        assert_eq!(round_digits("1250", 2, false), "1200");
        assert_eq!(round_digits("95", 1, false), "100");
        assert_eq!(round_digits("5", 3, false), "0000");
        assert_eq!(round_digits("", 1, true), "00");
    }
}
