//! Checking what a builtin or method was given.

use super::{describe, Key, Value};
use crate::diagnostics::{kind, RuntimeError};
use std::time::Duration;

pub fn arity(name: &str, args: &[Value], min: usize, max: usize) -> Result<(), RuntimeError> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            format!("{}", min)
        } else {
            format!("{} to {}", min, max)
        };
        return Err(RuntimeError::new(
            kind::TYPE,
            format!(
                "{}() takes {} arguments but {} were given",
                name,
                want,
                args.len()
            ),
        ));
    }
    Ok(())
}

pub fn expect_int(name: &str, v: &Value) -> Result<i64, RuntimeError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("{}() needs an int, not {}", name, describe(other)),
        )),
    }
}

/// Seconds as given to `sleep`, timeouts and timers.
pub fn expect_seconds(name: &str, v: &Value) -> Result<Duration, RuntimeError> {
    let secs = match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        other => {
            return Err(RuntimeError::new(
                kind::TYPE,
                format!(
                    "{} needs a number of seconds, not {}",
                    name,
                    describe(other)
                ),
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(RuntimeError::new(
            kind::VALUE,
            format!(
                "{} needs a non-negative number of seconds, not {}",
                name,
                v.to_repr()
            ),
        ));
    }
    Ok(Duration::from_secs_f64(secs.min(1e9)))
}

/// An int argument of at least `min`, `default` when it is not given.
pub fn positive(
    name: &str,
    v: Option<&Value>,
    default: i64,
    min: i64,
) -> Result<i64, RuntimeError> {
    let n = match v {
        Some(v) => expect_int(name, v)?,
        None => default,
    };
    if n < min {
        return Err(RuntimeError::new(
            kind::VALUE,
            format!("{}() needs a number of at least {}, not {}", name, min, n),
        ));
    }
    Ok(n)
}

/// What `for x in v` walks: list items, map keys, string chars.
pub fn iteration_items(v: &Value) -> Result<Vec<Value>, RuntimeError> {
    match v {
        Value::List(l) => Ok(l.lock().clone()),
        Value::Map(m) => Ok(m.lock().keys().map(Key::to_value).collect()),
        Value::Str(s) => Ok(s
            .chars()
            .map(|c| Value::str(c.encode_utf8(&mut [0; 4])))
            .collect()),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("cannot iterate over {}", describe(other)),
        )),
    }
}

/// Only functions can be called, spawned or submitted.
pub fn check_callable(v: &Value) -> Result<(), RuntimeError> {
    match v {
        Value::Func(_) | Value::Builtin(_) => Ok(()),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("{} is not callable", describe(other)),
        )),
    }
}

/// `v.name(...)` where `v` has no such method.
pub fn no_method(target: &Value, name: &str) -> RuntimeError {
    RuntimeError::new(
        kind::TYPE,
        format!("{} has no method `{}`", describe(target), name),
    )
}
