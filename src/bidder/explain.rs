//! Explain: for one bid request, what each campaign would bid on each
//! impression, or which rule excluded it — the bid path run dry.
//!
//! [`explain`] runs the real stages (decode, enrich, select with pricing)
//! in the select stage's dry run (`select::Mode`): every candidate is
//! evaluated (not only up to the winner), the open auction is evaluated
//! even after a deal bid wins, and nothing changes — no budget is reserved, no bid or
//! filtered rule is counted, no index tally or metric moves, no frequency
//! is recorded, and the even-pacing gate draws no random number nor counts
//! an opportunity. Request-level no-bids (traffic screen, currency) come
//! from `enrich` as on the bid path; the deadline (`tmax`) is not applied,
//! nor the per-request share of a budget that several impressions won by
//! one campaign may hold.
//!
//! Output (`serde_json::to_value` of [`Explanation`]):
//!
//! ```json
//! {"cur": "USD",
//!  "imp": [{"impid": "1", "winner": "acme-display",
//!           "campaigns": [{"id": "initech-video", "bid": null, "reason": "creative"},
//!                         {"id": "acme-display", "bid": "2.975", "reason": null, "pacing_throttle": 1.0},
//!                         {"id": "umbrella-cpc", "bid": "2.72", "reason": null}]}]}
//! ```
//!
//! - `campaigns` lists every campaign of the world, in rank order (best
//!   static value first), paused ones and those the index never offered
//!   included.
//! - `bid` is the CPM the campaign would bid, a decimal string in the
//!   response currency (`cur`), or null. A campaign that could bid but is
//!   not the `winner` was outbid: it has a `bid` and a null `reason` — or
//!   the reason `priority` when a higher-priority campaign of its own
//!   advertiser could bid too (it goes first, see `contact::Reps`).
//! - `reason` is the rule's label as in `bullseye_campaign_filtered_total`
//!   ([`FilterReason::as_str`]): a rule of selection (`geo`, `budget`,
//!   `floor`, …) for a campaign that was tried, or the index-level reason
//!   for one that never was (`paused`, `deal` — deals-only and the
//!   impression carries none of its deals, `segment` — the user holds none
//!   of its segments, `creative` — no creative of the impression's sizes or
//!   media, `private_auction`, `floor` — the impression's floor is
//!   unusable). A campaign tried in a deal auction and in the open auction
//!   reports its first bid, or else the reason of the last auction that
//!   tried it. Two labels come from `bullseye_no_bids_total`: `currency`
//!   (the bid is nothing in the response currency) and, for every campaign,
//!   the request-level reason in `no_bid` (`crawler`, `non_human`,
//!   `data_center`, `currency`) when the whole request is refused before
//!   selection; `imps_ignored` marks impressions past
//!   `max_imps_per_request`.
//! - `pacing_throttle` (even pacing, campaigns with a bid) is the
//!   probability that the pacing gate lets the campaign bid now. Such a
//!   campaign counts as a candidate: when the winner's throttle is below 1,
//!   the next campaign with a bid wins the rest of the time.
//! - `arm` (campaigns running an experiment) is the experiment arm the
//!   user is in; a user in the holdout arm gets the reason `holdout` where
//!   the campaign would otherwise have bid.
//! - `winner` is the campaign the bid path would choose, or null.

use serde::Serialize;

use crate::campaigns::PacingMode;
use crate::campaigns::tally::{ImpOutcome, Stop};
use crate::campaigns::targeting::FilterReason;
use crate::live::{LiveCampaign, World};
use crate::money::Micros;
use crate::openrtb::Imp;
use crate::pacing::FrequencyStore;

use super::Bidder;
use super::decode::{self, DecodeError};
use super::enrich::{self, BidCtx};
use super::select::{self, Mode};

/// Why a request cannot be explained; both are a client's mistake (400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExplainError {
    /// The exchange named is not in the settings.
    #[error("unknown exchange {0:?}")]
    UnknownExchange(String),
    /// The body is not a usable bid request.
    #[error(transparent)]
    Invalid(#[from] DecodeError),
}

/// What the bid path would do with one bid request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The response currency of the bids; absent when no currency of the
    /// request can be priced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cur: Option<String>,
    /// Why the whole request gets no bid before selection (a reason of
    /// `bullseye_no_bids_total`); absent when it reaches selection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_bid: Option<&'static str>,
    /// One entry per impression, in request order.
    pub imp: Vec<ImpExplanation>,
}

