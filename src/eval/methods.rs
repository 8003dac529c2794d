//! Methods on data values (`s.upper()`, `xs.append(v)`, `m.get(k, d)`) and
//! fields of values (`e.kind`). Handle methods and fields (`q.size()`,
//! `t.name`) are in `handles.rs`.

use super::builtins::{arity, expect_int, pop_list, sort_values};
pub(super) use super::value::args::no_method;
use super::value::{Items, Key, List, Map, Value};
use super::{describe, Interp, R};
use crate::ast::Ident;
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::habits;
use crate::span::Span;

type Res = Result<Value, RuntimeError>;

impl Interp {
    pub(super) fn call_method(
        &mut self,
        target: &Value,
        method: &Ident,
        args: Vec<Value>,
        span: Span,
    ) -> R<Value> {
        let name = &*method.name;
        let result = match target {
            Value::Str(s) => str_method(s, name, &args),
            // With a key function it calls back into the program.
            Value::List(l) if name == "sort" && !args.is_empty() => {
                self.builtin_site = span;
                super::seq::sort_list(self, l, &args)
            }
            Value::List(l) => list_method(l, name, &args),
            Value::Map(m) => map_method(m, name, &args),
            Value::Handle(h) => {
                return self
                    .handle_method(h, name, args, span)
                    .map_err(|e| self.python_habit(e, target, method, span))
            }
            Value::Func(_) | Value::Builtin(_) if name == "call" => {
                return self.call_value(target, args, span)
            }
            _ => Err(no_method(target, name)),
        };
        result.map_err(|e| self.python_habit(Box::new(e.at(span)), target, method, span))
    }

    /// A failed `target.method(...)` whose method is Python's (`q.put(1)`)
    /// gets the conc form as its help. Such a method exists on no object
    /// of that kind, so the failure can only be the missing method, here
    /// or in the process that owns the object.
    #[cold]
    fn python_habit(
        &self,
        mut e: Box<RuntimeError>,
        target: &Value,
        method: &Ident,
        span: Span,
    ) -> Box<RuntimeError> {
        if e.help.is_some() {
            return e;
        }
        let text = |start: u32, end: u32| {
            self.ctx
                .source_text(Span::new(span.src, start as usize, end as usize))
        };
        // The call is `target . method ( args )`.
        let before = text(span.start, method.span.start.max(span.start));
        let after = text(method.span.end.min(span.end), span.end);
        let written = habits::Written {
            target: before.trim_end().trim_end_matches('.').trim(),
            args: after
                .trim()
                .strip_prefix('(')
                .and_then(|a| a.strip_suffix(')'))
                .unwrap_or_default(),
        };
        e.help = habits::method_help(target.type_name(), &method.name, written);
        e
    }
}

impl Interp {
    /// `v.name` without a call: data about a value (handles, errors).
    pub(super) fn field(&mut self, v: &Value, name: &Ident) -> R<Value> {
        let found = match v {
            Value::Error(e) => match &*name.name {
                "kind" => Some(Value::str(&e.kind)),
                "message" => Some(Value::str(&e.message)),
                "line" => Some(
                    e.span
                        .and_then(|s| {
                            self.ctx
                                .sources
                                .get(s.src)
                                .map(|src| src.line_col(s.start).0)
                        })
                        .map_or(Value::Nil, |l| Value::Int(l as i64)),
                ),
                _ => None,
            },
            Value::Handle(h) => self.handle_field(h, &name.name),
            _ => None,
        };
        found.ok_or_else(|| {
            Box::new(
                RuntimeError::new(
                    kind::TYPE,
                    format!("{} has no field `{}`", v.type_name(), name.name),
                )
                .at(name.span),
            )
        })
    }
}

fn expect_str<'a>(what: &str, v: &'a Value) -> Result<&'a str, RuntimeError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(RuntimeError::new(
            kind::TYPE,
            format!("{} needs a string, not {}", what, describe(other)),
        )),
    }
}

fn strs(items: Vec<&str>) -> Value {
    Value::list(items.into_iter().map(Value::str).collect())
}

fn str_method(s: &super::value::Str, name: &str, args: &[Value]) -> Res {
    let one = |n: usize| arity(name, args, n, n);
    match name {
        "upper" => one(0).map(|_| Value::str(&s.to_uppercase())),
        "lower" => one(0).map(|_| Value::str(&s.to_lowercase())),
        "strip" => one(0).map(|_| Value::str(s.trim())),
        "len" => one(0).map(|_| Value::Int(s.chars().count() as i64)),
        "split" => {
            arity(name, args, 0, 1)?;
            Ok(match args.first() {
                Some(sep) => {
                    let sep = expect_str("split()", sep)?;
                    if sep.is_empty() {
                        return Err(RuntimeError::new(
                            kind::VALUE,
                            "split() with an empty separator",
                        ));
                    }
                    strs(s.split(sep).collect())
                }
                None => strs(s.split_whitespace().collect()),
            })
        }
        "join" => {
            one(1)?;
            let items = super::builtins::iteration_items(&args[0])?;
            let parts: Vec<String> = items.iter().map(Value::to_display).collect();
            Ok(Value::str(&parts.join(s)))
        }
        "replace" => {
            one(2)?;
            let (from, to) = (
                expect_str("replace()", &args[0])?,
                expect_str("replace()", &args[1])?,
            );
            Ok(Value::str(&s.replace(from, to)))
        }
        "startswith" => {
            one(1).and_then(|_| Ok(Value::Bool(s.starts_with(expect_str(name, &args[0])?))))
        }
        "endswith" => {
            one(1).and_then(|_| Ok(Value::Bool(s.ends_with(expect_str(name, &args[0])?))))
        }
        "find" => {
            one(1)?;
            let needle = expect_str("find()", &args[0])?;
            Ok(Value::Int(match s.find(needle) {
                Some(byte) => s[..byte].chars().count() as i64,
                None => -1,
            }))
        }
        "format" => Ok(Value::str(&super::format::format_template(s, args)?)),
        _ => Err(no_method(&Value::Str(s.clone()), name)),
    }
}

