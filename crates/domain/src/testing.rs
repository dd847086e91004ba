//! Test support (the `testing` feature): a clock the test sets.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Clock;

/// A [`Clock`] that stands still until the test moves it; shareable between threads, as a
/// component's clock is between concurrent requests.
pub struct FixedClock(AtomicU64);

impl FixedClock {
    /// A clock reading `ms` milliseconds since the Unix epoch.
    pub fn at(ms: u64) -> FixedClock {
        FixedClock(AtomicU64::new(ms))
    }

    /// Moves the clock `ms` milliseconds on.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
