//! User sync (cookie matching) with exchanges.
//!
//! `GET /sync/{exchange}` reads our `bz_uid` cookie (or sets a new random
//! one) and redirects the browser to the exchange's `sync_url` with our id
//! and the request's privacy parameters filled in; the exchange then calls
//! `GET /sync/{exchange}/return?uid={its id}` (the browser still carrying our
//! cookie), and the pair is stored in the match table
//! ([`crate::audience::matches`]), after which that exchange's `buyeruid`
//! resolves to our user. No sync happens where consent is required and not
//! given: GDPR applying without a TCF string granting personalisation (and
//! our vendor id, when configured), a US Privacy or GPP opt-out.

use crate::bidder::privacy::{gpp_opts_out, tcf_allows_personalisation, us_privacy_opts_out};
use crate::settings::Exchange;

/// The cookie that holds our user id.
pub const COOKIE: &str = "bz_uid";
/// How long the cookie lives: a year.
const COOKIE_MAX_AGE: u32 = 365 * 24 * 3600;
/// Longest exchange id stored.
const MAX_THEIR_ID: usize = 256;

/// The query parameters of a sync request.
#[derive(Debug, Default)]
pub struct SyncQuery {
    gdpr: Option<String>,
    gdpr_consent: Option<String>,
    us_privacy: Option<String>,
    gpp: Option<String>,
    gpp_sid: Option<String>,
    /// The exchange's id of the user (the return call).
    pub uid: Option<String>,
}

impl SyncQuery {
    /// Reads the parameters from decoded query pairs.
    pub fn from_pairs(pairs: &[(String, String)]) -> SyncQuery {
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        SyncQuery {
            gdpr: get("gdpr"),
            gdpr_consent: get("gdpr_consent"),
            us_privacy: get("us_privacy"),
            gpp: get("gpp"),
            gpp_sid: get("gpp_sid"),
            uid: get("uid"),
        }
    }

    /// Whether the request's privacy signals let us sync: no GDPR, or a TCF
    /// string granting personalisation; no US Privacy or GPP opt-out.
    pub fn consents(&self, vendor: Option<u16>) -> bool {
        let gdpr = self.gdpr.as_deref().map(str::trim);
        if gdpr.is_some_and(|g| g != "0" && !g.is_empty()) {
            let granted = self
                .gdpr_consent
                .as_deref()
                .is_some_and(|c| tcf_allows_personalisation(c, vendor));
            if !granted {
                return false;
            }
        }
        if self.us_privacy.as_deref().is_some_and(us_privacy_opts_out) {
            return false;
        }
        if let Some(gpp) = self.gpp.as_deref().filter(|g| !g.is_empty()) {
            let sids: Vec<i32> = self
                .gpp_sid
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            if gpp_opts_out(gpp, &sids) {
                return false;
            }
        }
        true
    }
}

/// Our id from a `Cookie` header, when it holds a well-formed `bz_uid`.
pub fn our_id(cookies: Option<&str>) -> Option<String> {
    cookies?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|id| valid_id(id))
}

