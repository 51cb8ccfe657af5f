//! Video and audio done properly (issue 13): VAST versions matched to the
//! slot's `protocols` (the advertiser's VAST never rewritten), placement,
//! start delay, skippability, linearity, API frameworks, rewarded slots;
//! bids carry `dur`, `mtype` and `protocol`; ad pods, structured (distinct
//! creatives across the pod's impressions) and dynamic (up to `maxseq` bids
//! within `poddur`). Every response validates against the IAB schema.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn vast(id: &str, version: &str, seconds: u32) -> String {
    format!(
        r#"<VAST version="{version}"><Ad id="{id}"><InLine><AdSystem>T</AdSystem><AdTitle>{id}</AdTitle><Impression><![CDATA[{{{{IMPRESSION_URL}}}}]]></Impression><Creatives><Creative><Linear><Duration>00:00:{seconds:02}</Duration><VideoClicks><ClickThrough><![CDATA[{{{{CLICK_URL}}}}]]></ClickThrough></VideoClicks><MediaFiles><MediaFile delivery="progressive" type="video/mp4" width="640" height="360"><![CDATA[https://cdn.example/{id}.mp4]]></MediaFile></MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#
    )
}

fn creative(id: &str, version: &str, seconds: u32, extra: &str) -> String {
    format!(
        r#"
  [[campaign.creative]]
  id = "{id}"
  format = "video"
  w = 640
  h = 360
  duration = {seconds}
  landing_url = "https://video.example/{id}"
  adm = '{adm}'
  {extra}
"#,
        adm = vast(id, version, seconds)
    )
}

fn campaign(id: &str, max_bid: &str, creatives: &str) -> String {
    format!(
        r#"
[[campaign]]
id = "{id}"
advertiser = "A"
adomain = ["{id}.example"]
pricing = "cpm"
max_bid = "{max_bid}"
daily_budget = "1000"
pacing = "asap"
{creatives}
"#
    )
}

fn video_request(video: Value, extra: Value) -> Value {
    let mut request = json!({
        "id": "v-1",
        "at": 2,
        "imp": [{"id": "1", "video": video}],
        "site": {"domain": "tv.example"},
        "device": {"ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ip": "203.0.113.7"},
        "user": {"buyeruid": "u"}
    });
    merge(&mut request, extra);
    request
}

async fn bids_of(bidder: &TestBidder, request: &Value) -> Vec<Value> {
    let (status, response) = bidder.bid_json(request).await;
    match status {
        StatusCode::NO_CONTENT => vec![],
        StatusCode::OK => {
            let response = response.unwrap();
            let errors: Vec<String> = response_validator()
                .iter_errors(&response)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:?}: {response}");
            response["seatbid"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["bid"].as_array().unwrap().clone())
                .collect()
        }
        other => panic!("{other}: {response:?}"),
    }
}

