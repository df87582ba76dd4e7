//! The latency-over-time plot, as SVG (any browser shows it): each saga's latency by when it
//! ended, with the p99 of every second drawn over it, and below, the outbox backlog and consumer
//! lag of the same time.

use super::sample::Sample;
use std::fmt::Write as _;

/// One saga on the plot: when it ended (seconds since the phase started) and its latency.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub t: f64,
    pub ms: f64,
}

const W: f64 = 900.0;
const TOP_H: f64 = 300.0;
const BOTTOM_H: f64 = 140.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const GAP: f64 = 50.0;

/// The p99 of each whole second.
pub fn p99_per_second(points: &[Point]) -> Vec<Point> {
    let mut by_second: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    for p in points {
        by_second.entry(p.t.floor() as i64).or_default().push(p.ms);
    }
    by_second
        .into_iter()
        .map(|(s, mut v)| {
            v.sort_by(f64::total_cmp);
            Point {
                t: s as f64 + 0.5,
                ms: super::report::percentile(&v, 99.0),
            }
        })
        .collect()
}

/// The SVG document.
pub fn svg(title: &str, points: &[Point], samples: &[Sample]) -> String {
    let t_max = points
        .iter()
        .map(|p| p.t)
        .chain(samples.iter().map(|s| s.t))
        .fold(1.0_f64, f64::max);
    let ms_max = nice(points.iter().map(|p| p.ms).fold(1.0_f64, f64::max));
    let load_max = nice(
        samples
            .iter()
            .map(|s| s.outbox_backlog.max(0) as f64)
            .chain(samples.iter().map(|s| s.consumer_lag as f64))
            .fold(1.0_f64, f64::max),
    );
    let plot_w = W - LEFT - RIGHT;
    let x = |t: f64| LEFT + t / t_max * plot_w;
    let y_top = |ms: f64| 30.0 + TOP_H - ms / ms_max * TOP_H;
    let bottom0 = 30.0 + TOP_H + GAP;
    let y_bottom = |v: f64| bottom0 + BOTTOM_H - v / load_max * BOTTOM_H;
    let height = bottom0 + BOTTOM_H + 56.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        escape(title)
    );
    axes(&mut s, 30.0, TOP_H, t_max, ms_max, "latency ms", &x);
    axes(&mut s, bottom0, BOTTOM_H, t_max, load_max, "events", &x);
    // Thin the dots to a few thousand, evenly.
    let step = (points.len() / 4000).max(1);
    for p in points.iter().step_by(step) {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="1.3" fill="#4a7ebb" fill-opacity="0.35"/>"##,
            x(p.t),
            y_top(p.ms)
        );
    }
    let p99: Vec<(f64, f64)> = p99_per_second(points).iter().map(|p| (p.t, p.ms)).collect();
    for run in runs(&p99) {
        polyline(
            &mut s,
            run.iter().map(|(t, v)| (x(*t), y_top(*v))),
            "#d62728",
        );
    }
    let backlog: Vec<(f64, f64)> = samples
        .iter()
        .map(|v| (v.t, v.outbox_backlog.max(0) as f64))
        .collect();
    for run in runs(&backlog) {
        polyline(
            &mut s,
            run.iter().map(|(t, v)| (x(*t), y_bottom(*v))),
            "#2ca02c",
        );
    }
    let lag: Vec<(f64, f64)> = samples
        .iter()
        .map(|v| (v.t, v.consumer_lag as f64))
        .collect();
    for run in runs(&lag) {
        polyline(
            &mut s,
            run.iter().map(|(t, v)| (x(*t), y_bottom(*v))),
            "#ff7f0e",
        );
    }
    let legend_y = height - 8.0;
    for (i, (color, label)) in [
        ("#4a7ebb", "a saga's latency"),
        ("#d62728", "p99 per second"),
        ("#2ca02c", "outbox backlog"),
        ("#ff7f0e", "consumer lag"),
    ]
    .iter()
    .enumerate()
    {
        let lx = LEFT + i as f64 * 170.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{}" width="12" height="4" fill="{color}"/><text x="{}" y="{legend_y}">{label}</text>"#,
            legend_y - 6.0,
            lx + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds</text>"#,
        LEFT + plot_w / 2.0,
        bottom0 + BOTTOM_H + 26.0
    );
    s.push_str("</svg>\n");
    s
}

fn axes(
    s: &mut String,
    top: f64,
    h: f64,
    t_max: f64,
    v_max: f64,
    label: &str,
    x: &dyn Fn(f64) -> f64,
) {
    let bottom = top + h;
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#333"/><line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>"##,
        W - RIGHT
    );
    for i in 0..=4 {
        let v = v_max * f64::from(i) / 4.0;
        let y = bottom - h * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            trim(v)
        );
    }
    for i in 0..=5 {
        let t = t_max * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(t),
            bottom + 14.0,
            trim(t)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">{label}</text>"#,
        top + h / 2.0,
        top + h / 2.0
    );
}

/// Splits a series where more than two seconds pass between points (another phase ran), so that
/// no line is drawn across the gap.
fn runs(series: &[(f64, f64)]) -> Vec<&[(f64, f64)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..series.len() {
        if series[i].0 - series[i - 1].0 > 2.0 {
            runs.push(&series[start..i]);
            start = i;
        }
    }
    if start < series.len() {
        runs.push(&series[start..]);
    }
    runs
}

fn polyline(s: &mut String, points: impl Iterator<Item = (f64, f64)>, color: &str) {
    let pts: Vec<String> = points.map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    if pts.len() > 1 {
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{}"/>"#,
            pts.join(" ")
        );
    }
}

/// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
fn nice(v: f64) -> f64 {
    let exp = v.max(1e-9).log10().floor();
    let base = 10f64.powf(exp);
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * base)
}

fn trim(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_bounds_are_round() {
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(12.0), 20.0);
        assert_eq!(nice(430.0), 500.0);
    }

    #[test]
    fn the_plot_is_an_svg_with_a_p99_line_and_the_backlog() {
        let points: Vec<Point> = (0..300)
            .map(|i| Point {
                t: f64::from(i) / 100.0,
                ms: f64::from(i % 50),
            })
            .collect();
        let samples = vec![
            Sample {
                t: 0.0,
                outbox_backlog: 3,
                consumer_lag: 10,
                ended: 0,
            },
            Sample {
                t: 1.0,
                outbox_backlog: 0,
                consumer_lag: 2,
                ended: 100,
            },
        ];
        let svg = svg("bench <default>", &points, &samples);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("bench &lt;default&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        let gap = [(0.0, 1.0), (0.5, 2.0), (10.0, 1.0), (10.5, 1.0)];
        assert_eq!(runs(&gap).len(), 2, "no line across a gap");
        assert_eq!(p99_per_second(&points).len(), 3);
    }
}
