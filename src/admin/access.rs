//! Who is calling the admin API and what their role lets them do.
//!
//! `admin` does everything; `viewer` reads what an admin reads and changes
//! nothing; `advertiser` reads and changes its own advertiser's campaigns,
//! reports and audit entries, and anything else of another advertiser is
//! answered as if it did not exist (404); `data` uses the audience
//! endpoints only. A refused role gets 403.

use crate::settings::{AdminToken, Role};

/// The caller, once its token (or console session) is recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's name: who the audit log says made a change.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The advertiser an `advertiser` token is bound to.
    pub advertiser: Option<String>,
}

impl Principal {
    /// The principal of a configured token.
    pub fn of(token: &AdminToken) -> Principal {
        Principal {
            name: token.name.clone(),
            role: token.role,
            advertiser: token.advertiser.clone(),
        }
    }

    /// Whether it may see what belongs to `advertiser` (campaigns, reports,
    /// audit entries).
    pub fn sees(&self, advertiser: &str) -> bool {
        match self.role {
            Role::Admin | Role::Viewer => true,
            Role::Advertiser => self.advertiser.as_deref() == Some(advertiser),
            Role::Data => false,
        }
    }

    /// Whether it may read campaigns, advertisers, reports and the audit
    /// log at all (its own, for an advertiser).
    pub fn reads_campaigns(&self) -> bool {
        self.role != Role::Data
    }

    /// Whether it may change campaigns (its own, for an advertiser).
    pub fn changes_campaigns(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Advertiser)
    }

    /// Whether it may use the audience endpoints: an advertiser token must
    /// not read segments built from another advertiser's lists.
    pub fn uses_audience(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Data)
    }
}

/// The principal of `Authorization: Bearer <token>`, if the token is one
/// of `tokens`. Anything but a non-empty bearer token is refused before
/// any comparison.
pub fn authenticate(header: Option<&str>, tokens: &[AdminToken]) -> Option<Principal> {
    let presented = header?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())?;
    crate::settings::access::find_token(tokens, presented).map(Principal::of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::access::token_hash;

    fn tokens() -> Vec<AdminToken> {
        vec![AdminToken {
            name: "ops".into(),
            role: Role::Admin,
            advertiser: None,
            sha256: token_hash("s3cret-s3cret-s3cret-s3cret-s3cret"),
        }]
    }

    #[test]
    fn bearer_tokens_are_checked() {
        let tokens = tokens();
        let ok = authenticate(Some("Bearer s3cret-s3cret-s3cret-s3cret-s3cret"), &tokens);
        assert_eq!(ok.map(|p| p.name), Some("ops".to_string()));
        assert!(authenticate(Some("Bearer s3cret-s3cret-s3cret-s3cret-s3cre"), &tokens).is_none());
        assert!(authenticate(Some("s3cret-s3cret-s3cret-s3cret-s3cret"), &tokens).is_none());
        assert!(authenticate(None, &tokens).is_none());
    }

    /// Issue 17, item 9: with an empty configured token, any header (even
    /// `Basic …` or an empty bearer) was let in.
    #[test]
    fn only_a_non_empty_bearer_token_is_ever_compared() {
        let empty = [AdminToken {
            name: "empty".into(),
            role: Role::Admin,
            advertiser: None,
            sha256: token_hash(""),
        }];
        for header in ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer    ", "", "bearer x"] {
            assert!(authenticate(Some(header), &empty).is_none(), "{header:?}");
        }
    }

    #[test]
    fn an_advertiser_sees_only_its_own() {
        let acme = Principal {
            name: "acme".into(),
            role: Role::Advertiser,
            advertiser: Some("acme".into()),
        };
        assert!(acme.sees("acme") && !acme.sees("globex"));
        assert!(acme.changes_campaigns() && !acme.uses_audience());
        let viewer = Principal {
            name: "v".into(),
            role: Role::Viewer,
            advertiser: None,
        };
        assert!(viewer.sees("globex") && !viewer.changes_campaigns());
    }
}
