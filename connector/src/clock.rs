//! The one clock a connector reads. A request reads it once, at its start,
//! and every step of it (admission, enforcement, the receipt) works with
//! that instant, so no two steps can disagree on whether a policy is in
//! force. Tests pass a [`FixedClock`].

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Where a connector takes the time from.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// The current instant in unix seconds.
    fn unix(&self) -> i64 {
        self.now().timestamp()
    }
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that shows the instant it was last set to.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut now) = self.0.lock() {
            *now = at;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map_or_else(|_| Utc::now(), |now| *now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_shows_what_it_was_set_to() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let clock = FixedClock::new(start);
        assert_eq!(clock.unix(), 1_700_000_000);
        clock.set(start + chrono::Duration::seconds(5));
        assert_eq!(clock.unix(), 1_700_000_005);
        assert!(SystemClock.unix() > 1_700_000_000);
    }
}