fn list_method(l: &List, name: &str, args: &[Value]) -> Res {
    let one = |n: usize| arity(name, args, n, n);
    match name {
        "append" | "push" => {
            one(1)?;
            l.lock().push(args[0].clone());
            Ok(Value::Nil)
        }
        "pop" => {
            arity(name, args, 0, 1)?;
            pop_list(l, args.first())
        }
        "insert" => {
            one(2)?;
            let mut items = l.lock();
            let i = expect_int("insert", &args[0])?;
            let len = items.len() as i64;
            let pos = if i < 0 { (i + len).max(0) } else { i.min(len) };
            items.insert(pos as usize, args[1].clone());
            Ok(Value::Nil)
        }
        "remove" => {
            one(1)?;
            // Compared on a snapshot with the list let go (the value may
            // hold the list, and comparing or showing it locks it), then
            // removed if that entry is still where it was; looked for
            // again if another thread changed the list meanwhile.
            loop {
                let seen = l.lock().clone();
                let Some(i) = seen.iter().position(|v| v.equals(&args[0])) else {
                    return Err(RuntimeError::new(
                        kind::VALUE,
                        format!("{} is not in the list", args[0].to_repr()),
                    ));
                };
                let mut items = l.lock();
                let unchanged = items.len() == seen.len()
                    && items
                        .iter()
                        .zip(&seen)
                        .take(i + 1)
                        .all(|(now, then)| now.same_entry(then));
                if unchanged {
                    items.remove(i);
                    return Ok(Value::Nil);
                }
            }
        }
        "index" => {
            one(1)?;
            let items = l.lock().clone();
            items
                .iter()
                .position(|v| v.equals(&args[0]))
                .map(|i| Value::Int(i as i64))
                .ok_or_else(|| {
                    RuntimeError::new(
                        kind::VALUE,
                        format!("{} is not in the list", args[0].to_repr()),
                    )
                })
        }
        "count" => {
            one(1)?;
            let items = l.lock().clone();
            Ok(Value::Int(
                items.iter().filter(|v| v.equals(&args[0])).count() as i64,
            ))
        }
        "extend" => {
            one(1)?;
            let more = super::builtins::iteration_items(&args[0])?;
            l.lock().extend(more);
            Ok(Value::Nil)
        }
        "sort" => {
            one(0)?;
            let mut items = l.lock().clone();
            sort_values(&mut items)?;
            *l.lock() = Items(items);
            Ok(Value::Nil)
        }
        "reverse" => one(0).map(|_| {
            l.lock().reverse();
            Value::Nil
        }),
        "copy" => one(0).map(|_| Value::list(l.lock().clone())),
        "len" => one(0).map(|_| Value::Int(l.lock().len() as i64)),
        "clear" => one(0).map(|_| {
            l.lock().clear();
            Value::Nil
        }),
        _ => Err(no_method(&Value::List(l.clone()), name)),
    }
}

fn map_method(m: &Map, name: &str, args: &[Value]) -> Res {
    let one = |n: usize| arity(name, args, n, n);
    match name {
        "get" => {
            arity(name, args, 1, 2)?;
            let key = Key::from_value(&args[0])?;
            let found = m.lock().get(&key).cloned();
            Ok(found.unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Nil)))
        }
        "keys" => one(0).map(|_| Value::list(m.lock().keys().map(Key::to_value).collect())),
        "values" => one(0).map(|_| Value::list(m.lock().values().cloned().collect())),
        "items" => one(0).map(|_| {
            Value::list(
                m.lock()
                    .iter()
                    .map(|(k, v)| Value::list(vec![k.to_value(), v.clone()]))
                    .collect(),
            )
        }),
        "pop" => {
            arity(name, args, 1, 2)?;
            let key = Key::from_value(&args[0])?;
            match (m.lock().shift_remove(&key), args.get(1)) {
                (Some(v), _) => Ok(v),
                (None, Some(default)) => Ok(default.clone()),
                (None, None) => Err(RuntimeError::new(
                    kind::KEY,
                    format!("key {} is not in the map", args[0].to_repr()),
                )),
            }
        }
        "update" => {
            one(1)?;
            let Value::Map(other) = &args[0] else {
                return Err(RuntimeError::new(kind::TYPE, "update() needs a map"));
            };
            let entries = other.lock().clone();
            m.lock().extend(entries);
            Ok(Value::Nil)
        }
        "copy" => one(0).map(|_| Value::map(m.lock().clone())),
        "len" => one(0).map(|_| Value::Int(m.lock().len() as i64)),
        _ => Err(no_method(&Value::Map(m.clone()), name)),
    }
}
