//! User-level conversion postbacks:
//! `GET /t/conv?user=…[&campaign=…]&order=…[&value=…]&ts=…&sig=…`.
//!
//! A conversion that came without a click — a view-through, or a user in
//! an experiment's holdout, who never saw an ad — is reported by the
//! advertiser with our user id (the id the bid request carried: the
//! exchange's `buyeruid`, `user.id` or the IFA, as `bidding.user_ids`
//! orders them) instead of a click id. It is signed like a click-level
//! postback: `sig` is the lowercase hex HMAC-SHA256, with the advertiser's
//! postback secret, of the query before `&sig=`, its parameters in this
//! order. `campaign` names the campaign it is for; without it, the
//! advertiser is the one whose secret signs it, and it must run exactly
//! one campaign with an experiment.
//!
//! The conversion is recorded under the campaign and, when the campaign
//! runs an experiment, the arm the user is in by the same hash as bidding
//! ([`crate::campaigns::experiment::Experiment::arm_of_user`]), so a
//! holdout user's conversion lands in the holdout arm. Order ids are
//! deduplicated per advertiser together with click-level postbacks: an
//! order reported both ways counts once, under the first.

use jiff::Timestamp;

use super::notice::{TrackingReply, order_and_value, query_param, signed_by};
use crate::ledger::{EventKind, Record};
use crate::live::{LiveCampaign, World};
use crate::money::Micros;
use crate::signing::TrackingError;

/// Longest user id accepted, bytes.
const MAX_USER_ID_BYTES: usize = 256;

/// A verified user-level postback.
pub(super) struct UserPostback<'w> {
    /// The campaign credited.
    campaign: &'w LiveCampaign,
    /// Its advertiser.
    pub advertiser: String,
    /// The user's key.
    user: u64,
    /// The order id.
    pub order: String,
    /// The conversion's value.
    value: Option<Micros>,
    /// Credited by the user's last touch (not named, nor a holdout's).
    pub touched: bool,
}

/// The parameter lists accepted, in order, before `sig`.
const FORMS: [&[&str]; 4] = [
    &["user", "campaign", "order", "ts"],
    &["user", "campaign", "order", "value", "ts"],
    &["user", "order", "ts"],
    &["user", "order", "value", "ts"],
];

/// Checks a user-level postback (see the module header): 400 for a
/// malformed one, 403 when unsigned or forged, 404 for a campaign that is
/// not running.
pub(super) fn verify<'w>(
    world: &'w World,
    now: Timestamp,
    query: &str,
    touches: &super::attribution::Touches,
) -> Result<UserPostback<'w>, TrackingReply> {
    let forbidden = || TrackingReply::Forbidden(TrackingError::BadSignature);
    let (signed, sig) = query
        .rsplit_once("&sig=")
        .ok_or(TrackingReply::BadPrice("postback is not signed (sig)"))?;
    let names: Vec<&str> = signed
        .split('&')
        .map(|p| p.split_once('=').map_or(p, |(n, _)| n))
        .collect();
    if !FORMS.contains(&names.as_slice()) {
        return Err(TrackingReply::BadPrice(
            "user postback parameters must be user, [campaign,] order, [value,] ts, sig",
        ));
    }
    let param = |name| query_param(signed, name).unwrap_or_default();
    let user = crate::signing::decode_component(param("user"))
        .filter(|u| !u.trim().is_empty() && u.len() <= MAX_USER_ID_BYTES)
        .ok_or(TrackingReply::BadPrice("user id missing or longer than 256 bytes"))?;
    let user_key = crate::audience::user_key(user.trim());
    let (campaign, touched) = match names.contains(&"campaign") {
        true => {
            let id = crate::signing::decode_component(param("campaign")).unwrap_or_default();
            let campaign = world.campaign_by_id(&id).ok_or(TrackingReply::Gone)?;
            if !signed_by(world, &campaign.campaign.advertiser, signed, sig) {
                return Err(forbidden());
            }
            (campaign, false)
        }
        false => {
            let advertiser = world
                .settings
                .postback_secrets
                .keys()
                .find(|advertiser| signed_by(world, advertiser, signed, sig))
                .ok_or_else(forbidden)?;
            let windows = |id: &str| world.campaign_by_id(id).map(|c| c.campaign.attribution);
            match touches.last_touch(advertiser, user_key, now, windows) {
                Some(touch) => (world.campaign_by_id(&touch.campaign).ok_or(TrackingReply::Gone)?, true),
                None => (only_experiment(world, advertiser)?, false),
            }
        }
    };
    let (order, value) = order_and_value(world, now, signed, names.contains(&"value"))?;
    Ok(UserPostback {
        advertiser: campaign.campaign.advertiser.clone(),
        campaign,
        user: user_key,
        order,
        value,
        touched,
    })
}

/// Without a touch to credit, the advertiser's one campaign running an
/// experiment (a holdout user's conversion); otherwise 404: nothing to
/// credit.
fn only_experiment<'w>(world: &'w World, advertiser: &str) -> Result<&'w LiveCampaign, TrackingReply> {
    let mut running = world
        .campaigns
        .iter()
        .filter(|c| c.campaign.advertiser == advertiser && c.campaign.experiment.is_some());
    match (running.next(), running.next()) {
        (Some(campaign), None) => Ok(campaign),
        _ => Err(TrackingReply::BadPrice(
            "name the campaign (campaign=…): no click or view of the advertiser's campaigns within their attribution windows, and it does not run exactly one experiment",
        )),
    }
}

impl UserPostback<'_> {
    /// The arm tag of the user in the campaign's experiment, if it runs one.
    fn arm(&self) -> Option<String> {
        let experiment = self.campaign.campaign.experiment.as_deref()?;
        Some(experiment.arms[experiment.arm_of_user(self.user)].tag.clone())
    }

    /// The ledger record: a conversion with no bid, click or place, under
    /// the campaign and the user's arm.
    pub fn record(&self, now: Timestamp) -> Record {
        let campaign = &self.campaign.campaign;
        Record {
            at: now.as_microsecond(),
            event: EventKind::Conversion,
            bid: String::new(),
            campaign: campaign.id.clone(),
            creative: String::new(),
            exchange: String::new(),
            clearing: None,
            charge: 0,
            billed: false,
            filtered: None,
            test: false,
            user: self.user,
            pricing: campaign.pricing,
            value: self.value.map(|v| v.0),
            order: Some(self.order.clone()),
            domain: String::new(),
            country: String::new(),
            device: 0,
            utc_offset: Some(campaign.time_zone.to_offset(now).seconds()),
            counts: Some(0),
            arm: self.arm(),
        }
    }
}
