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
    day_and_hour(local_seconds(now, tz))
}

/// The day number and hour of the week of local epoch seconds.
fn day_and_hour(local: i64) -> (i64, usize) {
    let day = local.div_euclid(86_400);
    // 1970-01-01 was a Thursday: Monday-based weekday 3.
    let weekday = (day + 3).rem_euclid(7);
    (day, (weekday * 24 + local.rem_euclid(86_400) / 3600) as usize)
}

/// A time zone with its UTC offsets worked out ahead: the offsets from
/// a day before it was made to [`Zone::AHEAD_SECS`] after, as spans
/// starting at each transition (a handful a year), so the bid path finds
/// the offset with a short scan instead of the zone's rules (which for
/// future dates are evaluated per call). Outside the span it asks the
/// zone: always right, only slower.
#[derive(Clone, Debug)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
    /// (first second, offset in seconds), ascending.
    spans: Box<[(i64, i64)]>,
    /// The first second not covered.
    until: i64,
}

impl Zone {
    /// How far ahead offsets are worked out: past any process's uptime
    /// between two reloads of the campaigns (each rebuilds its zones).
    pub const AHEAD_SECS: i64 = 400 * 86_400;

    /// The zone's offsets from a day before `now` on.
    pub fn new(tz: jiff::tz::TimeZone, now: Timestamp) -> Zone {
        let from = now.as_second() - 86_400;
        let until = now.as_second() + Self::AHEAD_SECS;
        let start = Timestamp::from_second(from).unwrap_or(now);
        let mut spans = vec![(from, i64::from(tz.to_offset(start).seconds()))];
        for transition in tz.following(start) {
            let at = transition.timestamp().as_second();
            if at >= until {
                break;
            }
            spans.push((at, i64::from(transition.offset().seconds())));
        }
        Zone {
            tz,
            spans: spans.into_boxed_slice(),
            until,
        }
    }

    /// The zone itself.
    pub fn time_zone(&self) -> &jiff::tz::TimeZone {
        &self.tz
    }

    /// Seconds since the epoch on the zone's wall clock (as
    /// [`local_seconds`]).
    pub fn local_seconds(&self, now: Timestamp) -> i64 {
        let second = now.as_second();
        if second < self.spans[0].0 || second >= self.until {
            return local_seconds(now, &self.tz);
        }
        let offset = self
            .spans
            .iter()
            .rev()
            .find(|(from, _)| *from <= second)
            .map_or(0, |&(_, o)| o);
        second + offset
    }

    /// [`local_day_and_hour`], from the offsets worked out ahead.
    pub fn local_day_and_hour(&self, now: Timestamp) -> (i64, usize) {
        day_and_hour(self.local_seconds(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets worked out ahead are the zone's own, across DST changes
    /// and outside the span.
    #[test]
    fn a_zone_worked_out_ahead_answers_as_the_zone() {
        let made: Timestamp = "2026-11-29T03:00:00Z".parse().unwrap();
        for name in [
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "UTC",
        ] {
            let tz = jiff::tz::TimeZone::get(name).unwrap();
            let zone = Zone::new(tz.clone(), made);
            // Every 37 minutes from two days before to past the span.
            let mut at = made.as_second() - 2 * 86_400;
            while at < made.as_second() + Zone::AHEAD_SECS + 3 * 86_400 {
                let now = Timestamp::from_second(at).unwrap();
                assert_eq!(zone.local_seconds(now), local_seconds(now, &tz), "{name} at {now}");
                assert_eq!(zone.local_day_and_hour(now), local_day_and_hour(now, &tz));
                at += 37 * 60;
            }
        }
    }

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
