//! Failed sign-ins, throttled per client address: at most
//! [`MAX_FAILURES`] in any [`WINDOW`]; past that the address is refused
//! (429 with `Retry-After`) until its oldest failure leaves the window.
//!
//! In memory, bounded ([`MAX_ADDRESSES`]: at the bound, addresses whose
//! failures are all outside the window are forgotten, and if that frees
//! nothing the new address is counted as refused — a flood of addresses
//! cannot grow the map or unlock guessing). Monotonic time (`Instant`): a
//! rate window, not a time of day. Same lock argument as the sessions:
//! control path only, short critical sections.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins allowed per address in a window.
pub const MAX_FAILURES: usize = 5;

/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Addresses remembered at most.
pub const MAX_ADDRESSES: usize = 100_000;

/// Recent failed sign-ins by address.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Throttle {
    /// `Err(seconds to wait)` when `client` may not try now.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(times) = failures.get_mut(&client) else {
            return if failures.len() >= MAX_ADDRESSES {
                Err(WINDOW.as_secs())
            } else {
                Ok(())
            };
        };
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() < MAX_FAILURES {
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        let wait = WINDOW.saturating_sub(now.saturating_duration_since(oldest));
        Err(wait.as_secs().max(1))
    }

    /// Counts a failed sign-in of `client`.
    pub fn fail(&self, client: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&client) {
            failures.retain(|_, times| times.back().is_some_and(|t| now.saturating_duration_since(*t) < WINDOW));
            if failures.len() >= MAX_ADDRESSES {
                return;
            }
        }
        let times = failures.entry(client).or_default();
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_a_minute_then_refused_until_the_window_moves() {
        let throttle = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(throttle.check(a, start), Ok(()), "attempt {i}");
            throttle.fail(a, start + Duration::from_secs(i as u64));
        }
        let now = start + Duration::from_secs(10);
        assert_eq!(
            throttle.check(a, now),
            Err(50),
            "the oldest failure leaves the window at 60 s"
        );
        assert_eq!(throttle.check(b, now), Ok(()), "per address");
        assert_eq!(throttle.check(a, start + WINDOW), Ok(()), "one failure aged out");
        throttle.fail(a, start + WINDOW);
        assert!(throttle.check(a, start + WINDOW).is_err());
    }
}
