//! Stage 2, enrich: who is this, where, on what — the per-request context.
//!
//! Recognises the user (ids in the configured order), applies the privacy
//! signals, looks the user's segments up in the audience snapshot (with
//! ancestors, for hierarchical targeting), and gathers the facts targeting
//! tests. Also screens the traffic and picks the response currency.

use std::cell::Cell;

use jiff::Timestamp;

use crate::audience::overlay::Overlay;
use crate::audience::{Snapshot, user_key};
use crate::campaigns::targeting::{Gender, RequestFacts};
use crate::live::World;
use crate::metrics::NoBidReason;
use crate::money::Currency;
use crate::openrtb::cattax::{self, Taxonomy};
use crate::openrtb::{AuctionType, BidRequest, Text};
use crate::settings::{Exchange, ExchangeId, UserIdSource};

use super::privacy::{self, Restriction};
use super::traffic;

/// Where a user's segments come from: the snapshot and the real-time
/// overlay.
#[derive(Clone, Copy)]
pub struct Audience<'s> {
    /// The current audience snapshot.
    pub snapshot: &'s Snapshot,
    /// The real-time overlay, merged with the snapshot at lookup.
    pub overlay: &'s Overlay,
    /// Exchanges' ids of our users, from user sync.
    pub matches: &'s crate::audience::matches::UserMatches,
}

/// Everything the later stages know about one bid request.
pub struct BidCtx<'a> {
    /// The decoded request.
    pub request: &'a BidRequest<'a>,
    /// Settings of the exchange the request came from.
    pub exchange: &'a Exchange,
    /// Index of that exchange in the settings.
    pub exchange_id: ExchangeId,
    /// When the request is handled (one reading of the clock).
    pub now: Timestamp,
    /// Auction type of the request (`at`, second price when absent).
    pub auction: AuctionType,
    /// Response currency.
    pub currency: Currency,
    /// The user's key ([`crate::audience::user_key`]); `None` when unknown or when privacy forbids recognising them.
    pub user_key: Option<u64>,
    /// Why personal data may not be used; `None` when it may.
    pub restriction: Option<Restriction>,
    /// What targeting tests.
    pub facts: RequestFacts<'a>,
    /// `bcat` in 1.0 codes when the request sent it in another taxonomy
    /// (`cattax`); `None` when `bcat` is read as sent.
    pub bcat_v1: Option<Vec<&'static str>>,
    /// For whom the user is on the do-not-contact list; `None` for most
    /// (and without a user key: only a recognised user can be on it).
    pub suppressed: Option<std::sync::Arc<crate::audience::suppression::Suppressed>>,
    /// Predicts value-based campaigns' responses per impression (set by the
    /// bidder after enrichment); `None`: their smoothed rates.
    pub predictor: Option<&'a dyn crate::outcome::Predictor>,
    /// Learned first-price shading (set by the bidder after enrichment when
    /// `bidding.shading = "learned"`); `None`: the fixed factor.
    pub shading: Option<&'a crate::pacing::shading::Shading>,
    /// Per world time zone: (local day, hour of week), computed on first use.
    local_time: Vec<Cell<Option<(i64, usize)>>>,
    world: &'a World,
}

impl BidCtx<'_> {
    /// Local day number and hour of the week in the world's time zone `tz`.
    pub fn local_time(&self, tz: usize) -> (i64, usize) {
        if let Some(cached) = self.local_time[tz].get() {
            return cached;
        }
        let zone = &self.world.time_zones[tz];
        let computed = zone.local_day_and_hour(self.now);
        self.local_time[tz].set(Some(computed));
        computed
    }
}

