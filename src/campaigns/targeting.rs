//! Compiled targeting rules and the request facts they are tested against.
//!
//! Each rule answers "may this campaign bid on this impression?" and, when
//! not, names the [`FilterReason`] — which feeds the per-campaign "why not
//! bidding" breakdown. Rules on personal data (segments, age, gender) see
//! nothing when the request's privacy signals forbid personal data.

use crate::audience::SegmentKey;

use super::geo::GeoCircle;

/// Why a campaign did not bid on an impression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FilterReason {
    /// The campaign is paused.
    Paused,
    /// Outside the campaign's flight dates.
    Flight,
    /// The campaign does not buy on this exchange.
    Exchange,
    /// The campaign's seat is not allowed (`wseat`/`bseat`).
    Seat,
    /// The user does not match the segment rule.
    Segment,
    /// Outside the targeted countries, regions, cities or circles.
    Geo,
    /// Age unknown or outside the targeted range.
    Age,
    /// Gender unknown or not targeted.
    Gender,
    /// Device type unknown or not targeted.
    Device,
    /// Operating system unknown or not targeted.
    Os,
    /// Connection type unknown or not targeted.
    Connection,
    /// Site or app category not allowed, or blocked.
    Category,
    /// Site domain or app bundle not allowed, or blocked.
    Domain,
    /// Outside the campaign's hours of the week.
    Daypart,
    /// The user reached a frequency cap, or is unknown to a capped campaign.
    Frequency,
    /// Today's budget is spent or reserved.
    Budget,
    /// The even-pacing throttle held this opportunity back.
    Pacing,
    /// The campaign's value does not reach the floor.
    Floor,
    /// No creative fits the slot (size, MIME type, duration, blocked
    /// attributes, a native request's required assets).
    Creative,
    /// An advertiser domain is in `badv`.
    BlockedAdvertiser,
    /// A campaign category is in `bcat`.
    BlockedCategory,
    /// The advertised app is in `bapp`.
    BlockedApp,
    /// The deal's seat or advertiser allowlist excludes the campaign.
    Deal,
    /// The impression is a private auction the campaign has no deal in.
    PrivateAuction,
    /// The campaign runs an experiment that leaves out users without an id
    /// (`users_without_id = "exclude"`), and this one has none.
    ExperimentNoUserId,
    /// The campaign would have bid, but the user is in its experiment's
    /// holdout arm.
    Holdout,
    /// The user is on the advertiser's do-not-contact list (its
    /// suppression segment, a suppression of the user, or an erasure).
    Suppressed,
    /// The advertiser's daily budget (across its campaigns) is spent or
    /// reserved.
    AdvertiserBudget,
    /// The user reached the advertiser's contact cap (across its
    /// campaigns), or is unknown to a capped advertiser.
    AdvertiserFrequency,
    /// The campaign reached a capacity cap (clicks or conversions per hour
    /// or day).
    Capacity,
    /// The advertiser reached a capacity cap (across its campaigns).
    AdvertiserCapacity,
}

impl FilterReason {
    /// Every reason, in declaration order (`reason as usize` indexes it).
    pub const ALL: [FilterReason; 31] = [
        FilterReason::Paused,
        FilterReason::Flight,
        FilterReason::Exchange,
        FilterReason::Seat,
        FilterReason::Segment,
        FilterReason::Geo,
        FilterReason::Age,
        FilterReason::Gender,
        FilterReason::Device,
        FilterReason::Os,
        FilterReason::Connection,
        FilterReason::Category,
        FilterReason::Domain,
        FilterReason::Daypart,
        FilterReason::Frequency,
        FilterReason::Budget,
        FilterReason::Pacing,
        FilterReason::Floor,
        FilterReason::Creative,
        FilterReason::BlockedAdvertiser,
        FilterReason::BlockedCategory,
        FilterReason::BlockedApp,
        FilterReason::Deal,
        FilterReason::PrivateAuction,
        FilterReason::ExperimentNoUserId,
        FilterReason::Holdout,
        FilterReason::Suppressed,
        FilterReason::AdvertiserBudget,
        FilterReason::AdvertiserFrequency,
        FilterReason::Capacity,
        FilterReason::AdvertiserCapacity,
    ];
    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// Snake-case name, as in metric labels and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterReason::Paused => "paused",
            FilterReason::Flight => "flight",
            FilterReason::Exchange => "exchange",
            FilterReason::Seat => "seat",
            FilterReason::Segment => "segment",
            FilterReason::Geo => "geo",
            FilterReason::Age => "age",
            FilterReason::Gender => "gender",
            FilterReason::Device => "device",
            FilterReason::Os => "os",
            FilterReason::Connection => "connection",
            FilterReason::Category => "category",
            FilterReason::Domain => "domain",
            FilterReason::Daypart => "daypart",
            FilterReason::Frequency => "frequency",
            FilterReason::Budget => "budget",
            FilterReason::Pacing => "pacing",
            FilterReason::Floor => "floor",
            FilterReason::Creative => "creative",
            FilterReason::BlockedAdvertiser => "blocked_advertiser",
            FilterReason::BlockedCategory => "blocked_category",
            FilterReason::BlockedApp => "blocked_app",
            FilterReason::Deal => "deal",
            FilterReason::PrivateAuction => "private_auction",
            FilterReason::ExperimentNoUserId => "experiment_no_user_id",
            FilterReason::Holdout => "holdout",
            FilterReason::Suppressed => "suppressed",
            FilterReason::AdvertiserBudget => "advertiser_budget",
            FilterReason::AdvertiserFrequency => "advertiser_frequency",
            FilterReason::Capacity => "capacity",
            FilterReason::AdvertiserCapacity => "advertiser_capacity",
        }
    }
}

