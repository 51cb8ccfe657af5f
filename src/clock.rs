//! Injected time.
//!
//! Day-parting, budgets, frequency windows and (later) pacing take a
//! [`Clock`], so tests run a simulated day in milliseconds and never sleep.
//! Request deadlines (`tmax`) use `std::time::Instant` directly: they measure
//! elapsed time, not the time of day.

use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

/// The source of the time of day; the only one the crate reads.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "the one place that reads the time of day")]
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until told to move (tests, simulations).
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: Timestamp) -> ManualClock {
        ManualClock {
            micros: AtomicI64::new(at.as_microsecond()),
        }
    }

    /// Moves the clock to `at` (forwards or backwards).
    pub fn set(&self, at: Timestamp) {
        self.micros.store(at.as_microsecond(), Ordering::Relaxed);
    }

    /// Moves the clock forwards by `by` (microsecond resolution).
    pub fn advance(&self, by: std::time::Duration) {
        self.micros.fetch_add(by.as_micros() as i64, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_microsecond(self.micros.load(Ordering::Relaxed)).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// Seconds since the epoch on the local wall clock of `tz` (UTC offset,
/// DST included, applied to `now`).
pub fn local_seconds(now: Timestamp, tz: &jiff::tz::TimeZone) -> i64 {
    now.as_second() + tz.to_offset(now).seconds() as i64
}

/// Local day number (days since 1970-01-01 in `tz`): a new day starts at
/// local midnight.
pub fn local_day(now: Timestamp, tz: &jiff::tz::TimeZone) -> i64 {
    local_seconds(now, tz).div_euclid(86_400)
}

/// Hour of the week in `tz`, Monday 00:00–00:59 being 0.
pub fn hour_of_week(now: Timestamp, tz: &jiff::tz::TimeZone) -> usize {
    local_day_and_hour(now, tz).1
}

/// [`local_day`] and [`hour_of_week`] from one look-up of the zone's
/// offset (the bid path needs both, per campaign time zone).
pub fn local_day_and_hour(now: Timestamp, tz: &jiff::tz::TimeZone) -> (i64, usize) {
    let local = local_seconds(now, tz);
    let day = local.div_euclid(86_400);
    // 1970-01-01 was a Thursday: Monday-based weekday 3.
    let weekday = (day + 3).rem_euclid(7);
    (day, (weekday * 24 + local.rem_euclid(86_400) / 3600) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_of_week_in_a_time_zone() {
        let tz = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        // Monday 2026-11-23 08:30 UTC = 09:30 in Paris.
        let now: Timestamp = "2026-11-23T08:30:00Z".parse().unwrap();
        assert_eq!(hour_of_week(now, &tz), 9);
        // Sunday 2026-11-29 23:30 UTC = Monday 00:30 in Paris.
        let now: Timestamp = "2026-11-29T23:30:00Z".parse().unwrap();
        assert_eq!(hour_of_week(now, &tz), 0);
        assert_eq!(hour_of_week(now, &jiff::tz::TimeZone::UTC), 6 * 24 + 23);
    }
}