fn non_empty<'a>(text: &'a Option<Text<'a>>) -> Option<&'a str> {
    text.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The user's id, first found in the configured order. An all-zero IFA is
/// "no id" (that is what devices send when tracking is limited).
fn user_id<'a>(request: &'a BidRequest<'a>, order: &'a [UserIdSource]) -> Option<(&'a UserIdSource, &'a str)> {
    let user = request.user.as_ref();
    order.iter().find_map(|source| {
        let id = match source {
            UserIdSource::BuyerUid => user.and_then(|u| non_empty(&u.buyeruid)),
            UserIdSource::UserId => user.and_then(|u| non_empty(&u.id)),
            UserIdSource::Ifa => request
                .device
                .as_ref()
                .and_then(|d| non_empty(&d.ifa))
                .filter(|ifa| ifa.bytes().any(|b| b != b'0' && b != b'-')),
            UserIdSource::Eid(wanted) => user.and_then(|u| extended_id(u, wanted)),
        };
        id.map(|id| (source, id))
    })
}

/// The first id from source `wanted` in `user.eids` (2.6) or
/// `user.ext.eids` (2.5).
fn extended_id<'a>(user: &'a crate::openrtb::User<'a>, wanted: &str) -> Option<&'a str> {
    let ext = user.ext.as_ref().map_or(&[][..], |ext| &ext.eids[..]);
    user.eids
        .iter()
        .chain(ext)
        .filter(|eid| {
            eid.source
                .as_deref()
                .is_some_and(|s| s.trim().eq_ignore_ascii_case(wanted))
        })
        .find_map(|eid| eid.uids.iter().find_map(|uid| non_empty(&uid.id)))
}

/// The user's key: the first configured source's id, hashed; a `buyeruid`
/// that an exchange with user sync knows as its own id resolves to our
/// user (the match table, [`crate::audience::matches`]).
fn resolve_user(
    request: &BidRequest,
    order: &[UserIdSource],
    exchange: &Exchange,
    audience: &Audience,
    now: Timestamp,
) -> Option<u64> {
    let (source, id) = user_id(request, order)?;
    if *source == UserIdSource::BuyerUid
        && exchange.sync_url.is_some()
        && !audience.matches.is_empty()
        && let Some(ours) = audience.matches.lookup(&exchange.name, id, now.as_second() as u32)
    {
        return Some(ours);
    }
    Some(user_key(id))
}

/// The exchange's data segments (`user.data`) that stand for ours.
fn mapped_segments(request: &BidRequest, exchange: &Exchange, facts: &mut RequestFacts) {
    let Some(user) = &request.user else { return };
    for data in &user.data {
        let provider = |name: &str| {
            data.id.as_deref().is_some_and(|id| id == name) || data.name.as_deref().is_some_and(|n| n == name)
        };
        for segment in &data.segment {
            let Some(id) = segment.id.as_deref() else { continue };
            for mapping in exchange
                .segment_map
                .iter()
                .filter(|m| m.segment == id && provider(&m.data))
            {
                facts.segments.extend_from_slice(&mapping.to);
            }
        }
    }
}

/// Picks the response currency: the exchange's when the request names none,
/// else the base currency if listed, else the first listed one we can price.
fn response_currency(request: &BidRequest, exchange: &Exchange, world: &World) -> Option<Currency> {
    if request.cur.is_empty() {
        return Some(exchange.currency);
    }
    let listed: Vec<Currency> = request.cur.iter().filter_map(|c| Currency::parse(c)).collect();
    let base = world.settings.base_currency();
    if listed.contains(&base) {
        return Some(base);
    }
    listed.into_iter().find(|c| world.settings.fx.knows(*c))
}

/// Page host from a URL, for sites that send `page` but no `domain`.
fn host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

/// The 1.0 categories a 2.x `bcat` blocks; `None` when one of its ids is
/// in no table (the list cannot be read).
fn bcat_in_v1(request: &BidRequest) -> Option<Vec<&'static str>> {
    let mut codes = Vec::new();
    for id in &request.bcat {
        codes.extend_from_slice(cattax::blocked_v1(id)?);
    }
    Some(codes)
}

