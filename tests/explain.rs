//! Explain against the bundled campaigns and the corpus: the verdicts for
//! known requests, the same winners as the bid path, no side effects, and
//! the index-level "why not bidding" counts after real bids.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bullseye::bidder::explain::{Explanation, explain};
use bullseye::bidder::{Bidder, Outcome};
use bullseye::clock::ManualClock;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled campaigns at a fixed time (a Monday afternoon UTC).
fn bidder() -> Bidder {
    let clock = Arc::new(ManualClock::new("2025-06-02T15:00:00Z".parse().unwrap()));
    Bidder::from_config_dir(&root().join("bidder-config"), clock).expect("bundled config loads")
}

fn corpus(name: &str) -> Vec<u8> {
    let path = root().join("../shared/corpus/requests").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every request of the corpus, by name.
fn all_requests() -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    for dir in ["iab", "prebid"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("../shared/corpus/requests").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        all.extend(
            files
                .into_iter()
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap())),
        );
    }
    all
}

fn json(explanation: &Explanation) -> Value {
    serde_json::to_value(explanation).unwrap()
}

/// One campaign's verdict on the first impression.
fn verdict<'v>(explanation: &'v Value, campaign: &str) -> &'v Value {
    explanation["imp"][0]["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == campaign)
        .unwrap_or_else(|| panic!("{campaign} missing from {explanation}"))
}

#[test]
fn the_spec_banner_goes_to_the_finance_campaign_for_a_finance_user() {
    let explanation = json(&explain(&bidder(), None, &corpus("iab/simple-banner.json")).unwrap());
    let imp = &explanation["imp"][0];
    assert_eq!(imp["impid"], "1");
    assert_eq!(imp["winner"], "globex-finance");
    assert_eq!(imp["campaigns"].as_array().unwrap().len(), 8, "every campaign");
    // First price: 8.00 shaded by 0.85.
    assert_eq!(
        verdict(&explanation, "globex-finance"),
        &json!({"id": "globex-finance", "bid": "6.8", "reason": null, "pacing_throttle": 1.0})
    );
    assert_eq!(verdict(&explanation, "acme-display")["bid"], "2.975", "outbid");
    assert_eq!(verdict(&explanation, "acme-display")["reason"], Value::Null);
    assert_eq!(verdict(&explanation, "stark-nyc")["reason"], "geo", "no location");
    assert_eq!(
        verdict(&explanation, "initech-video")["reason"],
        "creative",
        "never offered"
    );
    assert_eq!(verdict(&explanation, "vandelay-pmp")["reason"], "deal", "deals only");
    assert_eq!(verdict(&explanation, "stark-nyc")["bid"], Value::Null);
}

#[test]
fn the_spec_private_deal_goes_to_the_deal_campaign_only() {
    let explanation = json(&explain(&bidder(), None, &corpus("iab/pmp-direct-deal.json")).unwrap());
    assert_eq!(explanation["imp"][0]["winner"], "vandelay-pmp");
    assert_eq!(verdict(&explanation, "vandelay-pmp")["bid"], "4.25");
    for other in ["acme-display", "globex-finance", "initech-video"] {
        assert_eq!(verdict(&explanation, other)["reason"], "private_auction", "{other}");
    }
}

