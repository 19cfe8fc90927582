//! Terminal output: lines printed and kept (the secrets check reads them back), and column
//! alignment that counts East Asian wide characters as two columns.

use std::time::Instant;

/// Everything the demo prints goes through here.
pub(crate) struct Out {
    text: String,
    started: Instant,
}

impl Out {
    pub(crate) fn new() -> Out {
        Out {
            text: String::new(),
            started: Instant::now(),
        }
    }

    pub(crate) fn line(&mut self, s: impl AsRef<str>) {
        let s = s.as_ref().trim_end();
        println!("{s}");
        self.text.push_str(s);
        self.text.push('\n');
    }

    pub(crate) fn blank(&mut self) {
        self.line("");
    }

    /// A section heading.
    pub(crate) fn heading(&mut self, ja: &str, en: &str) {
        self.blank();
        let title = format!("── {ja} / {en} ");
        let fill = 78usize.saturating_sub(width(&title));
        self.line(format!("{title}{}", "─".repeat(fill)));
    }

    /// `label ........ value`, label in Japanese and English, values aligned.
    pub(crate) fn kv(&mut self, ja: &str, en: &str, value: impl AsRef<str>) {
        self.line(format!(
            "  {} {} {}",
            pad(ja, 24),
            pad(en, 25),
            value.as_ref()
        ));
    }

    /// A progress step: `[n/6] what ... result (elapsed)`.
    pub(crate) fn step(&mut self, n: usize, total: usize, what: &str, result: impl AsRef<str>) {
        let secs = self.started.elapsed().as_secs_f64();
        let label = format!("[{n}/{total}] {what} ");
        let dots = 44usize.saturating_sub(width(&label));
        self.line(format!(
            "{label}{} {}  ({secs:.1} s)",
            ".".repeat(dots),
            result.as_ref()
        ));
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Display columns of `s` in a terminal (wide CJK = 2).
pub(crate) fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    let u = c as u32;
    let wide = matches!(u,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD);
    if c.is_control() {
        0
    } else if wide {
        2
    } else {
        1
    }
}

/// `s` padded with spaces to `cols` display columns (never cut).
pub(crate) fn pad(s: &str, cols: usize) -> String {
    let w = width(s);
    format!("{s}{}", " ".repeat(cols.saturating_sub(w)))
}

/// `s` cut to at most `cols` display columns, with `…` when cut.
pub(crate) fn cut(s: &str, cols: usize) -> String {
    if width(s) <= cols {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if w + cw + 1 > cols {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// 3000 → "3,000".
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
