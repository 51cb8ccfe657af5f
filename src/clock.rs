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

/// A time zone with its UTC offsets worked out once, from 2020 to 2100,
/// as spans starting at each transition (a few a year), so the bid path
/// finds the offset by a binary search instead of the zone's rules (which
/// for future dates are evaluated per call). Outside those years it asks
/// the zone: always right, only slower.
#[derive(Clone, Debug)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
    /// (first second, offset in seconds), ascending.
    spans: Box<[(i64, i64)]>,
    /// The first second not covered.
    until: i64,
}

impl Zone {
    /// 2020-01-01T00:00:00Z and 2100-01-01T00:00:00Z: the years covered.
    const FROM: i64 = 1_577_836_800;
    const UNTIL: i64 = 4_102_444_800;

    /// The zone's offsets worked out.
    pub fn new(tz: jiff::tz::TimeZone) -> Zone {
        let start = Timestamp::from_second(Self::FROM).expect("2020 is a timestamp");
        let mut spans = vec![(Self::FROM, i64::from(tz.to_offset(start).seconds()))];
        for transition in tz.following(start) {
            let at = transition.timestamp().as_second();
            if at >= Self::UNTIL {
                break;
            }
            spans.push((at, i64::from(transition.offset().seconds())));
        }
        Zone {
            tz,
            spans: spans.into_boxed_slice(),
            until: Self::UNTIL,
        }
    }

    /// Seconds since the epoch on the zone's wall clock (as
    /// [`local_seconds`]).
    pub fn local_seconds(&self, now: Timestamp) -> i64 {
        let second = now.as_second();
        if second < self.spans[0].0 || second >= self.until {
            return local_seconds(now, &self.tz);
        }
        // The last span starting at or before `second` (the first starts
        // at FROM, so there is one).
        let span = self.spans.partition_point(|(from, _)| *from <= second) - 1;
        second + self.spans[span].1
    }

    /// [`local_day_and_hour`], from the offsets worked out.
    pub fn local_day_and_hour(&self, now: Timestamp) -> (i64, usize) {
        day_and_hour(self.local_seconds(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets worked out are the zone's own, across DST changes,
    /// at the edges and outside the years covered.
    #[test]
    fn a_zone_worked_out_answers_as_the_zone() {
        for name in [
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "UTC",
        ] {
            let tz = jiff::tz::TimeZone::get(name).unwrap();
            let zone = Zone::new(tz.clone());
            let mut seconds: Vec<i64> = vec![Zone::FROM - 1, Zone::FROM, Zone::UNTIL - 1, Zone::UNTIL, 0];
            // Every 37 minutes through 2026 and 2027, and every transition ± 1 s.
            seconds.extend((0..2 * 365 * 24 * 60 / 37).map(|i| 1_767_225_600 + i * 37 * 60));
            seconds.extend(zone.spans.iter().flat_map(|(at, _)| [at - 1, *at, at + 1]));
            for second in seconds {
                let now = Timestamp::from_second(second).unwrap();
                assert_eq!(zone.local_seconds(now), local_seconds(now, &tz), "{name} at {now}");
                assert_eq!(zone.local_day_and_hour(now), local_day_and_hour(now, &tz));
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
