//! What a report asks for ([`ReportQuery`]): dates, grouping, time zone and
//! campaigns, read from the CLI's flags or from the admin API's query
//! string under the same names (`date`, `from`, `to`, `by`, `tz`, and
//! `campaign`), so the two cannot drift apart.

use std::collections::BTreeSet;

use jiff::civil::Date;

use super::cube::Zone;

/// What rows are grouped by, besides campaign and date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum By {
    /// One row per campaign and day.
    #[default]
    Day,
    /// Per hour of the day (in the report's time zone).
    Hour,
    /// Per exchange.
    Exchange,
    /// Per creative.
    Creative,
    /// Per site domain or app bundle/domain.
    Domain,
    /// Per country code.
    Country,
    /// Per device type.
    Device,
    /// Per experiment arm (`{experiment}/{arm}`): only events made in an
    /// arm ([`super::experiment`] adds the statistics).
    Arm,
}

impl By {
    /// Every grouping, in the CLI's order.
    pub const ALL: [By; 8] = [
        By::Day,
        By::Hour,
        By::Exchange,
        By::Creative,
        By::Domain,
        By::Country,
        By::Device,
        By::Arm,
    ];

    /// The flag's value, and the name of the row's group key.
    pub fn name(self) -> &'static str {
        match self {
            By::Day => "day",
            By::Hour => "hour",
            By::Exchange => "exchange",
            By::Creative => "creative",
            By::Domain => "domain",
            By::Country => "country",
            By::Device => "device",
            By::Arm => "arm",
        }
    }

    /// True where bids are counted (per campaign × exchange × hour), so
    /// rows carry bids and a win rate.
    pub fn counts_bids(self) -> bool {
        matches!(self, By::Day | By::Hour | By::Exchange)
    }

    fn parse(text: &str) -> Result<By, QueryError> {
        By::ALL
            .into_iter()
            .find(|by| by.name() == text)
            .ok_or_else(|| QueryError::Invalid("by", text.to_string()))
    }
}

/// A report's question. Dates are in the report's zone and inclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportQuery {
    /// First date, if bounded.
    pub from: Option<Date>,
    /// Last date, if bounded.
    pub to: Option<Date>,
    /// The grouping.
    pub by: By,
    /// The zone dates and hours are in (the campaign's by default).
    pub tz: Zone,
    /// Only these campaigns, if set (the admin API restricts an
    /// advertiser to its own).
    pub campaigns: Option<BTreeSet<String>>,
}

/// Why a report's parameters are refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A value that is not one of the accepted ones.
    #[error(
        "{0} {1:?} is not valid (dates are YYYY-MM-DD; by: day, hour, exchange, creative, domain, country, device, arm; tz: campaign, utc)"
    )]
    Invalid(&'static str, String),
    /// `date` together with `from` or `to`.
    #[error("date cannot be combined with from/to")]
    DateAndRange,
    /// `from` after `to`.
    #[error("from {0} is after to {1}")]
    Backwards(Date, Date),
    /// A parameter the report does not know.
    #[error("unknown report parameter {0:?}")]
    Unknown(String),
    /// Something a later version will do.
    #[error("not yet: {0}")]
    NotYet(&'static str),
}

fn date(name: &'static str, text: &str) -> Result<Date, QueryError> {
    Date::strptime("%Y-%m-%d", text)
        .ok()
        .filter(|_| text.len() == 10)
        .ok_or_else(|| QueryError::Invalid(name, text.to_string()))
}

/// The CLI's report flags, as text (what both front ends parse).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags<'a> {
    /// `--date`.
    pub date: Option<&'a str>,
    /// `--from`.
    pub from: Option<&'a str>,
    /// `--to`.
    pub to: Option<&'a str>,
    /// `--by`.
    pub by: Option<&'a str>,
    /// `--tz`.
    pub tz: Option<&'a str>,
    /// `--campaign` (repeated or comma-separated).
    pub campaigns: Vec<&'a str>,
}