/// Ids we issue and accept back: 1–64 letters, digits, `-` or `_`.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new, unguessable user id (128 random bits, hex).
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The `Set-Cookie` value for our id. Over https (a trusted proxy's
/// `X-Forwarded-Proto`) the cookie is `SameSite=None; Secure`, so the
/// browser sends it on the exchange's cross-site redirect back to us; over
/// plain http browsers refuse `SameSite=None` without `Secure`, so it is
/// left at the browser's default (syncs then work only first-party).
pub fn set_cookie(id: &str, https: bool) -> String {
    let cross_site = if https { "; SameSite=None; Secure" } else { "" };
    format!("{COOKIE}={id}; Max-Age={COOKIE_MAX_AGE}; Path=/; HttpOnly{cross_site}")
}

/// The exchange's sync URL with our id and the privacy macros filled.
pub fn redirect_url(template: &str, our_id: &str, query: &SyncQuery) -> String {
    let macros: [(&str, &str); 6] = [
        ("{UID}", our_id),
        ("{GDPR}", query.gdpr.as_deref().unwrap_or("")),
        ("{GDPR_CONSENT}", query.gdpr_consent.as_deref().unwrap_or("")),
        ("{US_PRIVACY}", query.us_privacy.as_deref().unwrap_or("")),
        ("{GPP}", query.gpp.as_deref().unwrap_or("")),
        ("{GPP_SID}", query.gpp_sid.as_deref().unwrap_or("")),
    ];
    let mut url = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        url.push_str(&rest[..at]);
        rest = &rest[at..];
        match macros.iter().find(|(name, _)| rest.starts_with(name)) {
            Some((name, value)) => {
                crate::signing::encode_component(&mut url, value);
                rest = &rest[name.len()..];
            }
            None => {
                url.push('{');
                rest = &rest[1..];
            }
        }
    }
    url.push_str(rest);
    url
}

/// Why a return call is refused (400).
pub fn check_their_id(uid: Option<&str>) -> Result<&str, &'static str> {
    let uid = uid.map(str::trim).filter(|u| !u.is_empty()).ok_or("missing uid")?;
    if uid.len() > MAX_THEIR_ID || uid.chars().any(|c| c.is_control()) {
        return Err("uid is longer than 256 bytes or holds control characters");
    }
    Ok(uid)
}

/// The exchange named in a sync path, when it has a sync URL.
pub fn syncing<'w>(exchanges: impl IntoIterator<Item = &'w Exchange>, name: &str) -> Option<&'w Exchange> {
    exchanges
        .into_iter()
        .find(|e| e.name == name)
        .filter(|e| e.sync_url.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_are_filled_and_encoded() {
        let query = SyncQuery::from_pairs(&[
            ("gdpr".into(), "1".into()),
            ("gdpr_consent".into(), "CP x/y".into()),
            ("us_privacy".into(), "1YNN".into()),
        ]);
        let url = redirect_url(
            "https://x.example/setuid?b=bz&uid={UID}&gdpr={GDPR}&c={GDPR_CONSENT}&usp={US_PRIVACY}&gpp={GPP}&s={GPP_SID}&k={OTHER}",
            "abc123",
            &query,
        );
        assert_eq!(
            url,
            "https://x.example/setuid?b=bz&uid=abc123&gdpr=1&c=CP%20x%2Fy&usp=1YNN&gpp=&s=&k={OTHER}"
        );
    }

    #[test]
    fn consent_is_required_where_it_applies() {
        let q = |pairs: &[(&str, &str)]| {
            SyncQuery::from_pairs(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert!(q(&[]).consents(None));
        assert!(q(&[("gdpr", "0")]).consents(None));
        assert!(!q(&[("gdpr", "1")]).consents(None));
        assert!(!q(&[("gdpr", "1"), ("gdpr_consent", "garbage")]).consents(None));
        assert!(!q(&[("us_privacy", "1YYN")]).consents(None));
        assert!(q(&[("us_privacy", "1YNN")]).consents(None));
    }

    #[test]
    fn cookies_are_read_strictly() {
        assert_eq!(our_id(Some("a=1; bz_uid=abc_12; b=2")).as_deref(), Some("abc_12"));
        assert_eq!(our_id(Some("bz_uid=<script>")), None);
        assert_eq!(our_id(None), None);
        assert!(valid_id(&new_id()));
        assert_eq!(
            set_cookie("abc", true),
            "bz_uid=abc; Max-Age=31536000; Path=/; HttpOnly; SameSite=None; Secure"
        );
        assert_eq!(
            set_cookie("abc", false),
            "bz_uid=abc; Max-Age=31536000; Path=/; HttpOnly"
        );
        assert_eq!(check_their_id(Some(" ex-1 ")), Ok("ex-1"));
        assert!(check_their_id(Some("a\tb")).is_err());
        assert!(check_their_id(None).is_err());
    }
}
