//! The synthetic market: users with interests, sites, hours, campaigns'
//! true propensities, competitors and floors. Everything is drawn from the
//! seed, so two runs with one seed see the same market.
//!
//! Shape (pinned; `loadtest simulate --help` says the same):
//! - **Users**: 20 interests (`interest/i00` … `interest/i19`); each user
//!   belongs to one of 8 personas (Zipf-sized) with four favourite
//!   interests, and holds 2–5 interests, 80 % of them from the persona's
//!   favourites. A quarter of users also carry an RFM tier (`rfm/gold`
//!   etc.). The bidder sees them through a real audience snapshot.
//! - **Sites**: 200 domains, Zipf-popular, each with a CTR factor
//!   (×0.5–×1.5, uniform) and a floor (log-normal, median 0.20 CPM, σ 0.5).
//! - **Hours**: traffic follows a daily curve (night trough at a fifth of
//!   the evening peak); CTR varies by hour (×0.8–×1.2).
//! - **Campaigns**: base CTR log-normal (median 0.2 %, σ 0.8); three
//!   favourite interests each; a user's affinity is 1 + 2 × the share of
//!   the campaign's interests they hold (×1 to ×3). Conversion after a
//!   click log-normal (median `--base-cvr`, 3 %; σ 0.5; at most 50 %),
//!   times (affinity + 1) / 3; order
//!   values log-normal (median 60, σ 0.6).
//! - **Competitors**: K bidders; each values an impression at a log-normal
//!   draw (median 1.00 CPM × the site's factor × the hour's, σ 0.5) and
//!   bids 0.6–1.2× of it (uniform).

use rand::{RngExt, SeedableRng};

