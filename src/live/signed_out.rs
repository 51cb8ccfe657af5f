//! Console sessions signed out, on this node and (in a cluster) on the
//! others: a session is a signed cookie any node accepts, so its sign-out
//! must reach every node. Each nonce is kept until its session would have
//! idled out anyway; bounded, the oldest going first.

use std::collections::HashMap;
use std::sync::Mutex;

/// Signed-out sessions remembered at most.
pub const MAX_SIGNED_OUT: usize = 100_000;

/// Signed-out session nonces and until when they matter (Unix seconds).
#[derive(Debug, Default)]
pub struct SignedOut {
    nonces: Mutex<HashMap<[u8; 16], i64>>,
}

impl SignedOut {
    /// Remembers `nonce` as signed out until `until`.
    pub fn insert(&self, nonce: [u8; 16], until: i64, now: i64) {
        let mut nonces = self.nonces.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        nonces.retain(|_, expiry| *expiry > now);
        if nonces.len() >= MAX_SIGNED_OUT
            && let Some(oldest) = nonces.iter().min_by_key(|(_, expiry)| **expiry).map(|(k, _)| *k)
        {
            nonces.remove(&oldest);
        }
        nonces.insert(nonce, until);
    }

    /// Whether `nonce` was signed out.
    pub fn contains(&self, nonce: &[u8; 16]) -> bool {
        let nonces = self.nonces.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        !nonces.is_empty() && nonces.contains_key(nonce)
    }
}

/// A nonce as 32 hex digits (how it travels between nodes).
pub fn nonce_hex(nonce: &[u8; 16]) -> String {
    use std::fmt::Write;
    nonce.iter().fold(String::with_capacity(32), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// A nonce from 32 hex digits.
pub fn parse_nonce(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut nonce = [0; 16];
    for (i, byte) in nonce.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_travel_as_hex_and_expire() {
        let nonce = [0xab; 16];
        assert_eq!(parse_nonce(&nonce_hex(&nonce)), Some(nonce));
        assert_eq!(parse_nonce("zz"), None);
        let signed_out = SignedOut::default();
        signed_out.insert(nonce, 100, 0);
        assert!(signed_out.contains(&nonce));
        signed_out.insert([1; 16], 200, 100);
        assert!(!signed_out.contains(&nonce), "past its session's expiry");
    }
}
