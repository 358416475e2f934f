//! The HTML report (`bgrun report`): one self-contained file, inline CSS, inline SVG charts
//! drawn with plotters' SVG backend, and a little inline JavaScript to filter the findings
//! table. Nothing in it is fetched from anywhere: no fonts, scripts, styles or images from
//! a network or from other files.
//!
//! This module only renders: the caller gathers the data (`Data`) from the results, the
//! metrics samples and the stored reports.

mod charts;

use std::fmt::Write;

use serde_json::Value;

use crate::html::escape as esc;
use crate::results::{Sample, TaskResult};
use crate::timefmt;

/// What a report shows.
pub struct Data<'a> {
    pub project: String,
    /// Every stored result, newest first.
    pub results: &'a [TaskResult],
    /// Per analyzer run (oldest first): (finished at, new findings, fixed findings), for the
    /// runs whose report has baseline data.
    pub baseline_runs: Vec<(f64, u64, u64)>,
    pub samples: &'a [Sample],
    /// The current findings (the newest report of each task type, merged).
    pub current: &'a Value,
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

const CSS: &str = "
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{background:#24292f;color:#fff;padding:16px 24px}
header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d1d9;font-size:13px}
main{padding:16px 24px;max-width:1400px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 140px;background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 14px}
.card b{display:block;font-size:22px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
.charts svg{width:100%;height:auto}
.empty{color:#57606a;font-style:italic}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0}
td.loc{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;white-space:nowrap}
.sev{font-weight:600;text-transform:uppercase;font-size:11px;padding:1px 6px;border-radius:10px;color:#fff}
.sev-critical{background:#8b0000}.sev-high{background:#cf222e}.sev-medium{background:#bf8700}
.sev-low{background:#0969da}.sev-info{background:#6e7781}
.new{color:#cf222e;font-weight:600}
.filters{display:flex;gap:8px;margin:0 0 8px;flex-wrap:wrap}
.filters select,.filters input{font:inherit;padding:3px 6px}
.ok{color:#1a7f37}.bad{color:#cf222e}
pre{white-space:pre-wrap;margin:4px 0 0;font-size:12px}
";

const JS: &str = "
(function(){
  var sev=document.getElementById('f-sev'),tool=document.getElementById('f-tool'),
      q=document.getElementById('f-q'),only=document.getElementById('f-new'),
      rows=Array.prototype.slice.call(document.querySelectorAll('#findings tbody tr')),
      count=document.getElementById('f-count');
  function apply(){
    var s=sev.value,t=tool.value,text=q.value.toLowerCase(),n=0,o=only&&only.checked;
    rows.forEach(function(r){
      var show=(!s||r.getAttribute('data-sev')===s)&&(!t||r.getAttribute('data-tool')===t)
        &&(!text||r.textContent.toLowerCase().indexOf(text)>=0)
        &&(!o||r.getAttribute('data-new')==='1');
      r.style.display=show?'':'none'; if(show){n++;}
    });
    count.textContent=n+' of '+rows.length;
  }
  [sev,tool,q,only].forEach(function(e){ if(e){ e.addEventListener('input',apply); e.addEventListener('change',apply);} });
  apply();
})();
";

/// The whole report as one HTML document.
pub fn render(d: &Data<'_>) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let now = timefmt::rfc3339(timefmt::now());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>bgrun report: {}</title><style>{CSS}</style></head><body>\
         <header><h1>bgrun report: {}</h1><p>generated {} from {} results</p></header><main>",
        esc(&d.project),
        esc(&d.project),
        esc(&now),
        d.results.len()
    );
    summary_cards(&mut h, d);
    h.push_str("<section><h2>Over time</h2><div class=\"charts\">");
    for svg in [
        charts::severity_over_time(d.results),
        charts::new_vs_fixed(&d.baseline_runs),
        charts::per_tool(d.current),
        charts::durations(d.samples),
        charts::success_rate(d.samples),
        charts::queue_wait(d.samples),
    ] {
        h.push_str("<div>");
        h.push_str(&svg);
        h.push_str("</div>");
    }
    h.push_str("</div></section>");
    findings_table(&mut h, d.current);
    failing_tests(&mut h, d);
    recent_runs(&mut h, d.results);
    let _ = writeln!(h, "</main><script>{JS}</script></body></html>");
    h
}

fn summary_cards(h: &mut String, d: &Data<'_>) {
    let c = d.current.get("counts").cloned().unwrap_or(Value::Null);
    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    let ran: Vec<&TaskResult> = d
        .results
        .iter()
        .filter(|r| r.status != "dropped" && r.status != "cancelled")
        .collect();
    let ok = ran.iter().filter(|r| r.status == "succeeded").count();
    let rate = if ran.is_empty() {
        "–".to_string()
    } else {
        format!("{:.0}%", ok as f64 * 100.0 / ran.len() as f64)
    };
    h.push_str("<section><div class=\"cards\">");
    for (label, value) in [
        ("critical", n("critical").to_string()),
        ("high", n("high").to_string()),
        ("medium", n("medium").to_string()),
        ("low", n("low").to_string()),
        ("info", n("info").to_string()),
        ("runs", d.results.len().to_string()),
        ("succeeded", rate),
    ] {
        let _ = write!(
            h,
            "<div class=\"card\"><b>{}</b>{}</div>",
            esc(&value),
            esc(label)
        );
    }
    h.push_str("</div></section>");
}

fn findings_table(h: &mut String, current: &Value) {
    let findings: Vec<&Value> = current
        .get("findings")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let _ = write!(h, "<section><h2>Current findings ({})</h2>", findings.len());
    if findings.is_empty() {
        h.push_str("<p class=\"empty\">No findings in the latest reports.</p></section>");
        return;
    }
    let mut tools: Vec<&str> = findings.iter().map(|f| str_of(f, "tool")).collect();
    tools.sort_unstable();
    tools.dedup();
    let has_baseline = findings.iter().any(|f| f.get("baseline").is_some());
    h.push_str(
        "<div class=\"filters\"><select id=\"f-sev\" aria-label=\"severity\">\
         <option value=\"\">all severities</option>",
    );
    for s in ["critical", "high", "medium", "low", "info"] {
        let _ = write!(h, "<option value=\"{s}\">{s}</option>");
    }
    h.push_str(
        "</select><select id=\"f-tool\" aria-label=\"tool\"><option value=\"\">all tools</option>",
    );
    for t in &tools {
        let _ = write!(h, "<option value=\"{0}\">{0}</option>", esc(t));
    }
    h.push_str("</select><input id=\"f-q\" type=\"search\" placeholder=\"filter text\" aria-label=\"text\">");
    if has_baseline {
        h.push_str("<label><input id=\"f-new\" type=\"checkbox\"> new only</label>");
    }
    h.push_str("<span id=\"f-count\"></span></div>");
    h.push_str(
        "<table id=\"findings\"><thead><tr><th>severity</th><th>tool</th><th>rule</th>\
         <th>file:line</th><th>message</th></tr></thead><tbody>",
    );
    for f in findings {
        let sev = match str_of(f, "severity") {
            s @ ("critical" | "high" | "medium" | "low") => s,
            _ => "info",
        };
        let new = str_of(f, "baseline") == "new";
        let loc = match (
            f.get("line").and_then(Value::as_u64),
            f.get("column").and_then(Value::as_u64),
        ) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", str_of(f, "file")),
            (Some(l), None) => format!("{}:{l}", str_of(f, "file")),
            _ => str_of(f, "file").to_string(),
        };
        let _ = write!(
            h,
            "<tr data-sev=\"{sev}\" data-tool=\"{}\" data-new=\"{}\"><td><span class=\"sev sev-{sev}\">{sev}</span>{}</td>\
             <td>{}</td><td>{}</td><td class=\"loc\">{}</td><td>{}</td></tr>",
            esc(str_of(f, "tool")),
            u8::from(new),
            if new {
                " <span class=\"new\">new</span>"
            } else {
                ""
            },
            esc(str_of(f, "tool")),
            esc(str_of(f, "rule")),
            esc(&loc),
            esc(str_of(f, "message")),
        );
    }
    h.push_str("</tbody></table></section>");
}

fn failing_tests(h: &mut String, d: &Data<'_>) {
    let mut rows = String::new();
    for t in d
        .current
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for f in t
            .pointer("/tests/failures")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let loc = match f.get("line").and_then(Value::as_u64) {
                Some(l) => format!("{}:{l}", str_of(f, "file")),
                None => str_of(f, "file").to_string(),
            };
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td><td class=\"loc\">{}</td><td><pre>{}</pre></td></tr>",
                esc(str_of(t, "name")),
                esc(str_of(f, "name")),
                esc(&loc),
                esc(str_of(f, "message"))
            );
        }
    }
    h.push_str("<section><h2>Failing tests</h2>");
    if rows.is_empty() {
        h.push_str("<p class=\"empty\">No failing tests in the latest test run.</p>");
    } else {
        h.push_str(
            "<table id=\"failing-tests\"><thead><tr><th>runner</th><th>test</th><th>file:line</th>\
             <th>cause</th></tr></thead><tbody>",
        );
        h.push_str(&rows);
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");
}

fn recent_runs(h: &mut String, results: &[TaskResult]) {
    h.push_str(
        "<section><h2>Recent runs</h2><table id=\"runs\"><thead><tr><th>id</th><th>task</th>\
         <th>status</th><th>duration</th><th>finished</th><th>trigger</th></tr></thead><tbody>",
    );
    for r in results.iter().take(50) {
        let class = if r.status == "succeeded" { "ok" } else { "bad" };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.id),
            esc(&crate::present::what_of_result(r)),
            esc(r.status.as_str()),
            esc(&timefmt::human_duration(r.duration_s)),
            esc(&r.finished_at),
            esc(&r.trigger)
        );
    }
    h.push_str("</tbody></table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn an_empty_state_renders_without_charts_failing() {
        let current = serde_json::json!({"findings": [], "tools": [], "counts": {}});
        let d = Data {
            project: "p".into(),
            results: &[],
            baseline_runs: Vec::new(),
            samples: &[],
            current: &current,
        };
        let html = render(&d);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("No findings"));
        assert!(!html.contains("http://") || !html.contains("src=\"http"));
    }
}