#[test]
fn explain_names_the_winners_the_bid_path_chooses() {
    for (name, body) in all_requests() {
        let bidder = bidder();
        let explanation = explain(&bidder, None, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut explained: Vec<(String, String)> = explanation
            .imp
            .iter()
            .filter_map(|imp| Some((imp.impid.clone(), imp.winner.clone()?)))
            .collect();
        for imp in &explanation.imp {
            assert_eq!(imp.campaigns.len(), 8, "{name}: every campaign");
            for c in &imp.campaigns {
                assert!(c.bid.is_some() != c.reason.is_some(), "{name}: {c:?}");
            }
        }
        let mut bid: Vec<(String, String)> = match bidder.bid(None, &body, Instant::now()) {
            Outcome::Bid { body, .. } => {
                let response: Value = serde_json::from_slice(&body).unwrap();
                response["seatbid"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|s| s["bid"].as_array().unwrap().clone())
                    .map(|b| (b["impid"].as_str().unwrap().into(), b["cid"].as_str().unwrap().into()))
                    .collect()
            }
            _ => Vec::new(),
        };
        explained.sort();
        bid.sort();
        assert_eq!(explained, bid, "{name}");
    }
}

/// Everything explain must leave alone, as one comparable value.
fn observable(bidder: &Bidder) -> (String, Vec<String>, usize) {
    let world = bidder.world.load();
    let now = bidder.clock.now();
    let campaigns = world
        .campaigns
        .iter()
        .map(|c| {
            let today = bullseye::clock::local_day(now, &c.campaign.time_zone);
            format!(
                "{} spent={} outstanding={} bids={} pacing={:?} opportunities={} why={:?}",
                c.campaign.id,
                c.state.spend.spent(today),
                c.state.spend.outstanding(),
                c.state.bids.load(std::sync::atomic::Ordering::Relaxed),
                c.state.pacer.view(),
                c.state.pacer.opportunities_today(),
                world.why_not_bidding(&c.campaign.id),
            )
        })
        .collect();
    (bidder.metrics.render(), campaigns, bidder.frequency.len())
}

#[test]
fn explain_has_no_side_effects() {
    let bidder = bidder();
    let requests = all_requests();
    // Some history first: bids, reservations, filtered counts, a frequency count.
    for (_, body) in &requests {
        bidder.bid(None, body, Instant::now());
    }
    let world = bidder.world.load();
    let globex = world.campaign_by_id("globex-finance").unwrap();
    let user = bullseye::audience::user_key("55816b39711f9b5acf3b90e313ed29e51665623f");
    bidder.frequency.record(user, globex.key, bidder.clock.now());
    let before = observable(&bidder);
    assert!(before.0.contains("bullseye_campaign_filtered_total"), "{}", before.0);
    for (name, body) in &requests {
        explain(&bidder, None, body).unwrap_or_else(|e| panic!("{name}: {e}"));
        explain(&bidder, Some("examplex"), body).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let after = observable(&bidder);
    assert_eq!(before.0, after.0, "metrics text");
    assert_eq!(before.1, after.1, "campaign state");
    assert_eq!(before.2, after.2, "frequency store");
}

#[test]
fn invalid_requests_are_refused() {
    let bidder = bidder();
    assert!(explain(&bidder, None, b"{").is_err());
    assert!(explain(&bidder, None, br#"{"id": "r", "imp": []}"#).is_err());
    assert!(explain(&bidder, Some("nowhere"), &corpus("iab/simple-banner.json")).is_err());
}

#[test]
fn index_level_reasons_show_up_per_campaign_after_real_bids() {
    let bidder = bidder();
    let body = corpus("iab/simple-banner.json");
    for _ in 0..5 {
        assert!(matches!(bidder.bid(None, &body, Instant::now()), Outcome::Bid { .. }));
    }
    let world = bidder.world.load();
    for (campaign, reason) in [
        ("initech-video", "creative"),
        ("wayne-audio", "creative"),
        ("hooli-native", "creative"),
        ("vandelay-pmp", "deal"),
    ] {
        assert_eq!(world.why_not_bidding(campaign).unwrap(), [(reason, 5)], "{campaign}");
    }
    // The winner ranks before every other open campaign: none was tried.
    assert_eq!(world.why_not_bidding("acme-display").unwrap(), []);
    let metrics = bidder.metrics.render();
    assert!(
        metrics.contains("bullseye_campaign_filtered_total{campaign=\"vandelay-pmp\",reason=\"deal\"} 5\n"),
        "{metrics}"
    );
    assert!(world.why_not_bidding("no-such-campaign").is_none());
}