/// Gender as OpenRTB sends it (`user.gender`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gender {
    /// `M`: male.
    Male,
    /// `F`: female.
    Female,
    /// `O`: known to be neither.
    Other,
}

impl Gender {
    /// Reads `M`, `F` or `O` (either case); `None` for anything else.
    pub fn parse(text: &str) -> Option<Gender> {
        match text.trim() {
            "M" | "m" => Some(Gender::Male),
            "F" | "f" => Some(Gender::Female),
            "O" | "o" => Some(Gender::Other),
            _ => None,
        }
    }
}

/// Segment rules: any-of, all-of, none-of, over the hierarchy.
#[derive(Clone, Debug, Default)]
pub struct SegmentRule {
    /// The user must hold at least one of these; empty means no such rule.
    pub any: Vec<SegmentKey>,
    /// The user must hold all of these.
    pub all: Vec<SegmentKey>,
    /// The user must hold none of these.
    pub none: Vec<SegmentKey>,
}

impl SegmentRule {
    /// True when the rule needs the user to be in some segment.
    pub fn requires_membership(&self) -> bool {
        !self.any.is_empty() || !self.all.is_empty()
    }

    /// `user` is the user's segment keys with ancestors, in any order.
    pub fn matches(&self, user: &[SegmentKey]) -> bool {
        // A user holds a few dozen keys: a linear scan beats sorting them.
        let has = |key: &SegmentKey| user.contains(key);
        (self.any.is_empty() || self.any.iter().any(has)) && self.all.iter().all(has) && !self.none.iter().any(has)
    }

    /// The keys under which the selection index files this campaign: a user
    /// who can match must hold at least one of them.
    pub fn index_keys(&self) -> &[SegmentKey] {
        if !self.any.is_empty() {
            &self.any
        } else {
            &self.all[..self.all.len().min(1)]
        }
    }
}

/// Most impressions one user may see from one campaign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrequencyCap {
    /// Per UTC clock hour; `None` means no hourly cap.
    pub per_hour: Option<u32>,
    /// Per UTC day; `None` means no daily cap.
    pub per_day: Option<u32>,
}

/// Hours of the week (Monday 00:00 = bit 0) in the campaign's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoursOfWeek(pub [u64; 3]);

impl HoursOfWeek {
    /// No hour at all.
    pub const NONE: HoursOfWeek = HoursOfWeek([0; 3]);

    /// Adds an hour of the week (0–167).
    pub fn set(&mut self, hour_of_week: usize) {
        self.0[hour_of_week / 64] |= 1 << (hour_of_week % 64);
    }

    /// True when the hour of the week (0–167) is in the set.
    pub fn contains(&self, hour_of_week: usize) -> bool {
        hour_of_week < 168 && self.0[hour_of_week / 64] & (1 << (hour_of_week % 64)) != 0
    }
}