fn crids(bids: &[Value]) -> Vec<&str> {
    bids.iter().map(|b| b["crid"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_creative_is_bid_only_where_protocols_allow_its_vast_version() {
    let campaigns = campaign("v41", "5.00", &creative("v41-15", "4.1", 15, ""))
        + &campaign("v3", "2.00", &creative("v3-15", "3.0", 15, ""));
    let (bidder, _) = spawn_test_bidder(&campaigns, "u,a\n", "2026-11-19T14:00:00Z").await;
    // VAST 2/3 only: the VAST 4.1 creative may not go, the 3.0 one does.
    let bids = bids_of(
        &bidder,
        &video_request(json!({"mimes": ["video/mp4"], "protocols": [2, 3, 5, 6]}), json!({})),
    )
    .await;
    assert_eq!(crids(&bids), ["v3-15"]);
    assert_eq!(bids[0]["protocol"], 3);
    assert_eq!(bids[0]["dur"], 15);
    assert_eq!(bids[0]["mtype"], 2);
    // VAST 4.1 allowed: the better bid goes, with its own markup untouched.
    let bids = bids_of(
        &bidder,
        &video_request(json!({"mimes": ["video/mp4"], "protocols": [2, 3, 7, 11]}), json!({})),
    )
    .await;
    assert_eq!(crids(&bids), ["v41-15"]);
    assert_eq!(bids[0]["protocol"], 11);
    assert!(bids[0]["adm"].as_str().unwrap().starts_with(r#"<VAST version="4.1">"#));
    // Only VAST 4.2: nothing of ours.
    let bids = bids_of(&bidder, &video_request(json!({"protocols": [13, 14]}), json!({}))).await;
    assert!(bids.is_empty());
    bidder.stop().await;
}

#[tokio::test]
async fn placement_start_delay_skip_linearity_api_and_rewarded_are_honoured() {
    let campaigns = campaign(
        "rules",
        "5.00",
        &creative(
            "instream-pre",
            "3.0",
            15,
            r#"placements = ["instream"]
  start_delays = ["pre"]
  skippable = false
  api = [7]"#,
        ),
    ) + &campaign("rewarded", "6.00", &creative("reward", "3.0", 30, "rewarded = true"));
    let (bidder, _) = spawn_test_bidder(&campaigns, "u,a\n", "2026-11-19T14:00:00Z").await;
    let fits = json!({"protocols": [3], "plcmt": 1, "startdelay": 0, "api": [7]});
    let with = |patch: Value| {
        let mut video = fits.clone();
        merge(&mut video, patch);
        video_request(video, json!({}))
    };
    assert_eq!(crids(&bids_of(&bidder, &with(json!({}))).await), ["instream-pre"]);
    for (case, patch) in [
        ("out-stream", json!({"plcmt": 4})),
        ("mid-roll", json!({"startdelay": 10})),
        ("post-roll", json!({"startdelay": -2})),
        ("skippable", json!({"skip": 1})),
        ("non-linear", json!({"linearity": 2})),
        ("no OMID", json!({"api": [1, 2]})),
    ] {
        assert!(bids_of(&bidder, &with(patch)).await.is_empty(), "{case}");
    }
    // 2.5 `placement` stands in for a missing `plcmt`.
    let mut video = fits.clone();
    video.as_object_mut().unwrap().remove("plcmt");
    video["placement"] = json!(1);
    assert_eq!(
        crids(&bids_of(&bidder, &video_request(video, json!({}))).await),
        ["instream-pre"]
    );
    // Too short to be skipped in a skippable player: still not skippable.
    assert_eq!(
        crids(&bids_of(&bidder, &with(json!({"skip": 1, "skipmin": 15}))).await),
        ["instream-pre"]
    );
    // The rewarded-only creative (the best bid) goes only into rewarded
    // slots: above, it never took a plain one.
    let mut rewarded = with(json!({}));
    rewarded["imp"][0]["rwdd"] = json!(1);
    assert_eq!(crids(&bids_of(&bidder, &rewarded).await), ["reward"]);
    bidder.stop().await;
}

#[tokio::test]
async fn a_dynamic_pod_takes_up_to_maxseq_distinct_creatives_within_poddur() {
    let campaigns = campaign(
        "brand",
        "9.00",
        &(creative("brand-15", "3.0", 15, "") + &creative("brand-10", "3.0", 10, "")),
    ) + &campaign("other", "6.00", &creative("other-15", "3.0", 15, ""))
        + &campaign("filler", "3.00", &creative("filler-5", "3.0", 5, ""));
    let (bidder, _) = spawn_test_bidder(&campaigns, "u,a\n", "2026-11-19T14:00:00Z").await;
    let pod = |poddur: i64, maxseq: i64| {
        video_request(
            json!({"protocols": [3], "maxduration": 30, "podid": "break-1", "poddur": poddur, "maxseq": maxseq}),
            json!({}),
        )
    };
    // 30 seconds, at most 3 ads: brand's 15 s, then brand's 10 s (a second
    // creative of the same campaign), then only the 5 s filler fits.
    let bids = bids_of(&bidder, &pod(30, 3)).await;
    assert_eq!(crids(&bids), ["brand-15", "brand-10", "filler-5"]);
    let total: i64 = bids.iter().map(|b| b["dur"].as_i64().unwrap()).sum();
    assert_eq!(total, 30);
    let ids: std::collections::HashSet<&str> = bids.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "each bid has its own id (and its own reservation)");
    assert!(bids.iter().all(|b| b["impid"] == "1"));
    // maxseq bounds the count; poddur the seconds.
    assert_eq!(crids(&bids_of(&bidder, &pod(60, 2)).await), ["brand-15", "brand-10"]);
    assert_eq!(crids(&bids_of(&bidder, &pod(20, 5)).await), ["brand-15", "filler-5"]);
    // Every pod bid is billed on its own: each one's billing notice charges.
    let bids = bids_of(&bidder, &pod(30, 3)).await;
    for bid in &bids {
        let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "1.0");
        assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    }
    bidder.stop().await;
}

#[tokio::test]
async fn a_structured_pod_never_shows_one_creative_twice() {
    let campaigns = campaign(
        "brand",
        "9.00",
        &(creative("brand-a", "3.0", 15, "") + &creative("brand-b", "3.0", 15, "")),
    );
    let (bidder, _) = spawn_test_bidder(&campaigns, "u,a\n", "2026-11-19T14:00:00Z").await;
    let slot =
        |id: &str, pod: &str, n: i64| json!({"id": id, "video": {"protocols": [3], "podid": pod, "slotinpod": n}});
    let mut request = video_request(json!({}), json!({}));
    request["imp"] = json!([
        slot("1", "p1", 1),
        slot("2", "p1", 2),
        slot("3", "p1", 0),
        slot("4", "p2", 1)
    ]);
    let bids = bids_of(&bidder, &request).await;
    let placed: Vec<(&str, &str)> = bids
        .iter()
        .map(|b| (b["impid"].as_str().unwrap(), b["crid"].as_str().unwrap()))
        .collect();
    // Pod p1 has three slots but only two creatives; pod p2 starts afresh.
    assert_eq!(placed, [("1", "brand-a"), ("2", "brand-b"), ("4", "brand-a")]);
    bidder.stop().await;
}

#[tokio::test]
async fn audio_slots_honour_protocols_and_api() {
    let daast = r#"<DAAST version="1.0"><Ad id="a"><InLine><Impression><![CDATA[{{IMPRESSION_URL}}]]></Impression><Creatives><Creative><Linear><Duration>00:00:30</Duration></Linear></Creative></Creatives></InLine></Ad></DAAST>"#;
    let campaigns = format!(
        r#"{}
  [[campaign.creative]]
  id = "radio-30"
  format = "audio"
  duration = 30
  landing_url = "https://radio.example/"
  adm = '{daast}'
"#,
        campaign("radio", "4.00", "")
    );
    let (bidder, _) = spawn_test_bidder(&campaigns, "u,a\n", "2026-11-19T14:00:00Z").await;
    let audio = |protocols: Value| {
        let mut request = video_request(json!({}), json!({}));
        request["imp"] = json!([{"id": "1", "audio": {"mimes": ["audio/mp4"], "protocols": protocols}}]);
        request
    };
    let bids = bids_of(&bidder, &audio(json!([9, 10]))).await;
    assert_eq!(crids(&bids), ["radio-30"]);
    assert_eq!(
        (
            bids[0]["mtype"].clone(),
            bids[0]["protocol"].clone(),
            bids[0]["dur"].clone()
        ),
        (json!(3), json!(9), json!(30))
    );
    assert!(
        bids_of(&bidder, &audio(json!([2, 3]))).await.is_empty(),
        "DAAST is not VAST 2/3"
    );
    bidder.stop().await;
}
