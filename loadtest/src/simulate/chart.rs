//! The SVG chart of each strategy's hourly spend (no plotting crate: a few
//! polylines).

use serde_json::Value;

/// An SVG of each strategy's hourly spend (all campaigns), one line each.
pub fn chart(report: &serde_json::Map<String, Value>) -> String {
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
