//! Property tests for the money invariants.

mod common;

use bullseye::money::{Currency, FxTable, Micros};
use bullseye::pacing::DailySpend;
use bullseye::pacing::budget::expiry_minute;
use proptest::prelude::*;

proptest! {
    /// Any interleaving of bids (reserve, each with its own notice window),
    /// billing notices (in their window: charge at most the reserved cost
    /// and release; after it: late, not charged) and time passing (expiry)
    /// never lets spend exceed the budget by more than one impression's
    /// price. Late notices are modelled, not assumed away.
    #[test]
    fn spend_never_exceeds_budget_plus_one_price(
        budget in 1_000i64..1_000_000,
        steps in proptest::collection::vec((0u8..5, 1i64..50_000, 0i64..30), 1..400),
    ) {
        let spend = DailySpend::default();
        let budget = Micros(budget);
        // (cost, notice_until in seconds)
        let mut held: Vec<(Micros, i64)> = Vec::new();
        let mut now = 0i64;
        let mut max_price = 0i64;
        for (action, price, pick) in steps {
            match action {
                // A bid wins the auction: reserve for a window of 1 to 30 minutes.
                0 | 1 => {
                    let notice_until = now + 60 * (1 + pick);
                    if spend.try_reserve(0, budget, Micros(price), expiry_minute(notice_until)) {
                        held.push((Micros(price), notice_until));
                        max_price = max_price.max(price);
                    }
                }
                // A billing notice, maybe late: charged at most the reserved
                // price in its window, nothing after it.
                2 | 3 if !held.is_empty() => {
                    let (cost, notice_until) = held.remove(pick as usize % held.len());
                    if now < notice_until {
                        spend.add(0, Micros(cost.0 - pick.min(cost.0)));
                        spend.release(cost, expiry_minute(notice_until), now.div_euclid(60));
                    }
                }
                // Time passes (up to 30 minutes); reservations expire.
                _ => {
                    now += 1 + pick * 60;
                    spend.expire(now.div_euclid(60));
                }
            }
            prop_assert!(spend.spent(0).0 <= budget.0 + max_price, "spent {} of {}", spend.spent(0).0, budget.0);
        }
    }

    /// A CPC click charge `max_cpc × clearing / value` (the bid without a
    /// signed value) never exceeds max CPC, nor what the bid alone charges.
    #[test]
    fn cpc_charge_never_exceeds_max_cpc(
        max_cpc in 1i64..100_000_000,
        bid in 1i64..1_000_000_000,
        clearing in 0i64..2_000_000_000,
        value in proptest::option::of(1i64..2_000_000_000),
    ) {
        let by_bid = bullseye::pacing::cost::cpc_charge(Micros(max_cpc), Micros(clearing), Micros(bid), None);
        prop_assert_eq!(by_bid, Micros(max_cpc).mul_div_floor(clearing.min(bid), bid));
        let charge = bullseye::pacing::cost::cpc_charge(Micros(max_cpc), Micros(clearing), Micros(bid), value.map(Micros));
        prop_assert!(charge.0 <= max_cpc && charge.0 >= 0 && charge <= by_bid);
    }

    /// Decimal money round-trips through text exactly.
    #[test]
    fn money_text_round_trips(micros in 0i64..1_000_000_000_000_000) {
        prop_assert_eq!(Micros::parse_amount(&Micros(micros).to_string()), Ok(Micros(micros)));
        prop_assert_eq!(Micros::from_wire(Micros(micros % 1_000_000_000_000).to_wire()), Some(Micros(micros % 1_000_000_000_000)));
    }

    /// A floor converted into the base currency and a bid converted back are
    /// never below the floor in its own currency.
    #[test]
    fn fx_never_bids_below_a_converted_floor(rate in 1i64..10_000_000, floor in 0i64..100_000_000) {
        let eur = Currency::parse("EUR").unwrap();
        let fx = FxTable::new(Currency::USD, vec![(eur, Micros(rate))]);
        let floor_base = fx.floor_to_base(Micros(floor), eur).unwrap();
        let bid_back = fx.bid_from_base(floor_base, eur).unwrap();
        prop_assert!(bid_back.0 >= floor, "{} < {}", bid_back.0, floor);
    }
}

mod exactly_once {
    use std::sync::Arc;

    use bullseye::ledger::{EventKind, Ledger, read_all};
    use bullseye::live::LiveStates;
    use bullseye::live::World;
    use bullseye::money::Micros;
    use bullseye::pacing::FrequencyStore;
    use bullseye::tracking::notice::Tracker;
    use bullseye::tracking::{BidToken, Event};
    use proptest::prelude::*;

    use super::common::*;

    const CAMPAIGN: &str = r#"
[[campaign]]
id = "c"
advertiser = "A"
pricing = "cpm"
max_bid = "4.00"
daily_budget = "100"
  [[campaign.creative]]
  id = "k"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.example/a.png"
  landing_url = "https://a.example/"
"#;

