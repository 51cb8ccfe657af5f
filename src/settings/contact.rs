//! Contact rules: how often, how much and whom an advertiser may reach,
//! across all of its campaigns (`[[advertiser]]`), and how many responses
//! a campaign or an advertiser can handle (`capacity`).
//!
//! Typed and validated here, below `campaigns` (a campaign's capacity is
//! the same type); enforced on the bid path by `bidder::contact`, counted
//! in `live::contact`.

use crate::money::Micros;

/// An advertiser's rules across its campaigns. All absent by default: an
/// advertiser without rules costs the bid path nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContactRules {
    /// Most the advertiser's campaigns spend together per day (days in the
    /// advertiser's time zone), base currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_budget: Option<Micros>,
    /// Contacts (impressions) per user across the advertiser's campaigns.
    #[serde(skip_serializing_if = "ContactCap::is_none")]
    pub frequency: ContactCap,
    /// Users in this segment (or below it) are never bid on for the
    /// advertiser: its do-not-contact list as an audience segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppress_segment: Option<String>,
    /// Responses the advertiser can take, across its campaigns.
    #[serde(skip_serializing_if = "Capacity::is_none")]
    pub capacity: Capacity,
}

impl ContactRules {
    /// True when no rule is set.
    pub fn is_none(&self) -> bool {
        self.daily_budget.is_none()
            && self.frequency.is_none()
            && self.suppress_segment.is_none()
            && self.capacity.is_none()
    }
}

/// Most contacts of one user, per day and per week (Monday to Sunday), in
/// the advertiser's time zone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContactCap {
    /// Per local day; `None` means no daily cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
    /// Per local week, Monday first; `None` means no weekly cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_week: Option<u32>,
}

impl ContactCap {
    /// True when neither cap is set.
    pub fn is_none(&self) -> bool {
        self.per_day.is_none() && self.per_week.is_none()
    }
}

/// Most responses per local hour and day (a call centre's capacity):
/// past one, bidding stops within a second, and resumes when the hour
/// (or day) turns. Responses after the cap still count and are recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capacity {
    /// Billable clicks per local hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clicks_per_hour: Option<u32>,
    /// Billable clicks per local day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clicks_per_day: Option<u32>,
    /// Counted conversions per local hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversions_per_hour: Option<u32>,
    /// Counted conversions per local day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversions_per_day: Option<u32>,
}

impl Capacity {
    /// True when no cap is set.
    pub fn is_none(&self) -> bool {
        *self == Capacity::default()
    }

    /// True when these counts (this hour's and today's clicks and
    /// conversions) reach a cap.
    pub fn reached(&self, counts: ResponseCounts) -> bool {
        let at = |cap: Option<u32>, count: u64| cap.is_some_and(|cap| count >= u64::from(cap));
        at(self.clicks_per_hour, counts.clicks_hour)
            || at(self.clicks_per_day, counts.clicks_day)
            || at(self.conversions_per_hour, counts.conversions_hour)
            || at(self.conversions_per_day, counts.conversions_day)
    }
}

/// Responses counted in the current local hour and day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResponseCounts {
    /// Billable clicks this hour.
    pub clicks_hour: u64,
    /// Billable clicks today.
    pub clicks_day: u64,
    /// Counted conversions this hour.
    pub conversions_hour: u64,
    /// Counted conversions today.
    pub conversions_day: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_reached_at_any_cap() {
        let capacity = Capacity {
            clicks_per_hour: Some(2),
            conversions_per_day: Some(5),
            ..Capacity::default()
        };
        let counts = |clicks_hour, conversions_day| ResponseCounts {
            clicks_hour,
            clicks_day: 100,
            conversions_hour: 100,
            conversions_day,
        };
        assert!(!capacity.reached(counts(1, 4)));
        assert!(capacity.reached(counts(2, 4)));
        assert!(capacity.reached(counts(0, 5)));
        assert!(
            !Capacity::default().reached(counts(1000, 1000)),
            "no cap, never reached"
        );
    }
}
