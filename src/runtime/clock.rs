//! Time as the language sees it. All waits measure deadlines through here, so
//! a virtual clock can replace the real one under a controlled scheduler.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

pub fn now() -> Instant {
    Instant::now()
}

/// `time()`: monotonic seconds since this process started its clock.
pub fn now_seconds() -> f64 {
    epoch().elapsed().as_secs_f64()
}

pub fn deadline_after(d: Duration) -> Instant {
    // Saturate absurd timeouts instead of overflowing Instant.
    now()
        .checked_add(d)
        .unwrap_or_else(|| now() + Duration::from_secs(86_400 * 365))
}
