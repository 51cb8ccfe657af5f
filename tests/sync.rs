//! Identity (issue 13): user sync with an exchange (cookie, redirect with
//! privacy macros, return call, persistent and bounded match table), after
//! which the exchange's `buyeruid` resolves to our user; extended ids by
//! configured source; exchange data segments mapped to ours.

mod common;

use std::sync::Arc;

use bullseye::clock::ManualClock;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SYNC_URL: &str = "https://sync.syncx.example/setuid?bidder=bz&uid={UID}&gdpr={GDPR}&gdpr_consent={GDPR_CONSENT}&us_privacy={US_PRIVACY}";

const AUDIENCE: &str = "our-user-1,interest/sports\nramp-user,interest/sports\n";

fn settings() -> String {
    let settings = TEST_SETTINGS
        .replace(
            "[bidding]\n",
            "[bidding]\nuser_id_order = [\"eid:liveramp.com\", \"buyeruid\", \"user_id\"]\n",
        )
        .replace("[audience]\n", "[audience]\nmax_user_matches = 3\n");
    format!(
        "{settings}\n[tracking]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\n[[exchange]]\nname = \"syncx\"\nsync_url = \"{SYNC_URL}\"\n\n  [[exchange.segment_map]]\n  data = \"dp1\"\n  segment = \"777\"\n  to = \"interest/sports\"\n"
    )
}

async fn start(config: &std::path::Path, data: &std::path::Path) -> TestBidder {
    let clock = Arc::new(ManualClock::new("2026-11-19T14:00:00Z".parse().unwrap()));
    spawn_bidder_in(config, data, clock, false).await
}

fn request(user: Value) -> Value {
    let mut request = banner_request("unused", 0.5, json!({}));
    request["user"] = user;
    request
}

async fn winner_at(bidder: &TestBidder, user: Value) -> Option<String> {
    let (status, response) = bidder.bid_at("/openrtb2/bid/syncx", request(user).to_string()).await;
    assert!(matches!(status, StatusCode::OK | StatusCode::NO_CONTENT), "{status}");
    winner(&response)
}

