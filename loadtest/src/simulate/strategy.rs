//! One strategy's run: the library on a simulated clock, the market's
//! requests, auctions and the tracking events they cause, in time order.

use anyhow::Context;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bullseye::app::{App, AppOptions};
use bullseye::clock::{Clock, ManualClock};
use bullseye::outcome::Predictor;
use bullseye::tracking::notice::TrackingReply;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::SimArgs;
use super::config::{Configured, POSTBACK_SECRET, flat, settings, write_config};
use super::diagnose::{Diagnosis, EXPLAIN_EVERY, Seen};
use super::figures::{CampaignFigures, figures};
use super::market::{self, Market};
use super::oracle::Oracle;

/// A tracking event due at a simulated time (`order` breaks ties).
#[derive(Debug)]
pub struct Due {
    pub at: i64,
    pub order: u64,
    pub event: Event,
}

#[derive(Debug)]
pub enum Event {
    /// A click, and the draws of its conversion.
    Click {
        url: String,
        campaign: usize,
        user: usize,
        conversion: f64,
        order: f64,
    },
    /// A conversion postback for the click id `click`.
    Conversion { click: String, value_cents: i64 },
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Earliest first (BinaryHeap is a max-heap).
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One strategy's run.
pub struct Run<'a> {
    pub args: &'a SimArgs,
    pub strategy: &'a str,
    pub first_price: bool,
    pub market: Arc<Market>,
    pub configured: &'a [Configured],
    pub campaigns_text: &'a str,
    pub snapshot: &'a Path,
    pub dir: PathBuf,
}

/// The first second of the simulation: a Monday, midnight UTC.
pub const START: i64 = 1_767_571_200;

impl Run<'_> {
    pub fn go(self) -> anyhow::Result<Vec<CampaignFigures>> {
        let (prediction, shading) = match self.strategy {
            "flat" | "per_campaign" => ("campaign", "fixed"),
            "fixed_shading" => ("impression", "fixed"),
            _ => ("impression", "learned"),
        };
        let campaigns = match self.strategy {
            "flat" => flat(self.campaigns_text)?,
            _ => self.campaigns_text.to_string(),
        };
        let config = self.dir.join("config");
        let advertisers: Vec<String> = {
            let mut a: Vec<String> = self.configured.iter().map(|c| c.advertiser.clone()).collect();
            a.sort();
            a.dedup();
            a
        };
        write_config(
            &config,
            &settings(prediction, shading, &advertisers, &config, Some(self.snapshot)),
            &campaigns,
        )?;
        let clock = Arc::new(ManualClock::new(jiff::Timestamp::from_second(START)?));
        let predictor: Option<Arc<dyn Predictor>> = (self.strategy == "oracle").then(|| self.oracle());
        let app = App::build(AppOptions {
            config_dir: config,
            data_dir: self.dir.join("data"),
            segments: None,
            clock: clock.clone(),
            listen_url: "http://sim".into(),
            cluster: None,
            predictor,
            simulation: true,
            ledger_storage: None,
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut state = Sim {
            app: &app,
            clock: &clock,
            market: &self.market,
            rng: rand::rngs::StdRng::seed_from_u64(self.args.seed ^ 0x5EED),
            due: BinaryHeap::new(),
            order: 0,
            first_price: self.first_price,
            ids: self
                .configured
                .iter()
                .enumerate()
                .map(|(i, c)| (c.id.clone(), i))
                .collect(),
            bids: vec![[0; 2]; self.configured.len()],
            measuring: false,
            last_tick: START,
            runtime: &runtime,
            learns: matches!(self.strategy, "fixed_shading" | "bullseye"),
            diagnosis: self
                .args
                .diagnose
                .then(|| Diagnosis::new(self.configured.iter().map(|c| c.id.clone()).collect())),
            bids_log: match &self.args.bids_log {
                Some(dir) => {
                    std::fs::create_dir_all(dir)?;
                    let path = dir.join(format!("{}.csv", self.strategy));
                    let mut log = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    writeln!(log, "campaign,site,hour,to_beat,bid,won")?;
                    Some(log)
                }
                None => None,
            },
            bids_log_error: None,
        };
        bullseye::bidder::seed_thread(self.args.seed);
        let total_hours = self.args.warmup_hours + self.args.hours;
        for hour in 0..total_hours {
            state.measuring = hour >= self.args.warmup_hours;
            let requests =
                (self.args.requests_per_hour as f64 * 24.0 * self.market.traffic[hour as usize % 24]) as usize;
            state.hour(hour, requests.max(1));
            if (hour + 1) % 12 == 0 {
                eprintln!("{}: {} of {total_hours} hours", self.strategy, hour + 1);
            }
        }
        if let Some(e) = state.bids_log_error.take() {
            return Err(e).context("writing the bids log");
        }
        if let Some(mut log) = state.bids_log.take() {
            log.flush().context("writing the bids log")?;
        }
        app.learn_now();
        if let Some(diagnosis) = &state.diagnosis {
            diagnosis.print(self.strategy, &app);
        }
        let measured_from = START + i64::from(self.args.warmup_hours) * 3600;
        figures(
            self.dir.join("data/ledger").as_path(),
            self.configured,
            &state.bids,
            measured_from,
            self.args,
            &self.market,
        )
    }

    fn oracle(&self) -> Arc<dyn Predictor> {
        let ids: Vec<&str> = self.configured.iter().map(|c| c.id.as_str()).collect();
        Arc::new(Oracle::new(self.market.clone(), &ids))
    }
}

/// A strategy's running state.
pub struct Sim<'a> {
    pub app: &'a App,
    pub clock: &'a ManualClock,
    pub market: &'a Market,
    pub rng: rand::rngs::StdRng,
    pub due: BinaryHeap<Due>,
    pub order: u64,
    pub first_price: bool,
    pub ids: HashMap<String, usize>,
    /// Per campaign, bids and wins while measuring.
    pub bids: Vec<[u64; 2]>,
    pub measuring: bool,
    pub last_tick: i64,
    pub runtime: &'a tokio::runtime::Runtime,
    /// The strategy predicts with the learned model: publish it as time
    /// passes (the others never read it).
    pub learns: bool,
    /// `--diagnose`: the dry runs' tallies.
    pub diagnosis: Option<Diagnosis>,
    /// `--bids-log`: every measured bid, as CSV, and the first error
    /// writing it (the run then fails rather than leave a short log).
    pub bids_log: Option<std::io::BufWriter<std::fs::File>>,
    pub bids_log_error: Option<std::io::Error>,
}

