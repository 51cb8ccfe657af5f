//! Validation, rule by rule: each test breaks one rule of an otherwise valid
//! config and asserts the exact problems reported (file, campaign, field,
//! why); then the defaults a minimal config gets, and the environment's
//! secrets over the files'.

use std::path::Path;
use std::time::Duration;

use super::raw::RawSettings;
use super::*;
use crate::campaigns::targeting::Gender;
use crate::campaigns::{PacingMode, Status};
use crate::money::Currency;
use crate::settings::access::{hex, token_hash};
use crate::settings::{BillingEvent, Role, UserAgentKind, UserIdSource};

const DIR: &str = "cfg";
const SETTINGS_FILE: &str = "cfg/bullseye.toml";
const CAMPAIGN_FILE: &str = "cfg/campaigns/test.toml";

/// The only key a settings file needs.
const SECRETS: &str =
    "[[advertiser]]\nid = \"Advertiser\"\n\n[secrets]\nsigning_key = \"test-signing-key-0123456789abcdefghijkl\"\n";

/// A valid banner creative, appended to test campaigns.
const BANNER: &str = r#"
[[campaign.creative]]
id = "cr1"
format = "banner"
w = 300
h = 250
image_url = "https://ads.example/a.png"
landing_url = "https://shop.example/"
"#;