async fn get(bidder: &TestBidder, path: &str, cookie: Option<&str>, https: bool) -> reqwest::Response {
    let mut request = bidder.client.get(bidder.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if https {
        request = request.header("x-forwarded-proto", "https");
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn a_full_sync_round_trip_makes_the_exchange_id_ours_and_survives_a_restart() {
    let config = write_config(&settings(), &fans_campaign("interest/sports", "", ""), AUDIENCE);
    let data = tempfile::tempdir().unwrap();
    let bidder = start(config.path(), data.path()).await;
    assert_eq!(
        winner_at(&bidder, json!({"buyeruid": "EX-42"})).await,
        None,
        "not synced yet"
    );

    // A first visit: a new id in a cookie, and the redirect carrying it.
    let first = get(&bidder, "/sync/syncx?gdpr=0&us_privacy=1YNN", None, false).await;
    assert_eq!(first.status(), StatusCode::FOUND);
    let cookie = header(&first, "set-cookie").unwrap();
    let issued = cookie
        .strip_prefix("bz_uid=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(issued.len(), 32);
    assert_eq!(cookie, format!("bz_uid={issued}; Max-Age=31536000; Path=/; HttpOnly"));
    assert_eq!(
        header(&first, "location").unwrap(),
        format!("https://sync.syncx.example/setuid?bidder=bz&uid={issued}&gdpr=0&gdpr_consent=&us_privacy=1YNN")
    );

    // A known user (our id in the audience): the cookie is kept.
    let known = get(&bidder, "/sync/syncx?gdpr=0", Some("bz_uid=our-user-1"), true).await;
    assert_eq!(known.status(), StatusCode::FOUND);
    assert!(header(&known, "location").unwrap().contains("uid=our-user-1&"));
    assert_eq!(
        header(&known, "set-cookie").unwrap(),
        "bz_uid=our-user-1; Max-Age=31536000; Path=/; HttpOnly; SameSite=None; Secure",
        "https from a trusted proxy: a cross-site cookie"
    );
    // The exchange calls back with its id for that user.
    let back = get(
        &bidder,
        "/sync/syncx/return?uid=EX-42",
        Some("bz_uid=our-user-1"),
        false,
    )
    .await;
    assert_eq!(back.status(), StatusCode::OK);
    assert_eq!(header(&back, "content-type").as_deref(), Some("image/gif"));
    assert_eq!(
        winner_at(&bidder, json!({"buyeruid": "EX-42"})).await.as_deref(),
        Some("fans"),
        "the exchange's id resolves to our user and their segments"
    );
    // The default exchange has no sync: its buyeruid is read as ours.
    let (status, _) = bidder.bid_json(&request(json!({"buyeruid": "EX-42"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    bidder.stop().await;

    let bidder = start(config.path(), data.path()).await;
    assert_eq!(
        winner_at(&bidder, json!({"buyeruid": "EX-42"})).await.as_deref(),
        Some("fans"),
        "the match survives a restart"
    );
    bidder.stop().await;
}

#[tokio::test]
async fn no_sync_without_consent_and_bad_calls_are_refused() {
    let config = write_config(&settings(), &fans_campaign("interest/sports", "", ""), AUDIENCE);
    let data = tempfile::tempdir().unwrap();
    let bidder = start(config.path(), data.path()).await;
    for query in ["gdpr=1", "gdpr=1&gdpr_consent=not-a-tcf-string", "us_privacy=1YYN"] {
        let answer = get(&bidder, &format!("/sync/syncx?{query}"), None, false).await;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT, "{query}");
        assert_eq!(header(&answer, "set-cookie"), None, "{query}");
        let back = get(
            &bidder,
            &format!("/sync/syncx/return?uid=EX-1&{query}"),
            Some("bz_uid=our-user-1"),
            false,
        )
        .await;
        assert_eq!(back.status(), StatusCode::NO_CONTENT, "{query}");
    }
    assert_eq!(
        winner_at(&bidder, json!({"buyeruid": "EX-1"})).await,
        None,
        "nothing was stored"
    );
    assert_eq!(
        get(&bidder, "/sync/nowhere", None, false).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&bidder, "/sync/default", None, false).await.status(),
        StatusCode::NOT_FOUND,
        "no sync_url"
    );
    assert_eq!(
        get(&bidder, "/sync/syncx/return?uid=EX-1", None, false).await.status(),
        StatusCode::BAD_REQUEST,
        "no cookie"
    );
    assert_eq!(
        get(&bidder, "/sync/syncx/return", Some("bz_uid=our-user-1"), false)
            .await
            .status(),
        StatusCode::BAD_REQUEST,
        "no uid"
    );
    bidder.stop().await;
}

#[tokio::test]
async fn the_match_table_is_bounded_and_counts_evictions() {
    let config = write_config(&settings(), &fans_campaign("interest/sports", "", ""), AUDIENCE);
    let data = tempfile::tempdir().unwrap();
    let bidder = start(config.path(), data.path()).await;
    for i in 0..5 {
        let back = get(
            &bidder,
            &format!("/sync/syncx/return?uid=EX-{i}"),
            Some("bz_uid=our-user-1"),
            false,
        )
        .await;
        assert_eq!(back.status(), StatusCode::OK);
    }
    let metrics = bidder.metrics().await;
    assert_eq!(metric(&metrics, "bullseye_user_matches"), 3.0);
    assert_eq!(metric(&metrics, "bullseye_user_matches_evicted_total"), 2.0);
    bidder.stop().await;
}

#[tokio::test]
async fn extended_ids_and_data_segments_recognise_the_user() {
    let config = write_config(&settings(), &fans_campaign("interest/sports", "", ""), AUDIENCE);
    let data = tempfile::tempdir().unwrap();
    let bidder = start(config.path(), data.path()).await;
    let ramp = json!([{"source": "liveramp.com", "uids": [{"id": "ramp-user", "atype": 3}]}]);
    // The preferred extended id wins over buyeruid.
    assert_eq!(
        winner_at(&bidder, json!({"buyeruid": "nobody", "eids": ramp}))
            .await
            .as_deref(),
        Some("fans")
    );
    assert_eq!(
        winner_at(&bidder, json!({"buyeruid": "nobody", "ext": {"eids": ramp}}))
            .await
            .as_deref(),
        Some("fans"),
        "2.5 placement"
    );
    assert_eq!(winner_at(&bidder, json!({"buyeruid": "nobody"})).await, None);
    // The exchange's data segment 777 of provider dp1 is our sports segment.
    let data_segments = json!([{"id": "dp1", "segment": [{"id": "777"}]}, {"id": "dp2", "segment": [{"id": "777"}]}]);
    assert_eq!(
        winner_at(&bidder, json!({"buyeruid": "nobody", "data": data_segments}))
            .await
            .as_deref(),
        Some("fans")
    );
    let other_provider = json!([{"id": "dp2", "segment": [{"id": "777"}]}]);
    assert_eq!(
        winner_at(&bidder, json!({"buyeruid": "nobody", "data": other_provider})).await,
        None
    );
    // Without consent no personal data: neither mapped segments.
    let mut coppa = request(json!({"buyeruid": "nobody", "data": data_segments}));
    coppa["regs"] = json!({"coppa": 1});
    let (status, _) = bidder.bid_at("/openrtb2/bid/syncx", coppa.to_string()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    bidder.stop().await;
}
