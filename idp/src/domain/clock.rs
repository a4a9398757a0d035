//! Time is injected so that expiry and rotation are testable without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// `seconds` as a duration, saturating at about ±292 million years instead of panicking:
/// durations an administrator or client controls are bounded at input, and this keeps a
/// value stored before a bound existed from taking down a worker.
pub fn seconds(seconds: i64) -> chrono::Duration {
    let bound = i64::MAX / 1000;
    chrono::Duration::try_seconds(seconds.clamp(-bound, bound)).unwrap_or(chrono::TimeDelta::MAX)
}

/// `time + seconds`, saturating at the latest representable time.
pub fn after(time: DateTime<Utc>, seconds_later: i64) -> DateTime<Utc> {
    time.checked_add_signed(seconds(seconds_later))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `time - seconds`, saturating at the earliest representable time.
pub fn before(time: DateTime<Utc>, seconds_earlier: i64) -> DateTime<Utc> {
    time.checked_sub_signed(seconds(seconds_earlier))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A whole number of seconds from an unsigned setting, saturating.
pub fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(time: DateTime<Utc>) -> Self {
        Self(Arc::new(AtomicI64::new(time.timestamp_millis())))
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.0.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arithmetic_saturates_instead_of_panicking() {
        let now = Utc::now();
        assert_eq!(after(now, i64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(before(now, i64::MAX), DateTime::<Utc>::MIN_UTC);
        let _ = before(now, i64::MIN);
        let _ = after(now, i64::MIN);
        assert_eq!(after(now, 60) - now, chrono::Duration::seconds(60));
        assert_eq!(secs(u64::MAX), i64::MAX);
    }
}