/// One impression's verdicts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImpExplanation {
    /// The impression's id.
    pub impid: String,
    /// The campaign that would bid, if any.
    pub winner: Option<String>,
    /// Every campaign of the world, in rank order.
    pub campaigns: Vec<CampaignVerdict>,
}

/// One campaign's verdict on one impression.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignVerdict {
    /// The campaign id.
    pub id: String,
    /// Its bid (CPM, response currency, decimal string), if it could bid.
    pub bid: Option<String>,
    /// Why it could not bid, if it could not.
    pub reason: Option<&'static str>,
    /// The pacing gate's probability of letting it bid (even pacing, with a bid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing_throttle: Option<f64>,
    /// The arm of the campaign's experiment the user is in (with the
    /// reason `holdout` when it is the holdout arm); absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
}

/// The label for impressions past `max_imps_per_request` (as the metric
/// `bullseye_imps_ignored_total`).
const IMPS_IGNORED: &str = "imps_ignored";

/// The label of a campaign that could bid but yields to a higher-priority
/// campaign of its own advertiser (it keeps its `bid`).
const PRIORITY: &str = "priority";

/// Explains one bid request for `exchange` (`None`: the default exchange),
/// as the bid path would answer it now. Changes nothing.
pub fn explain(bidder: &Bidder, exchange: Option<&str>, body: &[u8]) -> Result<Explanation, ExplainError> {
    let world = bidder.world.load();
    let exchange_id = match exchange {
        None => world.default_exchange,
        Some(name) => world
            .settings
            .exchange_id(name)
            .ok_or_else(|| ExplainError::UnknownExchange(name.to_string()))?,
    };
    let mut repaired = String::new();
    let request = decode::decode(body, &mut repaired)?.request;
    let snapshot = bidder.audience.load();
    let audience = enrich::Audience {
        snapshot: &snapshot,
        overlay: &bidder.audience.overlay,
        matches: &bidder.audience.matches,
    };
    let mut ctx = match enrich::enrich(&request, &world, exchange_id, audience, bidder.clock.now()) {
        Ok(ctx) => ctx,
        Err(reason) => {
            let currency = world.settings.exchange_at(exchange_id).currency;
            return Ok(Explanation {
                cur: (reason != crate::metrics::NoBidReason::Currency).then(|| currency.as_str().to_string()),
                no_bid: Some(reason.as_str()),
                imp: request
                    .imp
                    .iter()
                    .map(|imp| everyone(&world, imp, reason.as_str()))
                    .collect(),
            });
        }
    };
    ctx.predictor = bidder.predictor_for(&world);
    ctx.shading = bidder.shading_for(&world);
    let max_imps = world.settings.max_imps_per_request;
    let mut scratch = select::Scratch::default();
    let imp = request
        .imp
        .iter()
        .enumerate()
        .map(|(i, imp)| match i < max_imps {
            true => explain_imp(&ctx, &world, imp, &bidder.frequency, &mut scratch),
            false => everyone(&world, imp, IMPS_IGNORED),
        })
        .collect();
    Ok(Explanation {
        cur: Some(ctx.currency.as_str().to_string()),
        no_bid: None,
        imp,
    })
}

/// An impression no campaign may bid on, for `reason`.
fn everyone(world: &World, imp: &Imp, reason: &'static str) -> ImpExplanation {
    ImpExplanation {
        impid: imp.id.as_deref().unwrap_or_default().to_string(),
        winner: None,
        campaigns: world
            .campaigns
            .iter()
            .map(|c| CampaignVerdict {
                id: c.campaign.id.clone(),
                bid: None,
                reason: Some(reason),
                pacing_throttle: None,
                arm: None,
            })
            .collect(),
    }
}

/// What the dry run learnt of one campaign.
#[derive(Clone, Copy, Debug, Default)]
struct Verdict {
    /// Its first eligible price (base currency).
    bid: Option<Micros>,
    /// The last rule that stopped it, while it had no bid.
    reason: Option<FilterReason>,
    /// The experiment arm it put the user in.
    arm: Option<usize>,
}

/// The dry run: notes every verdict, counts nothing, never draws.
struct Explaining {
    verdicts: Vec<Verdict>,
    stop: Stop,
}

impl Mode for Explaining {
    const DRY_RUN: bool = true;

    /// Admitted: the throttle is reported as a probability instead.
    fn admit(&mut self, _c: &LiveCampaign, _local_hour: usize) -> bool {
        true
    }

