//! The oracle: the market's true propensities as the bid path's
//! [`Predictor`], which no real bidder knows — the limit to measure against.

use std::collections::HashMap;
use std::sync::Arc;

use bullseye::outcome::{Candidate, Prediction, Predictor, Prepared, Subject};

use super::market::Market;

/// The market's true propensities, as a [`Predictor`].
pub struct Oracle {
    market: Arc<Market>,
    /// User key (as the audience hashes `u{n}`) → the market's user.
    users: HashMap<u64, u32>,
    sites: HashMap<String, u16>,
    campaigns: HashMap<String, usize>,
}

impl Oracle {
    /// The oracle of `market`, whose campaigns are `ids` in order.
    pub fn new(market: Arc<Market>, ids: &[&str]) -> Oracle {
        let users = (0..market.users.len())
            .map(|u| (bullseye::audience::user_key(&format!("u{u}")), u as u32))
            .collect();
        let sites = market
            .sites
            .iter()
            .enumerate()
            .map(|(i, s)| (s.domain.clone(), i as u16))
            .collect();
        let campaigns = ids.iter().enumerate().map(|(i, id)| (id.to_string(), i)).collect();
        Oracle {
            market,
            users,
            sites,
            campaigns,
        }
    }
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

    /// The truth: never shrunk towards a campaign's smoothed rate.
    fn learned(&self) -> bool {
        false
    }
}
