//! Console sessions: a signed cookie that every node of a cluster accepts,
//! with its own CSRF token, expiring when idle, revocable by signing out.
//!
//! The cookie holds `base64url(payload).base64url(mac)`: the payload is the
//! SHA-256 of the admin token the session was opened with, when it was
//! opened, when it was last used (Unix seconds) and a random 16-byte
//! nonce; the MAC is HMAC-SHA256 under a key derived from the URL-signing
//! key (so every node that shares the signing key accepts it, and a key
//! rotation's previous key still verifies). Nothing is held per session
//! except the nonces of sessions signed out (`live::signed_out`, which a
//! cluster shares), until they would have expired anyway. The cookie is re-issued at most once a minute of use, so the
//! idle timeout slides.
//!
//! A session remembers the hash of its token, not the principal: every
//! request looks the token up again in the current settings, so a token
//! removed or re-roled in config takes effect on open sessions at once.
//! The CSRF token is an HMAC of the nonce under the same key: the same on
//! every node, different for every session.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::live::signed_out::SignedOut;

/// A session unused this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// A session is gone this long after it was opened, however much it is
/// used (sign in again).
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often a used session's cookie is re-issued (its idle time reset).
pub const REFRESH_AFTER: Duration = Duration::from_secs(60);

const PAYLOAD_LEN: usize = 32 + 8 + 8 + 16;

/// One signed-in browser, as its cookie says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the admin token it signed in with.
    pub token_hash: [u8; 32],
    /// When it was opened (Unix seconds).
    pub opened_at: i64,
    /// When its cookie was last issued (Unix seconds).
    pub last_used: i64,
    /// Its random identity.
    pub nonce: [u8; 16],
    /// The value every form of this session carries in `csrf_token`.
    pub csrf: String,
}

impl Session {
    /// Whether the cookie is due to be re-issued at `now` (Unix seconds).
    pub fn needs_refresh(&self, now: i64) -> bool {
        now - self.last_used >= REFRESH_AFTER.as_secs() as i64
    }
}

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    b64(&rand::random::<[u8; 32]>())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The keys sessions are signed with: the current one first, then the one
/// derived from the previous signing key (rotation). Derived from the
/// settings on each request, so a reload's new key applies at once.
pub struct Keys(Vec<[u8; 32]>);

impl Keys {
    /// The session keys of a URL-signing key and the previous one.
    pub fn new(signing_key: &[u8], previous: Option<&[u8]>) -> Keys {
        let mut keys = vec![derive(signing_key)];
        keys.extend(previous.map(derive));
        Keys(keys)
    }
}

/// Issues and checks session cookies against the sessions signed out.
pub struct Sessions<'a> {
    /// Signed-out nonces, here and on the other nodes.
    signed_out: &'a SignedOut,
}

fn session(keys: &Keys, token_hash: [u8; 32], opened_at: i64, last_used: i64, nonce: [u8; 16]) -> Session {
    Session {
        token_hash,
        opened_at,
        last_used,
        nonce,
        csrf: b64(&mac(&keys.0[0], b"csrf", &nonce)),
    }
}

/// The session key for a URL-signing key.
fn derive(signing_key: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(signing_key).expect("HMAC takes any key length");
    mac.update(b"bullseye console session v1");
    mac.finalize().into_bytes().into()
}