    fn filtered(&mut self, rank: u32, _c: &LiveCampaign, reason: FilterReason) {
        let verdict = &mut self.verdicts[rank as usize];
        if verdict.bid.is_none() {
            verdict.reason = Some(reason);
        }
    }

    fn eligible(&mut self, rank: u32, price: Micros) {
        let verdict = &mut self.verdicts[rank as usize];
        if verdict.bid.is_none() {
            (verdict.bid, verdict.reason) = (Some(price), None);
        }
    }

    fn ended(&mut self, _world: &World, outcome: ImpOutcome<'_>) {
        self.stop = match outcome {
            ImpOutcome::Stopped(stop) => stop,
            ImpOutcome::Open { .. } => Stop::Open,
        };
    }

    /// No draw, a fixed number: `even` and `weighted` rotation show the
    /// first creative that fits, `optimise` a draw from a fixed seed, and
    /// a user without an id drawn per request is shown in the first arm.
    fn random(&mut self) -> u64 {
        0
    }

    fn assigned(&mut self, rank: u32, arm: usize) {
        self.verdicts[rank as usize].arm = Some(arm);
    }
}

fn explain_imp<'a>(
    ctx: &BidCtx<'a>,
    world: &World,
    imp: &'a Imp<'a>,
    frequency: &FrequencyStore,
    scratch: &mut select::Scratch,
) -> ImpExplanation {
    let mut run = Explaining {
        verdicts: vec![Verdict::default(); world.campaigns.len()],
        stop: Stop::Open,
    };
    let choice = select::select_with(ctx, world, imp, frequency, scratch, &mut run).ok();
    if let Some(choice) = &choice {
        // Its price in the auction it wins (a campaign in two deals may
        // have bid less in the first).
        run.verdicts[choice.rank as usize].bid = Some(choice.price);
    }
    let in_currency = |price: Micros| world.settings.fx.bid_from_base(price, ctx.currency).filter(|p| p.0 > 0);
    let could_bid: Vec<bool> = run.verdicts.iter().map(|v| v.bid.is_some()).collect();
    let outranked = super::contact::outranked_by_priority(world, &could_bid);
    let campaigns = world
        .campaigns
        .iter()
        .zip(&run.verdicts)
        .enumerate()
        .map(|(rank, (c, verdict))| {
            let bid = verdict.bid.map(in_currency);
            let reason = match (bid, verdict.reason) {
                (Some(Some(_)), _) if outranked[rank] => Some(PRIORITY),
                (Some(Some(_)), _) => None,
                (Some(None), _) => Some(crate::metrics::NoBidReason::Currency.as_str()),
                (None, Some(reason)) => Some(reason.as_str()),
                (None, None) => Some(world.entry(rank as u32).not_offered(run.stop).as_str()),
            };
            let bid = bid.flatten();
            CampaignVerdict {
                id: c.campaign.id.clone(),
                bid: bid.map(|p| p.to_string()),
                reason,
                pacing_throttle: (bid.is_some() && c.campaign.pacing == PacingMode::Even)
                    .then(|| c.state.pacer.view().throttle),
                arm: c
                    .campaign
                    .experiment
                    .as_deref()
                    .zip(verdict.arm)
                    .and_then(|(x, arm)| x.arms.get(arm))
                    .map(|arm| arm.name.clone()),
            }
        })
        .collect();
    let winner = choice
        .filter(|choice| in_currency(choice.price).is_some())
        .map(|choice| world.campaign(choice.rank).campaign.id.clone());
    ImpExplanation {
        impid: imp.id.as_deref().unwrap_or_default().to_string(),
        winner,
        campaigns,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Instant;

    use arc_swap::ArcSwap;

    use super::*;
    use crate::audience::AudienceStore;
    use crate::bidder::Outcome;
    use crate::clock::ManualClock;
    use crate::config::{Env, from_texts_with};
    use crate::live::LiveStates;
    use crate::metrics::Metrics;

    const SETTINGS: &str = r#"
[bidding]
first_price_shading = "0.80"
[secrets]
signing_key = "test-signing-key-0123456789abcdefghijkl"
[[exchange]]
name = "default"
seat = "ourseat"
[[advertiser]]
id = "A"
"#;

    /// A CPM campaign bidding `max_bid` with one banner creative of `size`;
    /// `more` adds keys and tables after it.
    fn campaign(id: &str, max_bid: &str, size: (u32, u32), more: &str) -> String {
        let (w, h) = size;
        format!(
            r#"
[[campaign]]
id = "{id}"
advertiser = "A"
adomain = ["{id}.example"]
pricing = "cpm"
max_bid = "{max_bid}"
daily_budget = "1000"
{more}
[[campaign.creative]]
id = "{id}-{w}x{h}"
format = "banner"
w = {w}
h = {h}
image_url = "https://ads.example/{id}.png"
landing_url = "https://{id}.example/"
"#
        )
    }

    /// A bidder over these campaigns at a fixed time, and their live states.
    fn bidder(campaigns: &[String]) -> (Bidder, LiveStates) {
        let files = [("test.toml".into(), campaigns.concat())];
        let config =
            from_texts_with(Path::new("cfg"), SETTINGS, &files, &Env::default()).unwrap_or_else(|e| panic!("{e}"));
        let live = LiveStates::default();
        let world = Arc::new(ArcSwap::from_pointee(World::build(config, &live)));
        let bidder = Bidder {
            metrics: Arc::new(Metrics::new(Box::new(world.clone()))),
            world,
            audience: Arc::new(AudienceStore::open(None).unwrap()),
            frequency: Arc::new(FrequencyStore::default()),
            clock: Arc::new(ManualClock::new("2025-06-02T12:00:00Z".parse().unwrap())),
            listen_url: "http://127.0.0.1:8080".into(),
            node_tag: None,
            predictor: None,
            shading: Default::default(),
        };
        (bidder, live)
    }

    /// One 300×250 banner impression (and `imp_extra`) from the USA.
    fn request(imp_extra: &str) -> String {
        format!(
            r#"{{"id": "r1", "imp": [{{"id": "1", "banner": {{"w": 300, "h": 250}} {imp_extra}}}],
              "site": {{"domain": "news.example"}},
              "device": {{"ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ip": "203.0.113.7", "geo": {{"country": "USA"}}}},
              "user": {{"buyeruid": "u1"}}}}"#
        )
    }

    /// A campaign's id, bid and reason.
    type Row<'e> = (&'e str, Option<&'e str>, Option<&'e str>);

    /// Each campaign's row on the only impression, and the winner.
    fn verdicts(explanation: &Explanation) -> (Option<&str>, Vec<Row<'_>>) {
        let [imp] = explanation.imp.as_slice() else {
            panic!("one impression: {explanation:?}")
        };
        let campaigns = imp
            .campaigns
            .iter()
            .map(|c| (c.id.as_str(), c.bid.as_deref(), c.reason))
            .collect();
        (imp.winner.as_deref(), campaigns)
    }

    fn world() -> Vec<String> {
        vec![
            campaign(
                "uk-only",
                "9.00",
                (300, 250),
                "[campaign.targeting]\ncountries = [\"GBR\"]\n",
            ),
            campaign("paused", "8.00", (300, 250), "status = \"paused\"\n"),
            campaign("leaderboard", "7.00", (728, 90), ""),
            campaign(
                "fans",
                "6.00",
                (300, 250),
                "[campaign.targeting.segments]\nany = [\"interest/x\"]\n",
            ),
            campaign(
                "pmp",
                "5.00",
                (300, 250),
                "[campaign.targeting]\ndeals = [\"D1\"]\ndeals_only = true\n",
            ),
            campaign("best", "2.00", (300, 250), ""),
            campaign("runner-up", "1.50", (300, 250), ""),
            campaign("cheap", "1.00", (300, 250), ""),
        ]
    }

    #[test]
    fn every_campaign_gets_a_bid_or_the_rule_that_excluded_it() {
        let (bidder, _) = bidder(&world());
        let explanation = explain(&bidder, None, request(r#", "bidfloor": 1.2"#).as_bytes()).unwrap();
        assert_eq!(explanation.cur.as_deref(), Some("USD"));
        assert_eq!(
            verdicts(&explanation),
            (
                Some("best"),
                vec![
                    ("uk-only", None, Some("geo")),
                    ("paused", None, Some("paused")),
                    ("leaderboard", None, Some("creative")),
                    ("fans", None, Some("segment")),
                    ("pmp", None, Some("deal")),
                    ("best", Some("2"), None),
                    ("runner-up", Some("1.5"), None),
                    ("cheap", None, Some("floor")),
                ]
            )
        );
    }

    #[test]
    fn a_deal_wins_and_the_open_auction_is_still_explained() {
        let (bidder, _) = bidder(&world());
        let body = request(r#", "pmp": {"deals": [{"id": "D1", "bidfloor": 4.0}]}"#);
        let in_deal = explain(&bidder, None, body.as_bytes()).unwrap();
        let (winner, campaigns) = verdicts(&in_deal);
        assert_eq!(winner, Some("pmp"));
        assert_eq!(campaigns[4], ("pmp", Some("5"), None));
        assert_eq!(campaigns[5], ("best", Some("2"), None), "outbid by the deal");
        let private = request(r#", "pmp": {"private_auction": 1, "deals": [{"id": "D1", "bidfloor": 6.0}]}"#);
        let private = explain(&bidder, None, private.as_bytes()).unwrap();
        let (winner, campaigns) = verdicts(&private);
        assert_eq!(winner, None);
        assert_eq!(campaigns[4], ("pmp", None, Some("floor")), "tried in its deal");
        assert_eq!(campaigns[5], ("best", None, Some("private_auction")));
        assert_eq!(campaigns[1], ("paused", None, Some("paused")));
    }

    #[test]
    fn pacing_is_reported_as_the_throttle_without_a_draw() {
        let (bidder, _) = bidder(&[campaign("even", "2.00", (300, 250), "pacing = \"even\"\n")]);
        let world = bidder.world.load();
        let state = &world.campaigns[0].state;
        // Far ahead of a target of nothing: the throttle falls to 0.8.
        state
            .pacer
            .control(Micros(500_000_000), Micros(1_000_000_000), (1, 0), false);
        for _ in 0..50 {
            let explanation = explain(&bidder, None, request("").as_bytes()).unwrap();
            let verdict = &explanation.imp[0].campaigns[0];
            assert_eq!(explanation.imp[0].winner.as_deref(), Some("even"));
            assert_eq!(
                (verdict.bid.as_deref(), verdict.pacing_throttle),
                (Some("2"), Some(0.8))
            );
        }
        assert_eq!(state.pacer.opportunities_today(), 0, "no opportunity counted");
    }

    #[test]
    fn bad_requests_are_errors() {
        let (bidder, _) = bidder(&world());
        assert!(matches!(
            explain(&bidder, None, b"{\"id\": \"r\"}"),
            Err(ExplainError::Invalid(DecodeError::NoImpressions))
        ));
        assert_eq!(
            explain(&bidder, Some("nowhere"), request("").as_bytes()),
            Err(ExplainError::UnknownExchange("nowhere".into()))
        );
    }

    #[test]
    fn index_level_reasons_are_counted_per_campaign_and_survive_a_new_index() {
        let (bidder, live) = bidder(&world());
        let body = request(r#", "bidfloor": 1.2"#);
        for _ in 0..3 {
            assert!(matches!(
                bidder.bid(None, body.as_bytes(), Instant::now()),
                Outcome::Bid { .. }
            ));
        }
        let private = request(r#", "pmp": {"private_auction": 1, "deals": [{"id": "D2"}]}"#);
        assert!(matches!(
            bidder.bid(None, private.as_bytes(), Instant::now()),
            Outcome::NoBid(_)
        ));
        let expected: [(&str, &[(&str, u64)]); 8] = [
            ("uk-only", &[("geo", 3), ("private_auction", 1)]),
            ("paused", &[("paused", 4)]),
            ("leaderboard", &[("creative", 3), ("private_auction", 1)]),
            ("fans", &[("segment", 3), ("private_auction", 1)]),
            ("pmp", &[("deal", 3)]),
            ("best", &[("private_auction", 1)]),
            ("runner-up", &[("private_auction", 1)]),
            ("cheap", &[("private_auction", 1)]),
        ];
        let check = |world: &World| {
            for (id, counts) in expected {
                assert_eq!(world.why_not_bidding(id).unwrap(), counts, "{id}");
            }
        };
        check(&bidder.world.load());
        let metrics = bidder.metrics.render();
        assert!(
            metrics.contains("bullseye_campaign_filtered_total{campaign=\"leaderboard\",reason=\"creative\"} 3\n"),
            "{metrics}"
        );
        // A new index (a reload): the old one's counts move to the live state.
        let files = [("test.toml".into(), world().concat())];
        let config = from_texts_with(Path::new("cfg"), SETTINGS, &files, &Env::default()).unwrap();
        bidder.world.store(Arc::new(World::build(config, &live)));
        check(&bidder.world.load());
    }
}
