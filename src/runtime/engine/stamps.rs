//! The recorder's clock. Reading the session clock costs a system-clock
//! read at every step, which is most of what tracing a tight loop costs;
//! where the kernel itself keeps time by the CPU's time-stamp counter (its
//! clocksource is `tsc`: invariant and in step on every core), marks take
//! the counter instead (a few nanoseconds) and are turned into session
//! nanoseconds when they are read, at the rate measured between the
//! recorder's start and that moment. Elsewhere the session clock it is.

use std::time::Instant;

pub struct Stamps {
    /// Where the session clock starts.
    epoch: Instant,
    /// The counter and the session clock read together at the start.
    start: Option<(u64, Instant)>,
}

/// How to turn stamps into session nanoseconds, fixed when marks are read.
#[derive(Clone, Copy)]
pub struct Rate {
    /// Counter at the start, session nanoseconds then, and nanoseconds per
    /// tick as a 32.32 fixed-point number.
    tsc0: u64,
    ns0: u64,
    per_tick: Option<u128>,
}

impl Stamps {
    pub fn new(epoch: Instant) -> Stamps {
        let start = counter_is_the_clock().then(|| (tick(), Instant::now()));
        Stamps { epoch, start }
    }

    /// Now, as a stamp.
    #[inline]
    pub fn now(&self) -> u64 {
        match self.start {
            Some(_) => tick(),
            None => self.epoch.elapsed().as_nanos() as u64,
        }
    }

    /// The rate as measured from the start to now.
    pub fn rate(&self) -> Rate {
        let Some((tsc0, at0)) = self.start else {
            return Rate {
                tsc0: 0,
                ns0: 0,
                per_tick: None,
            };
        };
        let (tsc1, at1) = (tick(), Instant::now());
        let ticks = u128::from(tsc1.saturating_sub(tsc0)).max(1);
        let ns = at1.duration_since(at0).as_nanos();
        Rate {
            tsc0,
            ns0: at0.duration_since(self.epoch).as_nanos() as u64,
            per_tick: Some((ns << 32) / ticks),
        }
    }
}

impl Rate {
    /// Stamps that are session nanoseconds already (tests).
    #[cfg(test)]
    pub fn identity() -> Rate {
        Rate {
            tsc0: 0,
            ns0: 0,
            per_tick: None,
        }
    }

    /// A stamp in session nanoseconds.
    pub fn ns(&self, stamp: u64) -> u64 {
        match self.per_tick {
            None => stamp,
            Some(per_tick) => {
                let ticks = u128::from(stamp.saturating_sub(self.tsc0));
                self.ns0 + ((ticks * per_tick) >> 32) as u64
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn tick() -> u64 {
    // SAFETY: rdtsc has no preconditions; every x86_64 CPU has it.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn tick() -> u64 {
    0
}

fn counter_is_the_clock() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|s| s.trim() == "tsc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_become_session_nanoseconds_in_order() {
        let epoch = Instant::now();
        let stamps = Stamps::new(epoch);
        let a = stamps.now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = stamps.now();
        let rate = stamps.rate();
        let (a, b) = (rate.ns(a), rate.ns(b));
        assert!(a <= b);
        // Generous: 20 ms of sleep is at least 15 ms and, on a loaded
        // machine, at most a few seconds.
        assert!(b - a >= 15_000_000, "{a} {b}");
        assert!(b <= epoch.elapsed().as_nanos() as u64 + 1_000_000);
    }
}
