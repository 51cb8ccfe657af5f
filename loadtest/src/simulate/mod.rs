//! `loadtest simulate`: what a bidding strategy buys per unit budget on a
//! synthetic market, through the real bid path.
//!
//! Each strategy runs the Bullseye library in-process ([`bullseye::app::App`])
//! on a simulated clock: bid requests from the market ([`market`]) go to
//! the bidder; a bid wins when it beats the market's competitors and the
//! floor (first or second price); its billing notice, impression pixel,
//! click (drawn from the market's true click-through rate, ten seconds
//! later) and conversion postback (signed with the advertiser's secret,
//! ten minutes after the click) go through the tracker as production
//! receives them, and lost bids get their loss notice with the minimum bid
//! to win. The bidder learns only from those. The first `--warmup-hours`
//! teach it; the figures are taken from the ledger over the next
//! `--hours`.
//!
//! Strategies: `flat` (every campaign bids its max CPM, asap, fixed
//! shading), `per_campaign` (one smoothed rate per campaign, fixed
//! shading), `fixed_shading` (per-impression prediction, fixed shading),
//! `bullseye` (per-impression prediction, learned shading) and `oracle`
//! (the market's true propensities in place of the model, learned
//! shading: the limit no real bidder reaches). All see the same market and
//! the same traffic; a run repeats exactly for a seed.

pub mod market;

use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use bullseye::app::{App, AppOptions};
use bullseye::clock::{Clock, ManualClock};
use bullseye::outcome::{Candidate, Prediction, Predictor, Prepared, Subject};
use bullseye::tracking::notice::TrackingReply;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use market::Market;

/// The bundled campaigns.
const DEFAULT_CAMPAIGNS: &str = include_str!("../../simulate/campaigns.toml");

/// The strategies, in the order they are reported.
pub const STRATEGIES: [&str; 5] = ["flat", "per_campaign", "fixed_shading", "bullseye", "oracle"];

/// The advertisers' postback secret in the simulation.
const POSTBACK_SECRET: &str = "simulation-postback-secret-0123456789abcdef";

#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    /// Seed of the market and the traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Hours the bidder learns before the figures are taken.
    #[arg(long, default_value_t = 24)]
    pub warmup_hours: u32,
    /// Hours the figures are taken over.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Users in the market.
    #[arg(long, default_value_t = 1_000_000)]
    pub users: usize,
    /// Campaigns (`bidder-config` TOML); default: the bundled set.
    #[arg(long)]
    pub campaigns: Option<PathBuf>,
    /// Competing bidders per auction.
    #[arg(long, default_value_t = 5)]
    pub competitors: usize,
    /// `first` or `second` price.
    #[arg(long, default_value = "first")]
    pub auction: String,
    /// Bid requests per simulated hour, on average over the day.
    #[arg(long, default_value_t = 12_000)]
    pub requests_per_hour: usize,
    /// Run only these strategies (repeatable); default: all five.
    #[arg(long)]
    pub strategy: Vec<String>,
    /// Write the hourly spend curves as an SVG chart here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// The last line is one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One campaign's figures over the measured hours.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CampaignFigures {
    pub id: String,
    pub pricing: String,
    pub pacing: String,
    /// Budget over the measured hours.
    pub budget_micros: i64,
    pub spend_micros: i64,
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub bids: u64,
    pub wins: u64,
    pub spend_fraction: f64,
    pub clicks_per_1000: f64,
    pub conversions_per_1000: f64,
    pub impressions_per_1000: f64,
    pub ecpc: Option<f64>,
    pub cpa: Option<f64>,
    pub win_rate: f64,
    pub hourly_spend_micros: Vec<i64>,
    pub hourly_traffic_share: Vec<f64>,
}

/// A campaign as configured, what the simulation needs of it.
#[derive(Clone, Debug)]
struct Configured {
    id: String,
    advertiser: String,
    pricing: String,
    pacing: String,
    daily_budget: i64,
}

