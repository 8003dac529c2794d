//! Overwriting a slot cheaply: dropping the old value costs a call only
//! when it owns something.

use crate::eval::value::Value;

/// Overwrite a slot. Dropping the old value is a call (and a reference
/// count) only when it owns something: ints stay inline.
#[inline]
pub(super) fn put(place: &mut Value, v: Value) {
    forget_or_drop(std::mem::replace(place, v));
}

#[inline]
pub(super) fn forget_or_drop(v: Value) {
    if owns_heap(&v) {
        drop_value(v);
    } else {
        std::mem::forget(v);
    }
}

#[inline]
fn owns_heap(v: &Value) -> bool {
    !matches!(
        v,
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Builtin(_)
    )
}

#[inline(never)]
fn drop_value(v: Value) {
    drop(v);
}