fn mac(key: &[u8; 32], label: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(label);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl<'a> Sessions<'a> {
    /// Sessions checked against `signed_out`.
    pub fn new(signed_out: &'a SignedOut) -> Sessions<'a> {
        Sessions { signed_out }
    }

    /// Opens a session for a token at `now` (Unix seconds); its cookie
    /// value.
    pub fn open(&self, keys: &Keys, token_hash: [u8; 32], now: i64) -> String {
        self.issue(keys, &session(keys, token_hash, now, now, rand::random()))
    }

    /// The cookie value of `session`, signed with the current key.
    pub fn issue(&self, keys: &Keys, session: &Session) -> String {
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.extend_from_slice(&session.token_hash);
        payload.extend_from_slice(&session.opened_at.to_be_bytes());
        payload.extend_from_slice(&session.last_used.to_be_bytes());
        payload.extend_from_slice(&session.nonce);
        let tag = mac(&keys.0[0], b"cookie", &payload);
        format!("{}.{}", b64(&payload), b64(&tag))
    }

    /// The session of a cookie's value at `now`, if its signature holds,
    /// it is neither idle too long nor too old, and it was not signed out.
    pub fn get(&self, keys: &Keys, cookie: &str, now: i64) -> Option<Session> {
        let (payload, tag) = cookie.split_once('.')?;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = engine.decode(payload).ok().filter(|p| p.len() == PAYLOAD_LEN)?;
        let tag = engine.decode(tag).ok()?;
        let signed = keys
            .0
            .iter()
            .any(|key| crate::settings::access::same_bytes(&mac(key, b"cookie", &payload), &tag));
        if !signed {
            return None;
        }
        let int = |at: usize| i64::from_be_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
        let (opened_at, last_used) = (int(32), int(40));
        let nonce: [u8; 16] = payload[48..].try_into().expect("16 bytes");
        let idle = now - last_used >= IDLE_TIMEOUT.as_secs() as i64;
        let old = now - opened_at >= MAX_AGE.as_secs() as i64;
        if idle || old || self.signed_out.contains(&nonce) {
            return None;
        }
        let token_hash = payload[..32].try_into().expect("32 bytes");
        Some(session(keys, token_hash, opened_at, last_used.max(opened_at), nonce))
    }

    /// `session` used at `now`: the same session with its idle time reset.
    pub fn touched(&self, session: &Session, now: i64) -> Session {
        Session {
            last_used: now,
            ..session.clone()
        }
    }

    /// Signs a session out: refused from now on, remembered until it
    /// would have idled out. The caller tells the other nodes.
    pub fn close(&self, session: &Session, now: i64) -> i64 {
        let until = now + IDLE_TIMEOUT.as_secs() as i64;
        self.signed_out.insert(session.nonce, until, now);
        until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a-signing-key-of-at-least-32-bytes!!";

    #[test]
    fn a_cookie_is_accepted_by_any_node_with_the_key_until_signed_out() {
        let keys = Keys::new(KEY, None);
        let (signed_out_here, signed_out_there) = (SignedOut::default(), SignedOut::default());
        let (here, there) = (Sessions::new(&signed_out_here), Sessions::new(&signed_out_there));
        let cookie = here.open(&keys, [7; 32], 1_000);
        let session = there.get(&keys, &cookie, 1_001).expect("another node accepts it");
        assert_eq!((session.token_hash, session.opened_at), ([7; 32], 1_000));
        assert_eq!(
            session.csrf,
            here.get(&keys, &cookie, 1_001).unwrap().csrf,
            "one CSRF token"
        );
        assert_eq!(session.csrf.len(), 43);
        assert_ne!(here.open(&keys, [7; 32], 1_000), cookie, "every session is its own");
        assert!(here.get(&keys, "not-a-cookie", 1_001).is_none());
        let other = Keys::new(b"another-signing-key-of-32-bytes-or-more", None);
        assert!(here.get(&other, &cookie, 1_001).is_none(), "another key");
        let rotated = Keys::new(b"another-signing-key-of-32-bytes-or-more", Some(KEY));
        assert!(
            here.get(&rotated, &cookie, 1_001).is_some(),
            "the previous key still verifies"
        );
        here.close(&session, 1_002);
        assert!(here.get(&keys, &cookie, 1_003).is_none(), "signed out");
    }

    #[test]
    fn a_forged_or_altered_cookie_is_refused() {
        let signed_out = SignedOut::default();
        let (keys, sessions) = (Keys::new(KEY, None), Sessions::new(&signed_out));
        let cookie = sessions.open(&keys, [1; 32], 0);
        let (payload, tag) = cookie.split_once('.').unwrap();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut bytes = engine.decode(payload).unwrap();
        bytes[0] ^= 1;
        assert!(
            sessions.get(&keys, &format!("{}.{tag}", b64(&bytes)), 1).is_none(),
            "another token"
        );
        assert!(
            sessions
                .get(&keys, &format!("{payload}.{}", b64(&[0; 32])), 1)
                .is_none()
        );
    }

    #[test]
    fn an_idle_session_expires_use_keeps_it_alive_and_age_ends_it() {
        let signed_out = SignedOut::default();
        let (keys, sessions) = (Keys::new(KEY, None), Sessions::new(&signed_out));
        let idle = IDLE_TIMEOUT.as_secs() as i64;
        let cookie = sessions.open(&keys, [1; 32], 0);
        let session = sessions.get(&keys, &cookie, idle - 1).expect("used just in time");
        assert!(session.needs_refresh(idle - 1));
        assert!(sessions.get(&keys, &cookie, idle).is_none(), "idle too long");
        let renewed = sessions.issue(&keys, &sessions.touched(&session, idle - 1));
        assert!(
            sessions.get(&keys, &renewed, 2 * idle - 2).is_some(),
            "its idle time slid"
        );
        let age = MAX_AGE.as_secs() as i64;
        let late = sessions.issue(&keys, &sessions.touched(&session, age - 1));
        assert!(sessions.get(&keys, &late, age - 1).is_some());
        assert!(sessions.get(&keys, &late, age).is_none(), "too old, however used");
    }
}
