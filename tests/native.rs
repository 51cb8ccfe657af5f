//! Native done properly, over HTTP: native requests (Native Ads 1.0–1.2,
//! as a string or an object, wrapped or not) are answered only when a
//! creative fills every required asset, with a native response whose
//! assets carry the request's ids — checked by a validator of our own
//! against the request (the IAB response schema does not look inside
//! `adm`) — and whose trackers are signed and work. The spec's examples
//! (Native 1.2 §6) and the corpus's native requests are the inputs.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::collections::HashMap;

use bullseye::ledger::{EventKind, read_all};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A native campaign with the assets of the spec's examples (§6.1): a
/// 30-character title, a 1200×627 JPEG main image, a 100×100 PNG icon, a
/// sponsor and a description.
const STORY: &str = r#"
[[campaign]]
id = "story"
advertiser = "A"
adomain = ["brand.example"]
pricing = "cpm"
max_bid = "2.00"
daily_budget = "1000"
pacing = "asap"
  [[campaign.creative]]
  id = "story-1"
  format = "native"
  landing_url = "https://brand.example/story"
  title = "Learn about this awesome thing"
    [[campaign.creative.image]]
    type = "main"
    url = "https://cdn.brand.example/largethumb.jpg"
    w = 1200
    h = 627
    [[campaign.creative.image]]
    type = "icon"
    url = "https://cdn.brand.example/thumbnail.png"
    w = 100
    h = 100
    [[campaign.creative.data]]
    type = "sponsored"
    value = "My Brand"
    [[campaign.creative.data]]
    type = "desc"
    value = "Learn all about this awesome story of someone using my product."
"#;

const NOW: &str = "2026-11-24T10:00:00Z";

/// The assets of the spec's examples (§6.1, §6.3): a title, an optional
/// main image, an icon, a sponsor and a description.
fn spec_assets() -> Value {
    json!([
        {"id": 123, "required": 1, "title": {"len": 140}},
        {"id": 128, "required": 0, "img": {"wmin": 836, "hmin": 627, "type": 3}},
        {"id": 124, "required": 1, "img": {"wmin": 50, "hmin": 50, "type": 1}},
        {"id": 126, "required": 1, "data": {"type": 1, "len": 25}},
        {"id": 127, "required": 1, "data": {"type": 2, "len": 140}}
    ])
}

/// Native 1.2 §6.1, social context (the spec's `eventrackers` typo
/// corrected): event trackers offered for impressions by image or script.
fn example_6_1() -> Value {
    json!({
        "ver": "1.2", "context": 2, "contextsubtype": 20, "plcmttype": 11, "plcmtcnt": 1,
        "aurlsupport": 0, "privacy": 1,
        "eventtrackers": [{"event": 1, "methods": [1, 2]}, {"event": 2, "methods": [1]}],
        "assets": spec_assets()
    })
}

/// Native 1.2 §6.2, content context: §6.1 with a video asset (id 4, not
/// required), which no native creative fills.
fn example_6_2() -> Value {
    let mut request = example_6_1();
    request["context"] = json!(1);
    request["contextsubtype"] = json!(10);
    let video = json!({"id": 4, "video": {"linearity": 1, "minduration": 15, "maxduration": 30,
                                          "protocols": [2, 3], "mimes": ["video/mp4"]}});
    request["assets"].as_array_mut().unwrap().insert(0, video);
    request
}

/// Native 1.2 §6.3, third-party ad serving: no event trackers offered.
fn example_6_3() -> Value {
    json!({
        "ver": "1.2", "context": 2, "contextsubtype": 20, "plcmttype": 11, "plcmtcnt": 1,
        "aurlsupport": 1, "durlsupport": 1,
        "assets": spec_assets()
    })
}

/// `imp.native` with this native request, JSON-encoded in a string as the
/// spec has it.
fn native(request: &Value) -> Value {
    json!({"request": request.to_string(), "ver": "1.2"})
}

/// A bid request with these impressions.
fn bid_request(imps: Vec<Value>) -> Value {
    json!({
        "id": "req-native",
        "imp": imps,
        "site": {"id": "s1", "domain": "news.example"},
        "device": {"ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ip": "203.0.113.7", "devicetype": 2},
        "user": {"buyeruid": "reader-1"}
    })
}

/// A request with one native impression, `imp.native` as given.
fn native_request(imp_native: Value) -> Value {
    bid_request(vec![json!({"id": "1", "native": imp_native})])
}