/// Runs the simulation and prints its figures.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let first_price = match args.auction.as_str() {
        "first" => true,
        "second" => false,
        other => bail!("--auction {other:?}: first or second"),
    };
    let strategies: Vec<&str> = if args.strategy.is_empty() {
        STRATEGIES.to_vec()
    } else {
        let unknown: Vec<&String> = args
            .strategy
            .iter()
            .filter(|s| !STRATEGIES.contains(&s.as_str()))
            .collect();
        if !unknown.is_empty() {
            bail!("unknown strategies {unknown:?}: {STRATEGIES:?}");
        }
        STRATEGIES
            .iter()
            .copied()
            .filter(|s| args.strategy.iter().any(|a| a == s))
            .collect()
    };
    let campaigns_text = match &args.campaigns {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => DEFAULT_CAMPAIGNS.to_string(),
    };
    let work = work_dir()?;
    let configured = configured(work.path(), &campaigns_text)?;
    let market = Arc::new(Market::new(args.seed, args.users, configured.len(), args.competitors));
    let snapshot = build_audience(work.path(), &market)?;
    eprintln!(
        "market: {} users, {} campaigns, {} competitors, {} price; audience built in {:.1} s",
        args.users,
        configured.len(),
        args.competitors,
        args.auction,
        started.elapsed().as_secs_f64()
    );
    let results: Vec<(String, anyhow::Result<Vec<CampaignFigures>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = strategies
            .iter()
            .map(|&strategy| {
                let run = Run {
                    args: &args,
                    strategy,
                    first_price,
                    market: market.clone(),
                    configured: &configured,
                    campaigns_text: &campaigns_text,
                    snapshot: &snapshot,
                    dir: work.path().join(strategy),
                };
                scope.spawn(move || (strategy.to_string(), run.go()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a strategy panicked"))
            .collect()
    });
    let mut report = serde_json::Map::new();
    for (strategy, figures) in results {
        let figures = figures.with_context(|| format!("strategy {strategy}"))?;
        print_table(&strategy, &figures);
        report.insert(strategy, json!({ "campaigns": figures }));
    }
    if let Some(svg) = &args.svg {
        std::fs::write(svg, chart(&report))?;
    }
    eprintln!("simulated in {:.1} s", started.elapsed().as_secs_f64());
    if args.json {
        println!(
            "{}",
            json!({ "strategies": report, "seed": args.seed, "auction": args.auction })
        );
    }
    Ok(())
}

/// A scratch directory, in memory when `/dev/shm` exists (the ledger's
/// syncs are then cheap).
fn work_dir() -> anyhow::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    Ok(if shm.is_dir() {
        tempfile::Builder::new().prefix("bullseye-sim").tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    })
}

/// The campaigns as the bidder validates them.
fn configured(work: &Path, campaigns: &str) -> anyhow::Result<Vec<Configured>> {
    let dir = work.join("check");
    let advertisers = advertisers_of(campaigns)?;
    write_config(
        &dir,
        &settings("impression", "learned", &advertisers, &dir, None),
        campaigns,
    )?;
    let config = bullseye::config::load(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config
        .campaigns
        .iter()
        .map(|c| Configured {
            id: c.id.clone(),
            advertiser: c.advertiser.clone(),
            pricing: c.pricing.as_str().to_string(),
            pacing: match c.pacing {
                bullseye::campaigns::PacingMode::Even => "even".into(),
                bullseye::campaigns::PacingMode::Asap => "asap".into(),
            },
            daily_budget: c.daily_budget.0,
        })
        .collect())
}

/// The advertisers a campaigns file names.
fn advertisers_of(campaigns: &str) -> anyhow::Result<Vec<String>> {
    let table: toml::Table = campaigns.parse().context("campaigns file is not TOML")?;
    let mut out: Vec<String> = table
        .get("campaign")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("advertiser")?.as_str().map(String::from))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// `bullseye.toml` for a strategy.
fn settings(prediction: &str, shading: &str, advertisers: &[String], dir: &Path, snapshot: Option<&Path>) -> String {
    let mut out = format!(
        "[bidding]\nprediction = \"{prediction}\"\nshading = \"{shading}\"\n\n\
         [secrets]\nsigning_key = \"simulation-signing-key-0123456789abcdef\"\n\n\
         [tracking]\nmax_clicks_per_user_hour = 1000000\nmax_clicks_per_ip_hour = 1000000\nmax_conversions_per_click = 5\n\n\
         [[exchange]]\nname = \"default\"\nseat = \"sim\"\nsends_lurl = true\n"
    );
    if let Some(snapshot) = snapshot {
        out.push_str(&format!("\n[audience]\nsnapshot = \"{}\"\n", snapshot.display()));
    }
    let secret = dir.join("postback.secret");
    for advertiser in advertisers {
        out.push_str(&format!(
            "\n[[advertiser]]\nid = \"{advertiser}\"\n\n[[postback]]\nadvertiser = \"{advertiser}\"\nsecret_file = \"{}\"\n",
            secret.display()
        ));
    }
    out
}

fn write_config(dir: &Path, settings: &str, campaigns: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("campaigns"))?;
    std::fs::write(dir.join("postback.secret"), POSTBACK_SECRET)?;
    std::fs::write(dir.join("bullseye.toml"), settings)?;
    std::fs::write(dir.join("campaigns/sim.toml"), campaigns)?;
    Ok(())
}

