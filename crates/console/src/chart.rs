//! Charts drawn on the server as SVG: no script, no inline style (the CSP allows none), a title
//! and a data table beside each for screen readers.

use std::fmt::Write;

use iam_domain::dashboard::Bar;

const OK: &str = "#12b76a";
const FAILED: &str = "#f04438";
const NEUTRAL: &str = "#2e90fa";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A rounded-up axis maximum whose half is whole too: 2, 4, 10, 20, 40, 100, …
fn nice_max(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [2, 4, 10] {
            if step * m >= n.max(1) {
                return step * m;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Stacked bars of successes and failures; `label_every` bars carry a label under them.
pub fn stacked(
    title: &str,
    bars: &[Bar],
    short: impl Fn(&str) -> String,
    label_every: usize,
) -> String {
    let series: Vec<(String, Vec<(u64, &str)>)> = bars
        .iter()
        .map(|b| (short(&b.label), vec![(b.ok, OK), (b.failed, FAILED)]))
        .collect();
    draw(title, &series, label_every)
}

/// Plain bars of one series.
pub fn simple(
    title: &str,
    bars: &[(String, u64)],
    short: impl Fn(&str) -> String,
    label_every: usize,
) -> String {
    let series: Vec<(String, Vec<(u64, &str)>)> = bars
        .iter()
        .map(|(label, n)| (short(label), vec![(*n, NEUTRAL)]))
        .collect();
    draw(title, &series, label_every)
}

fn draw(title: &str, series: &[(String, Vec<(u64, &str)>)], label_every: usize) -> String {
    let (w, h, left, bottom, top) = (640.0_f64, 220.0_f64, 44.0_f64, 26.0_f64, 10.0_f64);
    let max = nice_max(
        series
            .iter()
            .map(|(_, parts)| parts.iter().map(|p| p.0).sum::<u64>())
            .max()
            .unwrap_or(0),
    );
    let n = series.len().max(1) as f64;
    let slot = (w - left) / n;
    let bar_w = (slot * 0.7).max(1.0);
    let plot_h = h - bottom - top;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = escape(title)
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = top + plot_h * (1.0 - frac);
        let v = (max as f64 * frac).round() as u64;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{w}" y1="{y:.1}" y2="{y:.1}" stroke="#d9dde4" stroke-width="1"/><text x="{x:.1}" y="{ty:.1}" font-size="13" text-anchor="end" fill="#5b6473">{v}</text>"##,
            x = left - 4.0,
            ty = y + 4.0
        );
    }
    for (i, (label, parts)) in series.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = top + plot_h;
        for (value, color) in parts {
            if *value == 0 {
                continue;
            }
            let bh = plot_h * (*value as f64) / (max as f64);
            y -= bh;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{bh:.1}" fill="{color}"><title>{l}: {value}</title></rect>"#,
                l = escape(label)
            );
        }
        let last = i + 1 == series.len();
        if label_every > 0 && (i % label_every == 0 || last) {
            let _ = write!(
                svg,
                r##"<text x="{cx:.1}" y="{ly:.1}" font-size="13" text-anchor="{anchor}" fill="#5b6473">{l}</text>"##,
                anchor = if last { "end" } else { "middle" },
                cx = if last { x + bar_w } else { x + bar_w / 2.0 },
                ly = h - 6.0,
                l = escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maximum_is_round() {
        assert_eq!(nice_max(0), 2);
        assert_eq!(nice_max(3), 4);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(120), 200);
    }

    #[test]
    fn bars_are_drawn_to_scale_and_labels_escaped() {
        let bars = vec![
            Bar {
                label: "<a>".into(),
                ok: 3,
                failed: 1,
            },
            Bar {
                label: "b".into(),
                ok: 0,
                failed: 0,
            },
        ];
        let svg = stacked("Sign-ins", &bars, |l| l.to_owned(), 1);
        assert!(svg.contains("&lt;a&gt;: 3"));
        assert!(svg.contains("&lt;a&gt;: 1"));
        assert!(!svg.contains("<a>"));
        assert_eq!(svg.matches("<rect").count(), 2, "empty bars draw nothing");
    }
}
