//! The report's charts, drawn by plotters' SVG backend into strings (inline SVG). A chart
//! without data is a short note instead, never an empty or degenerate plot.

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

use crate::html::escape as esc;
use crate::results::{Sample, TaskResult, percentile};
use crate::timefmt;

const W: u32 = 640;
const H: u32 = 300;

const SEVERITIES: [(&str, RGBColor); 5] = [
    ("critical", RGBColor(139, 0, 0)),
    ("high", RGBColor(207, 34, 46)),
    ("medium", RGBColor(191, 135, 0)),
    ("low", RGBColor(9, 105, 218)),
    ("info", RGBColor(110, 119, 129)),
];

fn empty(title: &str, why: &str) -> String {
    format!("<h3>{}</h3><p class=\"empty\">{}</p>", esc(title), esc(why))
}

/// `MM-DD HH:MM` of a Unix time, for axis labels.
fn short_time(t: f64) -> String {
    let s = timefmt::rfc3339(t);
    s.get(5..16).unwrap_or(&s).replace('T', " ")
}

/// What drawing one chart ends in: plotters' own error (the SVG backend's is an io::Error).
type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Draw into an SVG string; a drawing error becomes a note (it never fails the report).
fn svg(title: &str, draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Drawn) -> String {
    let mut out = String::new();
    let res = {
        let root = SVGBackend::with_string(&mut out, (W, H)).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|_| draw(&root))
            .and_then(|_| root.present())
    };
    match res {
        Ok(()) => format!("<figure aria-label=\"{}\">{out}</figure>", esc(title)),
        Err(e) => empty(title, &format!("chart not drawn: {e}")),
    }
}

/// A time range with some room, never empty.
fn x_range(ts: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = ts.clone().fold(f64::INFINITY, f64::min);
    let hi = ts.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.03).max(30.0);
    (lo - pad, hi + pad)
}

fn y_max(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v * 1.15
    } else {
        1.0
    }
}

type Series = (String, RGBColor, Vec<(f64, f64)>);

