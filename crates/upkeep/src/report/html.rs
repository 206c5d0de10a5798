//! The dashboard as one self-contained HTML page: a table of packages by release, each
//! cell its status, failing step, last success and a closure-size trend drawn as inline
//! SVG. No script, and a content security policy that fetches nothing.

use std::fmt::Write as _;

use cudapkgs_tree::units;

use super::{Cell, Dashboard, utc};
use crate::results::Outcome;

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:.4em .6em;vertical-align:top;text-align:left}
th.package small{display:block;color:#666;font-weight:normal}
td.passed{background:#e8f6e8}
td.failed{background:#fbe4e4}
.status{font-weight:bold}
.regression{color:#a00;font-size:12px}
.detail{color:#555;font-size:12px}
svg.trend{display:block;margin-top:.3em}
svg.trend polyline{fill:none;stroke:#369;stroke-width:1.5}
";

/// HTML-escaped `text`.
fn escape(text: &str) -> String {
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

/// The sizes as a small line chart, its title naming the first and last.
fn trend(sizes: &[u64]) -> String {
    let (Some(&low), Some(&high)) = (sizes.iter().min(), sizes.iter().max()) else {
        return String::new();
    };
    let (width, height) = (120.0_f64, 24.0_f64);
    #[allow(clippy::cast_precision_loss, reason = "positions on a small chart")]
    let points: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let x = if sizes.len() == 1 {
                width / 2.0
            } else {
                i as f64 * width / (sizes.len() - 1) as f64
            };
            let span = (high - low).max(1) as f64;
            let y = height - 2.0 - (size - low) as f64 / span * (height - 4.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    format!(
        "<svg class=\"trend\" width=\"120\" height=\"24\" viewBox=\"0 0 120 24\" role=\"img\"><title>closure size: {} → {} over {} successes</title><polyline points=\"{}\"/></svg>",
        units::bytes(sizes[0]),
        units::bytes(*sizes.last().expect("not empty")),
        sizes.len(),
        points.join(" ")
    )
}

fn cell(cell: &Cell) -> String {
    let (class, status) = match (cell.outcome, &cell.step) {
        (Outcome::Passed, _) => ("passed", "passed".to_owned()),
        (Outcome::Failed, Some(step)) => ("failed", format!("failed at {step}")),
        (Outcome::Failed, None) => ("failed", "failed".to_owned()),
    };
    let mut text = format!(
        "<td class=\"{class}\" data-job=\"{}\" data-status=\"{class}\"><span class=\"status\">{}</span>",
        escape(&cell.job),
        escape(&status)
    );
    if let Some(problem) = &cell.problem {
        let _ = write!(
            text,
            "<div class=\"detail problem\">{}</div>",
            escape(problem)
        );
    }
    for change in cell.changes.iter().filter(|c| c.is_regression()) {
        let _ = write!(
            text,
            "<div class=\"regression\">{}</div>",
            escape(&change.describe())
        );
    }
    let last = cell.last_success.map_or_else(|| "never".to_owned(), utc);
    let _ = write!(
        text,
        "<div class=\"detail last-success\">last success: {}</div>",
        escape(&last)
    );
    if let Some(&size) = cell.sizes.last() {
        let _ = write!(
            text,
            "<div class=\"detail closure\">closure {}</div>{}",
            escape(&units::bytes(size)),
            trend(&cell.sizes)
        );
    }
    let _ = write!(
        text,
        "<div class=\"detail\">{} · <span class=\"log\">{}</span></div></td>",
        escape(&utc(cell.time)),
        escape(&cell.log)
    );
    text
}

/// The page.
pub fn page(dashboard: &Dashboard, generated: i64) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>cudapkgs upkeep</title><style>",
    );
    html.push_str(STYLE);
    let _ = write!(
        html,
        "</style></head><body><h1>cudapkgs upkeep</h1><p id=\"summary\">{} jobs: {} passed, {} failed, {} regressions; generated {}</p>",
        dashboard.passed + dashboard.failed,
        dashboard.passed,
        dashboard.failed,
        dashboard.regressions,
        escape(&utc(generated))
    );
    html.push_str("<table><thead><tr><th>package</th>");
    for release in &dashboard.releases {
        let _ = write!(html, "<th class=\"release\">CUDA {}</th>", escape(release));
    }
    html.push_str("</tr></thead><tbody>");
    for row in &dashboard.rows {
        let targets = if row.capabilities.is_empty() {
            String::new()
        } else {
            format!(" · {}", row.capabilities)
        };
        let _ = write!(
            html,
            "<tr data-package=\"{}\"><th class=\"package\">{}<small>{}{}</small></th>",
            escape(&row.package),
            escape(&row.package),
            escape(&row.system),
            escape(&targets)
        );
        for release in &dashboard.releases {
            match row.cells.get(release) {
                Some(found) => html.push_str(&cell(found)),
                None => {
                    html.push_str("<td class=\"none\" data-status=\"none\">not in the set</td>");
                }
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_trends_drawn() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(trend(&[]), "");
        let one = trend(&[5]);
        assert!(one.contains("points=\"60.0,22.0\""), "{one}");
        let rising = trend(&[100, 200]);
        assert!(rising.contains("points=\"0.0,22.0 120.0,2.0\""), "{rising}");
    }
}
