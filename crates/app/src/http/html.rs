//! Small helpers for server-rendered HTML: escaping (every interpolated value goes through
//! [`esc`]), JST dates, and inline SVG bar charts (no JavaScript).

use crate::stats::HourCount;
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// A time as the admin reads it: Asia/Tokyo, `2026-11-25 21:56 JST`.
pub fn jst(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Tokyo)
        .format("%Y-%m-%d %H:%M JST")
        .to_string()
}

/// A 24-bar SVG chart of hourly counts (oldest left), with an optional dashed reference line
/// (e.g. the hourly share of the API allowance). Hours are labelled in JST.
pub fn bar_chart(title: &str, data: &[HourCount], reference: Option<(f64, &str)>) -> String {
    let (w, h, pad_l, pad_b, pad_t) = (480.0_f64, 140.0_f64, 36.0_f64, 18.0_f64, 14.0_f64);
    let max_data = data.iter().map(|d| d.count).max().unwrap_or(0) as f64;
    let max = max_data.max(reference.map(|r| r.0).unwrap_or(0.0)).max(1.0);
    let n = data.len().max(1) as f64;
    let bw = (w - pad_l) / n;
    let plot_h = h - pad_b - pad_t;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" role="img" aria-label="{t}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    let _ = write!(
        svg,
        r##"<text x="0" y="10" font-size="9" fill="#555">{}</text><text x="0" y="{}" font-size="9" fill="#555">0</text>"##,
        max.round(),
        h - pad_b
    );
    for (i, d) in data.iter().enumerate() {
        let bh = (d.count as f64 / max) * plot_h;
        let x = pad_l + i as f64 * bw;
        let y = pad_t + plot_h - bh;
        let hour = d
            .hour_start
            .with_timezone(&chrono_tz::Asia::Tokyo)
            .format("%H時");
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="#3b7dd8"><title>{hour} {}</title></rect>"##,
            (bw - 2.0).max(1.0),
            d.count
        );
        if i % 6 == 0 {
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{}" font-size="9" fill="#555">{hour}</text>"##,
                h - 4.0
            );
        }
    }
    if let Some((value, label)) = reference {
        let y = pad_t + plot_h - (value / max) * plot_h;
        let _ = write!(
            svg,
            r##"<line x1="{pad_l}" x2="{w}" y1="{y:.1}" y2="{y:.1}" stroke="#d83b3b" stroke-dasharray="4 3"/><text x="{}" y="{:.1}" font-size="9" fill="#d83b3b" text-anchor="end">{}</text>"##,
            w - 2.0,
            (y - 3.0).max(9.0),
            esc(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The page shell.
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,"Hiragino Sans","Noto Sans JP",sans-serif;max-width:960px;margin:1.5rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}} h2{{font-size:1.15rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}}
.en{{color:#666;font-size:.85em}} .msg{{padding:.6rem;border-radius:4px;margin:.8rem 0}}
.ok{{background:#e6f4ea}} .err{{background:#fce8e6}} .warn{{background:#fef7e0}}
table{{border-collapse:collapse;width:100%}} td,th{{border:1px solid #ddd;padding:.3rem .4rem;text-align:left;vertical-align:top;font-size:.9em}}
fieldset{{border:1px solid #ddd;margin:.6rem 0}} legend{{font-weight:bold}}
button{{padding:.35rem .9rem}} .step{{display:inline-block;min-width:1.6em;font-weight:bold}}
</style></head><body>{body}</body></html>"#,
        title = esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn escapes_everything_that_could_break_out() {
        assert_eq!(
            esc(r#"<script>"x"&'y'</script>"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn dates_are_shown_in_tokyo_time() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 15, 30, 0).unwrap();
        assert_eq!(jst(t), "2026-11-26 00:30 JST");
    }

    #[test]
    fn chart_has_one_bar_per_hour_and_the_reference_line() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap();
        let data: Vec<HourCount> = (0..24)
            .map(|i| HourCount {
                hour_start: now - chrono::Duration::hours(23 - i),
                count: i as u64,
            })
            .collect();
        let svg = bar_chart("<t>", &data, Some((10.0, "limit")));
        assert_eq!(svg.matches("<rect").count(), 24);
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("&lt;t&gt;") && !svg.contains("<t>"));
    }
}
