//! Who the control path knows: advertisers, and the admin API's tokens
//! with their roles.
//!
//! A token is kept only as the SHA-256 of its text; the one presented is
//! hashed and compared in constant time, so neither the token nor its
//! length leaks.

use sha2::Digest;

/// An advertiser (`[[advertiser]]`): the owner of campaigns.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Advertiser {
    /// 1–64 letters, digits, `-`, `_` or `.`; campaigns name it.
    pub id: String,
    /// Display name.
    pub name: String,
    /// IANA time zone of its reports and new campaigns.
    pub time_zone: String,
    /// Its contact rules across its campaigns (budget, frequency,
    /// suppression, capacity); shown flattened beside the fields above.
    #[serde(flatten)]
    pub rules: super::ContactRules,
    /// Segments only its campaigns may target (`private_segments`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub private_segments: Vec<String>,
}

impl Advertiser {
    /// The first of its private segments `path` overlaps: the same
    /// segment, one below it, or one above it (targeting a parent reaches
    /// its descendants' users).
    pub fn private_overlap(&self, path: &str) -> Option<&str> {
        self.private_segments
            .iter()
            .map(String::as_str)
            .find(|private| segments_overlap(private, path))
    }
}

/// Whether one segment path is the other or an ancestor of it.
pub fn segments_overlap(a: &str, b: &str) -> bool {
    let below = |child: &str, parent: &str| {
        child
            .strip_prefix(parent)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    below(a, b) || below(b, a)
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Its own advertiser's campaigns and reports, read and change.
    Advertiser,
    /// The audience endpoints, read and change.
    Data,
    /// Everything an admin sees, nothing changed.
    Viewer,
}

impl Role {
    /// Its name in config and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Advertiser => "advertiser",
            Role::Data => "data",
            Role::Viewer => "viewer",
        }
    }
}

/// One admin API token (`[[admin.token]]`), known by its hash only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminToken {
    /// Who it is, for the audit log.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The advertiser an `advertiser` token is bound to.
    pub advertiser: Option<String>,
    /// SHA-256 of the token's text.
    pub sha256: [u8; 32],
}

/// SHA-256 of a token's text.
pub fn token_hash(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Equality that takes as long whatever the contents (lengths aside):
/// for tokens, hashes and CSRF values.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The token whose hash matches `presented`, if any. Every configured
/// token is compared, so the time taken does not say which one matched.
pub fn find_token<'t>(tokens: &'t [AdminToken], presented: &str) -> Option<&'t AdminToken> {
    if presented.is_empty() {
        return None;
    }
    let hash = token_hash(presented);
    tokens.iter().fold(None, |found, token| {
        if same_bytes(&token.sha256, &hash) && found.is_none() {
            Some(token)
        } else {
            found
        }
    })
}

/// Lower-case hex of a hash.
pub fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 64-digit hex SHA-256, as written in config.
pub fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_its_hash_only() {
        let tokens = [
            AdminToken {
                name: "ops".into(),
                role: Role::Admin,
                advertiser: None,
                sha256: token_hash("ops-token"),
            },
            AdminToken {
                name: "acme".into(),
                role: Role::Advertiser,
                advertiser: Some("acme".into()),
                sha256: token_hash("acme-token"),
            },
        ];
        assert_eq!(find_token(&tokens, "acme-token").map(|t| t.name.as_str()), Some("acme"));
        assert_eq!(find_token(&tokens, "ops-token").map(|t| t.name.as_str()), Some("ops"));
        assert!(find_token(&tokens, "acme-toke").is_none());
        assert!(find_token(&tokens, "").is_none());
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"abcd"));
        assert!(!same_bytes(b"", b"a"));
    }

    #[test]
    fn hex_round_trips() {
        let hash = token_hash("x");
        assert_eq!(parse_hex(&hex(&hash)), Some(hash));
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
    }
}
