//! Charts as inline SVG, drawn on the server: line and bar charts with
//! axes and labels, so they render offline and under a CSP without
//! scripts.
//!
//! Hand-written rather than a charting crate (`plotters` and the like):
//! the browser tests and any script reading the page need one element per
//! data point carrying its raw number (`data-value`, money as a decimal
//! string in the base currency, counts as integers), and every chart is
//! an `<svg data-chart="…">`; no crate writes data attributes. Colours
//! and fonts come from classes styled in `console.css`. Every text is
//! escaped here, since the result is inserted into pages unescaped.

use std::fmt::Write as _;

use crate::money::Micros;

/// One data point: where it is drawn, what `data-value` says, what the
/// tooltip says.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Its height, in the chart's unit.
    pub y: f64,
    /// The raw number for `data-value`.
    pub raw: String,
    /// The readable number for the tooltip.
    pub shown: String,
}

impl Point {
    /// An amount of money (base currency).
    pub fn money(amount: Micros, shown: String) -> Point {
        Point {
            y: amount.0 as f64 / 1_000_000.0,
            raw: amount.to_string(),
            shown,
        }
    }

    /// A count.
    pub fn count(n: u64) -> Point {
        Point {
            y: n as f64,
            raw: n.to_string(),
            shown: super::format::count(n),
        }
    }
}

/// One line (or set of bars); `None` where there is no point (a future
/// hour).
#[derive(Clone, Debug)]
pub struct Series {
    /// Shown in the legend.
    pub name: String,
    /// Styled in `console.css` (`actual`, `target`, `spend`).
    pub class: &'static str,
    /// One per label.
    pub points: Vec<Option<Point>>,
}

/// A chart to draw.
#[derive(Clone, Debug)]
pub struct Chart {
    /// `data-chart` (`pacing`, `spend-hourly`, `spend-daily`).
    pub name: &'static str,
    /// The accessible title.
    pub title: String,
    /// The x axis' labels, one per point.
    pub labels: Vec<String>,
    /// The data.
    pub series: Vec<Series>,
    /// Width and height of the drawing, in CSS pixels (it scales down).
    pub size: (u32, u32),
    /// Formats the y axis' ticks.
    pub y_label: fn(f64) -> String,
}

const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 26.0;

/// Escapes text for an XML attribute or element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `max` (1 for nothing).
fn nice_ceiling(max: f64) -> f64 {
    if max.is_nan() || max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max * 0.999_999)
        .unwrap_or(10.0 * magnitude)
}

/// Where things go on the drawing.
struct Frame {
    width: f64,
    height: f64,
    top_value: f64,
    slots: usize,
}

impl Frame {
    fn of(chart: &Chart) -> Frame {
        let max = chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().flatten())
            .map(|p| p.y)
            .fold(0.0, f64::max);
        Frame {
            width: f64::from(chart.size.0),
            height: f64::from(chart.size.1),
            top_value: nice_ceiling(max),
            slots: chart.labels.len().max(1),
        }
    }

    fn plot_width(&self) -> f64 {
        self.width - LEFT - RIGHT
    }

    fn plot_height(&self) -> f64 {
        self.height - TOP - BOTTOM
    }

    /// The centre of slot `i`.
    fn x(&self, i: usize) -> f64 {
        LEFT + self.plot_width() * (i as f64 + 0.5) / self.slots as f64
    }

    fn y(&self, value: f64) -> f64 {
        TOP + self.plot_height() * (1.0 - (value / self.top_value).clamp(0.0, 1.0))
    }
}

fn open(out: &mut String, chart: &Chart, kind: &str, frame: &Frame) {
    let _ = write!(
        out,
        r#"<svg class="chart {kind}" data-chart="{}" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        chart.name,
        frame.width,
        frame.height,
        frame.width,
        frame.height,
        escape(&chart.title)
    );
    let _ = write!(out, "<title>{}</title>", escape(&chart.title));
}

/// Gridlines, y ticks and x labels (at most about eight, evenly spaced).
fn axes(out: &mut String, chart: &Chart, frame: &Frame) {
    out.push_str(r#"<g class="axes">"#);
    for step in 0..=4 {
        let value = frame.top_value * f64::from(step) / 4.0;
        let y = frame.y(value);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            frame.width - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&(chart.y_label)(value))
        );
    }
    let every = chart.labels.len().div_ceil(8).max(1);
    for (i, label) in chart.labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            frame.x(i),
            frame.height - 8.0,
            escape(label)
        );
    }
    out.push_str("</g>");
}

fn point_title(chart: &Chart, series: &Series, i: usize, point: &Point) -> String {
    let label = chart.labels.get(i).map_or("", String::as_str);
    escape(&format!("{} {label}: {}", series.name, point.shown))
}

