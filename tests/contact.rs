//! Issue 16, contact rules: per advertiser, across its campaigns — a daily
//! budget and a contact cap (both held under 64 concurrent bids), a
//! do-not-contact segment, suppressions through the admin API (roles,
//! persistence, audit), the global erasure; priority within an
//! advertiser; capacity caps that stop bidding within a tick. Each test
//! runs the real server over HTTP and fails if its rule is taken out.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bullseye::app::App;
use bullseye::clock::{Clock, ManualClock};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

const ACME_TOKEN: &str = "acme-token-0123456789abcdef0123456789";
const OTHER_TOKEN: &str = "other-token-0123456789abcdef012345678";
const VIEWER_TOKEN: &str = "viewer-token-0123456789abcdef01234567";
const DATA_TOKEN: &str = "data-token-0123456789abcdef0123456789a";

/// `bullseye.toml` with these `[[advertiser]]` tables (and `extra` keys
/// after them), the test admin token and one token per role.
fn settings(advertisers: &str) -> String {
    let tokens = [
        admin_token_entry("test-admin", "admin", None, ADMIN_TOKEN),
        admin_token_entry("acme-team", "advertiser", Some("Acme"), ACME_TOKEN),
        admin_token_entry("other-team", "advertiser", Some("Other"), OTHER_TOKEN),
        admin_token_entry("auditor", "viewer", None, VIEWER_TOKEN),
        admin_token_entry("crm", "data", None, DATA_TOKEN),
    ]
    .concat();
    format!(
        r#"
[bidding]
currency = "USD"

[audience]
snapshot = "audience.snapshot"

[secrets]
signing_key = "test-signing-key-0123456789abcdefghijkl"

[[exchange]]
name = "default"
seat = "testseat"

{advertisers}
{tokens}"#
    )
}

/// An asap CPM campaign of `advertiser` bidding `max_bid` on 300×250
/// banners, with `more` (keys, then tables) after its keys.
fn campaign(id: &str, advertiser: &str, max_bid: &str, more: &str) -> String {
    format!(
        r#"
[[campaign]]
id = "{id}"
advertiser = "{advertiser}"
adomain = ["{id}.example"]
pricing = "cpm"
max_bid = "{max_bid}"
daily_budget = "100"
pacing = "asap"
{more}
  [[campaign.creative]]
  id = "{id}-c"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.example/{id}.png"
  landing_url = "https://{id}.example/"
"#
    )
}

struct Setup {
    bidder: TestBidder,
    clock: Arc<ManualClock>,
    config: TempDir,
    data: TempDir,
}

