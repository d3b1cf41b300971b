//! A backend's circuit breaker and latency estimate.
//!
//! After [`TRIP_AFTER`] failures in a row (no answer, a refused connection, a
//! 502/503/504 before the first byte) the breaker opens: the backend gets no
//! requests for [`OPEN_FOR`]. Then it is half-open: one request may probe it
//! (and the breaker re-arms, so a probe that is never sent cannot wedge it);
//! a success closes it, a failure opens it again. Answers also feed an
//! exponentially weighted moving average of the time to the first byte, which
//! the choice between backends uses.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Consecutive failures that open the breaker.
pub const TRIP_AFTER: u32 = 5;
/// How long an open breaker keeps requests away.
pub const OPEN_FOR: Duration = Duration::from_secs(5);
/// Weight of the newest sample in the latency average, in 1/16ths.
const NEWEST_SIXTEENTHS: u64 = 3;

/// The breaker of one backend; shared by every worker.
pub struct Breaker {
    epoch: Instant,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the breaker is open; 0 when closed.
    open_until_ms: AtomicU64,
    /// Average time to the first byte, in microseconds; 0 before the first answer.
    latency_us: AtomicU64,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
        }
    }
}

impl Breaker {
    fn now_ms(&self, now: Instant) -> u64 {
        // Never 0, which means closed.
        now.saturating_duration_since(self.epoch).as_millis() as u64 + 1
    }

    /// Whether a request may be sent at `now`: always while closed, never while
    /// open, and to exactly one caller per [`OPEN_FOR`] while half-open.
    pub fn admits(&self, now: Instant) -> bool {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms(now);
        if now < until {
            return false;
        }
        let rearmed = now + OPEN_FOR.as_millis() as u64;
        self.open_until_ms.compare_exchange(until, rearmed, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Whether the breaker keeps requests away at `now` (open, not yet probing).
    pub fn is_open(&self, now: Instant) -> bool {
        let until = self.open_until_ms.load(Ordering::Acquire);
        until != 0 && self.now_ms(now) < until
    }

    /// An answer came after `first_byte`: the breaker closes.
    pub fn succeeded(&self, first_byte: Duration) {
        self.failures.store(0, Ordering::Release);
        self.open_until_ms.store(0, Ordering::Release);
        let sample = first_byte.as_micros().max(1) as u64;
        let old = self.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 { sample } else { (old * (16 - NEWEST_SIXTEENTHS) + sample * NEWEST_SIXTEENTHS) / 16 };
        self.latency_us.store(new, Ordering::Relaxed);
    }

    /// A request failed at `now`; the breaker opens after [`TRIP_AFTER`] in a row, or when a probe fails.
    pub fn failed(&self, now: Instant) {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let probing = self.open_until_ms.load(Ordering::Acquire) != 0;
        if failures >= TRIP_AFTER || probing {
            let until = self.now_ms(now) + OPEN_FOR.as_millis() as u64;
            if self.open_until_ms.swap(until, Ordering::AcqRel) == 0 {
                tracing::warn!(failures, "circuit breaker open: the backend gets no requests for {OPEN_FOR:?}");
            }
        }
    }

    /// The average time to the first byte, in microseconds (0: no answer yet).
    pub fn latency_us(&self) -> u64 {
        self.latency_us.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_open_it_and_one_probe_at_a_time_may_close_it() {
        let breaker = Breaker::default();
        let start = Instant::now();
        let later = |ms: u64| start + Duration::from_millis(ms);
        for n in 1..TRIP_AFTER {
            breaker.failed(later(n as u64));
            assert!(breaker.admits(later(n as u64)), "still closed after {n} failures");
        }
        breaker.failed(later(10));
        assert!(!breaker.admits(later(11)) && breaker.is_open(later(11)));
        assert!(!breaker.admits(later(4_000)));
        // Half-open: one probe, then it is closed to the others again.
        let half_open = later(10 + OPEN_FOR.as_millis() as u64 + 1);
        assert!(breaker.admits(half_open));
        assert!(!breaker.admits(half_open));
        // The probe fails: open again, at once.
        breaker.failed(half_open);
        assert!(!breaker.admits(half_open + Duration::from_millis(100)));
        // The next probe succeeds: closed.
        let next = half_open + OPEN_FOR + Duration::from_millis(1);
        assert!(breaker.admits(next));
        breaker.succeeded(Duration::from_millis(8));
        assert!(breaker.admits(next) && breaker.admits(next) && !breaker.is_open(next));
        // One failure after a success does not open it.
        breaker.failed(next);
        assert!(breaker.admits(next));
    }

    #[test]
    fn latency_is_a_moving_average_of_first_bytes() {
        let breaker = Breaker::default();
        assert_eq!(breaker.latency_us(), 0);
        breaker.succeeded(Duration::from_micros(1_600));
        assert_eq!(breaker.latency_us(), 1_600);
        breaker.succeeded(Duration::from_micros(3_200));
        assert_eq!(breaker.latency_us(), (1_600 * 13 + 3_200 * 3) / 16);
    }
}
