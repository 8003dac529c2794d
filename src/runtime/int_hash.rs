//! A hasher for maps keyed by small integers and addresses (thread ids,
//! footprint keys, object addresses) and by the names of a script's
//! globals: the standard SipHash defends against crafted keys, which these
//! are not, and costs most of a lookup.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply and a fold per integer written.
#[derive(Default)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits (where the table looks first)
        // as poorly spread as aligned addresses: fold the high ones in.
        self.0 ^ (self.0 >> 32)
    }

    /// Eight bytes at a time (names of globals are hashed too).
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type IntBuild = BuildHasherDefault<IntHasher>;
pub type IntMap<K, V> = HashMap<K, V, IntBuild>;
pub type IntSet<K> = HashSet<K, IntBuild>;
