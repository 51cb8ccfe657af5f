//! The SVG chart of each strategy's hourly spend (no plotting crate: a few
//! polylines).

use serde_json::Value;

/// An SVG of each strategy's hourly spend of its even-paced campaigns, as
/// shares of their day's spend, one line each, against the hourly share of
/// the traffic (dashed): what even pacing should follow (`flat` left out:
/// its campaigns run asap).
pub fn chart(report: &serde_json::Map<String, Value>) -> String {
    let (w, h, pad) = (720.0, 360.0, 40.0);
    let mut traffic: Vec<f64> = Vec::new();
    // Flat's campaigns were rewritten asap: nothing of theirs is paced.
    let mut series: Vec<(String, Vec<f64>)> = report
        .iter()
        .filter(|(name, _)| *name != "flat")
        .map(|(name, v)| {
            let mut hourly = [0.0; 24];
            let even = v["campaigns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["pacing"] == "even");
            for c in even {
                for (i, s) in c["hourly_spend_micros"].as_array().into_iter().flatten().enumerate() {
                    hourly[i] += s.as_f64().unwrap_or(0.0);
                }
                if traffic.is_empty() {
                    traffic = c["hourly_traffic_share"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_f64)
                        .collect();
                }
            }
            let total: f64 = hourly.iter().sum::<f64>().max(1.0);
            (name.clone(), hourly.iter().map(|s| s / total).collect())
        })
        .collect();
    series.push(("traffic".into(), traffic));
    let top = series.iter().flat_map(|(_, s)| s.iter().copied()).fold(1e-9, f64::max);
    let colours = ["#888", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#000"];
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    svg.push_str(&format!(
        r#"<text x="{pad}" y="16">Even-paced campaigns: share of the day's spend per hour (UTC), 0-{:.0} %, against the traffic (dashed)</text>"#,
        top * 100.0
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
        let dash = if name == "traffic" {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        svg.push_str(&format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/><text x="{}" y="{}" fill="{colour}">{name}</text>"#,
            points.join(" "),
            w - pad - 90.0,
            30.0 + 14.0 * i as f64
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