/// Every bid of a response.
fn bids(response: &Value) -> Vec<&Value> {
    response["seatbid"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["bid"].as_array().into_iter().flatten())
        .collect()
}

/// The native request of `imp.native`, decoded from its string if it is
/// one, and whether it was wrapped in `{"native": …}`.
fn native_request_of(imp_native: &Value) -> Option<(Value, bool)> {
    let request = match &imp_native["request"] {
        Value::String(text) => serde_json::from_str(text).ok()?,
        Value::Object(_) => imp_native["request"].clone(),
        _ => return None,
    };
    match (&request["assets"], &request["native"]) {
        (Value::Null, Value::Object(_)) => Some((request["native"].clone(), true)),
        _ => Some((request, false)),
    }
}

fn chars(value: &Value) -> i64 {
    value.as_str().map_or(-1, |s| s.chars().count() as i64)
}

/// A positive integer field of a request object, if given.
fn positive(object: &Value, key: &str) -> Option<i64> {
    object[key].as_i64().filter(|n| *n > 0)
}

/// One image side against the request: at least `min` where given,
/// else exactly `exact` where given.
fn side_ok(ours: Option<i64>, asked: &Value, exact: &str, min: &str) -> bool {
    let Some(ours) = ours else { return false };
    match (positive(asked, min), positive(asked, exact)) {
        (Some(min), _) => ours >= min,
        (None, Some(exact)) => ours == exact,
        (None, None) => true,
    }
}