/// The flat strategy's campaigns: every campaign a CPM one at its most
/// (`max_cpm` for value-based ones), asap.
fn flat(campaigns: &str) -> anyhow::Result<String> {
    let mut table: toml::Table = campaigns.parse()?;
    if let Some(list) = table.get_mut("campaign").and_then(|c| c.as_array_mut()) {
        for campaign in list.iter_mut().filter_map(|c| c.as_table_mut()) {
            let pricing = campaign
                .get("pricing")
                .and_then(|p| p.as_str())
                .unwrap_or("cpm")
                .to_string();
            if pricing != "cpm" {
                let most = campaign
                    .get("max_cpm")
                    .cloned()
                    .context("value-based campaigns need max_cpm")?;
                campaign.insert("max_bid".into(), most);
            }
            for key in [
                "pctr_prior",
                "target_cpa",
                "cps_share",
                "max_cpm",
                "pcvr_prior",
                "order_value_prior",
            ] {
                campaign.remove(key);
            }
            campaign.insert("pricing".into(), "cpm".into());
            campaign.insert("pacing".into(), "asap".into());
        }
    }
    Ok(toml::to_string(&table)?)
}

/// Writes the market's users as CSV and builds the audience snapshot.
fn build_audience(work: &Path, market: &Market) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let csv = work.join("audience.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    for user in 0..market.users.len() {
        writeln!(out, "u{user},{}", market.segments(user))?;
    }
    out.flush()?;
    drop(out);
    let snapshot = work.join("audience.snapshot");
    bullseye::audience::builder::build(std::slice::from_ref(&csv), &snapshot, 0.0)
        .map_err(|e| anyhow::anyhow!("building the audience: {e}"))?;
    std::fs::remove_file(&csv)?;
    Ok(snapshot)
}

/// The market's true propensities, as a [`Predictor`].
struct Oracle {
    market: Arc<Market>,
    users: HashMap<u64, u32>,
    sites: HashMap<String, u16>,
    campaigns: HashMap<String, usize>,
}

impl Predictor for Oracle {
    fn prepare(&self, _: &Subject, _: &mut Prepared) {}

    fn predict(&self, subject: &Subject, _: &Prepared, candidate: &Candidate) -> Option<Prediction> {
        let user = *self.users.get(&subject.user_key?)? as usize;
        let site = *self.sites.get(subject.domain)? as usize;
        let c = *self.campaigns.get(candidate.campaign)?;
        let ctr = self.market.ctr(user, c, site, usize::from(subject.local_hour));
        Some(Prediction {
            click: ctr as f32,
            conversion: (ctr * self.market.cvr(user, c)) as f32,
        })
    }
}

/// A tracking event due at a simulated time.
#[derive(Debug, PartialEq, Eq)]
struct Due {
    at: i64,
    order: u64,
    event: Event,
}

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Click {
        url: String,
        campaign: usize,
        user: usize,
    },
    Conversion {
        click: String,
        campaign: usize,
        value_cents: i64,
    },
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Earliest first (BinaryHeap is a max-heap).
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One strategy's run.
struct Run<'a> {
    args: &'a SimArgs,
    strategy: &'a str,
    first_price: bool,
    market: Arc<Market>,
    configured: &'a [Configured],
    campaigns_text: &'a str,
    snapshot: &'a Path,
    dir: PathBuf,
}