/// The market's shape, as `loadtest simulate --help` prints it.
pub const SHAPE: &str = "\
The market (pinned; every draw from --seed):
  users        --users, 20 interests (interest/i00..i19); 8 personas (Zipf-sized) of four
               favourite interests; each user holds 2-5 interests, 80 % from its persona's
               favourites; a quarter carry an RFM tier (rfm/gold, silver, bronze). The bidder
               sees them through an audience snapshot built with the real builder.
  sites        200 domains, Zipf-popular; a CTR factor x0.5-x1.5 each; a floor, log-normal
               (median 0.20 CPM, sigma 0.5).
  hours        a daily traffic curve (trough at 08:00, a fifth of the 20:00 peak); CTR x0.8-x1.2
               by hour. --requests-per-hour is the day's average.
  campaigns    base CTR log-normal (median --base-ctr, 0.2 %; sigma 0.8) x the user's affinity
               (1 + 2 x the share of the campaign's three interests the user holds: x1-x3)
               x site x hour; conversion after a click log-normal (median --base-cvr, 3 %;
               sigma 0.5, at most 50 %)
               x (affinity + 1) / 3; order values log-normal (median 60, sigma 0.6).
  competitors  --competitors K (5) per auction, each valuing the impression log-normally
               (median --competitor-cpm, 1.00 CPM, x site x hour, sigma 0.5) and bidding
               0.6-1.2x of that value; the highest competing bid and the floor set the price
               to beat (first price: pay the bid; second price: pay the highest other bid).
  events       a win gets its billing notice and impression pixel; a click (drawn from the
               true CTR) comes 10 s later, its conversion postback (signed with the
               advertiser's secret) 10 min after the click; a loss gets its loss notice with
               the minimum bid to win. Every strategy sees the same requests and draws.

Strategies: flat (every campaign a CPM one at its max CPM, asap, fixed shading),
per_campaign (one pCTR per campaign, fixed shading), fixed_shading (per-impression
prediction, fixed shading), bullseye (per-impression prediction, learned shading),
oracle (the market's true propensities, learned shading). Figures over --hours after
--warmup-hours; see OUTCOMES.md.";

/// Interests in the market.
pub const INTERESTS: usize = 20;
const PERSONAS: usize = 8;
const SITES: usize = 200;
const TIERS: [&str; 3] = ["rfm/gold", "rfm/silver", "rfm/bronze"];

/// One user: interests as a bit set, and an RFM tier (3: none).
#[derive(Clone, Copy, Debug)]
pub struct User {
    pub interests: u32,
    pub tier: u8,
}

/// One site.
#[derive(Clone, Debug)]
pub struct Site {
    pub domain: String,
    pub ctr_factor: f64,
    /// Floor, CPM.
    pub floor: f64,
}

/// What the market knows of a campaign (the bidder does not).
#[derive(Clone, Debug)]
pub struct Truth {
    pub base_ctr: f64,
    pub interests: u32,
    pub cvr: f64,
    pub order_median: f64,
}

/// What the command line may change of the market's shape.
#[derive(Clone, Debug)]
pub struct Shape {
    pub users: usize,
    /// Competing bidders per auction.
    pub competitors: usize,
    /// Median of the campaigns' base click-through rates.
    pub base_ctr: f64,
    /// Median of the campaigns' conversion rates after a click.
    pub base_cvr: f64,
    /// Median of a competitor's value of an impression, CPM.
    pub competitor_cpm: f64,
}

/// The market.
pub struct Market {
    pub users: Vec<User>,
    pub sites: Vec<Site>,
    site_cdf: Vec<f64>,
    /// Share of a day's requests per hour.
    pub traffic: [f64; 24],
    pub hour_ctr: [f64; 24],
    pub truths: Vec<Truth>,
    pub competitors: usize,
    competitor_cpm: f64,
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut impl rand::Rng) -> f64 {
    let u: f64 = rng.random_range(1e-12..1.0);
    let v: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

fn pick(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|c| *c < u).min(cdf.len() - 1)
}

impl Market {
    /// The market of `shape` for `campaigns` campaigns.
    pub fn new(seed: u64, campaigns: usize, shape: &Shape) -> Market {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let personas: Vec<[usize; 4]> = (0..PERSONAS)
            .map(|_| {
                let mut favourites = [0; 4];
                for f in &mut favourites {
                    *f = rng.random_range(0..INTERESTS);
                }
                favourites
            })
            .collect();
        let persona_cdf = zipf_cdf(PERSONAS, 0.8);
        let users = (0..shape.users)
            .map(|_| {
                let persona = &personas[pick(&persona_cdf, rng.random())];
                let mut interests = 0u32;
                for _ in 0..rng.random_range(2..=5) {
                    let interest = if rng.random_bool(0.8) {
                        persona[rng.random_range(0..4)]
                    } else {
                        rng.random_range(0..INTERESTS)
                    };
                    interests |= 1 << interest;
                }
                let tier = if rng.random_bool(0.25) {
                    rng.random_range(0..3)
                } else {
                    3
                };
                User { interests, tier }
            })
            .collect();
        let sites = (0..SITES)
            .map(|i| Site {
                domain: format!("site{i:03}.example"),
                ctr_factor: rng.random_range(0.5..1.5),
                floor: 0.20 * (0.5 * normal(&mut rng)).exp(),
            })
            .collect();
        let mut traffic = [0.0; 24];
        let mut hour_ctr = [0.0; 24];
        for h in 0..24 {
            // Trough at 8:00 (half a day from the peak), peak at 20:00.
            let phase = (h as f64 - 20.0) / 24.0 * std::f64::consts::TAU;
            traffic[h] = 0.6 + 0.4 * phase.cos();
            hour_ctr[h] = 1.0 + 0.2 * ((h as f64 - 14.0) / 24.0 * std::f64::consts::TAU).cos();
        }
        let total: f64 = traffic.iter().sum();
        traffic.iter_mut().for_each(|t| *t /= total);
        let truths = (0..campaigns)
            .map(|_| {
                let mut interests = 0u32;
                while interests.count_ones() < 3 {
                    interests |= 1 << rng.random_range(0..INTERESTS);
                }
                Truth {
                    base_ctr: shape.base_ctr * (0.8 * normal(&mut rng)).exp(),
                    interests,
                    cvr: (shape.base_cvr * (0.5 * normal(&mut rng)).exp()).min(0.5),
                    order_median: 60.0,
                }
            })
            .collect();
        Market {
            users,
            sites,
            site_cdf: zipf_cdf(SITES, 0.9),
            traffic,
            hour_ctr,
            truths,
            competitors: shape.competitors,
            competitor_cpm: shape.competitor_cpm,
        }
    }

    /// A user's segments as the audience CSV lists them.
    pub fn segments(&self, user: usize) -> String {
        let u = self.users[user];
        let mut out: Vec<String> = (0..INTERESTS)
            .filter(|i| u.interests & (1 << i) != 0)
            .map(|i| format!("interest/i{i:02}"))
            .collect();
        if let Some(tier) = TIERS.get(u.tier as usize) {
            out.push((*tier).to_string());
        }
        out.join("|")
    }

    /// A site drawn by popularity.
    pub fn site(&self, rng: &mut impl rand::Rng) -> usize {
        pick(&self.site_cdf, rng.random())
    }

    /// The user's affinity for campaign `c`: ×1 to ×3.
    pub fn affinity(&self, user: usize, c: usize) -> f64 {
        let wanted = self.truths[c].interests;
        let shared = (self.users[user].interests & wanted).count_ones() as f64;
        1.0 + 2.0 * shared / wanted.count_ones() as f64
    }

    /// True P(click | impression).
    pub fn ctr(&self, user: usize, c: usize, site: usize, hour: usize) -> f64 {
        (self.truths[c].base_ctr * self.affinity(user, c) * self.sites[site].ctr_factor * self.hour_ctr[hour]).min(1.0)
    }

    /// True P(conversion | click).
    pub fn cvr(&self, user: usize, c: usize) -> f64 {
        (self.truths[c].cvr * (self.affinity(user, c) + 1.0) / 3.0).min(1.0)
    }

    /// An order's value, for a standard normal draw `z`.
    pub fn order_value(&self, c: usize, z: f64) -> f64 {
        self.truths[c].order_median * (0.6 * z).exp()
    }

    /// The competitors' highest bid on an impression (CPM).
    pub fn competition(&self, site: usize, hour: usize, rng: &mut impl rand::Rng) -> f64 {
        let scale = self.competitor_cpm * self.sites[site].ctr_factor * self.hour_ctr[hour];
        let mut highest = 0.0f64;
        for _ in 0..self.competitors {
            let value = scale * (0.5 * normal(rng)).exp();
            highest = highest.max(value * rng.random_range(0.6..1.2));
        }
        highest
    }
}