    fn token(bid: usize, now: i64) -> BidToken {
        BidToken {
            bid_id: format!("bid-{bid}"),
            request_id: "r".into(),
            imp_id: "1".into(),
            campaign: "c".into(),
            creative: "k".into(),
            exchange: "default".into(),
            bid_price: Micros(4_000_000),
            bid_value: Micros(4_000_000),
            currency: "USD".into(),
            issued_at: now,
            user: 7,
            test: false,
            notice_until: now + 900,
            pricing: Some(bullseye::signing::SignedPricing::Cpm),
            place: Default::default(),
            qty_milli: bullseye::signing::QTY_ONE,
            arm: None,
            shading_slice: None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Any order and any number of duplicates of notices, pixels and
        /// clicks: each (bid, event) is recorded once, and each bid is
        /// charged once, at its clearing price.
        #[test]
        fn each_event_counts_once(events in proptest::collection::vec((0usize..5, 0u8..4, 1i64..4_000), 1..60)) {
            let config = write_config(TEST_SETTINGS, CAMPAIGN, "u,a\n");
            let world = World::build(bullseye::config::load(config.path()).unwrap(), &LiveStates::default());
            let data = tempfile::tempdir().unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let now: jiff::Timestamp = "2026-11-24T12:00:00Z".parse().unwrap();
            let (distinct, billed) = runtime.block_on(async {
                let (ledger, _) = Ledger::open(&data.path().join("ledger")).unwrap();
                let tracker = Tracker::new(ledger, Arc::new(FrequencyStore::default()));
                let mut distinct = std::collections::HashSet::new();
                let mut billed = std::collections::HashMap::new();
                for (bid, event, price) in events {
                    let event = [Event::Win, Event::Bill, Event::Impression, Event::Click][event as usize];
                    let url = world.signer.url("http://h", event, &token(bid, now.as_second()).payload());
                    let url = url.replace("${AUCTION_PRICE}", &Micros(price * 1000).to_string());
                    let (path, query) = url.split_once("/t/").unwrap().1.split_once('?').unwrap();
                    let _ = tracker.handle(&world, now, path, query, None).await;
                    distinct.insert((bid, path.to_string()));
                    if event == Event::Bill {
                        billed.entry(bid).or_insert(price);
                    }
                }
                (distinct, billed)
            });
            let records = read_all(&data.path().join("ledger")).unwrap();
            prop_assert_eq!(records.len(), distinct.len());
            let spend: i64 = records.iter().filter(|r| r.event == EventKind::Bill).map(|r| r.charge).sum();
            // A clearing CPM of `price × 1000` micros costs `price` micros
            // per impression; the first billing notice of each bid counts.
            let expected: i64 = billed.values().sum();
            prop_assert_eq!(spend, expected);
            let state = &world.campaign_by_id("c").unwrap().state;
            prop_assert_eq!(state.spend.spent(bullseye::clock::local_day(now, &jiff::tz::TimeZone::UTC)).0, expected);
        }
    }
}

/// The same bound with real threads: bidders reserving, the exchange
/// billing in time or late, and the sweeper expiring, all at once.
#[test]
fn concurrent_bids_notices_and_expiry_stay_within_one_price() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    const PRICE: i64 = 1_000;
    let budget = Micros(200_000);
    let spend = Arc::new(DailySpend::default());
    let clock = Arc::new(AtomicI64::new(0)); // seconds
    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = {
        let (spend, clock, stop) = (spend.clone(), clock.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                spend.expire(clock.load(Ordering::Acquire).div_euclid(60));
                std::thread::yield_now();
            }
        })
    };
    let bidders: Vec<_> = (0..4u64)
        .map(|seed| {
            let (spend, clock) = (spend.clone(), clock.clone());
            std::thread::spawn(move || {
                let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for _ in 0..20_000 {
                    // Each bid moves time on a second; every minute, this
                    // thread sweeps too (alongside the sweeper thread).
                    let now = clock.fetch_add(1, Ordering::AcqRel);
                    if now % 60 == 0 {
                        spend.expire(now.div_euclid(60));
                    }
                    let notice_until = now + 60 * (1 + (next() % 15) as i64);
                    if !spend.try_reserve(0, budget, Micros(PRICE), expiry_minute(notice_until)) {
                        continue;
                    }
                    // Half win; their notice comes a little later, in time
                    // or late.
                    if next() % 2 == 0 {
                        let at = clock.load(Ordering::Acquire) + (next() % 1_200) as i64;
                        if at < notice_until {
                            spend.add(0, Micros(PRICE * 8 / 10));
                            spend.release(Micros(PRICE), expiry_minute(notice_until), at.div_euclid(60));
                        }
                    }
                    assert!(spend.spent(0).0 <= budget.0 + PRICE, "spent {}", spend.spent(0).0);
                }
            })
        })
        .collect();
    for bidder in bidders {
        bidder.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    sweeper.join().unwrap();
    assert!(spend.spent(0).0 <= budget.0 + PRICE, "spent {}", spend.spent(0).0);
    assert!(spend.spent(0).0 > budget.0 / 2, "the test bid enough to matter");
}
