//! The owner's side of the process protocol: another process's thread asks
//! for an operation on one of our objects, and its stand-in performs it here
//! with the same runtime operations a local thread would make. No evaluator
//! is involved: everything an object can do is defined by its kind.

use super::codec;
use super::link::Link;
use super::proxy::Remote;
use super::wire::{Op, Packet};
use crate::diagnostics::{kind, RuntimeError};
use crate::runtime::object::{Cx, Reply, Res};
use crate::runtime::queues::{self, Arm, Queue};
use crate::runtime::value::args::no_method;
use crate::runtime::value::{describe, Value};
use crate::runtime::{Context, Handle};
use std::sync::Arc;
use std::time::Duration;

/// Perform `op` on our object `h` for a thread of the process at the other
/// end of `from` (`cx.me` is its stand-in).
pub fn serve(cx: &Cx, from: &Arc<Link>, h: &Handle, op: Op) -> Res<Vec<Value>> {
    if let Handle::Remote(r) = h {
        return forward(cx, from, r, op);
    }
    let target = Value::Handle(h.clone());
    let obj = h.object();
    let deadline = |timeout: Option<f64>| deadline(cx.ctx, timeout);
    let unsupported = |what: &str| cannot(what, &target);
    match op {
        Op::Get { timeout } => obj
            .get(cx, deadline(timeout))
            .ok_or_else(|| unsupported("get from"))?
            .map(|got| got.into_iter().collect()),
        Op::Take { timeout, max } => {
            let q = queue_end(h, true).ok_or_else(|| unsupported("get from"))?;
            let got = q.get_leasing(
                cx,
                obj.label(),
                deadline(timeout),
                max as usize,
                from.arena(),
            )?;
            // The ticket, the caller's stand-in (see `Remote::taken`), the items.
            Ok(got.map_or_else(Vec::new, |got| {
                let ticket = got.ticket.map_or(Value::Nil, |t| Value::Int(t.to_int()));
                [ticket, stand_in(cx)]
                    .into_iter()
                    .chain(got.items)
                    .collect()
            }))
        }
        Op::Put { item, timeout } => {
            let item = codec::decode(from, cx.ctx, item)?
                .into_iter()
                .next()
                .unwrap_or_default();
            let put = obj
                .put(cx, item, deadline(timeout))
                .ok_or_else(|| unsupported("put into"))??;
            Ok(vec![Value::Bool(put), stand_in(cx)])
        }
        Op::Acquire { timeout } => {
            let taken = obj
                .acquire(cx, deadline(timeout))
                .ok_or_else(|| unsupported("acquire"))??;
            Ok(vec![Value::Bool(taken), stand_in(cx)])
        }
        Op::Release => {
            obj.release(cx, false)
                .ok_or_else(|| unsupported("release"))??;
            Ok(Vec::new())
        }
        Op::Wait { timeout } => {
            wait(cx, h, deadline(timeout)).ok_or_else(|| unsupported("wait on"))?
        }
        Op::Select { .. } => Err(unsupported("select on")),
        Op::Method { name, args } => {
            let args = codec::decode(from, cx.ctx, args)?;
            method(cx, h, &name, args)
        }
    }
}

/// Who acts here for the caller's thread, in the replies of acquires,
/// puts and takes: the id it writes into a lock's word when it takes the
/// lock itself, and announces itself by in a queue's handoff.
fn stand_in(cx: &Cx) -> Value {
    Value::Int(cx.me.id as i64)
}

/// A wait as the protocol answers it: a barrier that timed out answers
/// nothing, so the waiting side words the Timeout in its own terms.
fn wait(
    cx: &Cx,
    h: &Handle,
    deadline: Option<crate::runtime::engine::Time>,
) -> Option<Res<Vec<Value>>> {
    if let Handle::Barrier(b) = h {
        let label = format!("{} ({} parties)", b.label(), b.parties);
        let on = cx.block_on(label, deadline);
        return Some(
            b.wait(cx.ctx, cx.me, on)
                .map(|got| got.map(|i| Value::Int(i as i64)).into_iter().collect()),
        );
    }
    Some(h.object().wait(cx, deadline)?.map(|v| vec![v]))
}