/// Lines over time with a legend.
fn lines_over_time(title: &str, y_desc: &str, series: Vec<Series>, y_top: Option<f64>) -> String {
    let all = series.iter().flat_map(|s| s.2.iter());
    let (x0, x1) = x_range(all.clone().map(|p| p.0));
    let ymax = y_top.unwrap_or_else(|| y_max(all.map(|p| p.1).fold(0.0, f64::max)));
    svg(title, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(x0..x1, 0f64..ymax)?;
        chart
            .configure_mesh()
            .max_light_lines(2)
            .x_labels(5)
            .y_labels(6)
            .x_label_formatter(&|x| short_time(*x))
            .y_desc(y_desc)
            .draw()?;
        for (name, color, points) in series {
            if points.is_empty() {
                continue;
            }
            let c = color;
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
            if points.len() <= 60 {
                chart.draw_series(points.into_iter().map(|p| Circle::new(p, 2, c.filled())))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
    })
}

/// Findings by severity of each analyzer run over time.
pub fn severity_over_time(results: &[TaskResult]) -> String {
    let title = "Findings by severity per analyzer run";
    let runs: Vec<&TaskResult> = results
        .iter()
        .filter(|r| r.findings.is_some())
        .rev()
        .collect();
    if runs.is_empty() {
        return empty(title, "No analyzer runs yet.");
    }
    let series: Vec<Series> = SEVERITIES
        .iter()
        .map(|(name, color)| {
            let pts = runs
                .iter()
                .filter_map(|r| {
                    let f = r.findings.as_ref()?;
                    let n = match *name {
                        "critical" => f.critical,
                        "high" => f.high,
                        "medium" => f.medium,
                        "low" => f.low,
                        _ => f.info,
                    };
                    Some((r.finished_ts(), n as f64))
                })
                .collect();
            (name.to_string(), *color, pts)
        })
        .collect();
    lines_over_time(
        title,
        "findings",
        series.into_iter().map(thin).collect(),
        None,
    )
}

/// At most `MAX_POINTS` points: consecutive points averaged in equal groups.
fn thin(s: Series) -> Series {
    const MAX_POINTS: usize = 120;
    let (name, color, pts) = s;
    if pts.len() <= MAX_POINTS {
        return (name, color, pts);
    }
    let per = pts.len().div_ceil(MAX_POINTS);
    let pts = pts
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect();
    (name, color, pts)
}

/// New and fixed findings per run (against the baseline).
pub fn new_vs_fixed(runs: &[(f64, u64, u64)]) -> String {
    let title = "New vs fixed findings per run";
    if runs.is_empty() {
        return empty(
            title,
            "No baseline data yet (save one with `bgrun baseline save`).",
        );
    }
    let new = runs.iter().map(|r| (r.0, r.1 as f64)).collect();
    let fixed = runs.iter().map(|r| (r.0, r.2 as f64)).collect();
    lines_over_time(
        title,
        "findings",
        vec![
            ("new".into(), RGBColor(207, 34, 46), new),
            ("fixed".into(), RGBColor(26, 127, 55), fixed),
        ],
        None,
    )
}

/// Current findings per tool, as bars.
pub fn per_tool(current: &Value) -> String {
    let title = "Current findings per tool";
    let mut counts: Vec<(String, u64)> = Vec::new();
    for f in current
        .get("findings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let t = f.get("tool").and_then(Value::as_str).unwrap_or("?");
        match counts.iter_mut().find(|c| c.0 == t) {
            Some(c) => c.1 += 1,
            None => counts.push((t.to_string(), 1)),
        }
    }
    if counts.is_empty() {
        return empty(title, "No findings in the latest reports.");
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.truncate(16);
    let n = counts.len();
    let top = counts.iter().map(|c| c.1).max().unwrap_or(1) as f64;
    svg(title, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d((0..n).into_segmented(), 0f64..y_max(top))?;
        let names: Vec<String> = counts.iter().map(|c| c.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(2)
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc("findings")
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(RGBColor(9, 105, 218).filled())
                .margin(6)
                .data(counts.iter().enumerate().map(|(i, c)| (i, c.1 as f64))),
        )?;
        Ok(())
    })
}

/// Samples in up to `n` equal time buckets: (bucket middle, samples).
fn buckets(samples: &[Sample], n: usize) -> Vec<(f64, Vec<&Sample>)> {
    let ran: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.status != "dropped" && s.status != "cancelled" && s.at.is_finite())
        .collect();
    if ran.is_empty() {
        return Vec::new();
    }
    let lo = ran.iter().map(|s| s.at).fold(f64::INFINITY, f64::min);
    let hi = ran.iter().map(|s| s.at).fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1.0);
    let n = n.clamp(1, ran.len());
    let width = span / n as f64;
    let mut out: Vec<(f64, Vec<&Sample>)> = (0..n)
        .map(|i| (lo + width * (i as f64 + 0.5), Vec::new()))
        .collect();
    for s in ran {
        let i = (((s.at - lo) / width) as usize).min(n - 1);
        out[i].1.push(s);
    }
    out.retain(|b| !b.1.is_empty());
    out
}

fn pct(v: &[&Sample], f: impl Fn(&Sample) -> f64, p: f64) -> f64 {
    let mut xs: Vec<f64> = v.iter().map(|s| f(s)).collect();
    xs.sort_by(f64::total_cmp);
    percentile(&xs, p)
}

/// Task durations, p50 and p95, over time.
pub fn durations(samples: &[Sample]) -> String {
    p50_p95("Task duration p50 / p95 (seconds)", samples, |s| {
        s.duration_s
    })
}

/// Queue wait, p50 and p95, over time.
pub fn queue_wait(samples: &[Sample]) -> String {
    p50_p95("Queue wait p50 / p95 (seconds)", samples, |s| s.queue_s)
}

/// One measure of the samples (seconds), its p50 and p95 per time bucket.
fn p50_p95(title: &str, samples: &[Sample], seconds: fn(&Sample) -> f64) -> String {
    let b = buckets(samples, 24);
    if b.is_empty() {
        return empty(title, "No executions recorded yet.");
    }
    let at = |p: f64| b.iter().map(|(t, v)| (*t, pct(v, seconds, p))).collect();
    lines_over_time(
        title,
        "seconds",
        vec![
            ("p50".into(), RGBColor(9, 105, 218), at(50.0)),
            ("p95".into(), RGBColor(191, 135, 0), at(95.0)),
        ],
        None,
    )
}

/// Success rate over time.
pub fn success_rate(samples: &[Sample]) -> String {
    let title = "Success rate (%)";
    let b = buckets(samples, 24);
    if b.is_empty() {
        return empty(title, "No executions recorded yet.");
    }
    let pts = b
        .iter()
        .map(|(t, v)| {
            let ok = v.iter().filter(|s| s.status == "succeeded").count();
            (*t, ok as f64 * 100.0 / v.len() as f64)
        })
        .collect();
    lines_over_time(
        title,
        "%",
        vec![("succeeded".into(), RGBColor(26, 127, 55), pts)],
        Some(105.0),
    )
}