fn legend(out: &mut String, chart: &Chart) {
    if chart.series.len() < 2 {
        return;
    }
    out.push_str(r#"<g class="legend">"#);
    for (n, series) in chart.series.iter().enumerate() {
        let x = LEFT + 8.0 + 130.0 * n as f64;
        let _ = write!(
            out,
            r#"<rect class="key {}" x="{x:.1}" y="2" width="10" height="10"/><text class="tick" x="{:.1}" y="11">{}</text>"#,
            series.class,
            x + 14.0,
            escape(&series.name)
        );
    }
    out.push_str("</g>");
}

/// A line chart: one polyline per series (broken where a point is
/// missing), one circle per point.
pub fn line(chart: &Chart) -> String {
    let frame = Frame::of(chart);
    let mut out = String::new();
    open(&mut out, chart, "line", &frame);
    axes(&mut out, chart, &frame);
    for series in &chart.series {
        let _ = write!(out, r#"<g class="series {}">"#, series.class);
        let mut path = String::new();
        let mut pen_down = false;
        for (i, point) in series.points.iter().enumerate() {
            match point {
                Some(p) => {
                    let command = if pen_down { 'L' } else { 'M' };
                    let _ = write!(path, "{command}{:.1} {:.1} ", frame.x(i), frame.y(p.y));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !path.is_empty() {
            let _ = write!(out, r#"<path class="line" d="{}"/>"#, path.trim_end());
        }
        for (i, point) in series.points.iter().enumerate() {
            if let Some(p) = point {
                let _ = write!(
                    out,
                    r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="3" data-value="{}"><title>{}</title></circle>"#,
                    frame.x(i),
                    frame.y(p.y),
                    escape(&p.raw),
                    point_title(chart, series, i, p)
                );
            }
        }
        out.push_str("</g>");
    }
    legend(&mut out, chart);
    out.push_str("</svg>");
    out
}

/// A bar chart of the first series: one bar per point.
pub fn bar(chart: &Chart) -> String {
    let frame = Frame::of(chart);
    let mut out = String::new();
    open(&mut out, chart, "bar", &frame);
    axes(&mut out, chart, &frame);
    let slot = frame.plot_width() / frame.slots as f64;
    let width = (slot * 0.7).max(1.0);
    for series in chart.series.iter().take(1) {
        let _ = write!(out, r#"<g class="series {}">"#, series.class);
        for (i, point) in series.points.iter().enumerate() {
            let Some(p) = point else { continue };
            let y = frame.y(p.y);
            let _ = write!(
                out,
                r#"<rect class="bar" x="{:.1}" y="{y:.1}" width="{width:.1}" height="{:.1}" data-value="{}"><title>{}</title></rect>"#,
                frame.x(i) - width / 2.0,
                (TOP + frame.plot_height() - y).max(0.0),
                escape(&p.raw),
                point_title(chart, series, i, p)
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points: Vec<Option<Point>>) -> Chart {
        Chart {
            name: "spend-hourly",
            title: "Spend <today>".into(),
            labels: (0..points.len()).map(|h| format!("{h:02}h")).collect(),
            series: vec![Series {
                name: "Spend".into(),
                class: "spend",
                points,
            }],
            size: (600, 200),
            y_label: |v| format!("{v:.0}"),
        }
    }

    fn money(micros: i64) -> Option<Point> {
        Some(Point::money(Micros(micros), format!("${micros}")))
    }

    #[test]
    fn every_point_carries_its_raw_value() {
        let svg = line(&chart(vec![money(0), money(1_500_000), None, money(2_250_000)]));
        assert!(svg.starts_with(r#"<svg class="chart line" data-chart="spend-hourly""#));
        assert_eq!(svg.matches("<circle").count(), 3);
        for value in [r#"data-value="0""#, r#"data-value="1.5""#, r#"data-value="2.25""#] {
            assert!(svg.contains(value), "{value} in {svg}");
        }
        let path = svg
            .split(r#"class="line" d=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(path.matches('M').count(), 2, "the line breaks at the gap: {path}");
        assert!(
            svg.contains("Spend &lt;today&gt;") && !svg.contains("<today>"),
            "text is escaped"
        );
        let bars = bar(&chart(vec![money(1_000_000), None, Some(Point::count(7))]));
        assert_eq!(bars.matches("<rect class=\"bar\"").count(), 2);
        assert!(bars.contains(r#"data-value="7""#));
    }

    #[test]
    fn the_axis_ends_on_a_round_number_above_the_data() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(1234.0), 2000.0);
        assert_eq!(nice_ceiling(0.03), 0.05);
        let svg = bar(&chart(vec![money(3_200_000)]));
        assert!(svg.contains(">5</text>"), "top tick at 5: {svg}");
    }

    #[test]
    fn an_empty_chart_still_draws_its_axes() {
        let svg = line(&chart(vec![]));
        assert!(svg.contains("data-chart=\"spend-hourly\"") && svg.ends_with("</svg>"));
        assert!(!svg.contains("data-value"));
    }
}
