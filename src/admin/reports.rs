//! `GET /admin/api/reports`: the CLI's report over this node's data
//! directory. Its query parameters are the CLI's flags (`date`, `from`,
//! `to`, `by`, `tz`, `campaign`; `format` is ignored: rows are JSON) plus
//! `advertiser` (only that advertiser's campaigns); its answer is the CLI's
//! JSON array of rows (by arm, one row per campaign and arm with its
//! statistics, [`crate::ledger::experiment`], against the experiments as
//! configured now). An advertiser sees its own campaigns' rows only.

use std::collections::BTreeSet;

use serde_json::json;

use super::{Answer, Call, Context};
use crate::config::documents;
use crate::ledger::experiment;
use crate::ledger::query::{By, ReportQuery};
use crate::ledger::report::{self, ReportError, Row};

/// The rows a query string asks for, restricted to what the caller sees:
/// the grouping and the rows, or the answer to give instead.
pub fn rows(cx: &Context, pairs: &[(String, String)]) -> Result<(By, Vec<Row>), Answer> {
    if !cx.principal.reads_campaigns() {
        return Err(Answer::error(403, "this token's role may not read reports"));
    }
    let advertiser = pairs
        .iter()
        .find(|(k, v)| k == "advertiser" && !v.is_empty())
        .map(|(_, v)| v.as_str());
    let flags = pairs
        .iter()
        .filter(|(k, _)| k != "advertiser")
        .map(|(k, v)| (k.as_str(), v.as_str()));
    let mut query = ReportQuery::from_pairs(flags).map_err(|e| Answer::error(400, &e.to_string()))?;
    // Everyone but an admin or a viewer without a filter is limited to the
    // campaigns of the advertisers they see (campaigns gone from the
    // config are then left out).
    let everything = cx.principal.sees("") && advertiser.is_none();
    if !everything {
        let visible: BTreeSet<String> = documents::scan(&cx.reloader.config_dir)
            .into_iter()
            .filter(|d| cx.principal.sees(d.advertiser()) && advertiser.is_none_or(|a| d.advertiser() == a))
            .map(|d| d.id)
            .collect();
        query.campaigns = Some(match query.campaigns.take() {
            Some(asked) => asked.intersection(&visible).cloned().collect(),
            None => visible,
        });
    }
    let data_dirs = [cx.reloader.data_dir.clone()];
    match report::query(&data_dirs, &query) {
        Ok(rows) => Ok((query.by, rows)),
        Err(ReportError::Query(e)) => Err(Answer::error(400, &e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "report failed");
            Err(Answer::error(503, "the billing log could not be read"))
        }
    }
}

/// Answers `GET /admin/api/reports`.
pub fn handle(cx: &Context, call: &Call) -> Answer {
    if call.method != http::Method::GET {
        return Answer::error(405, "method not allowed");
    }
    match rows(cx, &call.query) {
        // By arm: one row per campaign and arm, with its statistics.
        Ok((By::Arm, rows)) => {
            let world = cx.bidder.world.load();
            let experiments = experiment::experiments_of(world.campaigns.iter().map(|c| &c.campaign));
            Answer::ok(json!(experiment::arm_rows(&rows, &experiments, None)))
        }
        Ok((_, rows)) => Answer::ok(json!(rows)),
        Err(answer) => answer,
    }
}
