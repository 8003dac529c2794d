//! Plain values as bytes: what a handoff between processes carries
//! (`runtime/handoff.rs`) without the connection's codec. Plain is nil,
//! booleans, numbers, strings, and lists and maps of plain values where no
//! list or map appears twice (a copy could not keep the sharing); anything
//! else gives `None` and travels over the connection, as before.

use super::{Key, Value};
use indexmap::IndexMap;

/// Containers nest at most this deep in a plain value.
const DEPTH: usize = 32;

const NIL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STR: u8 = 5;
const LIST: u8 = 6;
const MAP: u8 = 7;

/// `v` in at most `limit` bytes, if it is plain and fits.
pub fn encode(v: &Value, limit: usize) -> Option<Vec<u8>> {
    let mut out = Encoder {
        bytes: Vec::new(),
        limit,
        seen: Vec::new(),
    };
    out.value(v, 0)?;
    Some(out.bytes)
}

struct Encoder {
    bytes: Vec<u8>,
    limit: usize,
    /// The lists and maps met so far.
    seen: Vec<*const ()>,
}

impl Encoder {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        (self.bytes.len() + bytes.len() <= self.limit).then(|| self.bytes.extend_from_slice(bytes))
    }

    fn count(&mut self, tag: u8, n: usize) -> Option<()> {
        self.put(&[tag])?;
        self.put(&u32::try_from(n).ok()?.to_le_bytes())
    }

    fn first_visit(&mut self, p: *const ()) -> Option<()> {
        if self.seen.contains(&p) {
            return None;
        }
        self.seen.push(p);
        Some(())
    }

    fn value(&mut self, v: &Value, depth: usize) -> Option<()> {
        match v {
            Value::Nil => self.put(&[NIL]),
            Value::Bool(false) => self.put(&[FALSE]),
            Value::Bool(true) => self.put(&[TRUE]),
            Value::Int(i) => {
                self.put(&[INT])?;
                self.put(&i.to_le_bytes())
            }
            Value::Float(f) => {
                self.put(&[FLOAT])?;
                self.put(&f.to_bits().to_le_bytes())
            }
            Value::Str(s) => {
                self.count(STR, s.len())?;
                self.put(s.as_bytes())
            }
            // A snapshot of each list and map (as the connection's codec
            // takes), so no lock is held while another is taken.
            Value::List(l) if depth < DEPTH => {
                self.first_visit(std::sync::Arc::as_ptr(l).cast())?;
                let items = l.lock().clone();
                self.count(LIST, items.len())?;
                items.iter().try_for_each(|x| self.value(x, depth + 1))
            }
            Value::Map(m) if depth < DEPTH => {
                self.first_visit(std::sync::Arc::as_ptr(m).cast())?;
                let entries = m.lock().clone();
                self.count(MAP, entries.len())?;
                entries.iter().try_for_each(|(k, x)| {
                    self.value(&k.to_value(), depth + 1)?;
                    self.value(x, depth + 1)
                })
            }
            _ => None,
        }
    }
}

/// The value `encode` wrote; `None` for bytes it cannot have written.
pub fn decode(bytes: &[u8]) -> Option<Value> {
    let mut d = Decoder { bytes, at: 0 };
    let v = d.value(0)?;
    (d.at == bytes.len()).then_some(v)
}

struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let got = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(got)
    }

    fn word(&mut self) -> Option<[u8; 8]> {
        self.take(8)?.try_into().ok()
    }

    fn count(&mut self) -> Option<usize> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        // Every element takes a byte at least: a count cannot promise more.
        (n <= self.bytes.len() - self.at).then_some(n)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        let tag = *self.take(1)?.first()?;
        Some(match tag {
            NIL => Value::Nil,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::Int(i64::from_le_bytes(self.word()?)),
            FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(self.word()?))),
            STR => {
                let n = self.count()?;
                Value::str(std::str::from_utf8(self.take(n)?).ok()?)
            }
            LIST if depth < DEPTH => {
                let n = self.count()?;
                let items = (0..n)
                    .map(|_| self.value(depth + 1))
                    .collect::<Option<Vec<_>>>()?;
                Value::list(items)
            }
            MAP if depth < DEPTH => {
                let n = self.count()?;
                let mut entries = IndexMap::with_capacity(n);
                for _ in 0..n {
                    let k = Key::from_value(&self.value(depth + 1)?).ok()?;
                    entries.insert(k, self.value(depth + 1)?);
                }
                Value::map(entries)
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(v: &Value) -> Value {
        decode(&encode(v, 4096).expect("plain")).expect("decodes")
    }

    #[test]
    fn plain_values_come_back_equal() {
        let mut m = IndexMap::new();
        m.insert(
            Key::Str(std::sync::Arc::new("k".to_string())),
            Value::Float(1.5),
        );
        m.insert(
            Key::Int(-3),
            Value::list(vec![Value::Nil, Value::Bool(true)]),
        );
        let v = Value::list(vec![
            Value::Int(i64::MIN),
            Value::str("héllo"),
            Value::map(m),
        ]);
        assert_eq!(round(&v).to_repr(), v.to_repr());
    }

    #[test]
    fn shared_lists_too_big_or_too_deep_are_not_plain() {
        let inner = Value::list(vec![Value::Int(1)]);
        assert!(encode(&Value::list(vec![inner.clone(), inner]), 4096).is_none());
        assert!(encode(&Value::str(&"x".repeat(100)), 50).is_none());
        let mut deep = Value::Nil;
        for _ in 0..DEPTH + 1 {
            deep = Value::list(vec![deep]);
        }
        assert!(encode(&deep, 4096).is_none());
    }

    /// The bytes come from another process's memory: whatever they are,
    /// decoding them gives a value or `None`, never a panic or a hang.
    #[test]
    fn any_bytes_decode_or_are_refused() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let good = encode(
            &Value::list(vec![
                Value::str("ab"),
                Value::Int(7),
                Value::list(vec![Value::Nil]),
            ]),
            100,
        )
        .unwrap();
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            for _ in 0..(next() % 4) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            if next() % 3 == 0 {
                bytes = (0..next() % 40).map(|_| (next() % 9) as u8).collect();
            }
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn damaged_bytes_are_refused() {
        let good = encode(&Value::list(vec![Value::str("ab")]), 100).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_none(), "cut at {cut}");
        }
        assert!(decode(&[LIST, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(decode(&[9]).is_none());
    }
}