/// The first second of the simulation: a Monday, midnight UTC.
const START: i64 = 1_767_571_200;

impl Run<'_> {
    fn go(self) -> anyhow::Result<Vec<CampaignFigures>> {
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
        };
        bullseye::bidder::seed_thread(self.args.seed);
        let total_hours = self.args.warmup_hours + self.args.hours;
        for hour in 0..total_hours {
            state.measuring = hour >= self.args.warmup_hours;
            let requests =
                (self.args.requests_per_hour as f64 * 24.0 * self.market.traffic[hour as usize % 24]) as usize;
            state.hour(hour, requests.max(1));
        }
        app.learn_now();
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
        let users = (0..self.market.users.len())
            .map(|u| (bullseye::audience::user_key(&format!("u{u}")), u as u32))
            .collect();
        let sites = self
            .market
            .sites
            .iter()
            .enumerate()
            .map(|(i, s)| (s.domain.clone(), i as u16))
            .collect();
        let campaigns = self
            .configured
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        Arc::new(Oracle {
            market: self.market.clone(),
            users,
            sites,
            campaigns,
        })
    }
}

/// A strategy's running state.
struct Sim<'a> {
    app: &'a App,
    clock: &'a ManualClock,
    market: &'a Market,
    rng: rand::rngs::StdRng,
    due: BinaryHeap<Due>,
    order: u64,
    first_price: bool,
    ids: HashMap<String, usize>,
    /// Per campaign, bids and wins while measuring.
    bids: Vec<[u64; 2]>,
    measuring: bool,
    last_tick: i64,
    runtime: &'a tokio::runtime::Runtime,
}