/// A campaign `c1` with its required keys, `keys` (TOML literals) replacing
/// or adding to them, followed by `tables` (sub-tables such as
/// `[campaign.targeting]` and creatives).
fn campaign(keys: &[(&str, &str)], tables: &str) -> String {
    let mut all: Vec<(&str, &str)> = vec![
        ("id", r#""c1""#),
        ("advertiser", r#""Advertiser""#),
        ("pricing", r#""cpm""#),
        ("max_bid", r#""2""#),
        ("daily_budget", r#""100""#),
    ];
    for (key, value) in keys {
        match all.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => all.push((key, value)),
        }
    }
    // An empty value leaves the key out.
    let lines: String = all
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    format!("[[campaign]]\n{lines}{tables}")
}

/// [`campaign`] with a valid banner creative.
fn banner_campaign(keys: &[(&str, &str)], tables: &str) -> String {
    campaign(keys, &format!("{tables}{BANNER}"))
}

/// Validates a settings file and one campaign file, `campaigns/test.toml`,
/// with an empty environment.
fn check(settings: &str, campaigns: &str) -> Result<Config, ConfigErrors> {
    check_with(settings, campaigns, &Env::default())
}

fn check_with(settings: &str, campaigns: &str, env: &Env) -> Result<Config, ConfigErrors> {
    from_texts_with(Path::new(DIR), settings, &[("test.toml".into(), campaigns.into())], env)
}

fn valid(settings: &str, campaigns: &str) -> Config {
    check(settings, campaigns).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(settings: &str, campaigns: &str) -> Vec<ConfigProblem> {
    match check(settings, campaigns) {
        Ok(_) => panic!("accepted:\n{settings}\n{campaigns}"),
        Err(ConfigErrors(problems)) => problems,
    }
}

/// Problems of `bullseye.toml` with `extra` after the secrets.
fn settings_problems(extra: &str) -> Vec<ConfigProblem> {
    problems(&format!("{SECRETS}{extra}"), "")
}

/// Problems of one banner campaign.
fn campaign_problems(keys: &[(&str, &str)], tables: &str) -> Vec<ConfigProblem> {
    problems(SECRETS, &banner_campaign(keys, tables))
}

fn problem(file: &str, campaign: Option<&str>, field: &str, why: &str) -> ConfigProblem {
    ConfigProblem {
        file: file.into(),
        campaign: campaign.map(String::from),
        field: field.into(),
        why: why.into(),
    }
}

fn in_settings(field: &str, why: &str) -> ConfigProblem {
    problem(SETTINGS_FILE, None, field, why)
}

fn in_c1(field: &str, why: &str) -> ConfigProblem {
    problem(CAMPAIGN_FILE, Some("c1"), field, why)
}

const NO_SIGNING_KEY: &str = "no URL-signing key: set BULLSEYE_SIGNING_KEY, signing_key_file or signing_key";

// ---- bullseye.toml ----

#[test]
fn base_currency_must_be_a_currency_code() {
    assert_eq!(
        settings_problems("[bidding]\ncurrency = \"US\"\n"),
        [in_settings(
            "bidding.currency",
            r#""US" is not a three-letter currency code"#
        )]
    );
}

#[test]
fn fx_codes_must_be_currency_codes() {
    assert_eq!(
        settings_problems("[fx]\nEURO = \"1.1\"\n"),
        [in_settings("fx.EURO", r#""EURO" is not a three-letter currency code"#)]
    );
}

#[test]
fn fx_rates_must_be_amounts() {
    assert_eq!(
        settings_problems("[fx]\nEUR = \"1,1\"\n"),
        [in_settings("fx.EUR", r#"not a decimal amount: "1,1""#)]
    );
}

#[test]
fn fx_rates_must_be_positive() {
    assert_eq!(
        settings_problems("[fx]\nEUR = \"0\"\n"),
        [in_settings("fx.EUR", "rate must be positive")]
    );
}

#[test]
fn shading_is_at_most_one() {
    assert_eq!(
        settings_problems("[bidding]\nfirst_price_shading = \"1.5\"\n"),
        [
            in_settings("bidding.first_price_shading", "must be at most 1"),
            in_settings("bidding.first_price_shading", "must be greater than 0"),
        ]
    );
}

#[test]
fn shading_must_be_a_decimal() {
    assert_eq!(
        settings_problems("[bidding]\nfirst_price_shading = \"high\"\n"),
        [
            in_settings("bidding.first_price_shading", r#"not a decimal amount: "high""#),
            in_settings("bidding.first_price_shading", "must be greater than 0"),
        ]
    );
}

#[test]
fn shading_must_be_positive() {
    assert_eq!(
        settings_problems("[bidding]\nfirst_price_shading = \"0\"\n"),
        [in_settings("bidding.first_price_shading", "must be greater than 0")]
    );
}

/// An enum serde refuses fails the whole file (so its other settings are
/// not checked, and the key is missing too), at the value's line.
#[test]
fn user_id_sources_are_named() {
    assert_eq!(
        settings_problems("[bidding]\nuser_id_order = [\"buyeruid\", \"cookie\"]\n"),
        [
            in_settings(
                "line 7",
                "unknown user id source \"cookie\": expected buyeruid, user_id, ifa or eid:<source>"
            ),
            in_settings("secrets.signing_key", NO_SIGNING_KEY),
        ]
    );
}

#[test]
fn signing_key_is_required() {
    assert_eq!(problems("", ""), [in_settings("secrets.signing_key", NO_SIGNING_KEY)]);
}

/// Issue 17, items 9 and 10: every secret is at least 32 bytes, whatever
/// its source; an empty previous key made every URL forgeable, an empty
/// admin token let anyone in.
#[test]
fn every_secret_has_32_bytes_or_more() {
    let short = "0123456789abcdef0123456789abcde";
    assert_eq!(
        problems(&format!("[secrets]\nsigning_key = \"{short}\"\n"), ""),
        [in_settings("secrets.signing_key", "must be at least 32 bytes")]
    );
    for previous in ["", short] {
        assert_eq!(
            problems(&format!("{SECRETS}previous_signing_key = \"{previous}\"\n"), ""),
            [in_settings("secrets.previous_signing_key", "must be at least 32 bytes")],
            "{previous:?}"
        );
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), short).unwrap();
    assert_eq!(
        problems(
            &format!("[secrets]\nsigning_key_file = \"{}\"\n", file.path().display()),
            ""
        ),
        [in_settings("secrets.signing_key_file", "must be at least 32 bytes")]
    );
    let env = Env {
        signing_key: Some(short.into()),
        admin_token: Some(short.into()),
        ..Env::default()
    };
    let errors = check_with(SECRETS, "", &env).unwrap_err();
    assert_eq!(
        errors.0,
        [
            in_settings("BULLSEYE_SIGNING_KEY", "must be at least 32 bytes"),
            in_settings("BULLSEYE_ADMIN_TOKEN", "must be at least 32 bytes"),
        ]
    );
}

#[test]
fn signing_key_file_must_be_readable() {
    let missing = "/nonexistent/bullseye/signing.key";
    assert_eq!(
        problems(&format!("[secrets]\nsigning_key_file = \"{missing}\"\n"), ""),
        [in_settings(
            "secrets.signing_key_file",
            &format!("cannot read {missing}: No such file or directory (os error 2)")
        )]
    );
}

#[test]
fn signing_key_file_must_not_be_empty() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), " \n").unwrap();
    let settings = format!("[secrets]\nsigning_key_file = \"{}\"\n", file.path().display());
    assert_eq!(
        problems(&settings, ""),
        [in_settings("secrets.signing_key_file", "file is empty")]
    );
}

#[test]
fn datacenter_ranges_are_cidr() {
    assert_eq!(
        settings_problems("[traffic]\ndatacenter_ranges = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n"),
        [in_settings(
            "traffic.datacenter_ranges",
            r#""10.0.0.0/33" is not a CIDR range"#
        )]
    );
}

#[test]
fn public_url_is_http() {
    assert_eq!(
        settings_problems("[server]\npublic_url = \"track.example.com\"\n"),
        [in_settings("server.public_url", "must start with http:// or https://")]
    );
}

#[test]
fn exchange_names_are_letters_digits_dashes() {
    assert_eq!(
        settings_problems("[[exchange]]\nname = \"ex one\"\n"),
        [in_settings(
            "exchange[0].name",
            "must be non-empty letters, digits, - or _"
        )]
    );
}

#[test]
fn exchange_names_are_unique() {
    assert_eq!(
        settings_problems("[[exchange]]\nname = \"ex\"\n[[exchange]]\nname = \"ex\"\n"),
        [in_settings("exchange[1].name", "duplicate exchange name")]
    );
}

#[test]
fn billing_event_is_burl_or_nurl() {
    assert_eq!(
        settings_problems("[[exchange]]\nname = \"ex\"\nbilling_event = \"win\"\n"),
        [
            in_settings("line 8", "unknown variant `win`, expected `burl` or `nurl`"),
            in_settings("secrets.signing_key", NO_SIGNING_KEY),
        ]
    );
}

#[test]
fn burl_billing_needs_an_exchange_that_sends_burl() {
    assert_eq!(
        settings_problems("[[exchange]]\nname = \"ex\"\nsends_burl = false\n"),
        [in_settings(
            "exchange[0].billing_event",
            "burl billing needs an exchange that sends burl"
        )]
    );
}

#[test]
fn exchange_currency_is_a_currency_code() {
    assert_eq!(
        settings_problems("[[exchange]]\nname = \"ex\"\ncurrency = \"EURO\"\n"),
        [in_settings(
            "exchange[0].currency",
            r#""EURO" is not a three-letter currency code"#
        )]
    );
}

#[test]
fn settings_syntax_errors_give_the_line() {
    assert_eq!(
        problems(&format!("{SECRETS}[server\n"), ""),
        [
            in_settings("line 6", "unclosed table, expected `]`"),
            in_settings("secrets.signing_key", NO_SIGNING_KEY),
        ]
    );
}

// ---- campaigns ----

#[test]
fn campaign_ids_are_unique() {
    let campaigns = format!("{}{}", banner_campaign(&[], ""), banner_campaign(&[], ""));
    assert_eq!(problems(SECRETS, &campaigns), [in_c1("id", "duplicate campaign id")]);
}

#[test]
fn campaign_ids_are_short_and_plain() {
    assert_eq!(
        campaign_problems(&[("id", r#""c 1""#)], ""),
        [problem(
            CAMPAIGN_FILE,
            Some("c 1"),
            "id",
            "must be 1–64 letters, digits, '-', '_' or '.'"
        )]
    );
}

#[test]
fn max_bid_is_an_amount() {
    assert_eq!(
        campaign_problems(&[("max_bid", r#""1.5.0""#)], ""),
        [in_c1("max_bid", r#"not a decimal amount: "1.5.0""#)]
    );
}

#[test]
fn max_bid_is_positive() {
    assert_eq!(
        campaign_problems(&[("max_bid", r#""0""#)], ""),
        [in_c1("max_bid", "must be greater than 0")]
    );
}

#[test]
fn daily_budget_is_an_amount() {
    assert_eq!(
        campaign_problems(&[("daily_budget", r#""-3""#)], ""),
        [in_c1("daily_budget", r#"amount must not be negative: "-3""#)]
    );
}

#[test]
fn total_budget_is_an_amount() {
    assert_eq!(
        campaign_problems(&[("total_budget", r#""lots""#)], ""),
        [in_c1("total_budget", r#"not a decimal amount: "lots""#)]
    );
}

#[test]
fn cpc_campaigns_need_a_pctr_prior() {
    assert_eq!(
        campaign_problems(&[("pricing", r#""cpc""#)], ""),
        [in_c1("pctr_prior", "required for cpc campaigns")]
    );
}

#[test]
fn cpa_campaigns_need_a_target_and_a_max_cpm_and_no_max_bid() {
    assert_eq!(
        campaign_problems(&[("pricing", r#""cpa""#)], ""),
        [
            in_c1("target_cpa", "required for cpa campaigns"),
            in_c1("max_cpm", "required for cpa campaigns"),
            in_c1("max_bid", "not used by cpa campaigns (max_cpm caps their bids)"),
        ]
    );
    let config = valid(
        SECRETS,
        &banner_campaign(
            &[
                ("pricing", r#""cpa""#),
                ("max_bid", ""),
                ("target_cpa", r#""25""#),
                ("max_cpm", r#""8""#),
            ],
            "",
        ),
    );
    let c = &config.campaigns[0];
    assert_eq!(
        (c.max_bid, c.goal.target_cpa, c.goal.max_cpm),
        (Micros(8_000_000), Micros(25_000_000), Micros(8_000_000))
    );
    assert_eq!(c.goal.pcvr_prior, 100_000, "the default prior: one in ten thousand");
    assert_eq!(c.value_cpm(), Micros(2_500_000));
}

#[test]
fn cps_campaigns_need_a_share_and_an_order_value_prior() {
    assert_eq!(
        campaign_problems(&[("pricing", r#""cps""#), ("max_bid", ""), ("max_cpm", r#""5""#)], ""),
        [
            in_c1("order_value_prior", "required for cps campaigns"),
            in_c1("cps_share", "required for cps campaigns"),
        ]
    );
    assert_eq!(
        campaign_problems(
            &[
                ("target_cpa", r#""3""#),
                ("cps_share", r#""0.1""#),
                ("pcvr_prior", r#""0.1""#)
            ],
            ""
        ),
        [
            in_c1("target_cpa", "not used by cpm campaigns"),
            in_c1("cps_share", "not used by cpm campaigns"),
            in_c1("pcvr_prior", "not used by cpm campaigns"),
        ]
    );
}

#[test]
fn cpc_campaigns_are_capped_by_max_cpm_or_the_cpm_cap() {
    let cpc = [
        ("pricing", r#""cpc""#),
        ("pctr_prior", r#""0.01""#),
        ("max_bid", r#""50""#),
    ];
    let config = valid(SECRETS, &banner_campaign(&cpc, ""));
    // 50 × 0.01 × 1000 = 500, under the default cap of 1000.
    assert_eq!(
        (config.campaigns[0].goal.max_cpm, config.campaigns[0].value_cpm()),
        (Micros(1_000_000_000), Micros(500_000_000))
    );
    let capped = [cpc.as_slice(), &[("max_cpm", r#""40""#)]].concat();
    let config = valid(SECRETS, &banner_campaign(&capped, ""));
    assert_eq!(config.campaigns[0].value_cpm(), Micros(40_000_000));
}

#[test]
fn pctr_prior_is_at_most_one() {
    assert_eq!(
        campaign_problems(&[("pricing", r#""cpc""#), ("pctr_prior", r#""1.01""#)], ""),
        [in_c1("pctr_prior", "must be at most 1")]
    );
}

#[test]
fn time_zone_is_known() {
    assert_eq!(
        campaign_problems(&[("time_zone", r#""Mars/Olympus""#)], ""),
        [in_c1("time_zone", r#"unknown IANA time zone "Mars/Olympus""#)]
    );
}

#[test]
fn start_is_a_date() {
    assert_eq!(
        campaign_problems(&[("start", r#""2024-13-01""#)], ""),
        [in_c1("start", r#""2024-13-01" is not a YYYY-MM-DD date"#)]
    );
}

#[test]
fn end_is_a_date() {
    assert_eq!(
        campaign_problems(&[("end", r#""tomorrow""#)], ""),
        [in_c1("end", r#""tomorrow" is not a YYYY-MM-DD date"#)]
    );
}

#[test]
fn campaign_exchanges_are_known() {
    assert_eq!(
        campaign_problems(&[("exchanges", r#"["default", "nowhere"]"#)], ""),
        [in_c1("exchanges", r#"unknown exchange "nowhere""#)]
    );
}

#[test]
fn campaigns_need_a_creative() {
    assert_eq!(
        problems(SECRETS, &campaign(&[], "")),
        [in_c1("creative", "a campaign needs at least one creative")]
    );
}

#[test]
fn image_url_is_for_banners() {
    let video = "[[campaign.creative]]\nid = \"v\"\nformat = \"video\"\nimage_url = \"https://ads.example/a.png\"\nlanding_url = \"https://shop.example/\"\n";
    assert_eq!(
        problems(SECRETS, &campaign(&[], video)),
        [in_c1("creative[0].image_url", "image_url is for banners; give adm")]
    );
}

#[test]
fn creatives_give_adm_or_image_url() {
    let neither = "[[campaign.creative]]\nid = \"n\"\nformat = \"video\"\nlanding_url = \"https://shop.example/\"\n";
    let both = "[[campaign.creative]]\nid = \"b\"\nformat = \"banner\"\nw = 1\nh = 1\nadm = \"<b>\"\nimage_url = \"https://ads.example/a.png\"\nlanding_url = \"https://shop.example/\"\n";
    assert_eq!(
        problems(SECRETS, &campaign(&[], &format!("{neither}{both}"))),
        [
            in_c1("creative[0].adm", "give exactly one of adm or image_url"),
            in_c1("creative[1].adm", "give exactly one of adm or image_url"),
        ]
    );
}

/// A native creative with these lines after its `format`.
fn native_creative(lines: &str) -> String {
    format!("[[campaign.creative]]\nid = \"n\"\nformat = \"native\"\nlanding_url = \"https://shop.example/\"\n{lines}")
}

#[test]
fn native_creatives_are_read_as_their_assets() {
    use crate::campaigns::model::Markup;
    let lines = "title = \"The new Hooli phone\"\n\
        [[campaign.creative.image]]\ntype = \"main\"\nurl = \"https://cdn.example/a.JPG\"\nw = 1200\nh = 627\n\
        [[campaign.creative.image]]\ntype = 1\nurl = \"https://cdn.example/icon\"\nw = 80\nh = 80\nmime = \"image/png\"\n\
        [[campaign.creative.data]]\ntype = \"Sponsored\"\nvalue = \"Hooli\"\n\
        [[campaign.creative.data]]\ntype = 12\nvalue = \"Buy\"\n\
        [[campaign.creative.data]]\ntype = \"salesprice\"\nvalue = \"$9\"\n";
    let config = valid(SECRETS, &campaign(&[], &native_creative(lines)));
    let Markup::Native(ad) = &config.campaigns[0].creatives[0].markup else {
        panic!("not native: {:?}", config.campaigns[0].creatives[0].markup)
    };
    assert_eq!(ad.title.as_ref().map(|t| t.as_str()), Some("The new Hooli phone"));
    let images: Vec<(i32, &str, i64, i64, Option<&str>)> = ad
        .images
        .iter()
        .map(|i| (i.kind, i.url.as_str(), i.w, i.h, i.mime.as_deref()))
        .collect();
    assert_eq!(
        images,
        [
            (3, "https://cdn.example/a.JPG", 1200, 627, Some("image/jpeg")),
            (1, "https://cdn.example/icon", 80, 80, Some("image/png")),
        ]
    );
    let data: Vec<(i32, &str)> = ad.data.iter().map(|d| (d.kind, d.value.as_str())).collect();
    assert_eq!(data, [(1, "Hooli"), (12, "Buy"), (7, "$9")]);
}

#[test]
fn native_creatives_give_valid_assets_and_no_markup() {
    let bad = "title = \" \"\nadm = \"{}\"\nimage_url = \"https://cdn.example/a.png\"\n\
        [[campaign.creative.image]]\ntype = \"main\"\nurl = \"http://cdn.example/a.png\"\nw = 0\nh = 627\nmime = \"text/html\"\n\
        [[campaign.creative.data]]\ntype = \"desc\"\nvalue = \"\"\n";
    assert_eq!(
        problems(SECRETS, &campaign(&[], &native_creative(bad))),
        [
            in_c1(
                "creative[0].adm",
                "a native creative gives its assets (title, [[campaign.creative.image]], [[campaign.creative.data]]), not adm: its response is written for each request's assets"
            ),
            in_c1(
                "creative[0].image_url",
                "image_url is for banners; give a native image as [[campaign.creative.image]]"
            ),
            in_c1("creative[0].title", "must not be blank"),
            in_c1("creative[0].image[0].url", "must be an https URL"),
            in_c1("creative[0].image[0].w", "w and h must be positive"),
            in_c1("creative[0].image[0].mime", "must be an image MIME type (image/…)"),
            in_c1("creative[0].data[0].value", "must not be blank"),
        ]
    );
    assert_eq!(
        problems(SECRETS, &campaign(&[], &native_creative(""))),
        [in_c1(
            "creative[0].title",
            "a native creative needs a title, an image or a data asset"
        )]
    );
    let banner_with_title = BANNER.replace("format = \"banner\"", "format = \"banner\"\ntitle = \"Hi\"");
    assert_eq!(
        problems(SECRETS, &campaign(&[], &banner_with_title)),
        [in_c1(
            "creative[0].title",
            "title, image and data are for native creatives"
        )]
    );
}

#[test]
fn native_asset_types_are_names_or_positive_numbers() {
    let image = |kind: &str| {
        native_creative(&format!(
            "[[campaign.creative.image]]\ntype = {kind}\nurl = \"https://cdn.example/a.png\"\nw = 1\nh = 1\n"
        ))
    };
    assert_eq!(
        problems(SECRETS, &campaign(&[], &image("\"logo\""))),
        [in_c1(
            "line 12",
            "unknown type \"logo\": expected icon, main or a number"
        )]
    );
    assert_eq!(
        problems(SECRETS, &campaign(&[], &image("0"))),
        [in_c1("line 12", "type 0 is not a positive asset type number")]
    );
    let data = native_creative("[[campaign.creative.data]]\ntype = \"headline\"\nvalue = \"x\"\n");
    let why = &problems(SECRETS, &campaign(&[], &data))[0].why;
    assert!(
        why.starts_with("unknown type \"headline\": expected sponsored, desc, rating"),
        "{why}"
    );
}

#[test]
fn banners_have_a_positive_size() {
    let banner = "[[campaign.creative]]\nid = \"b\"\nformat = \"banner\"\nw = 300\nh = 0\nadm = \"<b>\"\nlanding_url = \"https://shop.example/\"\n";
    assert_eq!(
        problems(SECRETS, &campaign(&[], banner)),
        [in_c1("creative[0].w", "banner creatives need positive w and h")]
    );
}

#[test]
fn landing_urls_are_http() {
    let banner = BANNER.replace("https://shop.example/", "ftp://shop.example/");
    assert_eq!(
        problems(SECRETS, &campaign(&[], &banner)),
        [in_c1("creative[0].landing_url", "must be an http(s) URL")]
    );
}

#[test]
fn segment_paths_are_valid() {
    let targeting = "[campaign.targeting.segments]\nany = [\"interest/\"]\nall = [\"inter est\"]\nnone = [\"\"]\n";
    assert_eq!(
        campaign_problems(&[], targeting),
        [
            in_c1(
                "targeting.segments.any",
                r#"segment path "interest/" has an empty level"#
            ),
            in_c1(
                "targeting.segments.all",
                r#"segment path "inter est" contains a character outside [a-z0-9_.:-]"#
            ),
            in_c1("targeting.segments.none", "empty segment path"),
        ]
    );
}

#[test]
fn geo_circles_are_on_earth() {
    let targeting = "[[campaign.targeting.geo_radius]]\nlat = 48.85\nlon = 2.35\nradius_km = 0.0\n";
    assert_eq!(
        campaign_problems(&[], targeting),
        [in_c1(
            "targeting.geo_radius",
            "lat in [-90, 90], lon in [-180, 180], radius_km > 0"
        )]
    );
}

#[test]
fn age_range_is_ordered() {
    let targeting = "[campaign.targeting.age]\nmin = 30\nmax = 20\n";
    assert_eq!(
        campaign_problems(&[], targeting),
        [in_c1("targeting.age", "min is greater than max")]
    );
}

/// A refused enum inside a campaign keeps its campaign (found from the
/// position of the value).
#[test]
fn genders_are_m_f_o() {
    let targeting = "[campaign.targeting]\ngenders = [\"F\", \"X\"]\n";
    assert_eq!(
        campaign_problems(&[], targeting),
        [in_c1("line 8", "unknown variant `X`, expected one of `M`, `F`, `O`")]
    );
}

#[test]
fn countries_are_alpha_3() {
    let targeting = "[campaign.targeting]\ncountries = [\"FRA\", \"FRANCE\"]\n";
    assert_eq!(
        campaign_problems(&[], targeting),
        [in_c1(
            "targeting.countries",
            r#""FRANCE" is not an ISO-3166-1 alpha-3 code"#
        )]
    );
}

#[test]
fn daypart_hours_are_ordered_within_the_day() {
    let targeting = "[[campaign.targeting.dayparts]]\nfrom_hour = 9\nto_hour = 9\n[[campaign.targeting.dayparts]]\nfrom_hour = 20\nto_hour = 25\n";
    let why = "need 0 <= from_hour < to_hour <= 24";
    assert_eq!(
        campaign_problems(&[], targeting),
        [in_c1("targeting.dayparts", why), in_c1("targeting.dayparts", why)]
    );
}

#[test]
fn daypart_days_are_week_days() {
    let targeting = "[[campaign.targeting.dayparts]]\ndays = [\"mon\", \"funday\"]\nfrom_hour = 9\nto_hour = 17\n";
    assert_eq!(
        campaign_problems(&[], targeting),
        [in_c1(
            "line 8",
            "unknown variant `funday`, expected one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`"
        )]
    );
}

#[test]
fn campaign_syntax_errors_give_the_line_and_no_campaign() {
    assert_eq!(
        problems(SECRETS, "[[campaign]]\nid = 1\nsurprise = true\n"),
        [problem(
            CAMPAIGN_FILE,
            None,
            "line 2",
            "invalid type: integer `1`, expected a string"
        )]
    );
}

// ---- reading the directory ----

#[test]
fn a_missing_campaigns_directory_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bullseye.toml"), SECRETS).unwrap();
    let settings_file = dir.path().join("bullseye.toml").display().to_string();
    let campaigns_dir = dir.path().join("campaigns").display().to_string();
    let errors = load_with(dir.path(), &Env::default()).unwrap_err();
    assert_eq!(
        errors.0,
        [problem(
            &settings_file,
            None,
            "campaigns/",
            &format!("cannot read {campaigns_dir}")
        )]
    );
}

#[test]
fn an_unreadable_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bullseye.toml"), SECRETS).unwrap();
    std::fs::create_dir_all(dir.path().join("campaigns/odd.toml")).unwrap();
    let odd = dir.path().join("campaigns/odd.toml").display().to_string();
    let errors = load_with(dir.path(), &Env::default()).unwrap_err();
    assert_eq!(
        errors.0,
        [problem(&odd, None, "-", "cannot read: Is a directory (os error 21)")]
    );
}

#[test]
fn load_reads_the_toml_files_of_campaigns_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bullseye.toml"), SECRETS).unwrap();
    std::fs::create_dir(dir.path().join("campaigns")).unwrap();
    for name in ["f", "e", "d", "c", "b", "a"] {
        let text = banner_campaign(&[("id", &format!("\"{name}\""))], "");
        std::fs::write(dir.path().join(format!("campaigns/{name}.toml")), text).unwrap();
    }
    std::fs::write(dir.path().join("campaigns/notes.txt"), "not toml").unwrap();
    let config = load_with(dir.path(), &Env::default()).unwrap();
    let ids: Vec<&str> = config.campaigns.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e", "f"]);
}

// ---- defaults ----

#[test]
fn a_minimal_config_gets_the_documented_defaults() {
    let config = valid(SECRETS, &banner_campaign(&[], ""));
    let s = &config.settings;
    assert_eq!(s.config_dir, Path::new(DIR));
    assert_eq!(s.public_url, None);
    assert_eq!(s.max_body_bytes, 262_144);
    assert_eq!(s.header_read_timeout, Duration::from_secs(30));
    assert_eq!(s.body_read_timeout, Duration::from_secs(5));
    assert_eq!(s.max_connections, 4096);
    assert_eq!(s.default_tmax, Duration::from_millis(200));
    assert_eq!(s.base_currency(), Currency::USD);
    assert_eq!(s.shading_ppm, 850_000);
    assert_eq!(
        s.user_id_order,
        [UserIdSource::BuyerUid, UserIdSource::UserId, UserIdSource::Ifa]
    );
    assert_eq!(s.gdpr_vendor_id, None);
    assert_eq!(s.audience_snapshot, None);
    assert_eq!(s.previous_signing_key, None);
    assert!(s.admin_tokens.is_empty());
    assert!(s.advertisers.len() == 1 && s.advertisers[0].name == "Advertiser");
    assert!(s.datacenter_ranges.is_empty());
    assert_eq!(s.click_rules.min_delay, Duration::from_secs(1));
    assert_eq!(s.click_rules.max_per_user_hour, 10);
    assert_eq!(s.click_rules.max_per_ip_hour, 30);
    assert!(s.click_rules.trusted_proxies.is_empty());
    let screen = &s.user_agent_screen;
    assert_eq!(screen.classify("Googlebot/2.1"), Some(UserAgentKind::Crawler));
    assert_eq!(screen.classify("python-requests/2.31"), Some(UserAgentKind::Crawler));
    assert_eq!(
        screen.classify("Mozilla/5.0 HeadlessChrome/120"),
        Some(UserAgentKind::Automation)
    );
    assert_eq!(screen.classify("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"), None);

    let [exchange] = &s.exchanges[..] else {
        panic!("{:?}", s.exchanges)
    };
    assert_eq!(exchange.name, "default");
    assert_eq!(exchange.seat, "bullseye");
    assert_eq!(exchange.billing_event, BillingEvent::Burl);
    assert_eq!(exchange.network_allowance, Duration::from_millis(30));
    assert!(exchange.sends_burl);
    assert!(!exchange.sends_lurl);
    assert_eq!(exchange.currency, Currency::USD);

    let [c] = &config.campaigns[..] else {
        panic!("{:?}", config.campaigns)
    };
    assert_eq!(c.status, Status::Active);
    assert_eq!(c.pacing, PacingMode::Even);
    assert_eq!(c.time_zone_name, "UTC");
    assert_eq!(c.time_zone, jiff::tz::TimeZone::UTC);
    assert_eq!((c.start, c.end, c.total_budget), (None, None, None));
    assert!(c.exchanges.is_empty());
    assert_eq!(c.seat, None);
    assert_eq!(c.targeting.age, None);
    assert!(c.targeting.hours.is_none());
    assert!(!c.targeting.deals_only);
}

#[test]
fn an_exchange_with_only_a_name_gets_the_defaults_and_the_base_currency() {
    let settings = format!("{SECRETS}[bidding]\ncurrency = \"EUR\"\n[[exchange]]\nname = \"ex\"\n");
    let config = valid(&settings, "");
    let names: Vec<&str> = config.settings.exchanges.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["default", "ex"]);
    let [implicit, named] = &config.settings.exchanges[..] else {
        unreachable!()
    };
    for e in [implicit, named] {
        assert_eq!(e.seat, "bullseye");
        assert_eq!(e.billing_event, BillingEvent::Burl);
        assert_eq!(e.network_allowance, Duration::from_millis(30));
        assert_eq!((e.sends_burl, e.sends_lurl), (true, false));
        assert_eq!(e.currency.as_str(), "EUR");
    }
}

#[test]
fn the_exchange_named_default_comes_first() {
    let settings = format!("{SECRETS}[[exchange]]\nname = \"ex\"\n[[exchange]]\nname = \"default\"\nseat = \"s\"\n");
    let config = valid(&settings, "");
    let names: Vec<(&str, &str)> = config
        .settings
        .exchanges
        .iter()
        .map(|e| (e.name.as_str(), e.seat.as_str()))
        .collect();
    assert_eq!(names, [("default", "s"), ("ex", "bullseye")]);
}

#[test]
fn left_out_and_empty_tables_mean_the_same() {
    let empty_tables = "[server]\n[bidding]\n[audience]\n[secrets]\n[traffic]\n[tracking]\n";
    let from_empty: RawSettings = toml::from_str(empty_tables).unwrap();
    let from_nothing: RawSettings = toml::from_str("").unwrap();
    assert_eq!(format!("{from_empty:?}"), format!("{from_nothing:?}"));
    assert_eq!(format!("{:?}", RawSettings::default()), format!("{from_nothing:?}"));
}

#[test]
fn age_bounds_default_to_0_and_150() {
    let config = valid(SECRETS, &banner_campaign(&[], "[campaign.targeting.age]\nmin = 18\n"));
    assert_eq!(config.campaigns[0].targeting.age, Some((18, 150)));
    let config = valid(SECRETS, &banner_campaign(&[], "[campaign.targeting.age]\nmax = 65\n"));
    assert_eq!(config.campaigns[0].targeting.age, Some((0, 65)));
}

#[test]
fn video_and_audio_mime_types_default_to_mp4() {
    let creative = |format: &str| {
        format!(
            "[[campaign.creative]]\nid = \"{format}\"\nformat = \"{format}\"\nadm = \"<VAST/>\"\nlanding_url = \"https://shop.example/\"\n"
        )
    };
    let native = "[[campaign.creative]]\nid = \"native\"\nformat = \"native\"\ntitle = \"Hi\"\nlanding_url = \"https://shop.example/\"\n";
    let tables = format!("{}{}{native}", creative("video"), creative("audio"));
    let config = valid(SECRETS, &campaign(&[], &tables));
    let mimes: Vec<Option<&str>> = config.campaigns[0]
        .creatives
        .iter()
        .map(|c| c.mime.as_deref())
        .collect();
    assert_eq!(mimes, [Some("video/mp4"), Some("audio/mp4"), None]);
}

/// The enums accept what the string matching they replaced accepted.
#[test]
fn enum_spellings_accepted_as_before() {
    let settings = format!(
        "{SECRETS}[bidding]\nuser_id_order = [\"user.id\", \"ifa\"]\n[[exchange]]\nname = \"ex\"\nbilling_event = \"nurl\"\nsends_burl = false\n"
    );
    let targeting = "[campaign.targeting]\ngenders = [\"m\", \" F \", \"O\"]\n[[campaign.targeting.dayparts]]\ndays = [\"Monday\", \"SUN\"]\nfrom_hour = 9\nto_hour = 10\n";
    let config = valid(&settings, &banner_campaign(&[], targeting));
    assert_eq!(config.settings.user_id_order, [UserIdSource::UserId, UserIdSource::Ifa]);
    assert_eq!(config.settings.exchanges[1].billing_event, BillingEvent::Nurl);
    let targeting = &config.campaigns[0].targeting;
    assert_eq!(targeting.genders, [Gender::Male, Gender::Female, Gender::Other]);
    let hours = targeting.hours.unwrap();
    let set: Vec<usize> = (0..168).filter(|&h| hours.contains(h)).collect();
    assert_eq!(set, [9, 6 * 24 + 9]);
}

#[test]
fn blank_bot_user_agents_are_ignored() {
    let config = valid(
        &format!("{SECRETS}[traffic]\nbot_user_agents = [\"\", \"  \", \"zz\"]\n"),
        "",
    );
    let screen = &config.settings.user_agent_screen;
    assert_eq!(screen.classify("zz-agent"), Some(UserAgentKind::Crawler));
    assert_eq!(screen.classify("Googlebot"), None);
    assert_eq!(screen.classify("HeadlessChrome"), Some(UserAgentKind::Automation));
}

// ---- secrets: file and environment ----

#[test]
fn a_dev_signing_key_is_flagged() {
    let dev_token = format!(
        "[[admin.token]]\nname = \"dev\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
        hex(&token_hash(super::DEV_ADMIN_TOKEN))
    );
    let config = valid(
        &format!("{dev_token}[secrets]\nsigning_key = \"dev-only-0123456789abcdef0123456789\"\n"),
        "",
    );
    assert_eq!(config.settings.signing_key, b"dev-only-0123456789abcdef0123456789");
    assert!(config.settings.signing_key_is_dev);
    assert!(config.settings.admin_token_is_dev);
    assert!(!valid(SECRETS, "").settings.signing_key_is_dev);
    assert!(!valid(SECRETS, "").settings.admin_token_is_dev);
}

#[test]
fn a_signing_key_file_is_read_trimmed() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "  key-from-a-file-0123456789abcdef0123 \n").unwrap();
    let settings = format!(
        "[secrets]\nsigning_key = \"dev-only-0123456789\"\nsigning_key_file = \"{}\"\n",
        file.path().display()
    );
    let config = valid(&settings, "");
    assert_eq!(config.settings.signing_key, b"key-from-a-file-0123456789abcdef0123");
    assert!(!config.settings.signing_key_is_dev);
}

#[test]
fn the_environment_signing_key_overrides_the_files() {
    let env = Env {
        signing_key: Some("key-from-the-env-0123456789abcdef0123".into()),
        ..Env::default()
    };
    let settings = "[secrets]\nsigning_key = \"dev-only\"\nsigning_key_file = \"/nonexistent/key\"\n";
    let config = check_with(settings, "", &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.settings.signing_key, b"key-from-the-env-0123456789abcdef0123");
    assert!(!config.settings.signing_key_is_dev);
    // Without it, the file's problems show.
    assert_eq!(
        problems(settings, "")[0],
        in_settings(
            "secrets.signing_key_file",
            "cannot read /nonexistent/key: No such file or directory (os error 2)"
        )
    );
}

/// Issue 11: a clear token in a file is refused with a migration hint;
/// `BULLSEYE_ADMIN_TOKEN` is an admin named `env`, next to the configured
/// tokens, each kept as its hash only.
#[test]
fn admin_tokens_are_hashes_with_roles() {
    let clear = format!("{SECRETS}admin_token = \"from-the-file-0123456789abcdef0123\"\n");
    let found = problems(&clear, "");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].field, "secrets.admin_token");
    assert!(found[0].why.contains("bullseye admin token"), "{}", found[0].why);

    let hash = hex(&token_hash("acme-token-0123456789abcdef0123456789"));
    let settings = format!(
        "[[advertiser]]\nid = \"acme\"\n\n[[admin.token]]\nname = \"acme-ops\"\nrole = \"advertiser\"\nadvertiser = \"acme\"\nsha256 = \"{hash}\"\n\n{SECRETS}"
    );
    let env = Env {
        admin_token: Some("from-the-env-0123456789abcdef01234".into()),
        ..Env::default()
    };
    let tokens = check_with(&settings, "", &env).unwrap().settings.admin_tokens;
    assert_eq!(tokens.len(), 2);
    assert_eq!((tokens[0].name.as_str(), tokens[0].role), ("env", Role::Admin));
    assert_eq!(tokens[0].sha256, token_hash("from-the-env-0123456789abcdef01234"));
    assert_eq!(
        (tokens[1].name.as_str(), tokens[1].role, tokens[1].advertiser.as_deref()),
        ("acme-ops", Role::Advertiser, Some("acme"))
    );

    let token = |extra: &str| format!("[[admin.token]]\nname = \"t\"\n{extra}\n{SECRETS}");
    let bad = [
        (
            token(&format!("role = \"advertiser\"\nsha256 = \"{hash}\"")),
            "admin.token[0].advertiser",
        ),
        (
            token(&format!(
                "role = \"advertiser\"\nadvertiser = \"nobody\"\nsha256 = \"{hash}\""
            )),
            "admin.token[0].advertiser",
        ),
        (
            token(&format!(
                "role = \"viewer\"\nadvertiser = \"Advertiser\"\nsha256 = \"{hash}\""
            )),
            "admin.token[0].advertiser",
        ),
        (token("role = \"admin\"\nsha256 = \"not-hex\""), "admin.token[0].sha256"),
    ];
    for (settings, field) in bad {
        let found = problems(&settings, "");
        assert_eq!(found.len(), 1, "{settings}: {found:?}");
        assert_eq!(found[0].field, field, "{settings}");
    }
}

/// Issue 11: every campaign names a declared advertiser; advertiser ids
/// are unique and their time zones known.
#[test]
fn campaigns_name_declared_advertisers() {
    let found = campaign_problems(&[("advertiser", r#""Nobody""#)], "");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].field, "advertiser");
    assert!(
        found[0].why.starts_with("unknown advertiser \"Nobody\""),
        "{}",
        found[0].why
    );
    let twice = format!("[[advertiser]]\nid = \"Advertiser\"\ntime_zone = \"Mars/Base\"\n{SECRETS}");
    let fields: Vec<String> = problems(&twice, "").into_iter().map(|p| p.field).collect();
    assert_eq!(fields, ["advertiser[0].time_zone", "advertiser[1].id"]);
}

/// Issue 11: creative ids are unique within a campaign (they name the
/// creative in tracking URLs and in the API's paths).
#[test]
fn creative_ids_are_unique_in_a_campaign() {
    let found = campaign_problems(&[], BANNER);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "creative[1].id");
}

// ---- sanity caps and request limits (issue 17, items 7 and 15) ----

/// A CPC max bid of 9.2e12 CPM went out: max bids are capped.
#[test]
fn max_bids_are_capped_by_pricing() {
    assert_eq!(
        campaign_problems(&[("max_bid", r#""1000.000001""#)], ""),
        [in_c1("max_bid", "above the cap of 1000 (bidding.max_cpm_cap)")]
    );
    let at_the_cap = valid(SECRETS, &banner_campaign(&[("max_bid", r#""1000""#)], ""));
    assert_eq!(at_the_cap.campaigns[0].max_bid.0, 1_000_000_000);
    assert_eq!(
        campaign_problems(
            &[
                ("pricing", r#""cpc""#),
                ("pctr_prior", r#""0.01""#),
                ("max_bid", r#""100.01""#)
            ],
            ""
        ),
        [in_c1("max_bid", "above the cap of 100 (bidding.max_cpc_cap)")]
    );
    let lower = format!("{SECRETS}[bidding]\nmax_cpm_cap = \"5\"\n");
    assert_eq!(
        problems(&lower, &banner_campaign(&[("max_bid", r#""6""#)], "")),
        [in_c1("max_bid", "above the cap of 5 (bidding.max_cpm_cap)")]
    );
    assert_eq!(
        problems(&format!("{SECRETS}[bidding]\nmax_cpc_cap = \"0\"\n"), ""),
        [in_settings("bidding.max_cpc_cap", "must be greater than 0")]
    );
}

#[test]
fn imps_per_request_default_to_50_and_are_at_least_1() {
    assert_eq!(valid(SECRETS, "").settings.max_imps_per_request, 50);
    assert_eq!(
        problems(&format!("{SECRETS}[bidding]\nmax_imps_per_request = 0\n"), ""),
        [in_settings("bidding.max_imps_per_request", "must be at least 1")]
    );
}

/// Issue 11: a postback secret belongs to a declared advertiser.
#[test]
fn postback_secrets_name_declared_advertisers() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "postback-secret-0123456789abcdef0123456789").unwrap();
    let postback = |advertiser: &str| {
        format!(
            "{SECRETS}\n[[postback]]\nadvertiser = \"{advertiser}\"\nsecret_file = \"{}\"\n",
            file.path().display()
        )
    };
    valid(&postback("Advertiser"), "");
    assert_eq!(
        problems(&postback("Nobody"), ""),
        [in_settings("postback[0].advertiser", "unknown advertiser \"Nobody\"")]
    );
}

/// Issue 13: an exchange's price keys, both or neither, from files or the
/// environment (which wins), never shown in a problem.
#[test]
fn exchange_price_keys_come_in_pairs_from_files_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (e_key, i_key) = (
        "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=",
        "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=",
    );
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (e_file, i_file, bad_file) = (file("e", e_key), file("i", i_key), file("bad", "not base64!"));
    let exchange = |keys: &str| format!("{SECRETS}[[exchange]]\nname = \"gdx-1\"\n{keys}");
    let both = format!("price_encryption_key_file = \"{e_file}\"\nprice_integrity_key_file = \"{i_file}\"\n");
    let expected = crate::encrypted_price::PriceKeys::new(
        &crate::encrypted_price::PriceKeys::decode_key(e_key).unwrap(),
        &crate::encrypted_price::PriceKeys::decode_key(i_key).unwrap(),
    );
    let config = valid(&exchange(&both), "");
    let gdx = config.settings.exchange("gdx-1").unwrap();
    assert_eq!(gdx.price_keys.as_ref(), Some(&expected));
    assert_eq!(config.settings.default_exchange().price_keys, None);
    assert_eq!(
        problems(&exchange(&format!("price_encryption_key_file = \"{e_file}\"\n")), ""),
        [in_settings(
            "exchange[0].price_integrity_key_file",
            "an encryption key needs an integrity key"
        )]
    );
    let bad = format!("price_encryption_key_file = \"{bad_file}\"\nprice_integrity_key_file = \"{i_file}\"\n");
    assert_eq!(
        problems(&exchange(&bad), ""),
        [in_settings(
            "exchange[0].price_encryption_key_file",
            "the price key is not base64 (web-safe or standard)"
        ),]
    );
}

/// The environment overrides the price key files, and alone configures an
/// exchange.
#[test]
fn exchange_price_keys_from_the_environment_override_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (e_key, i_key) = (
        "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=",
        "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=",
    );
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (i_file, bad_file) = (file("i", i_key), file("bad", "not base64!"));
    let exchange = |keys: &str| format!("{SECRETS}[[exchange]]\nname = \"gdx-1\"\n{keys}");
    let expected = crate::encrypted_price::PriceKeys::new(
        &crate::encrypted_price::PriceKeys::decode_key(e_key).unwrap(),
        &crate::encrypted_price::PriceKeys::decode_key(i_key).unwrap(),
    );
    let bad = format!("price_encryption_key_file = \"{bad_file}\"\nprice_integrity_key_file = \"{i_file}\"\n");
    let env = Env {
        price_keys: [
            ("BULLSEYE_PRICE_ENCRYPTION_KEY_GDX_1".to_string(), e_key.to_string()),
            ("BULLSEYE_PRICE_INTEGRITY_KEY_GDX_1".to_string(), i_key.to_string()),
        ]
        .into(),
        ..Env::default()
    };
    let config = check_with(&exchange(&bad), "", &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.settings.exchange("gdx-1").unwrap().price_keys.as_ref(),
        Some(&expected)
    );
    let config = check_with(&exchange(""), "", &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.settings.exchange("gdx-1").unwrap().price_keys.as_ref(),
        Some(&expected)
    );
    let short = Env {
        price_keys: [
            ("BULLSEYE_PRICE_ENCRYPTION_KEY_GDX_1".to_string(), e_key.to_string()),
            ("BULLSEYE_PRICE_INTEGRITY_KEY_GDX_1".to_string(), "c2hvcnQ=".to_string()),
        ]
        .into(),
        ..Env::default()
    };
    let errors = check_with(&exchange(""), "", &short).unwrap_err();
    assert_eq!(
        errors.0,
        [in_settings(
            "BULLSEYE_PRICE_INTEGRITY_KEY_GDX_1",
            "the price key decodes to fewer than 16 bytes"
        )]
    );
    assert!(!format!("{config:?}").contains(e_key), "keys never shown");
}

// ---- lifetime budgets ----

use crate::money::Micros;

/// A campaign `c1` without a daily budget, with `keys` (TOML lines).
fn without_daily_budget(keys: &str) -> String {
    format!(
        "[[campaign]]\nid = \"c1\"\nadvertiser = \"Advertiser\"\npricing = \"cpm\"\nmax_bid = \"2\"\n{keys}{BANNER}"
    )
}

const DAILY_BUDGET_REQUIRED: &str =
    "required unless the campaign has both total_budget and end (then each day's budget is derived from them)";

#[test]
fn a_campaign_without_a_daily_budget_needs_a_total_budget_and_an_end() {
    for keys in ["", "total_budget = \"70\"\n", "end = \"2026-12-07\"\n"] {
        assert_eq!(
            problems(SECRETS, &without_daily_budget(keys)),
            [in_c1("daily_budget", DAILY_BUDGET_REQUIRED)],
            "{keys:?}"
        );
    }
    let config = valid(
        SECRETS,
        &without_daily_budget(
            "total_budget = \"70\"\nstart = \"2026-12-01\"\nend = \"2026-12-07\"\ntime_zone = \"Asia/Tokyo\"\n",
        ),
    );
    let c = &config.campaigns[0];
    // Midnight of 1 December in Tokyo.
    let first = crate::clock::local_day("2026-11-30T15:00:00Z".parse().unwrap(), &c.time_zone);
    assert_eq!(c.daily_budget, Micros::ZERO);
    assert_eq!(
        c.derived_budget_days,
        Some((first, first + 6)),
        "seven days, 1 to 7 December"
    );
    assert_eq!(c.day_budget().on(first, Micros::ZERO), Micros(10_000_000));
    let open_start = valid(
        SECRETS,
        &without_daily_budget("total_budget = \"70\"\nend = \"2026-12-07\"\n"),
    );
    assert_eq!(open_start.campaigns[0].derived_budget_days.map(|d| d.0), Some(i64::MIN));
}

#[test]
fn a_daily_budget_with_a_total_is_not_derived() {
    let config = valid(
        SECRETS,
        &banner_campaign(&[("total_budget", r#""250""#), ("end", r#""2026-12-07""#)], ""),
    );
    let c = &config.campaigns[0];
    assert_eq!(
        (c.daily_budget, c.total_budget),
        (Micros(100_000_000), Some(Micros(250_000_000)))
    );
    assert_eq!(c.derived_budget_days, None);
}

// ---- contact rules (issue 16) ----

#[test]
fn advertiser_contact_rules_are_typed() {
    let settings = "[[advertiser]]\nid = \"Advertiser\"\ntime_zone = \"Europe/Paris\"\ndaily_budget = \"250.50\"\n\
                    suppress_segment = \"optout/advertiser\"\n[advertiser.frequency]\nper_day = 3\nper_week = 10\n\
                    [advertiser.capacity]\nclicks_per_hour = 40\nconversions_per_day = 25\n\
                    [secrets]\nsigning_key = \"test-signing-key-0123456789abcdefghijkl\"\n";
    let config = valid(
        settings,
        &banner_campaign(&[("priority", "2")], "[campaign.capacity]\nclicks_per_day = 7\n"),
    );
    let rules = &config.settings.advertisers[0].rules;
    assert_eq!(rules.daily_budget, Some(crate::money::Micros(250_500_000)));
    assert_eq!((rules.frequency.per_day, rules.frequency.per_week), (Some(3), Some(10)));
    assert_eq!(rules.suppress_segment.as_deref(), Some("optout/advertiser"));
    assert_eq!(
        (rules.capacity.clicks_per_hour, rules.capacity.conversions_per_day),
        (Some(40), Some(25))
    );
    let campaign = &config.campaigns[0];
    assert_eq!((campaign.priority, campaign.capacity.clicks_per_day), (2, Some(7)));
    let plain = valid(SECRETS, &banner_campaign(&[], ""));
    assert!(plain.settings.advertisers[0].rules.is_none(), "no rules by default");
    assert_eq!(plain.campaigns[0].priority, 0);
}

/// An advertiser's first-party lists are its own: another advertiser's
/// campaign may not target them, a segment below them, nor one above them
/// (which reaches their users); nor suppress by them.
#[test]
fn private_segments_are_targeted_by_their_advertiser_only() {
    let settings = "[[advertiser]]\nid = \"Advertiser\"\n\n[[advertiser]]\nid = \"Globex\"\n\
                    private_segments = [\"crm/globex\"]\n\n\
                    [secrets]\nsigning_key = \"test-signing-key-0123456789abcdefghijkl\"\n";
    let targeting = |segments: &str| format!("[campaign.targeting.segments]\nany = [{segments}]\n");
    for segments in ["\"crm/globex\"", "\"crm/globex/vip\"", "\"crm\""] {
        let found = problems(settings, &banner_campaign(&[], &targeting(segments)));
        let private = segments.trim_matches('"');
        assert_eq!(
            found,
            [in_c1(
                "targeting.segments",
                &format!("segment {private:?} reaches another advertiser's private segments")
            )]
        );
    }
    // Its own campaigns may; others may target beside it.
    valid(
        settings,
        &banner_campaign(&[("advertiser", "\"Globex\"")], &targeting("\"crm/globex/vip\"")),
    );
    valid(
        settings,
        &banner_campaign(&[], &targeting("\"crm/globexx\", \"interest/cars\"")),
    );
    let claimed_twice = settings.replace(
        "id = \"Advertiser\"\n",
        "id = \"Advertiser\"\nsuppress_segment = \" CRM/Globex/optout\"\nprivate_segments = [\"crm\"]\n",
    );
    let fields: Vec<String> = problems(&claimed_twice, "")
        .into_iter()
        .map(|p| format!("{}: {}", p.field, p.why))
        .collect();
    assert_eq!(
        fields,
        [
            "advertiser[1].private_segments: \"crm/globex\" overlaps advertiser \"Advertiser\"'s private segments",
            "advertiser[0].suppress_segment: \"crm/globex/optout\" overlaps advertiser \"Globex\"'s private segments"
        ]
    );
}

#[test]
fn advertiser_contact_rules_are_checked() {
    let settings = "[[advertiser]]\nid = \"Advertiser\"\ndaily_budget = \"0\"\nsuppress_segment = \"Opt Out\"\n\
                    [advertiser.frequency]\nper_day = 0\n[advertiser.capacity]\nconversions_per_hour = 0\n\
                    [secrets]\nsigning_key = \"test-signing-key-0123456789abcdefghijkl\"\n";
    let found = problems(settings, "");
    let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "advertiser[0].daily_budget",
            "advertiser[0].frequency.per_day",
            "advertiser[0].suppress_segment",
            "advertiser[0].capacity.conversions_per_hour"
        ],
        "{found:?}"
    );
    assert_eq!(
        found[1].why, "must be at least 1 (leave it out for no cap)",
        "{found:?}"
    );
    assert_eq!(
        campaign_problems(&[], "[campaign.capacity]\nclicks_per_hour = 0\n"),
        [in_c1(
            "capacity.clicks_per_hour",
            "must be at least 1 (leave it out for no cap)"
        )]
    );
    let unknown = campaign_problems(&[], "[campaign.capacity]\nimpressions_per_hour = 5\n");
    assert!(unknown[0].why.contains("unknown field"), "{unknown:?}");
}