/// Site or app categories as 1.0 codes: as sent in 1.0, translated from
/// 2.x, none from a taxonomy the bidder cannot read.
fn push_categories<'a>(facts: &mut RequestFacts<'a>, cattax: Option<i32>, lists: [&'a [Text<'a>]; 3]) {
    let categories = lists.into_iter().flatten();
    match Taxonomy::of(cattax) {
        Taxonomy::V1 => facts.categories.extend(categories.map(|c| &**c)),
        Taxonomy::V2 => {
            for id in categories {
                facts.categories.extend_from_slice(cattax::content_v1(id));
            }
        }
        Taxonomy::Unknown => {}
    }
}

fn context_facts<'a>(request: &'a BidRequest<'a>, facts: &mut RequestFacts<'a>) {
    if let Some(site) = &request.site {
        push_categories(facts, site.cattax, [&site.cat, &site.sectioncat, &site.pagecat]);
        match non_empty(&site.domain) {
            Some(domain) => facts.domains.push(domain),
            None => facts.domains.extend(site.page.as_deref().and_then(host)),
        }
        facts
            .domains
            .extend(site.publisher.as_ref().and_then(|p| non_empty(&p.domain)));
    } else if let Some(app) = &request.app {
        push_categories(facts, app.cattax, [&app.cat, &app.sectioncat, &app.pagecat]);
        facts.domains.extend(non_empty(&app.bundle));
        facts.domains.extend(non_empty(&app.domain));
    } else if let Some(dooh) = &request.dooh {
        facts.domains.extend(non_empty(&dooh.domain));
    }
}

fn device_facts<'a>(request: &'a BidRequest<'a>, facts: &mut RequestFacts<'a>) {
    let device = request.device.as_ref();
    let geo = device
        .and_then(|d| d.geo.as_ref())
        .or(request.user.as_ref().and_then(|u| u.geo.as_ref()));
    if let Some(geo) = geo {
        facts.country = non_empty(&geo.country);
        facts.region = non_empty(&geo.region);
        facts.city = non_empty(&geo.city);
        facts.location = match (geo.lat, geo.lon) {
            (Some(lat), Some(lon)) if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => {
                Some((lat, lon))
            }
            _ => None,
        };
    }
    if let Some(device) = device {
        facts.device_type = device.devicetype.map(|d| d.0);
        facts.os = non_empty(&device.os);
        facts.connection_type = device.connectiontype.map(|c| c.0);
    }
}

fn personal_facts<'a>(
    request: &'a BidRequest<'a>,
    now: Timestamp,
    user: Option<u64>,
    audience: Audience<'_>,
    facts: &mut RequestFacts<'a>,
) {
    if let Some(user) = user {
        let from_snapshot = audience.snapshot.lookup(user);
        if audience.overlay.is_empty() {
            if let Some(segments) = from_snapshot {
                facts.segments.extend(segments.keys_with_ancestors());
            }
        } else {
            let now = now.as_second();
            audience
                .overlay
                .merge(user, audience.snapshot, from_snapshot, now, &mut facts.segments);
        }
    }
    let Some(u) = &request.user else { return };
    let year = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).year() as i64;
    facts.age = u.yob.and_then(|yob| age(year, yob));
    facts.gender = u.gender.as_deref().and_then(Gender::parse);
}

/// The age a year of birth gives in `year`, if plausible (0 to 120); any
/// `yob` an exchange sends, however extreme, is handled without overflow.
fn age(year: i64, yob: i64) -> Option<u32> {
    year.checked_sub(yob)
        .filter(|age| (0..=120).contains(age))
        .map(|age| age as u32)
}