/// A method, a field (`.name`) or `str`, asked for by another process.
fn method(cx: &Cx, h: &Handle, name: &str, args: Vec<Value>) -> Res<Vec<Value>> {
    let obj = h.object();
    if let Some(field) = name.strip_prefix('.') {
        return Ok(obj.field(cx, field).into_iter().collect());
    }
    if name == "str" {
        return Ok(vec![Value::str(&obj.describe())]);
    }
    match obj.method(cx, name, args) {
        Some(Ok(Reply::Value(v))) => Ok(vec![v]),
        // Only pools and futures run callbacks, and they never cross.
        Some(Ok(Reply::Callback(..))) => Ok(vec![Value::Nil]),
        Some(Err(e)) => Err(e),
        None => Err(no_method(&Value::Handle(h.clone()), name)),
    }
}

/// A `select` sent by another process over objects this one owns.
pub fn serve_select(
    cx: &Cx,
    from: &Arc<Link>,
    arms: Vec<(u64, Option<Packet>)>,
    timeout: Option<f64>,
) -> Res<Vec<Value>> {
    let mut local = Vec::with_capacity(arms.len());
    for (id, put) in arms {
        let h = from.exported(id).ok_or_else(|| {
            RuntimeError::new(kind::PROCESS, "select on an object that is not shared")
        })?;
        let target = Value::Handle(h.clone());
        let arm = match put {
            None => Arm::Get(queue_end(&h, true).ok_or_else(|| cannot("select on", &target))?),
            Some(p) => {
                let v = codec::decode(from, cx.ctx, p)?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                Arm::Put(
                    queue_end(&h, false).ok_or_else(|| cannot("select on", &target))?,
                    v,
                )
            }
        };
        local.push(arm);
    }
    let on = cx.block_on(String::new(), deadline(cx.ctx, timeout));
    Ok(match queues::select(cx.ctx, cx.me, &mut local, &on)? {
        Some((i, got)) => std::iter::once(Value::Int(i as i64)).chain(got).collect(),
        None => Vec::new(),
    })
}

/// Pass an operation on through this process's own proxy (an object
/// handed down to a grandchild): re-encode its values for the next link.
fn forward(cx: &Cx, from: &Arc<Link>, r: &Remote, op: Op) -> Res<Vec<Value>> {
    let relink = |p: Packet| -> Res<Packet> {
        let values = codec::decode(from, cx.ctx, p)?;
        codec::encode(&r.link, &values)
    };
    let take = matches!(op, Op::Take { .. });
    let names_stand_in = matches!(op, Op::Acquire { .. } | Op::Put { .. });
    let op = match op {
        // A lease's counter is in the owner's arena, which only its own
        // children map: a grandchild's gets are passed on one at a time.
        Op::Take { timeout, .. } => Op::Get { timeout },
        Op::Put { item, timeout } => Op::Put {
            item: relink(item)?,
            timeout,
        },
        Op::Method { name, args } => Op::Method {
            name,
            args: relink(args)?,
        },
        Op::Select { .. } => {
            return Err(RuntimeError::new(
                kind::TYPE,
                "select over objects passed on from another process is not supported",
            ))
        }
        other => other,
    };
    let on = cx.block_on(String::new(), None);
    let mut got = r.call(cx.ctx, cx.me, op, &on)?;
    // The stand-in the caller learns is ours, not ours at the next owner.
    if names_stand_in && got.len() > 1 {
        got[1] = stand_in(cx);
    }
    if take && !got.is_empty() {
        // Answered as a take without a lease.
        got.splice(0..0, [Value::Nil, stand_in(cx)]);
    }
    Ok(got)
}

/// The queue a get (or a put) on `h` works on: a pipe end reads from one
/// queue and writes to the other.
fn queue_end(h: &Handle, get: bool) -> Option<Arc<Queue>> {
    match h {
        Handle::Queue(q) => Some(q.clone()),
        Handle::Pipe(p) if get => Some(p.recv.clone()),
        Handle::Pipe(p) => Some(p.send.clone()),
        _ => None,
    }
}

fn deadline(ctx: &Context, timeout: Option<f64>) -> Option<crate::runtime::engine::Time> {
    timeout.map(|s| ctx.deadline_after(Duration::from_secs_f64(s.max(0.0))))
}

fn cannot(what: &str, v: &Value) -> RuntimeError {
    RuntimeError::new(kind::TYPE, format!("cannot {} {}", what, describe(v)))
}
