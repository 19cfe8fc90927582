//! The table and `target/bench/report.json`.

use serde::Serialize;
use std::path::Path;

/// One measurement: a value, its goal (a target, or a baseline measured in the same run), and
/// whether the goal is met. `met` is `None` when there is nothing to compare against.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) value: f64,
    pub(crate) unit: String,
    pub(crate) goal: String,
    pub(crate) met: Option<bool>,
    pub(crate) note: String,
}

impl Row {
    pub(crate) fn new(name: impl Into<String>, value: f64, unit: &str) -> Row {
        Row {
            name: name.into(),
            value,
            unit: unit.to_owned(),
            goal: String::new(),
            met: None,
            note: String::new(),
        }
    }

    /// A ceiling: met when `value < limit` (or `<=` with `inclusive`).
    pub(crate) fn below(mut self, limit: f64, inclusive: bool, label: impl Into<String>) -> Row {
        self.goal = label.into();
        self.met = Some(if inclusive {
            self.value <= limit
        } else {
            self.value < limit
        });
        self
    }

    pub(crate) fn goal(mut self, label: impl Into<String>) -> Row {
        self.goal = label.into();
        self
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    fn value_text(&self) -> String {
        let v = self.value;
        if v.is_nan() {
            "n/a".to_owned()
        } else if (v == v.trunc() && v.abs() < 1e12) || v.abs() >= 100.0 {
            format!("{v:.0}")
        } else if v.abs() >= 10.0 {
            format!("{v:.1}")
        } else if v.abs() >= 0.1 {
            format!("{v:.2}")
        } else {
            format!("{v:.4}")
        }
    }
}

fn met_text(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

/// The aligned table, as printed and pasted into `docs/performance.md`.
pub(crate) fn table(rows: &[Row]) -> String {
    let head = ["measurement", "value", "unit", "goal", "met", "note"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.value_text(),
                r.unit.clone(),
                r.goal.clone(),
                met_text(r.met).to_owned(),
                r.note.clone(),
            ]
        })
        .collect();
    let mut width = head.map(|h| h.chars().count());
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: [&str; 6]| {
        let mut s = String::new();
        for (i, (cell, w)) in c.iter().zip(width).enumerate() {
            let pad = w - cell.chars().count();
            if i == 5 {
                s.push_str(cell);
            } else if i == 1 {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
                s.push_str("  ");
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(head);
    out.push('\n');
    out.push_str(&"-".repeat(width.iter().sum::<usize>() + 10));
    out.push('\n');
    for c in &cells {
        out.push_str(&line([&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]]));
        out.push('\n');
    }
    out
}

#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    /// `uptime` as printed when the run ended.
    pub(crate) uptime: String,
    /// 1, 5 and 15 minute load averages from /proc/loadavg, at the start and at the end.
    pub(crate) load_start: String,
    pub(crate) load_end: String,
    pub(crate) date: String,
    pub(crate) args: Vec<String>,
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(crate) fn uptime() -> String {
    std::process::Command::new("uptime")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(loadavg)
}

#[derive(Serialize)]
struct Report<'a> {
    machine: &'a Machine,
    rows: &'a [Row],
}

pub(crate) fn write_json(path: &Path, machine: &Machine, rows: &[Row]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_string_pretty(&Report { machine, rows })?;
    std::fs::write(path, json)?;
    Ok(())
}
