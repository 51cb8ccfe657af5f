//! Console sessions: a random id in a cookie, kept in memory, bounded and
//! expiring, each with its own CSRF token.
//!
//! A session id is 32 random bytes (base64url in the cookie); the store
//! keys sessions by the id's SHA-256, so neither a lookup's timing nor a
//! dump of the map gives a usable id away. A session remembers the hash
//! of the token it was opened with, not the principal: every request looks
//! the token up again in the current settings, so a token removed or
//! re-roled in config takes effect on open sessions at once.
//!
//! The store is a `Mutex<HashMap>`: it is touched once per console
//! request (control path, a few a second), never by the bid path, and the
//! critical sections are a lookup or an insert.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest;

/// Sessions held at most; the least recently used goes first.
pub const MAX_SESSIONS: usize = 10_000;

/// A session unused this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// One signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// SHA-256 of the admin token it signed in with.
    pub token_hash: [u8; 32],
    /// The token's name when it signed in (for logs).
    pub name: String,
    /// The value every form of this session carries in `csrf_token`.
    pub csrf: String,
    last_used: Instant,
}

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn key(id: &str) -> [u8; 32] {
    sha2::Sha256::digest(id.as_bytes()).into()
}

/// Every open session.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Opens a session for a token; returns its id (for the cookie).
    pub fn open(&self, token_hash: [u8; 32], name: &str, now: Instant) -> String {
        let id = random_token();
        let session = Session {
            token_hash,
            name: name.to_string(),
            csrf: random_token(),
            last_used: now,
        };
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if open.len() >= MAX_SESSIONS {
            open.retain(|_, s| now.saturating_duration_since(s.last_used) < IDLE_TIMEOUT);
        }
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(key(&id), session);
        id
    }

    /// The session of a cookie's id, if open and not idle too long; marks
    /// it used.
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let k = key(id);
        let session = open.get_mut(&k)?;
        if now.saturating_duration_since(session.last_used) >= IDLE_TIMEOUT {
            open.remove(&k);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Drops a session (sign-out).
    pub fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&key(id));
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_until_it_is_closed() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let id = sessions.open([7; 32], "ops", now);
        assert_eq!(id.len(), 43);
        let session = sessions.get(&id, now).expect("open");
        assert_eq!(session.token_hash, [7; 32]);
        assert_eq!(session.csrf.len(), 43);
        assert_ne!(session.csrf, id);
        assert!(sessions.get("not-an-id", now).is_none());
        sessions.close(&id);
        assert!(sessions.get(&id, now).is_none());
    }

    #[test]
    fn an_idle_session_expires_and_use_keeps_it_alive() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let id = sessions.open([1; 32], "ops", start);
        let later = start + IDLE_TIMEOUT - Duration::from_secs(1);
        assert!(sessions.get(&id, later).is_some(), "used just in time");
        assert!(
            sessions
                .get(&id, later + IDLE_TIMEOUT - Duration::from_secs(1))
                .is_some()
        );
        assert!(sessions.get(&id, later + 3 * IDLE_TIMEOUT).is_none(), "idle too long");
        assert!(sessions.is_empty());
    }

    #[test]
    fn the_store_is_bounded_and_drops_the_least_recently_used() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let first = sessions.open([0; 32], "first", start);
        for i in 1..MAX_SESSIONS {
            sessions.open([0; 32], "n", start + Duration::from_millis(i as u64));
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        let last = sessions.open([0; 32], "last", start + Duration::from_secs(60));
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.get(&first, start + Duration::from_secs(61)).is_none());
        assert!(sessions.get(&last, start + Duration::from_secs(61)).is_some());
    }
}
