//! The admin API on its own listener: campaigns and creatives created,
//! read, replaced, patched and archived through the API, written to the
//! campaign files (the one source of truth), effective on the next bid
//! request and after a restart; versions and `If-Match`; every validation
//! problem at once; roles; the audit log.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::sync::Arc;

use bullseye::clock::ManualClock;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const VIEWER_TOKEN: &str = "viewer-token-0123456789abcdef01234567";
const DATA_TOKEN: &str = "data-token-0123456789abcdef0123456789";

/// The test settings with an advertiser, a viewer and a data token.
fn settings_with_roles() -> String {
    format!(
        "{TEST_SETTINGS}{}{}{}",
        admin_token_entry("shop-team", "advertiser", Some("Shop"), SHOP_TOKEN),
        admin_token_entry("auditor", "viewer", None, VIEWER_TOKEN),
        admin_token_entry("data-team", "data", None, DATA_TOKEN),
    )
}

async fn call(
    bidder: &TestBidder,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, body, _) = call_with(bidder, method, path, token, body, None).await;
    (status, body)
}

/// A call with an optional `If-Match`; returns the `ETag` too.
async fn call_with(
    bidder: &TestBidder,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    if_match: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let mut request = bidder.client.request(method, bidder.admin_url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    if let Some(version) = if_match {
        request = request.header("if-match", version);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_string());
    (status, response.json().await.unwrap_or(Value::Null), etag)
}

fn price(response: &Option<Value>) -> Option<f64> {
    response.as_ref()?["seatbid"][0]["bid"][0]["price"].as_f64()
}

fn ids(list: &Value) -> Vec<&str> {
    list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

/// A whole new campaign as the API takes it (the fields of a TOML table).
fn new_campaign() -> Value {
    json!({
        "id": "generic-retarget",
        "advertiser": "Generic",
        "adomain": ["generic.example"],
        "pricing": "cpm",
        "max_bid": 3,
        "daily_budget": "20",
        "pacing": "asap",
        "targeting": {"countries": ["USA"]},
        "creative": [{
            "id": "r1", "format": "banner", "w": 300, "h": 250,
            "image_url": "https://cdn.generic.example/r.png",
            "landing_url": "https://generic.example/back"
        }]
    })
}

/// A new campaign whose id names a file that holds other campaigns (the
/// test config's `campaigns/test.toml` holds `generic` and `shop-spring`)
/// goes into a file of its own: the other advertiser's campaigns used to be
/// written over, and stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_campaign_never_writes_over_a_file_holding_others() {
    let campaigns = format!("{GENERIC}{SHOP}");
    let config = write_config(&settings_with_roles(), &campaigns, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    let mut own = new_campaign();
    own["id"] = json!("test");
    own["advertiser"] = json!("Shop");
    let (status, created) = call(
        &bidder,
        Method::POST,
        "/admin/api/campaigns",
        Some(SHOP_TOKEN),
        Some(own),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, list) = call(&bidder, Method::GET, "/admin/api/campaigns", Some(ADMIN_TOKEN), None).await;
    assert_eq!(ids(&list), ["generic", "shop-spring", "test"]);
    let dir = config.path().join("campaigns");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["test.2.toml", "test.toml"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("test.toml")).unwrap(),
        campaigns,
        "the hand-written file is untouched"
    );
    bidder.stop().await;
}

/// Generic's CRM lists are private: Shop's token cannot point its campaign
/// at them (and so cannot learn through `explain` who is in them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advertiser_cannot_target_another_advertisers_private_segments() {
    let settings = settings_with_roles().replace(
        "id = \"Generic\"\n",
        "id = \"Generic\"\nprivate_segments = [\"crm/generic\"]\n",
    );
    let config = write_config(&settings, &format!("{GENERIC}{SHOP}"), "u,a\n");
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let mut bidder = spawn_bidder_with(config.path(), clock, false).await;
    let path = "/admin/api/campaigns/shop-spring";
    let targeting = |segment: &str| json!({"targeting": {"segments": {"any": [segment]}}});
    let (status, answer) = call(
        &bidder,
        Method::PATCH,
        path,
        Some(SHOP_TOKEN),
        Some(targeting("crm/generic/vip")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["problems"],
        json!([{"field": "targeting.segments", "why": "segment \"crm/generic/vip\" reaches another advertiser's private segments"}])
    );
    let (status, answer) = call(
        &bidder,
        Method::PATCH,
        path,
        Some(SHOP_TOKEN),
        Some(targeting("crm/shop")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    bidder.dirs.push(config);
    bidder.stop().await;
}

/// An admin moves Generic's campaign to Shop: Shop's token reads the move
/// with the campaign as it is now, never Generic's version before it (the
/// single entry used to carry both and be Shop's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_moved_to_another_advertiser_is_audited_for_each_side() {
    let config = write_config(&settings_with_roles(), &format!("{GENERIC}{SHOP}"), "u,a\n");
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let mut bidder = spawn_bidder_with(config.path(), clock, false).await;
    let path = "/admin/api/campaigns/generic";
    let (status, moved) = call(
        &bidder,
        Method::PATCH,
        path,
        Some(ADMIN_TOKEN),
        Some(json!({"advertiser": "Shop"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let audit = "/admin/api/audit?target=generic";
    let (_, shop) = call(&bidder, Method::GET, audit, Some(SHOP_TOKEN), None).await;
    let entries = shop["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{shop}");
    assert_eq!(
        entries[0]["before"],
        Value::Null,
        "Generic's campaign before the move is not Shop's to read"
    );
    assert_eq!(entries[0]["after"]["advertiser"], json!("Shop"));
    let (_, admin) = call(&bidder, Method::GET, audit, Some(ADMIN_TOKEN), None).await;
    let sides: Vec<(Value, bool, bool)> = admin["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["advertiser"].clone(), e["before"].is_null(), e["after"].is_null()))
        .collect();
    assert_eq!(sides.len(), 2, "{admin}");
    assert!(sides.contains(&(json!("Generic"), false, true)), "{admin}");
    assert!(sides.contains(&(json!("Shop"), true, false)), "{admin}");
    bidder.dirs.push(config);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_are_managed_through_the_api_and_live_in_their_files() {
    let campaigns = format!("{GENERIC}{SHOP}");
    let config = write_config(&settings_with_roles(), &campaigns, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    let token = Some(ADMIN_TOKEN);

    // Only on the admin listener; a token is required.
    let on_exchange = bidder.get("/admin/api/campaigns").await.status();
    assert_eq!(on_exchange, StatusCode::NOT_FOUND);
    assert_eq!(bidder.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    for wrong in [None, Some("wrong"), Some("")] {
        let (status, body) = call(&bidder, Method::GET, "/admin/api/campaigns", wrong, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert_eq!(body["error"], "missing or invalid bearer token");
    }

    // The list: paginated, filterable.
    let (status, list) = call(&bidder, Method::GET, "/admin/api/campaigns", token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&list), ["generic", "shop-spring"]);
    assert_eq!((list["total"].as_u64(), list["limit"].as_u64()), (Some(2), Some(50)));
    let (_, page) = call(
        &bidder,
        Method::GET,
        "/admin/api/campaigns?offset=1&limit=1",
        token,
        None,
    )
    .await;
    assert_eq!(ids(&page), ["shop-spring"]);
    let (_, filtered) = call(
        &bidder,
        Method::GET,
        "/admin/api/campaigns?advertiser=Shop",
        token,
        None,
    )
    .await;
    assert_eq!(ids(&filtered), ["shop-spring"]);

    // Live figures: a billed impression is today's spend.
    let (_, response) = bidder.bid_json(&banner_request("someone", 0.0, json!({}))).await;
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.50");
    assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    let (_, one, etag) = call_with(&bidder, Method::GET, "/admin/api/campaigns/generic", token, None, None).await;
    assert_eq!(one["live"]["today"]["spend_micros"], 500, "{one}");
    assert_eq!(one["live"]["today"]["outstanding"], "0");
    assert_eq!(one["max_bid"], "1.00");
    let version = one["version"].as_str().unwrap().to_string();
    assert_eq!(etag.as_deref(), Some(format!("\"{version}\"").as_str()));

    // Reports: the CLI's rows, by any of its groupings; an advertiser sees
    // its own campaigns only; a bad flag is a 400.
    let (status, rows) = call(
        &bidder,
        Method::GET,
        "/admin/api/reports?date=2026-11-24&by=domain",
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(
        (
            rows[0]["campaign"].as_str(),
            rows[0]["domain"].as_str(),
            rows[0]["spend_micros"].as_i64()
        ),
        (Some("generic"), Some("news.example"), Some(500))
    );
    let (_, mine) = call(
        &bidder,
        Method::GET,
        "/admin/api/reports?date=2026-11-24",
        Some(SHOP_TOKEN),
        None,
    )
    .await;
    assert_eq!(mine, json!([]), "another advertiser's rows are not shown");
    let (status, _) = call(&bidder, Method::GET, "/admin/api/reports?by=planet", token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Every problem at once, with its field; nothing written.
    let file = config.path().join("campaigns/test.toml");
    let before = std::fs::read_to_string(&file).unwrap();
    let (status, body) = call(
        &bidder,
        Method::PATCH,
        "/admin/api/campaigns/generic",
        token,
        Some(json!({"max_bid": "abc", "daily_budget": "1.0000001", "time_zone": "Mars/Base"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["max_bid", "daily_budget", "time_zone"], "{body}");
    assert_eq!(body["error"], "invalid campaign");
    for (bad, field) in [
        (json!({"status": "sleeping"}), "status"),
        (json!({"targeting": {"age": {"min": "old"}}}), "targeting.age.min"),
        (json!({"max_bid": "5000"}), "max_bid"),
        (json!({"id": "renamed"}), "id"),
    ] {
        let (status, body) = call(
            &bidder,
            Method::PATCH,
            "/admin/api/campaigns/generic",
            token,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["problems"][0]["field"], field, "{bad}: {body}");
    }
    let (status, body) = call(
        &bidder,
        Method::PATCH,
        "/admin/api/campaigns/generic",
        token,
        Some(json!({"colour": "red"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["problems"][0]["why"]
            .as_str()
            .unwrap()
            .starts_with("unknown field `colour`"),
        "{body}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "a refused change writes nothing"
    );

    // A change with the current version: written, effective now.
    let (status, updated, new_etag) = call_with(
        &bidder,
        Method::PATCH,
        "/admin/api/campaigns/generic",
        token,
        Some(json!({"max_bid": "2.50", "daily_budget": 50})),
        Some(&format!("\"{version}\"")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["max_bid"].as_str(), updated["daily_budget"].as_str()),
        (Some("2.50"), Some("50"))
    );
    assert_ne!(new_etag.as_deref(), Some(format!("\"{version}\"").as_str()));
    let (_, response) = bidder.bid_json(&banner_request("someone", 0.0, json!({}))).await;
    assert_eq!(price(&response), Some(2.5));
    let on_disk = std::fs::read_to_string(&file).unwrap();
    assert!(
        on_disk.contains("max_bid = \"2.50\"") && on_disk.contains("id = \"shop-spring\""),
        "{on_disk}"
    );
    bullseye::config::load(config.path()).expect("check-config passes on what the API wrote");
    // The old version is stale now.
    let (status, _, _) = call_with(
        &bidder,
        Method::PATCH,
        "/admin/api/campaigns/generic",
        token,
        Some(json!({"max_bid": "9"})),
        Some(&format!("\"{version}\"")),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);

    // Create: a whole campaign with its creative, in its own file; it bids.
    let (status, created, _) = call_with(
        &bidder,
        Method::POST,
        "/admin/api/campaigns",
        token,
        Some(new_campaign()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["max_bid"], "3");
    assert!(config.path().join("campaigns/generic-retarget.toml").exists());
    let usa = json!({"device": {"geo": {"country": "USA"}}});
    let (_, response) = bidder.bid_json(&banner_request("someone", 0.0, usa.clone())).await;
    assert_eq!(winner(&response).as_deref(), Some("generic-retarget"));
    let (status, _) = call(
        &bidder,
        Method::POST,
        "/admin/api/campaigns",
        token,
        Some(new_campaign()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Creatives: add one, pause the first.
    let creative = json!({"format": "banner", "w": 320, "h": 50,
        "image_url": "https://cdn.generic.example/m.png", "landing_url": "https://generic.example/m"});
    let path = "/admin/api/campaigns/generic-retarget/creatives/r2";
    let (status, body) = call(&bidder, Method::PUT, path, token, Some(creative)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["creative"].as_array().unwrap().len(), 2);
    let (status, _) = call(
        &bidder,
        Method::DELETE,
        "/admin/api/campaigns/generic-retarget/creatives/r1",
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, r1) = call(
        &bidder,
        Method::GET,
        "/admin/api/campaigns/generic-retarget/creatives/r1",
        token,
        None,
    )
    .await;
    assert_eq!(r1["status"], "paused");
    // A creative that is not an object is refused (it used to panic: 500).
    for body in [json!([]), json!("s"), json!(true)] {
        let (status, answer) = call(&bidder, Method::PUT, path, token, Some(body.clone())).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("a creative is a JSON object")),
            "{body}"
        );
    }
    let missing = "/admin/api/campaigns/generic-retarget/creatives/nope";
    let (status, body) = call(&bidder, Method::PATCH, missing, token, Some(json!({"w": 1}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no such creative"))
    );

    // Replace whole: a GET body, edited, sent back with its version.
    let (_, mut whole, etag) = call_with(
        &bidder,
        Method::GET,
        "/admin/api/campaigns/generic-retarget",
        token,
        None,
        None,
    )
    .await;
    whole["daily_budget"] = json!("25");
    whole.as_object_mut().unwrap().remove("targeting");
    let (status, replaced, _) = call_with(
        &bidder,
        Method::PUT,
        "/admin/api/campaigns/generic-retarget",
        token,
        Some(whole),
        etag.as_deref(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["daily_budget"], "25");
    assert!(replaced.get("targeting").is_none(), "PUT replaces whole: {replaced}");
    let (_, response) = bidder.bid_json(&banner_request("someone", 0.0, usa.clone())).await;
    assert_ne!(
        winner(&response).as_deref(),
        Some("generic-retarget"),
        "its only 300x250 creative is paused"
    );

    // Archive: never bids again, still shown.
    let (status, archived) = call(&bidder, Method::DELETE, "/admin/api/campaigns/generic", token, None).await;
    assert_eq!(
        (status, archived["status"].as_str()),
        (StatusCode::OK, Some("archived"))
    );
    let (_, response) = bidder.bid_json(&banner_request("someone", 0.0, json!({}))).await;
    assert_ne!(winner(&response).as_deref(), Some("generic"));
    let (_, list) = call(
        &bidder,
        Method::GET,
        "/admin/api/campaigns?status=archived",
        token,
        None,
    )
    .await;
    assert_eq!(ids(&list), ["generic"]);

    // A hand edit shows up in the API as a new version.
    let (_, shop) = call(&bidder, Method::GET, "/admin/api/campaigns/shop-spring", token, None).await;
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("max_bid = \"0.50\"", "max_bid = \"0.75\"");
    std::fs::write(&file, edited).unwrap();
    bidder.running.as_ref().unwrap().reloader.reload_config().unwrap();
    let (_, shop_now) = call(&bidder, Method::GET, "/admin/api/campaigns/shop-spring", token, None).await;
    assert_eq!(shop_now["max_bid"], "0.75");
    assert_ne!(shop_now["version"], shop["version"]);
    bidder.stop().await;

    // Everything survives a restart.
    let bidder = spawn_bidder_in(config.path(), data.path(), clock, false).await;
    let (_, generic) = call(&bidder, Method::GET, "/admin/api/campaigns/generic", token, None).await;
    assert_eq!(
        (generic["status"].as_str(), generic["max_bid"].as_str()),
        (Some("archived"), Some("2.50"))
    );
    assert_eq!(
        generic["live"]["today"]["spend_micros"], 500,
        "spend restored: {generic}"
    );
    let (_, retarget) = call(
        &bidder,
        Method::GET,
        "/admin/api/campaigns/generic-retarget",
        token,
        None,
    )
    .await;
    assert_eq!(retarget["creative"][1]["id"], "r2");

    // The audit log: who, what, before and after, newest first.
    let (status, audit) = call(&bidder, Method::GET, "/admin/api/audit?target=generic", token, None).await;
    assert_eq!(status, StatusCode::OK);
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["campaign.archive", "campaign.patch"]);
    assert_eq!(entries[1]["who"], "test-admin");
    assert_eq!(entries[1]["before"]["max_bid"], "1.00");
    assert_eq!(entries[1]["after"]["max_bid"], "2.50");
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_and_changes_only_what_it_may() {
    let campaigns = format!("{GENERIC}{SHOP}");
    let (bidder, _clock) = {
        let dir = write_config(&settings_with_roles(), &campaigns, "u,a\n");
        let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
        let mut bidder = spawn_bidder_with(dir.path(), clock.clone(), false).await;
        bidder.dirs.push(dir);
        (bidder, clock)
    };
    let shop = Some(SHOP_TOKEN);

    // An advertiser: its own campaigns only; others do not exist for it.
    let (_, list) = call(&bidder, Method::GET, "/admin/api/campaigns", shop, None).await;
    assert_eq!(ids(&list), ["shop-spring"]);
    let (status, _) = call(&bidder, Method::GET, "/admin/api/campaigns/generic", shop, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &bidder,
        Method::PATCH,
        "/admin/api/campaigns/generic",
        shop,
        Some(json!({"max_bid": "9"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&bidder, Method::DELETE, "/admin/api/campaigns/generic", shop, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(
        &bidder,
        Method::POST,
        "/admin/api/campaigns",
        shop,
        Some(new_campaign()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a campaign for another advertiser: {body}"
    );
    let (status, _) = call(
        &bidder,
        Method::PATCH,
        "/admin/api/campaigns/shop-spring",
        shop,
        Some(json!({"advertiser": "Generic"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nor give its campaign away");
    let (status, mine) = call(
        &bidder,
        Method::PATCH,
        "/admin/api/campaigns/shop-spring",
        shop,
        Some(json!({"max_bid": "0.60"})),
    )
    .await;
    assert_eq!(
        (status, mine["max_bid"].as_str()),
        (StatusCode::OK, Some("0.60")),
        "{mine}"
    );
    let mut own = new_campaign();
    own["id"] = json!("shop-new");
    own.as_object_mut().unwrap().remove("advertiser");
    let (status, created) = call(&bidder, Method::POST, "/admin/api/campaigns", shop, Some(own)).await;
    assert_eq!(
        (status, created["advertiser"].as_str()),
        (StatusCode::CREATED, Some("Shop")),
        "{created}"
    );
    let (_, advertisers) = call(&bidder, Method::GET, "/admin/api/advertisers", shop, None).await;
    assert_eq!(advertisers["advertisers"].as_array().unwrap().len(), 1);
    assert_eq!(advertisers["advertisers"][0]["id"], "Shop");
    assert_eq!(advertisers["advertisers"][0]["campaigns"], 2);
    let (status, _) = call(&bidder, Method::GET, "/admin/api/advertisers/Generic", shop, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&bidder, Method::GET, "/admin/api/audience/users/u", shop, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "segments are not an advertiser's to read"
    );
    let (_, audit) = call(&bidder, Method::GET, "/admin/api/audit", shop, None).await;
    let targets: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["shop-new", "shop-spring"]);

    // A viewer reads everything and changes nothing.
    let viewer = Some(VIEWER_TOKEN);
    let (_, list) = call(&bidder, Method::GET, "/admin/api/campaigns", viewer, None).await;
    assert_eq!(ids(&list), ["generic", "shop-new", "shop-spring"]);
    let (status, _) = call(
        &bidder,
        Method::PATCH,
        "/admin/api/campaigns/generic",
        viewer,
        Some(json!({"max_bid": "2"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &bidder,
        Method::POST,
        "/admin/api/audience/users/u",
        viewer,
        Some(json!({"add": ["a"]})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Explain through the API: every campaign for an admin, its own for an
    // advertiser (another's winner is not named).
    let request = banner_request("someone", 0.0, json!({}));
    let (status, all) = call(
        &bidder,
        Method::POST,
        "/admin/api/explain",
        Some(ADMIN_TOKEN),
        Some(request.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["imp"][0]["winner"], "generic");
    let verdicts: Vec<&str> = all["imp"][0]["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts.len(), 3, "{all}");
    let (_, mine) = call(&bidder, Method::POST, "/admin/api/explain", shop, Some(request)).await;
    assert_eq!(mine["imp"][0]["winner"], Value::Null, "{mine}");
    let own: Vec<&str> = mine["imp"][0]["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        own,
        ["shop-new", "shop-spring"]
            .iter()
            .filter(|id| verdicts.contains(id))
            .copied()
            .collect::<Vec<_>>()
    );
    let (status, _) = call(
        &bidder,
        Method::POST,
        "/admin/api/explain",
        shop,
        Some(json!({"id": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A data token: the audience, nothing else.
    let data = Some(DATA_TOKEN);
    let (status, _) = call(&bidder, Method::GET, "/admin/api/audience/users/u", data, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&bidder, Method::GET, "/admin/api/campaigns", data, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    bidder.stop().await;
}

/// Issue 11: the old `overrides.json` is folded into the campaign files
/// once, then no longer read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_overrides_file_is_folded_into_the_campaign_files_once() {
    let config = write_config(TEST_SETTINGS, GENERIC, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("overrides.json"),
        r#"{"generic": {"max_bid": "2.5", "status": "paused"}, "gone": {"max_bid": "1"}}"#,
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock, false).await;
    let text = std::fs::read_to_string(config.path().join("campaigns/test.toml")).unwrap();
    assert!(
        text.contains("max_bid = \"2.5\"") && text.contains("status = \"paused\""),
        "{text}"
    );
    assert!(!data.path().join("overrides.json").exists());
    assert!(data.path().join("overrides.json.folded").exists());
    let (_, generic) = call(
        &bidder,
        Method::GET,
        "/admin/api/campaigns/generic",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(generic["status"], "paused");
    assert_eq!(
        bidder.bid_json(&banner_request("someone", 0.0, json!({}))).await.0,
        StatusCode::NO_CONTENT
    );
    bidder.stop().await;
}
