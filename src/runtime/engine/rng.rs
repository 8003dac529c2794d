//! The session's random numbers: SplitMix64 over one atomic counter, so
//! threads calling `random()` at once each get their own draw (no torn
//! state, no lock), and one seed gives one sequence.

use std::sync::atomic::{AtomicU64, Ordering};

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

pub struct Rng {
    state: AtomicU64,
}

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng {
            state: AtomicU64::new(seed),
        }
    }

    /// A seed that differs between runs and between processes started at once.
    pub fn fresh_seed() -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        mix(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn next(&self) -> u64 {
        mix(self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA))
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_sequence() {
        let (a, b) = (Rng::seeded(42), Rng::seeded(42));
        let xs: Vec<u64> = (0..5).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        assert_ne!(
            xs,
            (0..5).map(|_| Rng::seeded(43).next()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn threads_drawing_at_once_never_get_the_same_draw() {
        let rng = std::sync::Arc::new(Rng::seeded(7));
        let draws: Vec<Vec<u64>> = (0..4)
            .map(|_| {
                let rng = rng.clone();
                std::thread::spawn(move || (0..10_000).map(|_| rng.next()).collect())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        let mut all: Vec<u64> = draws.concat();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
