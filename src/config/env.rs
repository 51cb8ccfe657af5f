//! What the process environment adds to the config files: secrets kept out
//! of them. Read once, before validation, so validation is a pure function
//! of the files and this value (and tests can inject one).

/// The admin API bearer token.
pub const ADMIN_TOKEN_VAR: &str = "BULLSEYE_ADMIN_TOKEN";
/// The URL-signing key.
pub const SIGNING_KEY_VAR: &str = "BULLSEYE_SIGNING_KEY";
/// Prefix of advertisers' postback secrets:
/// `BULLSEYE_POSTBACK_SECRET_{ADVERTISER}` (see [`postback_var`]).
pub const POSTBACK_SECRET_PREFIX: &str = "BULLSEYE_POSTBACK_SECRET_";

/// Prefix of exchanges' price encryption keys:
/// `BULLSEYE_PRICE_ENCRYPTION_KEY_{EXCHANGE}` (see [`price_key_var`]).
pub const PRICE_ENCRYPTION_KEY_PREFIX: &str = "BULLSEYE_PRICE_ENCRYPTION_KEY_";
/// Prefix of exchanges' price integrity keys:
/// `BULLSEYE_PRICE_INTEGRITY_KEY_{EXCHANGE}`.
pub const PRICE_INTEGRITY_KEY_PREFIX: &str = "BULLSEYE_PRICE_INTEGRITY_KEY_";

/// The variable holding one of an exchange's price keys: `prefix`, then
/// the exchange's name upper-cased, every character but letters and
/// digits `_`.
pub fn price_key_var(prefix: &str, exchange: &str) -> String {
    format!("{prefix}{}", slug(exchange))
}

/// The variable holding an advertiser's postback secret: the name
/// upper-cased, every character but letters and digits `_`.
pub fn postback_var(advertiser: &str) -> String {
    format!("{POSTBACK_SECRET_PREFIX}{}", slug(advertiser))
}

/// A name upper-cased, every character but letters and digits `_`.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Secrets from the environment; each, when set, overrides the file's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// `BULLSEYE_ADMIN_TOKEN`: one more admin token, named `env`.
    pub admin_token: Option<String>,
    /// `BULLSEYE_SIGNING_KEY`: overrides `secrets.signing_key_file` and
    /// `secrets.signing_key`.
    pub signing_key: Option<String>,
    /// `BULLSEYE_POSTBACK_SECRET_*`, by variable name: override each
    /// `[[postback]]`'s `secret_file`.
    pub postback_secrets: std::collections::BTreeMap<String, String>,
    /// `BULLSEYE_PRICE_ENCRYPTION_KEY_*` and `BULLSEYE_PRICE_INTEGRITY_KEY_*`,
    /// by variable name: override each exchange's key files.
    pub price_keys: std::collections::BTreeMap<String, String>,
}

impl Env {
    /// Reads the process environment. A variable set to the empty string (or
    /// to something that is not UTF-8) counts as unset.
    pub fn from_process() -> Env {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Env {
            admin_token: var(ADMIN_TOKEN_VAR),
            signing_key: var(SIGNING_KEY_VAR),
            postback_secrets: std::env::vars()
                .filter(|(name, value)| name.starts_with(POSTBACK_SECRET_PREFIX) && !value.is_empty())
                .collect(),
            price_keys: std::env::vars()
                .filter(|(name, value)| {
                    (name.starts_with(PRICE_ENCRYPTION_KEY_PREFIX) || name.starts_with(PRICE_INTEGRITY_KEY_PREFIX))
                        && !value.is_empty()
                })
                .collect(),
        }
    }
}