/// Checks a native `adm` against the impression's native request; returns
/// the problems. Every required asset is answered, under its id, with its
/// kind (title, img, data) and within its constraints; no asset is
/// answered that was not asked; the link is our click URL; the impression
/// tracker is ours, in `eventtrackers` when the request offers event 1 by
/// image, and no event tracker uses a method the request did not offer.
fn native_problems(imp_native: &Value, adm: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some((request, wrapped)) = native_request_of(imp_native) else {
        return vec!["a bid on an unreadable native request".into()];
    };
    let Ok(markup) = serde_json::from_str::<Value>(adm) else {
        return vec![format!("adm is not JSON: {adm}")];
    };
    let response = if wrapped { &markup["native"] } else { &markup };
    if wrapped != markup.get("native").is_some() || !response.is_object() {
        problems.push(format!("wrapped as the request? request {wrapped}, adm {adm}"));
    }
    if !response["ver"].is_string() {
        problems.push("no ver".into());
    }
    let asked: HashMap<i64, &Value> = request["assets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["id"].as_i64()?, a)))
        .collect();
    let mut answered = Vec::new();
    for asset in response["assets"].as_array().into_iter().flatten() {
        let Some(id) = asset["id"].as_i64() else {
            problems.push(format!("asset without id: {asset}"));
            continue;
        };
        let Some(request_asset) = asked.get(&id) else {
            problems.push(format!("asset {id} was not asked for"));
            continue;
        };
        if answered.contains(&id) {
            problems.push(format!("asset {id} answered twice"));
        }
        answered.push(id);
        let kinds: Vec<&str> = ["title", "img", "data", "video"]
            .into_iter()
            .filter(|k| asset.get(*k).is_some())
            .collect();
        let wanted: Vec<&str> = ["title", "img", "data", "video"]
            .into_iter()
            .filter(|k| request_asset.get(*k).is_some())
            .collect();
        if kinds.len() != 1 || kinds != wanted {
            problems.push(format!("asset {id} answers {kinds:?} to {wanted:?}"));
            continue;
        }
        let (ours, theirs) = (&asset[kinds[0]], &request_asset[kinds[0]]);
        match kinds[0] {
            "title" => {
                if chars(&ours["text"]) < 1 || positive(theirs, "len").is_some_and(|l| chars(&ours["text"]) > l) {
                    problems.push(format!("title {id}: {ours} for {theirs}"));
                }
            }
            "img" => {
                let https = ours["url"].as_str().is_some_and(|u| u.starts_with("https://"));
                let w = side_ok(ours["w"].as_i64(), theirs, "w", "wmin");
                let h = side_ok(ours["h"].as_i64(), theirs, "h", "hmin");
                if !(https && w && h) {
                    problems.push(format!("img {id}: {ours} for {theirs}"));
                }
            }
            "data" => {
                if chars(&ours["value"]) < 1 || positive(theirs, "len").is_some_and(|l| chars(&ours["value"]) > l) {
                    problems.push(format!("data {id}: {ours} for {theirs}"));
                }
            }
            other => problems.push(format!("asset {id}: {other} answered")),
        }
    }
    for (id, asset) in &asked {
        if asset["required"].as_i64() == Some(1) && !answered.contains(id) {
            problems.push(format!("required asset {id} not answered"));
        }
    }
    if !response["link"]["url"]
        .as_str()
        .is_some_and(|u| u.contains("/t/click?"))
    {
        problems.push(format!("link is not our click URL: {}", response["link"]));
    }
    let offered = |event: i64, method: i64| {
        request["eventtrackers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["event"] == event && t["methods"].as_array().is_some_and(|m| m.contains(&json!(method))))
    };
    let mut impression_trackers: Vec<&str> = response["imptrackers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for tracker in response["eventtrackers"].as_array().into_iter().flatten() {
        let (event, method) = (
            tracker["event"].as_i64().unwrap_or(0),
            tracker["method"].as_i64().unwrap_or(0),
        );
        if !offered(event, method) {
            problems.push(format!("event tracker {tracker} not offered"));
        }
        if (event, method) == (1, 1) {
            impression_trackers.extend(tracker["url"].as_str());
        }
    }
    if offered(1, 1) && response["eventtrackers"].as_array().is_none_or(Vec::is_empty) {
        problems.push("event trackers offered, none answered".into());
    }
    if impression_trackers.is_empty() || !impression_trackers.iter().all(|u| u.contains("/t/imp?")) {
        problems.push(format!("impression trackers {impression_trackers:?}"));
    }
    problems
}

/// Checks every native bid of a response against its request and the
/// whole response against the IAB schema; returns the native bids' adm.
fn checked(request: &Value, response: &Value, schema: &jsonschema::Validator) -> Vec<Value> {
    let errors: Vec<String> = schema.iter_errors(response).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "schema: {errors:?}\n{response}");
    let mut markups = Vec::new();
    for bid in bids(response) {
        if bid["mtype"] != 4 {
            continue;
        }
        let imp = request["imp"]
            .as_array()
            .unwrap()
            .iter()
            .find(|imp| imp["id"] == bid["impid"])
            .expect("a bid for a known impression");
        let adm = bid["adm"].as_str().expect("adm");
        let problems = native_problems(&imp["native"], adm);
        assert!(
            problems.is_empty(),
            "{problems:?}\nrequest {}\nadm {adm}",
            imp["native"]
        );
        markups.push(serde_json::from_str(adm).unwrap());
    }
    markups
}

/// Asks once; returns the one native markup, if a bid came.
async fn native_bid(bidder: &TestBidder, request: &Value) -> Option<Value> {
    let (status, response) = bidder.bid_json(request).await;
    match status {
        StatusCode::NO_CONTENT => None,
        StatusCode::OK => {
            let [markup] = <[Value; 1]>::try_from(checked(request, &response.unwrap(), &response_validator()))
                .expect("one native bid");
            Some(markup)
        }
        other => panic!("status {other} for {request}"),
    }
}

fn asset_ids(markup: &Value) -> Vec<i64> {
    markup["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_examples_are_answered_asset_by_asset() {
    let (bidder, _) = spawn_test_bidder(STORY, "u,a\n", NOW).await;

    let social = native_bid(&bidder, &native_request(native(&example_6_1())))
        .await
        .expect("a bid");
    assert_eq!(asset_ids(&social), [123, 128, 124, 126, 127]);
    assert_eq!(social["ver"], "1.2");
    assert_eq!(
        social["assets"][0],
        json!({"id": 123, "required": 1, "title": {"text": "Learn about this awesome thing"}})
    );
    assert_eq!(
        social["assets"][1],
        json!({"id": 128, "img": {"url": "https://cdn.brand.example/largethumb.jpg", "w": 1200, "h": 627}})
    );
    assert_eq!(
        social["assets"][2],
        json!({"id": 124, "required": 1, "img": {"url": "https://cdn.brand.example/thumbnail.png", "w": 100, "h": 100}})
    );
    assert_eq!(
        social["assets"][3],
        json!({"id": 126, "required": 1, "data": {"value": "My Brand"}})
    );
    // Event trackers offered: the impression tracker goes there, by image.
    let trackers = social["eventtrackers"].as_array().unwrap();
    assert_eq!(
        (trackers.len(), &trackers[0]["event"], &trackers[0]["method"]),
        (1, &json!(1), &json!(1))
    );
    assert!(social.get("imptrackers").is_none(), "{social}");

    // §6.2: the video asset (not required) is left out; the rest as above.
    let content = native_bid(&bidder, &native_request(native(&example_6_2())))
        .await
        .expect("a bid");
    assert_eq!(asset_ids(&content), [123, 128, 124, 126, 127]);

    // §6.3: no event trackers offered: the impression tracker is an imptracker.
    let third_party = native_bid(&bidder, &native_request(native(&example_6_3())))
        .await
        .expect("a bid");
    assert!(third_party.get("eventtrackers").is_none(), "{third_party}");
    assert!(third_party["imptrackers"][0].as_str().unwrap().contains("/t/imp?"));
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_and_wrapped_requests_are_answered_in_kind() {
    let (bidder, _) = spawn_test_bidder(STORY, "u,a\n", NOW).await;
    // The request as an object, not a string (some exchanges).
    let object = native_request(json!({"request": example_6_3(), "ver": "1.2"}));
    let markup = native_bid(&bidder, &object).await.expect("a bid");
    assert_eq!(asset_ids(&markup), [123, 128, 124, 126, 127]);
    assert!(markup.get("native").is_none(), "1.2: the response is the root object");

    // Native 1.0's wrapper, as a string and as an object: answered wrapped, in 1.0.
    let wrapped = json!({"native": {"ver": "1.0", "assets": spec_assets()}});
    for imp_native in [native(&wrapped), json!({"request": wrapped})] {
        let markup = native_bid(&bidder, &native_request(imp_native)).await.expect("a bid");
        assert_eq!(markup["native"]["ver"], "1.0");
        assert_eq!(asset_ids(&markup["native"]), [123, 128, 124, 126, 127]);
    }
    // 1.1 without the wrapper: answered as the root object, in 1.1.
    let mut v1_1 = example_6_3();
    v1_1["ver"] = json!("1.1");
    let markup = native_bid(&bidder, &native_request(native(&v1_1)))
        .await
        .expect("a bid");
    assert_eq!(markup["ver"], "1.1");
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_asset_the_creative_cannot_fill_means_no_bid() {
    let (bidder, _) = spawn_test_bidder(STORY, "u,a\n", NOW).await;
    let with_asset = |asset: Value| {
        let mut request = example_6_3();
        request["assets"].as_array_mut().unwrap().push(asset);
        native_request(native(&request))
    };
    let unfillable = [
        // The title has 30 characters.
        json!({"id": 1, "title": {"len": 29}}),
        // Exact sizes the images do not have; a minimum above them.
        json!({"id": 2, "img": {"type": 3, "w": 300, "h": 250}}),
        json!({"id": 3, "img": {"type": 1, "wmin": 120, "hmin": 120}}),
        // A MIME type the main image is not.
        json!({"id": 4, "img": {"type": 3, "wmin": 600, "hmin": 300, "mimes": ["image/png"]}}),
        // A data type the creative has not; a description longer than 20.
        json!({"id": 5, "data": {"type": 12}}),
        json!({"id": 6, "data": {"type": 2, "len": 20}}),
        // Video, or an asset kind newer than the spec.
        json!({"id": 7, "video": {"mimes": ["video/mp4"], "minduration": 5, "maxduration": 30, "protocols": [2]}}),
        json!({"id": 8, "hologram": {"depth": 3}}),
    ];
    for asset in unfillable {
        let mut required = asset.clone();
        required["required"] = json!(1);
        assert_eq!(native_bid(&bidder, &with_asset(required)).await, None, "{asset}");
        // The same asset, optional: a bid, without it.
        let markup = native_bid(&bidder, &with_asset(asset.clone())).await.expect("a bid");
        assert_eq!(asset_ids(&markup), [123, 128, 124, 126, 127], "{asset}");
    }
    // The fillable counterparts are answered.
    let fillable = [
        json!({"id": 1, "required": 1, "title": {"len": 30}}),
        json!({"id": 2, "required": 1, "img": {"type": 3, "w": 1200, "h": 627}}),
        json!({"id": 3, "required": 1, "img": {"type": 2, "wmin": 100, "hmin": 100}}),
        json!({"id": 4, "required": 1, "img": {"type": 3, "wmin": 600, "hmin": 300, "mimes": ["image/jpg"]}}),
        json!({"id": 6, "required": 1, "data": {"type": 2, "len": 64}}),
    ];
    for asset in fillable {
        let markup = native_bid(&bidder, &with_asset(asset.clone())).await.expect("a bid");
        assert_eq!(asset_ids(&markup).last(), asset["id"].as_i64().as_ref(), "{asset}");
    }
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_native_request_costs_its_impression_only() {
    let (bidder, _) = spawn_test_bidder(&format!("{GENERIC}{STORY}"), "u,a\n", NOW).await;
    let banner = json!({"id": "b", "banner": {"w": 300, "h": 250}});
    let broken = json!({"id": "n", "native": {"request": "{native: \"request\"}", "ver": "1.2"}});
    let request = bid_request(vec![banner, broken.clone()]);
    let (status, response) = bidder.bid_json(&request).await;
    assert_eq!(status, StatusCode::OK);
    let response = response.unwrap();
    let impids: Vec<&Value> = bids(&response).iter().map(|b| &b["impid"]).collect();
    assert_eq!(impids, [&json!("b")]);
    checked(&request, &response, &response_validator());

    // Alone, each unreadable form is a no-bid, never a 400.
    let unreadable = [
        json!({"request": "{native: \"request\"}"}),
        json!({"request": ""}),
        json!({"request": "\"assets\":[{\"id\":0,\"required\":1,\"title\":{\"len\":140}}]"}),
        json!({"request": {"assets": "title"}}),
        json!({"request": 42}),
        json!({"request": null}),
        json!({"ver": "1.2"}),
        // A required asset without an id: its answer could not be matched.
        native(&json!({"assets": [{"required": 1, "title": {"len": 90}}]})),
    ];
    for imp_native in &unreadable {
        let (status, body) = bidder.bid_json(&native_request(imp_native.clone())).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{imp_native}: {body:?}");
    }
    let metrics = bidder.metrics().await;
    let count = unreadable.len() as f64;
    assert_eq!(
        metric(
            &metrics,
            r#"bullseye_no_bids_total{reason="native_request_unreadable",code="2"}"#
        ),
        count
    );
    assert_eq!(
        metric(&metrics, "bullseye_native_requests_unreadable_total"),
        count + 1.0
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trackers_of_a_native_response_record_the_impression_and_the_click() {
    let (mut bidder, _) = spawn_test_bidder(STORY, "u,a\n", NOW).await;
    let request = native_request(native(&example_6_1()));
    let (status, response) = bidder.bid_json(&request).await;
    assert_eq!(status, StatusCode::OK);
    let response = response.unwrap();
    let [markup] = <[Value; 1]>::try_from(checked(&request, &response, &response_validator())).unwrap();
    let bid_id = bids(&response)[0]["id"].as_str().unwrap().to_string();

    let impression = markup["eventtrackers"][0]["url"].as_str().unwrap();
    assert!(impression.starts_with(&bidder.url("/t/imp?")), "{impression}");
    assert_eq!(bidder.get(impression).await.status(), StatusCode::OK);
    let click = markup["link"]["url"].as_str().unwrap();
    let answer = bidder.get(click).await;
    assert_eq!(answer.status(), StatusCode::FOUND);
    let location = answer.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://brand.example/story?utm_source=default"),
        "{location}"
    );
    // Signed: an altered tracker is refused.
    let altered = impression.replace("c=story", "c=other");
    assert_ne!(altered, impression);
    assert_eq!(bidder.get(&altered).await.status(), StatusCode::FORBIDDEN);

    let dirs = std::mem::take(&mut bidder.dirs);
    bidder.stop().await;
    let recorded: Vec<(EventKind, String, String)> = read_all(&dirs[0].path().join("ledger"))
        .unwrap()
        .into_iter()
        .map(|r| (r.event, r.bid, r.creative))
        .collect();
    assert_eq!(
        recorded,
        [
            (EventKind::Impression, bid_id.clone(), "story-1".to_string()),
            (EventKind::Click, bid_id, "story-1".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_judges_native_fit_as_the_bid_path_does() {
    let (bidder, _) = spawn_test_bidder(STORY, "u,a\n", NOW).await;
    let explain = |request: Value| {
        let call = bidder.admin(Method::POST, "/admin/api/explain").json(&request);
        async move {
            let answer: Value = call.send().await.unwrap().json().await.unwrap();
            let verdict = &answer["imp"][0]["campaigns"][0];
            (verdict["bid"].clone(), verdict["reason"].clone())
        }
    };
    assert_eq!(
        explain(native_request(native(&example_6_1()))).await,
        (json!("2"), Value::Null)
    );
    let mut too_short = example_6_1();
    too_short["assets"][0]["title"]["len"] = json!(25);
    assert_eq!(
        explain(native_request(native(&too_short))).await,
        (Value::Null, json!("creative"))
    );
    let unreadable = native_request(json!({"request": "{"}));
    assert_eq!(explain(unreadable).await, (Value::Null, json!("creative")));
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_takes_and_round_trips_native_creatives() {
    let (bidder, _) = spawn_test_bidder(STORY, "u,a\n", NOW).await;
    let campaign: Value = bidder
        .admin(Method::GET, "/admin/api/campaigns/story")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let creative = &campaign["creative"][0];
    assert_eq!(
        creative["image"][1],
        json!({"type": "icon", "url": "https://cdn.brand.example/thumbnail.png", "w": 100, "h": 100})
    );
    assert_eq!(creative["data"][0], json!({"type": "sponsored", "value": "My Brand"}));

    // The GET body, PUT back as is: accepted, nothing changes.
    let put = bidder
        .admin(Method::PUT, "/admin/api/campaigns/story")
        .json(&campaign)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);

    // A new title and a call to action (type as a number), through the creative's own path.
    let patch =
        json!({"title": "Short", "data": [{"type": "sponsored", "value": "My Brand"}, {"type": 12, "value": "Read"}]});
    let patched = bidder
        .admin(Method::PATCH, "/admin/api/campaigns/story/creatives/story-1")
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK, "{}", patched.text().await.unwrap());
    let mut request = example_6_3();
    request["assets"] = json!([
        {"id": 1, "required": 1, "title": {"len": 5}},
        {"id": 2, "required": 1, "data": {"type": 12, "len": 15}}
    ]);
    let markup = native_bid(&bidder, &native_request(native(&request)))
        .await
        .expect("a bid");
    assert_eq!(markup["assets"][0]["title"]["text"], "Short");
    assert_eq!(markup["assets"][1]["data"]["value"], "Read");

    // Validated as check-config validates: an image over http is refused.
    let bad = json!({"image": [{"type": "main", "url": "http://cdn.brand.example/a.jpg", "w": 1200, "h": 627}]});
    let refused = bidder
        .admin(Method::PATCH, "/admin/api/campaigns/story/creatives/story-1")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["problems"][0]["field"], "creative[0].image[0].url", "{body}");
    bidder.stop().await;
}

/// The corpus's native requests against the bundled config: each native
/// bid answers its request's assets (validated as above, the whole
/// response against the IAB schema), and exactly these impressions get
/// one. The others have an unreadable native request (006, 009, 039,
/// 054, 074: not JSON or empty; 046: no `request`; 084: required assets
/// without ids), or offer a banner or video on the same impression that a
/// better-paid campaign takes (001, 041, 055).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_native_requests_are_answered_or_declined_as_expected() {
    let bidder = spawn_default_bidder().await;
    let schema = response_validator();
    let mut native_bids = Vec::new();
    for path in corpus_files("requests/prebid") {
        let name = path.file_name().unwrap().to_string_lossy()[..3].to_string();
        let body = std::fs::read(&path).unwrap();
        let request: Value = serde_json::from_slice(&body).unwrap();
        let (status, response) = bidder.bid(body).await;
        assert!(
            matches!(status, StatusCode::OK | StatusCode::NO_CONTENT),
            "{name}: {status}"
        );
        let Some(response) = response else { continue };
        checked(&request, &response, &schema);
        for bid in bids(&response).into_iter().filter(|b| b["mtype"] == 4) {
            native_bids.push(format!("{name} {}", bid["impid"].as_str().unwrap()));
        }
    }
    assert_eq!(
        native_bids,
        [
            "023 id",
            "024 test-imp-id",
            "028 some-impression-id",
            "029 impression-id",
            "030 id",
            "045 test-imp-456",
            "050 imp-id",
            "052 id",
            "056 some-impression-id",
            "064 test-imp-id2",
            "083 id",
            "085 some-impression-id",
            "087 id",
            "091 imp123",
            "109 test-imp-id",
        ]
    );
    bidder.stop().await;
}