/// Everything a campaign targets; empty lists mean "no restriction".
#[derive(Clone, Debug, Default)]
pub struct Targeting {
    /// Who, by audience segment.
    pub segments: SegmentRule,
    /// Human-readable segment paths, for the admin API.
    pub segment_paths: Vec<String>,
    /// ISO-3166-1 alpha-3, upper case.
    pub countries: Vec<String>,
    /// Region codes (`geo.region`), any case.
    pub regions: Vec<String>,
    /// City names (`geo.city`), any case.
    pub cities: Vec<String>,
    /// Circles around points; the request must report a location inside one.
    pub circles: Vec<GeoCircle>,
    /// Age range, years, inclusive; requests without a year of birth do not match.
    pub age: Option<(u32, u32)>,
    /// Genders targeted; requests without a gender do not match.
    pub genders: Vec<Gender>,
    /// AdCOM device types ([`crate::openrtb::DeviceType`] values).
    pub device_types: Vec<i32>,
    /// Operating systems, any case (e.g. `iOS`).
    pub os: Vec<String>,
    /// AdCOM connection types ([`crate::openrtb::ConnectionType`] values).
    pub connection_types: Vec<i32>,
    /// Content categories allowed, with sub-categories (`IAB3` allows `IAB3-1`).
    pub categories_allow: Vec<String>,
    /// Content categories refused, with sub-categories.
    pub categories_block: Vec<String>,
    /// Domains or bundles allowed, with sub-domains.
    pub domains_allow: Vec<String>,
    /// Domains or bundles refused, with sub-domains.
    pub domains_block: Vec<String>,
    /// Day-parting: hours of the week, local to the campaign; `None` means every hour.
    pub hours: Option<HoursOfWeek>,
    /// Impression caps per user.
    pub frequency: FrequencyCap,
    /// Deal ids the campaign bids in.
    pub deals: Vec<String>,
    /// Bid only inside the listed deals, never in the open auction.
    pub deals_only: bool,
}

/// What the bidder knows about a request, as targeting sees it.
#[derive(Debug, Default)]
pub struct RequestFacts<'r> {
    /// The user's segments with ancestors (unordered, may repeat); empty
    /// without consent.
    pub segments: Vec<SegmentKey>,
    /// Age in years, from `user.yob`; `None` when not sent or implausible.
    pub age: Option<u32>,
    /// Gender from `user.gender`.
    pub gender: Option<Gender>,
    /// Country code (`geo.country`).
    pub country: Option<&'r str>,
    /// Region code (`geo.region`).
    pub region: Option<&'r str>,
    /// City name (`geo.city`).
    pub city: Option<&'r str>,
    /// Latitude and longitude, degrees; `None` when absent or out of range.
    pub location: Option<(f64, f64)>,
    /// AdCOM device type.
    pub device_type: Option<i32>,
    /// Operating system (`device.os`).
    pub os: Option<&'r str>,
    /// AdCOM connection type.
    pub connection_type: Option<i32>,
    /// Site or app categories (`cat`, `sectioncat`, `pagecat`).
    pub categories: Vec<&'r str>,
    /// Site domain, app bundle or app domain.
    pub domains: Vec<&'r str>,
}

/// A content category rule matches itself and its sub-categories
/// (`IAB3` matches `IAB3-1`).
pub fn category_matches(category: &str, rule: &str) -> bool {
    category.len() >= rule.len()
        && category[..rule.len()].eq_ignore_ascii_case(rule)
        && (category.len() == rule.len() || category.as_bytes()[rule.len()] == b'-')
}

/// A domain rule matches the domain and its sub-domains
/// (`foobar.com` matches `www.foobar.com`).
pub fn domain_matches(domain: &str, rule: &str) -> bool {
    let domain = domain.trim_end_matches('.');
    if domain.len() < rule.len() || !domain[domain.len() - rule.len()..].eq_ignore_ascii_case(rule) {
        return false;
    }
    domain.len() == rule.len() || domain.as_bytes()[domain.len() - rule.len() - 1] == b'.'
}

fn any_eq_ignore_case(list: &[String], value: Option<&str>) -> bool {
    value.is_some_and(|v| list.iter().any(|item| item.eq_ignore_ascii_case(v.trim())))
}

impl Targeting {
    /// Checks the static rules (everything but time, frequency and money).
    pub fn check(&self, facts: &RequestFacts) -> Result<(), FilterReason> {
        if !self.segments.matches(&facts.segments) {
            return Err(FilterReason::Segment);
        }
        self.check_geo(facts)?;
        if let Some((min, max)) = self.age
            && !facts.age.is_some_and(|age| (min..=max).contains(&age))
        {
            return Err(FilterReason::Age);
        }
        if !self.genders.is_empty() && !facts.gender.is_some_and(|g| self.genders.contains(&g)) {
            return Err(FilterReason::Gender);
        }
        if !self.device_types.is_empty() && !facts.device_type.is_some_and(|d| self.device_types.contains(&d)) {
            return Err(FilterReason::Device);
        }
        if !self.os.is_empty() && !any_eq_ignore_case(&self.os, facts.os) {
            return Err(FilterReason::Os);
        }
        if !self.connection_types.is_empty()
            && !facts
                .connection_type
                .is_some_and(|c| self.connection_types.contains(&c))
        {
            return Err(FilterReason::Connection);
        }
        self.check_context(facts)
    }