impl Setup {
    async fn start(settings: &str, campaigns: &str, audience: &str, now: &str) -> Setup {
        let config = write_config(settings, campaigns, audience);
        let data = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(now.parse().unwrap()));
        let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
        Setup {
            bidder,
            clock,
            config,
            data,
        }
    }

    /// Stops the server and starts a new one over the same config and data
    /// directories, at the same time.
    async fn restart(self) -> Setup {
        let Setup {
            bidder,
            clock,
            config,
            data,
        } = self;
        bidder.stop().await;
        let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
        Setup {
            bidder,
            clock,
            config,
            data,
        }
    }

    fn app(&self) -> Arc<App> {
        self.bidder.running.as_ref().unwrap().app.clone()
    }

    /// The bid for `user`'s 300×250 impression, if any.
    async fn bid(&self, user: &str) -> Option<Value> {
        let (status, response) = self.bidder.bid_json(&banner_request(user, 0.0, json!({}))).await;
        (status == StatusCode::OK).then(|| response.unwrap()["seatbid"][0]["bid"][0].clone())
    }

    /// The campaign that wins `user`'s impression.
    async fn winner(&self, user: &str) -> Option<String> {
        self.bid(user).await.map(|bid| bid["cid"].as_str().unwrap().to_string())
    }

    /// An admin API call with `token`: status and JSON body.
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .bidder
            .client
            .request(method, self.bidder.admin_url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Explain's verdict on each campaign for `user`'s impression: id →
    /// (bid, reason); and the winner.
    async fn explain(&self, user: &str) -> (Option<String>, HashMap<String, (Option<String>, Option<String>)>) {
        let body = banner_request(user, 0.0, json!({}));
        let (status, answer) = self
            .call(Method::POST, "/admin/api/explain", ADMIN_TOKEN, Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let imp = &answer["imp"][0];
        let text = |v: &Value| v.as_str().map(str::to_string);
        let verdicts = imp["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (text(&c["id"]).unwrap(), (text(&c["bid"]), text(&c["reason"]))))
            .collect();
        (text(&imp["winner"]), verdicts)
    }

    /// Explain's reason for one campaign on `user`'s impression.
    async fn reason(&self, user: &str, campaign: &str) -> Option<String> {
        self.explain(user).await.1[campaign].1.clone()
    }

    /// A campaign's "why not bidding" counts.
    async fn why_not_bidding(&self, campaign: &str) -> Value {
        let path = format!("/admin/api/campaigns/{campaign}");
        let (status, answer) = self.call(Method::GET, &path, ADMIN_TOKEN, None).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["live"]["why_not_bidding"].clone()
    }

    /// Shows a bid's impression (its pixel).
    async fn shown(&self, bid: &Value) {
        assert_eq!(
            self.bidder.get(&url_in_adm(bid, "/t/imp?")).await.status(),
            StatusCode::OK
        );
    }

    /// The newest audit entry about `target` that `token` may read (null if
    /// none).
    async fn last_audit(&self, target: &str, token: &str) -> Value {
        let path = format!("/admin/api/audit?target={target}");
        let (status, audit) = self.call(Method::GET, &path, token, None).await;
        assert_eq!(status, StatusCode::OK, "{audit}");
        audit["entries"][0].clone()
    }

    /// An advertiser's figures of today.
    async fn advertiser_today(&self, advertiser: &str) -> Value {
        let path = format!("/admin/api/advertisers/{advertiser}");
        let (status, answer) = self.call(Method::GET, &path, ADMIN_TOKEN, None).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["live"].clone()
    }

    /// `n` bid requests sent at once, for `user(i)`; the bids made.
    async fn bids_at_once(&self, n: usize, user: impl Fn(usize) -> String) -> Vec<Value> {
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..n {
            let client = self.bidder.client.clone();
            let url = self.bidder.url("/openrtb2/bid");
            let body = banner_request(&user(i), 0.0, json!({})).to_string();
            requests.spawn(async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                match response.status() {
                    StatusCode::OK => Some(response.json::<Value>().await.unwrap()["seatbid"][0]["bid"][0].clone()),
                    _ => None,
                }
            });
        }
        requests.join_all().await.into_iter().flatten().collect()
    }
}

fn cid(bid: &Value) -> &str {
    bid["cid"].as_str().unwrap()
}

/// A bid's price per impression, micros (its CPM / 1000).
fn cost_micros(bid: &Value) -> i64 {
    (bid["price"].as_f64().unwrap() * 1_000_000.0).round() as i64 / 1000
}

fn billing_url(bid: &Value) -> String {
    let price = bid["price"].as_f64().unwrap();
    bid["burl"]
        .as_str()
        .unwrap()
        .replace("${AUCTION_PRICE}", &price.to_string())
}

/// A Monday (Monday 19:00 in Tokyo).
const MONDAY: &str = "2026-11-23T10:00:00Z";

/// Two advertisers without rules.
const ACME_AND_OTHER: &str = "[[advertiser]]\nid = \"Acme\"\n\n[[advertiser]]\nid = \"Other\"\n";

/// Acme's two campaigns (1.00 and 0.90) and another advertiser's (0.50).
fn acme_and_other(acme_more: &str) -> String {
    [
        campaign("acme-a", "Acme", "1.00", acme_more),
        campaign("acme-b", "Acme", "0.90", ""),
        campaign("other", "Other", "0.50", ""),
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advertiser_budget_holds_across_its_campaigns_under_64_concurrent_bids() {
    // 10,500 micros: ten impressions at 1.00 CPM and a bit.
    let advertisers = "[[advertiser]]\nid = \"Acme\"\ndaily_budget = \"0.0105\"\n\n[[advertiser]]\nid = \"Other\"\n";
    let s = Setup::start(&settings(advertisers), &acme_and_other(""), "u,a\n", MONDAY).await;
    // The first bid starts the budget's reservations: those of its second
    // are held until their window ends (the safe side); later ones are
    // given back by their billing notices.
    let first = s.bid("first").await.unwrap();
    s.clock.advance(Duration::from_secs(1));
    let mut bids = s.bids_at_once(64, |i| format!("user-{i}")).await;
    bids.push(first.clone());
    let acme: Vec<&Value> = bids.iter().filter(|b| cid(b).starts_with("acme")).collect();
    let reserved: i64 = acme.iter().map(|b| cost_micros(b)).sum();
    assert!(
        reserved <= 10_500 + 1_000,
        "{} Acme bids hold {reserved} micros: more than one impression over the advertiser's budget",
        acme.len()
    );
    for bid in &acme {
        assert_eq!(s.bidder.get(&billing_url(bid)).await.status(), StatusCode::NO_CONTENT);
    }
    let today = &s.advertiser_today("Acme").await["today"];
    assert_eq!(today["spend_micros"], json!(reserved), "{today}");
    assert_eq!(
        today["outstanding"],
        json!("0.001"),
        "only the first second's bid still held"
    );
    assert_eq!(s.winner("later").await.as_deref(), Some("other"));
    assert_eq!(s.reason("later", "acme-a").await.as_deref(), Some("advertiser_budget"));
    assert_eq!(s.reason("later", "acme-b").await.as_deref(), Some("advertiser_budget"));
    assert!(s.why_not_bidding("acme-a").await["advertiser_budget"].as_u64().unwrap() >= 1);
    // Restored from the billing log at start-up.
    let s = s.restart().await;
    assert_eq!(
        s.advertiser_today("Acme").await["today"]["spend_micros"],
        json!(reserved)
    );
    assert_eq!(s.winner("after-restart").await.as_deref(), Some("other"));
    s.bidder.stop().await;
}

/// A lost bid sends no notice: its hold on the advertiser's budget, like
/// its campaign's, ends with its notice window (it used to stay until a
/// restart, and the advertiser stopped bidding for good once its lost bids
/// had filled the budget).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_bid_gives_the_advertiser_budget_back_when_its_window_ends() {
    // 2,500 micros: two impressions at 1.00 CPM and a half.
    let advertisers = "[[advertiser]]\nid = \"Acme\"\ndaily_budget = \"0.0025\"\n\n[[advertiser]]\nid = \"Other\"\n";
    let s = Setup::start(&settings(advertisers), &acme_and_other(""), "u,a\n", MONDAY).await;
    for user in ["u1", "u2", "u3"] {
        assert_eq!(s.winner(user).await.as_deref(), Some("acme-a"), "{user}");
    }
    assert_eq!(s.advertiser_today("Acme").await["today"]["outstanding"], json!("0.003"));
    assert_eq!(s.winner("u4").await.as_deref(), Some("other"), "the budget is held");
    assert_eq!(s.reason("u4", "acme-a").await.as_deref(), Some("advertiser_budget"));
    // No notice comes: the window (15 minutes) ends.
    s.clock.advance(Duration::from_secs(16 * 60));
    s.app().tick(1);
    let today = &s.advertiser_today("Acme").await["today"];
    assert_eq!(today["outstanding"], json!("0"), "{today}");
    assert_eq!(today["spend_micros"], json!(0), "{today}");
    assert_eq!(s.winner("u5").await.as_deref(), Some("acme-a"), "bidding again");
    s.bidder.stop().await;
}

/// Acme in Tokyo (UTC+9) capping contacts at 3 a day and 5 a week.
const CAPPED_IN_TOKYO: &str = "[[advertiser]]\nid = \"Acme\"\ntime_zone = \"Asia/Tokyo\"\n\
                               [advertiser.frequency]\nper_day = 3\nper_week = 5\n\n[[advertiser]]\nid = \"Other\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advertiser_contact_cap_holds_across_its_campaigns_under_64_concurrent_bids() {
    // 10:00Z is Monday 19:00 in Tokyo.
    let s = Setup::start(&settings(CAPPED_IN_TOKYO), &acme_and_other(""), "u,a\n", MONDAY).await;
    let bids = s.bids_at_once(64, |_| "u1".to_string()).await;
    let acme: Vec<&Value> = bids.iter().filter(|b| cid(b).starts_with("acme")).collect();
    assert!(
        (1..=3).contains(&acme.len()),
        "{} Acme bids for a user capped at 3 a day",
        acme.len()
    );
    for bid in &acme {
        s.shown(bid).await;
    }
    // Lost bids give their contacts back at the end of their window; the
    // shown ones count.
    s.clock.advance(Duration::from_secs(16 * 60));
    for _ in acme.len()..3 {
        s.shown(&s.bid("u1").await.unwrap()).await;
    }
    assert_eq!(s.winner("u1").await.as_deref(), Some("other"), "three contacts today");
    assert_eq!(s.reason("u1", "acme-a").await.as_deref(), Some("advertiser_frequency"));
    assert_eq!(s.reason("u1", "acme-b").await.as_deref(), Some("advertiser_frequency"));
    assert_eq!(s.winner("u2").await.as_deref(), Some("acme-a"), "another user");
    // 15:30Z is Tuesday 00:30 in Tokyo: a new day for the advertiser.
    s.clock.set("2026-11-23T15:30:00Z".parse().unwrap());
    assert_eq!(s.winner("u1").await.as_deref(), Some("acme-a"));
    s.bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advertiser_weekly_contact_cap_is_restored_from_the_days_before() {
    let s = Setup::start(&settings(CAPPED_IN_TOKYO), &acme_and_other(""), "u,a\n", MONDAY).await;
    // Monday in Tokyo: three (in the UTC day file of the 23rd); Tuesday
    // 09:30 and Wednesday 01:00 (the 24th's file): the fourth and fifth.
    for (at, contacts) in [(MONDAY, 3), ("2026-11-24T00:30:00Z", 1), ("2026-11-24T16:00:00Z", 1)] {
        s.clock.set(at.parse().unwrap());
        for _ in 0..contacts {
            let bid = s.bid("u1").await.unwrap();
            assert!(cid(&bid).starts_with("acme"), "{at}");
            s.shown(&bid).await;
        }
    }
    // Wednesday 11:00 in Tokyo, in a third day file.
    s.clock.set("2026-11-25T02:00:00Z".parse().unwrap());
    assert_eq!(
        s.winner("u1").await.as_deref(),
        Some("other"),
        "five contacts this week"
    );
    s.shown(&s.bid("u3").await.unwrap()).await;
    let s = s.restart().await;
    assert_eq!(
        s.winner("u1").await.as_deref(),
        Some("other"),
        "the week's contacts restored: the 23rd's file, and the 24th's older than a day"
    );
    assert_eq!(s.winner("u3").await.as_deref(), Some("acme-a"));
    // Monday 00:30 in Tokyo: a new week.
    s.clock.set("2026-11-29T15:30:00Z".parse().unwrap());
    assert_eq!(s.winner("u1").await.as_deref(), Some("acme-a"));
    s.bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_in_the_suppression_segment_are_never_bid_on_for_that_advertiser() {
    let advertisers =
        "[[advertiser]]\nid = \"Acme\"\nsuppress_segment = \"optout/acme\"\n\n[[advertiser]]\nid = \"Other\"\n";
    let audience = "opted,optout/acme/email\nfan,interest/x\n";
    let s = Setup::start(&settings(advertisers), &acme_and_other(""), audience, MONDAY).await;
    assert_eq!(s.winner("opted").await.as_deref(), Some("other"), "below the segment");
    assert_eq!(s.reason("opted", "acme-a").await.as_deref(), Some("suppressed"));
    assert_eq!(s.reason("opted", "other").await, None);
    assert_eq!(s.winner("fan").await.as_deref(), Some("acme-a"));
    assert_eq!(s.why_not_bidding("acme-a").await["suppressed"], json!(1));
    s.bidder.stop().await;
}

const SUPPRESSION: &str = "/admin/api/advertisers/Acme/suppressions/u9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressions_are_changed_by_an_admin_or_the_advertiser_only() {
    let s = Setup::start(&settings(ACME_AND_OTHER), &acme_and_other(""), "u,a\n", MONDAY).await;
    for (token, status) in [
        (OTHER_TOKEN, StatusCode::NOT_FOUND),
        (VIEWER_TOKEN, StatusCode::FORBIDDEN),
        (DATA_TOKEN, StatusCode::FORBIDDEN),
        ("not-a-token-0123456789abcdef0123456", StatusCode::UNAUTHORIZED),
    ] {
        assert_eq!(s.call(Method::PUT, SUPPRESSION, token, None).await.0, status, "{token}");
    }
    assert_eq!(
        s.winner("u9").await.as_deref(),
        Some("acme-a"),
        "refused: nothing changed"
    );
    let (status, answer) = s.call(Method::PUT, SUPPRESSION, ACME_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
    let suppressed = json!({"advertiser": "Acme", "user_id": "u9", "suppressed": true, "everyone": false});
    assert_eq!(answer, suppressed);
    assert_eq!(s.call(Method::GET, SUPPRESSION, VIEWER_TOKEN, None).await.1, suppressed);
    let nobody = "/admin/api/advertisers/Nobody/suppressions/u9";
    assert_eq!(
        s.call(Method::GET, nobody, ADMIN_TOKEN, None).await.0,
        StatusCode::NOT_FOUND
    );
    let post = s.call(Method::POST, SUPPRESSION, ADMIN_TOKEN, None).await.0;
    assert_eq!(post, StatusCode::METHOD_NOT_ALLOWED);
    let (status, answer) = s.call(Method::DELETE, SUPPRESSION, ADMIN_TOKEN, None).await;
    assert_eq!((status, &answer["suppressed"]), (StatusCode::OK, &json!(false)));
    s.bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suppression_stops_the_advertiser_bidding_and_is_persisted_and_audited() {
    let s = Setup::start(&settings(ACME_AND_OTHER), &acme_and_other(""), "u,a\n", MONDAY).await;
    assert_eq!(
        s.call(Method::PUT, SUPPRESSION, ACME_TOKEN, None).await.0,
        StatusCode::OK
    );
    assert_eq!(s.winner("u9").await.as_deref(), Some("other"));
    assert_eq!(s.reason("u9", "acme-b").await.as_deref(), Some("suppressed"));
    assert_eq!(s.winner("u8").await.as_deref(), Some("acme-a"));
    let entry = s.last_audit("u9", ADMIN_TOKEN).await;
    assert_eq!(
        (
            &entry["action"],
            &entry["who"],
            &entry["advertiser"],
            &entry["after"]["suppressed"]
        ),
        (
            &json!("suppression.add"),
            &json!("acme-team"),
            &json!("Acme"),
            &json!(true)
        )
    );
    assert_eq!(
        s.last_audit("u9", OTHER_TOKEN).await,
        Value::Null,
        "another advertiser's entry"
    );
    let s = s.restart().await;
    assert_eq!(s.winner("u9").await.as_deref(), Some("other"), "persisted");
    assert_eq!(
        s.call(Method::DELETE, SUPPRESSION, ADMIN_TOKEN, None).await.0,
        StatusCode::OK
    );
    assert_eq!(s.winner("u9").await.as_deref(), Some("acme-a"));
    let entry = s.last_audit("u9", ADMIN_TOKEN).await;
    assert_eq!(
        (&entry["action"], &entry["who"]),
        (&json!("suppression.remove"), &json!("test-admin"))
    );
    let s = s.restart().await;
    assert_eq!(
        s.winner("u9").await.as_deref(),
        Some("acme-a"),
        "the lift persisted too"
    );
    s.bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_user_forgets_its_overlay_and_suppresses_it_for_everyone() {
    let retarget = campaign(
        "retarget",
        "Other",
        "5.00",
        "[campaign.targeting.segments]\nany = [\"retarget/shoes\"]\n",
    );
    let campaigns = format!("{}{retarget}", acme_and_other(""));
    let s = Setup::start(&settings(ACME_AND_OTHER), &campaigns, "gone,interest/x\n", MONDAY).await;
    let user_path = "/admin/api/audience/users/gone";
    let add = json!({"add": ["retarget/shoes"], "ttl_seconds": 3600});
    assert_eq!(
        s.call(Method::POST, user_path, DATA_TOKEN, Some(add)).await.0,
        StatusCode::OK
    );
    assert_eq!(s.winner("gone").await.as_deref(), Some("retarget"));
    for token in [ACME_TOKEN, VIEWER_TOKEN] {
        assert_eq!(
            s.call(Method::DELETE, user_path, token, None).await.0,
            StatusCode::FORBIDDEN
        );
    }
    let (status, answer) = s.call(Method::DELETE, user_path, DATA_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"user_id": "gone", "erased": true, "suppressed": "everyone"})
    );
    let (_, view) = s.call(Method::GET, user_path, ADMIN_TOKEN, None).await;
    assert_eq!((&view["overlay"]["added"], &view["erased"]), (&json!([]), &json!(true)));
    assert_eq!(s.bid("gone").await, None, "no advertiser bids on an erased user");
    let (winner, verdicts) = s.explain("gone").await;
    assert_eq!(winner, None);
    for id in ["acme-a", "acme-b", "other"] {
        assert_eq!(verdicts[id].1.as_deref(), Some("suppressed"), "{id}");
    }
    assert_eq!(s.winner("someone-else").await.as_deref(), Some("acme-a"));
    let (_, audit) = s
        .call(Method::GET, "/admin/api/audit?target=gone", ADMIN_TOKEN, None)
        .await;
    assert_eq!(
        (&audit["entries"][0]["action"], &audit["entries"][0]["who"]),
        (&json!("audience.erase"), &json!("crm"))
    );
    // An advertiser's lift does not undo an erasure; a restart keeps it.
    let acme_path = "/admin/api/advertisers/Acme/suppressions/gone";
    let (_, lifted) = s.call(Method::DELETE, acme_path, ADMIN_TOKEN, None).await;
    assert_eq!(
        (&lifted["suppressed"], &lifted["everyone"]),
        (&json!(true), &json!(true))
    );
    let s = s.restart().await;
    assert_eq!(s.bid("gone").await, None, "the erasure persisted");
    let (_, view) = s.call(Method::GET, user_path, ADMIN_TOKEN, None).await;
    assert_eq!(
        (&view["overlay"]["added"], &view["erased"]),
        (&json!([]), &json!(true)),
        "the overlay journal's replay does not bring the erased user's segments back"
    );
    s.bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_higher_priority_campaign_of_the_same_advertiser_goes_first() {
    let campaigns = [
        campaign("acme-promo", "Acme", "3.00", ""),
        campaign("acme-retention", "Acme", "1.00", "priority = 5"),
        campaign("other", "Other", "0.50", ""),
    ]
    .concat();
    let s = Setup::start(&settings(ACME_AND_OTHER), &campaigns, "u,a\n", MONDAY).await;
    let bid = s.bid("u1").await.unwrap();
    assert_eq!((cid(&bid), bid["price"].as_f64()), ("acme-retention", Some(1.0)));
    let (winner, verdicts) = s.explain("u1").await;
    assert_eq!(winner.as_deref(), Some("acme-retention"));
    assert_eq!(verdicts["acme-promo"], (Some("3".into()), Some("priority".into())));
    assert_eq!(verdicts["other"], (Some("0.5".into()), None), "outbid");
    // Priority is a campaign key like any other: through the API, at once.
    let patch = json!({"priority": 0});
    let (status, answer) = s
        .call(
            Method::PATCH,
            "/admin/api/campaigns/acme-retention",
            ACME_TOKEN,
            Some(patch),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(s.winner("u1").await.as_deref(), Some("acme-promo"));
    s.bidder.stop().await;
}

/// A bid for `user`, its impression, and (two seconds later, past the
/// click-quality delay) a click on it; returns the click id.
async fn shown_and_clicked(s: &Setup, bid: &Value) -> String {
    assert_eq!(s.bidder.get(&url_in_adm(bid, "/t/imp?")).await.status(), StatusCode::OK);
    s.clock.advance(Duration::from_secs(2));
    let click = s.bidder.get(&url_in_adm(bid, "/t/click?")).await;
    assert_eq!(click.status(), StatusCode::FOUND);
    let location = click.headers()["location"].to_str().unwrap().to_string();
    location.split("bz_click=").nth(1).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_stops_bidding_within_a_tick_of_its_click_capacity() {
    let campaigns = acme_and_other("[campaign.capacity]\nclicks_per_hour = 2\n");
    let s = Setup::start(&settings(ACME_AND_OTHER), &campaigns, "u,a\n", MONDAY).await;
    let mut bids = Vec::new();
    for user in ["c1", "c2", "c3"] {
        let bid = s.bid(user).await.unwrap();
        assert_eq!(cid(&bid), "acme-a");
        bids.push(bid);
    }
    shown_and_clicked(&s, &bids[0]).await;
    shown_and_clicked(&s, &bids[1]).await;
    s.app().tick(1);
    assert_eq!(s.winner("c4").await.as_deref(), Some("acme-b"), "acme-a is at capacity");
    assert_eq!(s.reason("c4", "acme-a").await.as_deref(), Some("capacity"));
    assert!(s.why_not_bidding("acme-a").await["capacity"].as_u64().unwrap() >= 1);
    // A late click still counts and is recorded.
    shown_and_clicked(&s, &bids[2]).await;
    let (_, campaign) = s
        .call(Method::GET, "/admin/api/campaigns/acme-a", ADMIN_TOKEN, None)
        .await;
    assert_eq!(campaign["live"]["today"]["clicks"], json!(3));
    // Restored from the billing log: still at capacity after a restart.
    let s = s.restart().await;
    s.app().tick(1);
    assert_eq!(s.winner("c5").await.as_deref(), Some("acme-b"));
    // The next hour: bidding resumes within a tick.
    s.clock.set("2026-11-23T11:00:01Z".parse().unwrap());
    s.app().tick(1);
    assert_eq!(s.winner("c6").await.as_deref(), Some("acme-a"));
    s.bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advertiser_stops_bidding_within_a_tick_of_its_conversion_capacity() {
    let advertisers = "[[advertiser]]\nid = \"Travel\"\n[advertiser.capacity]\nconversions_per_day = 1\n\n\
                       [[advertiser]]\nid = \"Acme\"\n\n[[advertiser]]\nid = \"Other\"\n";
    let campaigns = [
        campaign("trips", "Travel", "1.00", ""),
        campaign("tours", "Travel", "0.90", ""),
        campaign("other", "Other", "0.50", ""),
    ]
    .concat();
    let s = Setup::start(&settings(advertisers), &campaigns, "u,a\n", MONDAY).await;
    let with_secret = format!("{}{}", settings(advertisers), postback_settings(s.config.path()));
    std::fs::write(s.config.path().join("bullseye.toml"), with_secret).unwrap();
    let s = s.restart().await;
    let bid = s.bid("v1").await.unwrap();
    assert_eq!(cid(&bid), "trips");
    let click = shown_and_clicked(&s, &bid).await;
    let ts = s.clock.now().as_second();
    let postback = signed_postback(POSTBACK_SECRET, &format!("click={click}&order=O-1&value=20&ts={ts}"));
    assert_eq!(s.bidder.get(&postback).await.status(), StatusCode::NO_CONTENT);
    s.app().tick(1);
    assert_eq!(
        s.winner("v2").await.as_deref(),
        Some("other"),
        "both Travel campaigns stop"
    );
    assert_eq!(s.reason("v2", "trips").await.as_deref(), Some("advertiser_capacity"));
    assert_eq!(s.reason("v2", "tours").await.as_deref(), Some("advertiser_capacity"));
    let live = s.advertiser_today("Travel").await;
    assert_eq!(
        (&live["today"]["conversions"], &live["at_capacity"]),
        (&json!(1), &json!(true))
    );
    // The next day, in the advertiser's time zone (UTC).
    s.clock.set("2026-11-24T00:00:01Z".parse().unwrap());
    s.app().tick(1);
    assert_eq!(s.winner("v3").await.as_deref(), Some("trips"));
    s.bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpc_clicks_stop_being_charged_once_the_advertiser_budget_is_spent() {
    let advertisers = "[[advertiser]]\nid = \"Acme\"\ndaily_budget = \"0.6\"\n\n[[advertiser]]\nid = \"Other\"\n";
    // Bids 0.50 × 1 % × 1000 = 5.00 CPM; each click costs 0.50.
    let clicks =
        campaign("clicks", "Acme", "0.50", "").replace("pricing = \"cpm\"", "pricing = \"cpc\"\npctr_prior = \"0.01\"");
    let s = Setup::start(&settings(advertisers), &clicks, "u,a\n", MONDAY).await;
    let mut bids = Vec::new();
    for user in ["k1", "k2", "k3"] {
        bids.push(s.bid(user).await.expect("the budget is not spent yet"));
    }
    for bid in &bids {
        shown_and_clicked(&s, bid).await;
    }
    let charges: Vec<(i64, Option<String>)> = bullseye::ledger::read_all(&s.data.path().join("ledger"))
        .unwrap()
        .into_iter()
        .filter(|r| r.event == bullseye::ledger::EventKind::Click)
        .map(|r| (r.charge, r.filtered))
        .collect();
    assert_eq!(
        charges,
        [(500_000, None), (500_000, None), (0, Some("budget_spent".into()))],
        "at most one click's charge over the advertiser's budget"
    );
    assert_eq!(
        s.advertiser_today("Acme").await["today"]["spend_micros"],
        json!(1_000_000)
    );
    let (_, campaign) = s
        .call(Method::GET, "/admin/api/campaigns/clicks", ADMIN_TOKEN, None)
        .await;
    assert_eq!(
        campaign["live"]["today"]["spend_micros"],
        json!(1_000_000),
        "the refused click is not in the campaign's spend either"
    );
    s.bidder.stop().await;
}
