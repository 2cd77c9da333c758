//! Second implementations of the ports, for tests: a clock that moves only
//! when told to (or when something sleeps on it). The in-memory store is in
//! `ports::memory`, the conformance suite every store engine must pass in
//! `ports::conformance`.

use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use super::{whole_milliseconds, Clock};

/// A clock that stands still: `sleep` moves it forward at once, so code that
/// waits or backs off runs without real time passing.
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn at(start: OffsetDateTime) -> ManualClock {
        ManualClock(Mutex::new(whole_milliseconds(start)))
    }
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = whole_milliseconds(*now + by);
    }
    pub fn set(&self, to: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = whole_milliseconds(to);
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
        // Let other tasks run, as a real sleep would.
        tokio::task::yield_now().await;
    }
}
