//! Failed sign-ins, throttled per client address: at most
//! [`MAX_FAILURES`] in any [`WINDOW`]; past that the address is refused
//! (429 with `Retry-After`) until its oldest failure leaves the window.
//!
//! An IPv6 client is counted by its /64 (one host or household's prefix:
//! otherwise one machine could try from millions of addresses). In memory,
//! bounded ([`MAX_ADDRESSES`]: at the bound, addresses whose failures are
//! all outside the window are forgotten — on a check as on a failure — and
//! if that frees nothing the new address is counted as refused, so a flood
//! of addresses can neither grow the map nor unlock guessing, and it locks
//! new addresses out only while its own failures are in the window). Monotonic time (`Instant`): a
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
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    by_address: HashMap<IpAddr, VecDeque<Instant>>,
    /// When a full table was last swept ([`forget_stale`]): at most once a
    /// second, so that a flood of unknown addresses cannot make every
    /// check walk the whole table.
    swept: Option<Instant>,
}

/// The address a client's failures are counted under: an IPv6 address's
/// /64.
fn counted_as(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
    }
}

/// Forgets the addresses whose failures have all left the window, unless
/// the table was swept less than a second ago.
fn forget_stale(failures: &mut Failures, now: Instant) {
    if failures
        .swept
        .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1))
    {
        return;
    }
    failures.swept = Some(now);
    failures
        .by_address
        .retain(|_, times| times.back().is_some_and(|t| now.saturating_duration_since(*t) < WINDOW));
}

impl Throttle {
    /// `Err(seconds to wait)` when `client` may not try now.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let client = counted_as(client);
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.by_address.len() >= MAX_ADDRESSES && !failures.by_address.contains_key(&client) {
            forget_stale(&mut failures, now);
        }
        let Some(times) = failures.by_address.get_mut(&client) else {
            return if failures.by_address.len() >= MAX_ADDRESSES {
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
        let client = counted_as(client);
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.by_address.len() >= MAX_ADDRESSES && !failures.by_address.contains_key(&client) {
            forget_stale(&mut failures, now);
            if failures.by_address.len() >= MAX_ADDRESSES {
                return;
            }
        }
        let times = failures.by_address.entry(client).or_default();
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

    /// A flood of addresses locks new ones out only while its failures are
    /// in the window (the map used to be pruned only on a failure, which a
    /// refused address never reaches: new addresses were refused for good).
    #[test]
    fn a_full_table_forgets_addresses_whose_failures_left_the_window() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for i in 0..MAX_ADDRESSES as u32 {
            throttle.fail(IpAddr::V4((0x0a00_0000 + i).into()), start);
        }
        let newcomer: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            throttle.check(newcomer, start),
            Err(WINDOW.as_secs()),
            "full, all recent"
        );
        assert_eq!(
            throttle.check(newcomer, start + WINDOW),
            Ok(()),
            "the flood left the window"
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES {
            throttle.fail(format!("2001:db8:1:2::{i:x}").parse().unwrap(), now);
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(throttle.check(same_64, now).is_err());
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttle.check(other_64, now), Ok(()));
    }
}