/// Seconds between the learner's publications (as production's five, in
/// simulated time a little coarser).
const LEARN_EVERY: i64 = 60;

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
            if self.last_tick % LEARN_EVERY == 0 {
                self.app.learn_now();
            }
        }
        self.clock.set(
            jiff::Timestamp::from_microsecond(at_micros.max(self.clock.now().as_microsecond())).expect("in range"),
        );
    }

    fn request(&mut self, hour: usize) {
        let user = self.rng.random_range(0..self.market.users.len());
        let site = self.market.site(&mut self.rng);
        let (first, second) = self.market.competition(site, hour, &mut self.rng);
        let floor = self.market.sites[site].floor;
        let device = self.rng.random_range(1..=4u8);
        let request = json!({
            "id": format!("r{}", self.order),
            "at": if self.first_price { 1 } else { 2 },
            "tmax": 1000,
            "imp": [{"id": "1", "bidfloor": (floor * 1e6).round() / 1e6, "banner": {"w": 300, "h": 250}}],
            "site": {"id": format!("s{site}"), "domain": self.market.sites[site].domain},
            "device": {"ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ip": format!("203.0.{}.{}", user % 250, user / 250 % 250), "devicetype": device, "geo": {"country": "USA"}},
            "user": {"buyeruid": format!("u{user}")}
        });
        self.order += 1;
        let body = serde_json::to_vec(&request).expect("JSON");
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
        let clearing = if self.first_price { price } else { second.max(floor) };
        let burl = bid["burl"].as_str().unwrap_or_default();
        self.track(&burl.replace("${AUCTION_PRICE}", &format!("{clearing:.6}")));
        let adm = bid["adm"].as_str().unwrap_or_default();
        if let Some(pixel) = url_in(adm, "/t/imp?") {
            self.track(&pixel);
        }
        if self.rng.random_bool(self.market.ctr(user, campaign, site, hour))
            && let Some(click) = url_in(adm, "/t/click?")
        {
            let at = self.clock.now().as_second() + 10;
            self.schedule(
                at,
                Event::Click {
                    url: click,
                    campaign,
                    user,
                },
            );
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
            Event::Click { url, campaign, user } => {
                let TrackingReply::Redirect(location) = self.track(&url) else {
                    return;
                };
                let Some(click) = location.split("bz_click=").nth(1) else {
                    return;
                };
                let click = click.split('&').next().unwrap_or_default().to_string();
                if self.rng.random_bool(self.market.cvr(user, campaign)) {
                    let value_cents = (self.market.order_value(campaign, &mut self.rng) * 100.0) as i64;
                    let at = self.clock.now().as_second() + 600;
                    self.schedule(
                        at,
                        Event::Conversion {
                            click,
                            campaign,
                            value_cents,
                        },
                    );
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
fn url_in(adm: &str, marker: &str) -> Option<String> {
    let start = adm.find(marker)?;
    let begin = adm[..start].rfind('"')? + 1;
    let end = begin + adm[begin..].find('"')?;
    Some(adm[begin..end].replace("&amp;", "&"))
}

/// The figures of each campaign from the ledger, over the measured hours.
fn figures(
    ledger: &Path,
    configured: &[Configured],
    bids: &[[u64; 2]],
    measured_from: i64,
    args: &SimArgs,
    market: &Market,
) -> anyhow::Result<Vec<CampaignFigures>> {
    use bullseye::ledger::EventKind;
    let records = bullseye::ledger::read_all(ledger).map_err(|e| anyhow::anyhow!("{e}"))?;
    let index: HashMap<&str, usize> = configured.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
    let mut out: Vec<CampaignFigures> = configured
        .iter()
        .enumerate()
        .map(|(i, c)| CampaignFigures {
            id: c.id.clone(),
            pricing: c.pricing.clone(),
            pacing: c.pacing.clone(),
            budget_micros: c.daily_budget * i64::from(args.hours) / 24,
            bids: bids[i][0],
            wins: bids[i][1],
            hourly_spend_micros: vec![0; 24],
            ..Default::default()
        })
        .collect();
    for record in records.iter().filter(|r| r.at >= measured_from * 1_000_000) {
        let Some(&c) = index.get(record.campaign.as_str()) else {
            continue;
        };
        let f = &mut out[c];
        f.spend_micros += record.charge;
        f.hourly_spend_micros[(record.at / 3_600_000_000 % 24) as usize] += record.charge;
        match record.event {
            _ if record.billed => f.impressions += 1,
            EventKind::Click if record.filtered.is_none() => f.clicks += 1,
            EventKind::Conversion if record.filtered.is_none() => f.conversions += 1,
            _ => {}
        }
    }
    for f in &mut out {
        let spend = f.spend_micros as f64 / 1e6;
        let per_1000 = |n: u64| if spend > 0.0 { n as f64 / spend * 1000.0 } else { 0.0 };
        f.spend_fraction = if f.budget_micros > 0 {
            f.spend_micros as f64 / f.budget_micros as f64
        } else {
            0.0
        };
        f.clicks_per_1000 = per_1000(f.clicks);
        f.conversions_per_1000 = per_1000(f.conversions);
        f.impressions_per_1000 = per_1000(f.impressions);
        f.ecpc = (f.clicks > 0).then(|| spend / f.clicks as f64);
        f.cpa = (f.conversions > 0).then(|| spend / f.conversions as f64);
        f.win_rate = if f.bids > 0 { f.wins as f64 / f.bids as f64 } else { 0.0 };
        f.hourly_traffic_share = market.traffic.to_vec();
    }
    Ok(out)
}

fn print_table(strategy: &str, figures: &[CampaignFigures]) {
    println!("== {strategy}");
    println!(
        "{:<14} {:<5} {:<5} {:>9} {:>6} {:>8} {:>7} {:>6} {:>9} {:>9} {:>8} {:>8} {:>6}",
        "campaign",
        "goal",
        "pace",
        "spend",
        "of cap",
        "imps",
        "clicks",
        "convs",
        "clk/1000",
        "cnv/1000",
        "eCPC",
        "CPA",
        "win%"
    );
    for f in figures {
        let money = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{:<14} {:<5} {:<5} {:>9.2} {:>5.1}% {:>8} {:>7} {:>6} {:>9.2} {:>9.3} {:>8} {:>8} {:>5.1}%",
            f.id,
            f.pricing,
            f.pacing,
            f.spend_micros as f64 / 1e6,
            f.spend_fraction * 100.0,
            f.impressions,
            f.clicks,
            f.conversions,
            f.clicks_per_1000,
            f.conversions_per_1000,
            money(f.ecpc),
            money(f.cpa),
            f.win_rate * 100.0
        );
    }
}

/// An SVG of each strategy's hourly spend (all campaigns), one line each.
fn chart(report: &serde_json::Map<String, Value>) -> String {
    let (w, h, pad) = (720.0, 360.0, 40.0);
    let series: Vec<(String, Vec<f64>)> = report
        .iter()
        .map(|(name, v)| {
            let mut hourly = vec![0.0; 24];
            for c in v["campaigns"].as_array().into_iter().flatten() {
                for (i, s) in c["hourly_spend_micros"].as_array().into_iter().flatten().enumerate() {
                    hourly[i] += s.as_f64().unwrap_or(0.0) / 1e6;
                }
            }
            (name.clone(), hourly)
        })
        .collect();
    let top = series.iter().flat_map(|(_, s)| s.iter().copied()).fold(1e-9, f64::max);
    let colours = ["#888", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    svg.push_str(&format!(
        r#"<text x="{pad}" y="16">Spend per hour of the day, all campaigns (max {top:.2})</text>"#
    ));
    for (i, (name, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(hour, v)| {
                let x = pad + hour as f64 * (w - 2.0 * pad) / 23.0;
                let y = h - pad - v / top * (h - 2.0 * pad);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let colour = colours[i % colours.len()];
        svg.push_str(&format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/><text x="{}" y="{}" fill="{colour}">{name}</text>"#,
            points.join(" "),
            w - pad - 90.0,
            30.0 + 14.0 * i as f64
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_turns_every_campaign_into_cpm_at_its_most_asap() {
        let flat = flat(DEFAULT_CAMPAIGNS).unwrap();
        let table: toml::Table = flat.parse().unwrap();
        for c in table["campaign"].as_array().unwrap() {
            assert_eq!(c["pricing"].as_str(), Some("cpm"));
            assert_eq!(c["pacing"].as_str(), Some("asap"));
            assert!(c.get("max_cpm").is_none() && c.get("pctr_prior").is_none());
        }
    }

    #[test]
    fn markup_urls_are_unescaped() {
        let adm = r#"<a href="http://sim/t/click?b=1&amp;c=2"><img src="http://sim/t/imp?b=1&amp;sig=x"></a>"#;
        assert_eq!(url_in(adm, "/t/imp?").as_deref(), Some("http://sim/t/imp?b=1&sig=x"));
        assert_eq!(url_in(adm, "/t/click?").as_deref(), Some("http://sim/t/click?b=1&c=2"));
    }

    #[test]
    fn a_simulation_repeats_for_a_seed() {
        let args = SimArgs {
            seed: 3,
            warmup_hours: 1,
            hours: 1,
            users: 2_000,
            campaigns: None,
            competitors: 5,
            auction: "first".into(),
            requests_per_hour: 300,
            strategy: vec!["bullseye".into()],
            svg: None,
            json: false,
        };
        let run_once = || -> Vec<(i64, u64, u64)> {
            let work = work_dir().unwrap();
            let configured = configured(work.path(), DEFAULT_CAMPAIGNS).unwrap();
            let market = Arc::new(Market::new(args.seed, args.users, configured.len(), 5));
            let snapshot = build_audience(work.path(), &market).unwrap();
            let run = Run {
                args: &args,
                strategy: "bullseye",
                first_price: true,
                market,
                configured: &configured,
                campaigns_text: DEFAULT_CAMPAIGNS,
                snapshot: &snapshot,
                dir: work.path().join("bullseye"),
            };
            run.go()
                .unwrap()
                .iter()
                .map(|f| (f.spend_micros, f.impressions, f.clicks))
                .collect()
        };
        let (a, b) = (run_once(), run_once());
        assert!(a.iter().any(|(spend, _, _)| *spend > 0), "{a:?}");
        assert_eq!(a, b);
    }
}
