//! Which connections are let in.
//!
//! A new connection needs a slot: `max_connections` in all, of which
//! `reserved_connections` are kept back — a connection admitted into the
//! reserve is served health checks and tracking but answered 503 for bid
//! requests, so a flood of bid connections cannot starve notices (which
//! bill) or the load balancer's health checks. One address may hold at
//! most `max_connections_per_ip` (127.0.0.1, ::1 and trusted proxies are
//! exempt). Refused connections get 503 with `Retry-After` and are closed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::settings::{IpRange, Settings};

/// Connection admission, shared by the serving threads.
pub struct Admission {
    general: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
    max_per_ip: usize,
    exempt: Vec<IpRange>,
    /// Open connections per address. Locked once when a connection opens
    /// and once when it closes — never per request (exchanges keep their
    /// connections alive); a lock here is simpler than a lock-free
    /// count-and-remove and costs nothing measurable.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot, the reserve included, is taken.
    Full,
    /// Its address holds its most connections.
    PerAddress,
}

/// A connection's slot; frees it when dropped.
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    /// Admitted into the reserve: no bid requests.
    pub reserved: bool,
    counted: Option<(Arc<Admission>, IpAddr)>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some((admission, ip)) = self.counted.take() {
            admission.release(ip);
        }
    }
}

impl Admission {
    /// Admission by the settings' limits.
    pub fn new(settings: &Settings) -> Arc<Admission> {
        let reserve = settings.reserved_connections.min(settings.max_connections);
        Arc::new(Admission {
            general: Arc::new(Semaphore::new(settings.max_connections - reserve)),
            reserve: Arc::new(Semaphore::new(reserve)),
            max_per_ip: settings.max_connections_per_ip,
            exempt: settings.click_rules.trusted_proxies.clone(),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    fn is_exempt(&self, ip: IpAddr) -> bool {
        ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
            || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
            || self.exempt.iter().any(|range| range.contains(ip))
    }

    /// A slot for a connection from `peer`, or why not.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refusal> {
        let peer = peer.to_canonical();
        let counted = if self.is_exempt(peer) {
            None
        } else {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let count = per_ip.entry(peer).or_default();
            if *count >= self.max_per_ip {
                return Err(Refusal::PerAddress);
            }
            *count += 1;
            Some((self.clone(), peer))
        };
        // The count is given back when the ticket drops (or below, refused).
        let ticket = |permit, reserved, counted| Ticket {
            _permit: permit,
            reserved,
            counted,
        };
        if let Ok(permit) = self.general.clone().try_acquire_owned() {
            return Ok(ticket(permit, false, counted));
        }
        if let Ok(permit) = self.reserve.clone().try_acquire_owned() {
            return Ok(ticket(permit, true, counted));
        }
        if let Some((admission, ip)) = counted {
            admission.release(ip);
        }
        Err(Refusal::Full)
    }

    /// Gives back one of `ip`'s connections.
    fn release(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}
