//! Small helpers shared by the measurements: percentiles, peak RSS, deterministic randomness,
//! and the phone system's webhook body.

use std::time::Duration;

/// Percentile `p` (0–100) of sorted samples, nearest-rank.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `VmHWM` (peak resident set) of this process, in KiB.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) this process has used so far, in seconds: `/proc/self/stat`'s
/// `utime` and `stime`, in clock ticks of 1/100 s (`USER_HZ` on Linux).
pub(crate) fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// SplitMix64: deterministic, dependency-free.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// The Japanese mobile number `090-XXXX-XXXX` for `n` (< 90,000,000), in one of the ways
/// people and systems type it (`style` picks the way).
pub(crate) fn mobile(n: u64, style: u64) -> String {
    let digits = 10_000_000 + n;
    let (a, b) = (digits / 10_000, digits % 10_000);
    match style % 6 {
        0 => format!("090-{a:04}-{b:04}"),
        1 => format!("090{a:04}{b:04}"),
        2 => format!("+81 90 {a:04} {b:04}"),
        3 => format!("(090){a:04}-{b:04}"),
        4 => format!("+81-90-{a:04}-{b:04}"),
        _ => fullwidth(&format!("090-{a:04}-{b:04}")),
    }
}

pub(crate) fn mobile_e164(n: u64) -> String {
    format!("+8190{}", 10_000_000 + n)
}

fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap_or(c),
            '-' => '－',
            other => other,
        })
        .collect()
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
fn encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(k, &mut out);
        out.push('=');
        encode(v, &mut out);
    }
    out
}

/// A `call_ended` webhook as the phone system posts it (form-encoded, bracket keys), for an
/// answered inbound call from `number`.
pub(crate) fn call_ended(call_id: &str, number: &str) -> String {
    form(&[
        ("event", "call_ended"),
        ("contact[id]", "150"),
        ("contact[name]", "電話 太郎"),
        ("contact[number]", number),
        ("contact[company]", "株式会社サンプル"),
        ("record[id]", call_id),
        ("record[direction]", "inbound"),
        ("record[number]", number),
        ("record[started_at]", "2026-11-25T09:30:00.000+09:00"),
        ("record[answered_at]", "2026-11-25T09:30:07.000+09:00"),
        ("record[ended_at]", "2026-11-25T09:33:19.000+09:00"),
        ("record[duration]", "192"),
        ("record[memo]", "見積の件で折り返し希望"),
        ("record[url]", "https://phone.example.jp/calls/22232"),
        ("user[id]", "17"),
        ("user[name]", "営業 一郎"),
        ("user[email]", "Ichiro.Eigyo@example.jp"),
    ])
}
