//! The ports: everything the domain needs from outside, as traits. The
//! storage engines (`grantry-store`), the keyring (`grantry-crypto`) and the
//! HTTP client (`grantry-server::outbound`) implement them. For tests (the
//! feature `testing`): `testing` has the manual clock, `memory` the in-memory
//! store, and `conformance` the suite every store engine must pass.

mod http;
mod store;

pub use http::*;
pub use store::*;

use std::time::Duration;

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::{Error, Id, Sealed};

/// Seals and opens secret field values. `context` binds a ciphertext to its
/// record and field, so a sealed value copied elsewhere does not open.
pub trait Sealer: Send + Sync {
    fn seal(&self, plaintext: &str, context: &str) -> Result<Sealed, Error>;
    fn open(&self, sealed: &Sealed, context: &str) -> Result<SecretString, Error>;
}

/// The context a secret field of a record is sealed under.
pub fn seal_context(id: &Id, field: &str) -> String {
    format!("{id}/{field}")
}

/// Time, as a port, so that the domain never reads the system clock or
/// sleeps by itself: tests drive it with `testing::ManualClock`, which moves
/// time forward instead of waiting. (Template budgets are the exception: they
/// bound real work, so they measure real time; see `template::engine`.)
#[async_trait::async_trait]
pub trait Clock: Send + Sync {
    /// Now, in whole milliseconds: the precision times are stored with, so a
    /// time read back equals the one written.
    fn now(&self) -> OffsetDateTime;
    /// Waits `duration` (retry backoff, waiting for another process's refresh).
    async fn sleep(&self, duration: Duration);
}

pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        whole_milliseconds(OffsetDateTime::now_utc())
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// `t` without its sub-millisecond part.
pub fn whole_milliseconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(t)
}