/// Builds the context, or the reason the whole request gets no bid.
pub fn enrich<'a>(
    request: &'a BidRequest<'a>,
    world: &'a World,
    exchange_id: ExchangeId,
    audience: Audience<'_>,
    now: Timestamp,
) -> Result<BidCtx<'a>, NoBidReason> {
    let settings = &world.settings;
    let exchange = settings.exchange_at(exchange_id);
    if let Some(reason) = traffic::screen(request, settings) {
        return Err(reason);
    }
    if request.unreadable.blocks {
        return Err(NoBidReason::UnreadableBlocks);
    }
    let bcat_v1 = match Taxonomy::of(request.cattax) {
        Taxonomy::V1 => None,
        _ if request.bcat.is_empty() => None,
        // A block list that cannot be read blocks everything.
        Taxonomy::Unknown => return Err(NoBidReason::UnreadableBlocks),
        Taxonomy::V2 => Some(bcat_in_v1(request).ok_or(NoBidReason::UnreadableBlocks)?),
    };
    let currency = response_currency(request, exchange, world).ok_or(NoBidReason::Currency)?;
    let restriction = privacy::restriction(request, settings.gdpr_vendor_id);
    let user_key = resolve_user(request, &settings.user_id_order, exchange, &audience, now);
    let suppressed = user_key.and_then(|user| world.suppressions.lookup(user));
    let mut facts = RequestFacts::default();
    context_facts(request, &mut facts);
    device_facts(request, &mut facts);
    if restriction.is_none() {
        personal_facts(request, now, user_key, audience, &mut facts);
        if !exchange.segment_map.is_empty() {
            mapped_segments(request, exchange, &mut facts);
        }
    }
    Ok(BidCtx {
        request,
        exchange,
        exchange_id,
        now,
        auction: request.at.unwrap_or(AuctionType::SECOND_PRICE),
        currency,
        // Without consent the user is not recognised at all: no frequency
        // counting either.
        user_key: if restriction.is_none() { user_key } else { None },
        restriction,
        facts,
        bcat_v1,
        suppressed,
        predictor: None,
        shading: None,
        local_time: (0..world.time_zones.len()).map(|_| Cell::new(None)).collect(),
        world,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_at_the_extremes_of_yob() {
        assert_eq!(age(2026, 1990), Some(36));
        assert_eq!(age(2026, 2026), Some(0));
        assert_eq!(age(2026, 1906), Some(120));
        assert_eq!(age(2026, 1905), None);
        assert_eq!(age(2026, 2027), None);
        assert_eq!(age(2026, i64::MIN), None, "no overflow");
        assert_eq!(age(2026, i64::MAX), None);
    }

    #[test]
    fn hosts_from_page_urls() {
        assert_eq!(host("https://www.example.com/a/b?c"), Some("www.example.com"));
        assert_eq!(host("http://user@example.com:8080/"), Some("example.com"));
        assert_eq!(host("example.org"), Some("example.org"));
        assert_eq!(host("https:///x"), None);
    }

    #[test]
    fn user_ids_in_configured_order() {
        let request: BidRequest = serde_json::from_str(
            r#"{"user":{"id":"uid","buyeruid":"buyer","eids":[{"source":"other.com","uids":[{"id":"x"}]},{"source":"LiveRamp.com","uids":[{"id":"ramp-1"}]}],
                "ext":{"eids":[{"source":"id5-sync.com","uids":[{"id":"id5-1"}]}]}},
                "device":{"ifa":"00000000-0000-0000-0000-000000000000"}}"#,
        )
        .unwrap();
        let id = |order: &[UserIdSource]| user_id(&request, order).map(|(_, id)| id.to_string());
        let all = [UserIdSource::BuyerUid, UserIdSource::UserId, UserIdSource::Ifa];
        assert_eq!(id(&all).as_deref(), Some("buyer"));
        assert_eq!(
            id(&[UserIdSource::UserId, UserIdSource::BuyerUid]).as_deref(),
            Some("uid")
        );
        assert_eq!(id(&[UserIdSource::Ifa]), None);
        let ramp = UserIdSource::Eid("liveramp.com".into());
        assert_eq!(id(&[ramp, UserIdSource::BuyerUid]).as_deref(), Some("ramp-1"));
        let id5 = UserIdSource::Eid("id5-sync.com".into());
        assert_eq!(id(&[id5]).as_deref(), Some("id5-1"), "2.5 placement in user.ext");
        let absent = UserIdSource::Eid("uidapi.com".into());
        assert_eq!(id(&[absent, UserIdSource::UserId]).as_deref(), Some("uid"));
    }
}