impl ReportQuery {
    /// Validates the flags.
    pub fn from_flags(flags: &Flags<'_>) -> Result<ReportQuery, QueryError> {
        let (from, to) = match (flags.date, flags.from, flags.to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => return Err(QueryError::DateAndRange),
            (Some(day), None, None) => {
                let day = date("date", day)?;
                (Some(day), Some(day))
            }
            (None, from, to) => (
                from.map(|d| date("from", d)).transpose()?,
                to.map(|d| date("to", d)).transpose()?,
            ),
        };
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(QueryError::Backwards(from, to));
        }
        let tz = match flags.tz {
            None | Some("campaign") => Zone::Campaign,
            Some("utc") => Zone::Utc,
            Some(other) => return Err(QueryError::Invalid("tz", other.to_string())),
        };
        let campaigns: BTreeSet<String> = flags
            .campaigns
            .iter()
            .flat_map(|c| c.split(','))
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        Ok(ReportQuery {
            from,
            to,
            by: flags.by.map(By::parse).transpose()?.unwrap_or_default(),
            tz,
            campaigns: (!flags.campaigns.is_empty()).then_some(campaigns),
        })
    }

    /// Reads a URL query string (`date=…&by=domain&tz=utc&campaign=a,b`;
    /// percent-encoded values; `format` is left to the caller) with the
    /// same names and rules as the CLI's flags.
    pub fn from_query_string(query: &str) -> Result<ReportQuery, QueryError> {
        let mut decoded = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = crate::signing::decode_component(&value.replace('+', " "))
                .ok_or_else(|| QueryError::Invalid("query", pair.to_string()))?;
            decoded.push((name, value));
        }
        ReportQuery::from_pairs(decoded.iter().map(|(name, value)| (*name, value.as_str())))
    }

    /// Reads decoded query parameters (name, value), with the same names
    /// and rules as the CLI's flags (`format` is left to the caller).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<ReportQuery, QueryError> {
        let mut flags = Flags::default();
        for (name, value) in pairs {
            let slot = match name {
                "date" => &mut flags.date,
                "from" => &mut flags.from,
                "to" => &mut flags.to,
                "by" => &mut flags.by,
                "tz" => &mut flags.tz,
                "campaign" => {
                    flags.campaigns.push(value);
                    continue;
                }
                "format" => continue,
                other => return Err(QueryError::Unknown(other.to_string())),
            };
            *slot = Some(value);
        }
        ReportQuery::from_flags(&flags)
    }

    /// True when `date` is in the range.
    pub fn has_date(&self, date: Date) -> bool {
        self.from.is_none_or(|from| date >= from) && self.to.is_none_or(|to| date <= to)
    }

    /// True when the campaign is asked for.
    pub fn has_campaign(&self, campaign: &str) -> bool {
        self.campaigns.as_ref().is_none_or(|set| set.contains(campaign))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_string_and_the_flags_agree() {
        let flags = Flags {
            from: Some("2026-11-20"),
            to: Some("2026-11-24"),
            by: Some("domain"),
            tz: Some("utc"),
            campaigns: vec!["a,b", "c"],
            ..Flags::default()
        };
        let from_flags = ReportQuery::from_flags(&flags).unwrap();
        let from_query = ReportQuery::from_query_string(
            "from=2026-11-20&to=2026-11-24&by=domain&tz=utc&campaign=a%2Cb&campaign=c&format=json",
        )
        .unwrap();
        assert_eq!(from_query, from_flags);
        assert_eq!(
            from_flags.campaigns,
            Some(["a", "b", "c"].map(String::from).into_iter().collect())
        );
        assert_eq!(from_flags.tz, Zone::Utc);
        for by in By::ALL {
            let flags = Flags {
                date: Some("2026-11-24"),
                by: Some(by.name()),
                ..Flags::default()
            };
            assert_eq!(
                ReportQuery::from_query_string(&format!("date=2026-11-24&by={}", by.name())),
                ReportQuery::from_flags(&flags)
            );
        }
        assert_eq!(ReportQuery::from_query_string(""), Ok(ReportQuery::default()));
    }

    #[test]
    fn bad_parameters_are_refused_with_the_reason() {
        let refused = |q: &str| ReportQuery::from_query_string(q).unwrap_err();
        assert_eq!(refused("date=2026-11-24&from=2026-11-20"), QueryError::DateAndRange);
        assert_eq!(ReportQuery::from_query_string("by=arm").unwrap().by, By::Arm);
        assert_eq!(refused("by=week"), QueryError::Invalid("by", "week".into()));
        assert_eq!(refused("tz=paris"), QueryError::Invalid("tz", "paris".into()));
        assert_eq!(
            refused("date=24/11/2026"),
            QueryError::Invalid("date", "24/11/2026".into())
        );
        assert_eq!(refused("dates=2026-11-24"), QueryError::Unknown("dates".into()));
        assert!(matches!(
            refused("from=2026-11-25&to=2026-11-24"),
            QueryError::Backwards(..)
        ));
    }
}