/// Simulated seconds between the learner's publications: production's
/// five seconds see thousands of requests, five simulated minutes about a
/// thousand at the default traffic.
pub const LEARN_EVERY: i64 = 300;

impl Sim<'_> {
    fn hour(&mut self, hour: u32, requests: usize) {
        let start = START + i64::from(hour) * 3600;
        for i in 0..requests {
            let at_micros = start * 1_000_000 + (i as i64 * 3_600_000_000) / requests as i64;
            self.advance_to(at_micros);
            self.request(hour as usize % 24);
        }
        self.advance_to((start + 3600) * 1_000_000);
    }

    /// Moves the clock, running the tick of every second passed, the
    /// learner's publications and the tracking events due.
    fn advance_to(&mut self, at_micros: i64) {
        while let Some(due) = self.due.peek() {
            if due.at * 1_000_000 > at_micros {
                break;
            }
            let due = self.due.pop().expect("peeked");
            self.set_clock(due.at * 1_000_000);
            self.fire(due.event);
        }
        self.set_clock(at_micros);
    }

    fn set_clock(&mut self, at_micros: i64) {
        let second = at_micros.div_euclid(1_000_000);
        while self.last_tick < second {
            self.last_tick += 1;
            self.clock
                .set(jiff::Timestamp::from_second(self.last_tick).expect("in range"));
            self.app.tick((self.last_tick - START) as u64);
            if self.learns && self.last_tick % LEARN_EVERY == 0 {
                self.app.learn_now();
            }
        }
        self.clock.set(
            jiff::Timestamp::from_microsecond(at_micros.max(self.clock.now().as_microsecond())).expect("in range"),
        );
    }

    fn request(&mut self, hour: usize) {
        // Every request makes the same draws whatever the strategy does
        // with it (common random numbers): every strategy sees the same
        // users, sites, competing bids and click and conversion draws.
        let user = self.rng.random_range(0..self.market.users.len());
        let site = self.market.site(&mut self.rng);
        let first = self.market.competition(site, hour, &mut self.rng);
        let device = self.rng.random_range(1..=4u8);
        let (click_draw, conversion_draw): (f64, f64) = (self.rng.random(), self.rng.random());
        let order_draw = market::normal(&mut self.rng);
        // The floor as the request carries it (to the micro), so that a bid
        // at the floor wins as the exchange would have it.
        let floor = (self.market.sites[site].floor * 1e6).round() / 1e6;
        let request = json!({
            "id": format!("r{}", self.order),
            "at": if self.first_price { 1 } else { 2 },
            "tmax": 1000,
            "imp": [{"id": "1", "bidfloor": floor, "banner": {"w": 300, "h": 250}}],
            "site": {"id": format!("s{site}"), "domain": self.market.sites[site].domain},
            "device": {"ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ip": format!("203.0.{}.{}", user % 250, user / 250 % 250), "devicetype": device, "geo": {"country": "USA"}},
            "user": {"buyeruid": format!("u{user}")}
        });
        self.order += 1;
        let body = serde_json::to_vec(&request).expect("JSON");
        if self.measuring
            && self.order.is_multiple_of(EXPLAIN_EVERY)
            && let Some(diagnosis) = &mut self.diagnosis
        {
            diagnosis.explain(self.app, self.market, &body, &Seen { user, site, hour });
        }
        let outcome = self.app.bidder.bid(None, &body, Instant::now());
        let bullseye::bidder::Outcome::Bid { body, .. } = outcome else {
            return;
        };
        let response: Value = serde_json::from_slice(&body).expect("our own JSON");
        let bid = &response["seatbid"][0]["bid"][0];
        let price = bid["price"].as_f64().unwrap_or(0.0);
        let Some(&campaign) = bid["cid"].as_str().and_then(|id| self.ids.get(id)) else {
            return;
        };
        if self.measuring {
            self.bids[campaign][0] += 1;
        }
        let won = price > first && price >= floor;
        if self.measuring
            && let Some(log) = &mut self.bids_log
        {
            let id = bid["cid"].as_str().unwrap_or_default();
            let to_beat = first.max(floor);
            if let Err(e) = writeln!(log, "{id},{site},{hour},{to_beat:.6},{price:.6},{}", u8::from(won)) {
                self.bids_log_error.get_or_insert(e);
            }
        }
        if !won {
            if let Some(lurl) = bid["lurl"].as_str() {
                let min_to_win = format!("{:.6}", first.max(floor) + 0.000_001);
                let url = lurl
                    .replace("${AUCTION_MIN_TO_WIN}", &min_to_win)
                    .replace("${AUCTION_LOSS}", "102");
                self.track(&url);
            }
            return;
        }
        if self.measuring {
            self.bids[campaign][1] += 1;
        }
        // Second price: the highest other bid (or the floor) sets the price.
        let clearing = if self.first_price { price } else { first.max(floor) };
        let burl = bid["burl"].as_str().unwrap_or_default();
        self.track(&burl.replace("${AUCTION_PRICE}", &format!("{clearing:.6}")));
        let adm = bid["adm"].as_str().unwrap_or_default();
        if let Some(pixel) = url_in(adm, "/t/imp?") {
            self.track(&pixel);
        }
        if click_draw < self.market.ctr(user, campaign, site, hour)
            && let Some(click) = url_in(adm, "/t/click?")
        {
            let at = self.clock.now().as_second() + 10;
            let event = Event::Click {
                url: click,
                campaign,
                user,
                conversion: conversion_draw,
                order: order_draw,
            };
            self.schedule(at, event);
        }
    }

    fn schedule(&mut self, at: i64, event: Event) {
        self.order += 1;
        self.due.push(Due {
            at,
            order: self.order,
            event,
        });
    }

    fn fire(&mut self, event: Event) {
        match event {
            Event::Click {
                url,
                campaign,
                user,
                conversion,
                order,
            } => {
                let TrackingReply::Redirect(location) = self.track(&url) else {
                    return;
                };
                let Some(click) = location.split("bz_click=").nth(1) else {
                    return;
                };
                let click = click.split('&').next().unwrap_or_default().to_string();
                if conversion < self.market.cvr(user, campaign) {
                    let value_cents = (self.market.order_value(campaign, order) * 100.0) as i64;
                    let at = self.clock.now().as_second() + 600;
                    self.schedule(at, Event::Conversion { click, value_cents });
                }
            }
            Event::Conversion { click, value_cents, .. } => {
                let query = format!(
                    "click={click}&order=o{}&value={}.{:02}&ts={}",
                    self.order,
                    value_cents / 100,
                    value_cents % 100,
                    self.clock.now().as_second()
                );
                self.order += 1;
                let sig = bullseye::signing::hmac_hex(POSTBACK_SECRET.as_bytes(), query.as_bytes());
                self.track(&format!("http://sim/t/conv?{query}&sig={sig}"));
            }
        }
    }

    /// Calls the tracker with a URL the bidder signed.
    fn track(&self, url: &str) -> TrackingReply {
        let path = url.split_once("/t/").map_or("", |(_, p)| p);
        let (event, query) = path.split_once('?').unwrap_or((path, ""));
        let world = self.app.bidder.world.load();
        let now = self.clock.now();
        let ip = Some(std::net::IpAddr::from([203, 0, 113, 9]));
        self.runtime
            .block_on(self.app.tracker.handle(&world, now, event, query, ip))
    }
}

/// The URL in markup that contains `marker`.
pub fn url_in(adm: &str, marker: &str) -> Option<String> {
    let start = adm.find(marker)?;
    let begin = adm[..start].rfind('"')? + 1;
    let end = begin + adm[begin..].find('"')?;
    Some(adm[begin..end].replace("&amp;", "&"))
}