    fn check_geo(&self, facts: &RequestFacts) -> Result<(), FilterReason> {
        let listed = |list: &[String], value| list.is_empty() || any_eq_ignore_case(list, value);
        if !listed(&self.countries, facts.country)
            || !listed(&self.regions, facts.region)
            || !listed(&self.cities, facts.city)
        {
            return Err(FilterReason::Geo);
        }
        if !self.circles.is_empty()
            && !facts
                .location
                .is_some_and(|(lat, lon)| self.circles.iter().any(|c| c.contains(lat, lon)))
        {
            return Err(FilterReason::Geo);
        }
        Ok(())
    }

    fn check_context(&self, facts: &RequestFacts) -> Result<(), FilterReason> {
        let in_categories = |rules: &[String]| {
            facts
                .categories
                .iter()
                .any(|cat| rules.iter().any(|rule| category_matches(cat, rule)))
        };
        if !self.categories_allow.is_empty() && !in_categories(&self.categories_allow) {
            return Err(FilterReason::Category);
        }
        if in_categories(&self.categories_block) {
            return Err(FilterReason::Category);
        }
        let in_domains = |rules: &[String]| {
            facts
                .domains
                .iter()
                .any(|d| rules.iter().any(|rule| domain_matches(d, rule)))
        };
        if !self.domains_allow.is_empty() && !in_domains(&self.domains_allow) {
            return Err(FilterReason::Domain);
        }
        if in_domains(&self.domains_block) {
            return Err(FilterReason::Domain);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::SegmentPath;

    fn key(path: &str) -> SegmentKey {
        SegmentPath::parse(path).unwrap().key()
    }

    #[test]
    fn segment_rules_any_all_none() {
        let user = vec![key("interest"), key("interest/finance"), key("rfm"), key("rfm/gold")];
        let rule = |any: &[&str], all: &[&str], none: &[&str]| SegmentRule {
            any: any.iter().map(|p| key(p)).collect(),
            all: all.iter().map(|p| key(p)).collect(),
            none: none.iter().map(|p| key(p)).collect(),
        };
        assert!(rule(&["interest/finance", "x"], &[], &[]).matches(&user));
        assert!(!rule(&["x"], &[], &[]).matches(&user));
        assert!(rule(&[], &["interest", "rfm/gold"], &[]).matches(&user));
        assert!(!rule(&[], &["interest", "rfm/silver"], &[]).matches(&user));
        assert!(!rule(&["interest"], &[], &["rfm"]).matches(&user));
        assert!(rule(&[], &[], &["rfm/silver"]).matches(&user));
        assert!(rule(&[], &[], &[]).matches(&[]));
        assert!(!rule(&["interest"], &[], &[]).matches(&[]));
    }

    #[test]
    fn categories_and_domains_match_their_children() {
        assert!(category_matches("IAB3-1", "IAB3"));
        assert!(category_matches("iab3", "IAB3"));
        assert!(!category_matches("IAB30", "IAB3"));
        assert!(domain_matches("www.foobar.com", "foobar.com"));
        assert!(domain_matches("foobar.com", "foobar.com"));
        assert!(!domain_matches("notfoobar.com", "foobar.com"));
    }

    #[test]
    fn age_gender_and_device_rules() {
        let targeting = Targeting {
            age: Some((25, 34)),
            genders: vec![Gender::Female],
            device_types: vec![4],
            ..Targeting::default()
        };
        let mut facts = RequestFacts {
            age: Some(30),
            gender: Some(Gender::Female),
            device_type: Some(4),
            ..Default::default()
        };
        assert_eq!(targeting.check(&facts), Ok(()));
        facts.age = Some(40);
        assert_eq!(targeting.check(&facts), Err(FilterReason::Age));
        facts.age = None;
        assert_eq!(targeting.check(&facts), Err(FilterReason::Age));
        facts.age = Some(25);
        facts.gender = Some(Gender::Male);
        assert_eq!(targeting.check(&facts), Err(FilterReason::Gender));
        facts.gender = Some(Gender::Female);
        facts.device_type = Some(2);
        assert_eq!(targeting.check(&facts), Err(FilterReason::Device));
    }

    #[test]
    fn hours_of_week_bits() {
        let mut hours = HoursOfWeek::NONE;
        hours.set(0);
        hours.set(100);
        hours.set(167);
        assert!(hours.contains(0) && hours.contains(100) && hours.contains(167));
        assert!(!hours.contains(1) && !hours.contains(168));
    }
}
