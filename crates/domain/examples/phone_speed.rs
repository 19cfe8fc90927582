//! How long `PhoneNumber::parse` takes per million numbers, next to the library-only route it
//! used before the JP fast path (R13).
//!
//! ```text
//! cargo run --release -p domain --example phone_speed [count]
//! ```
//!
//! The numbers are generated the way they show up in Salesforce phone fields: mostly Japanese
//! numbers of every type in the usual forms (hyphens, none, spaces, full width, `+81`), some
//! foreign numbers, withheld words and junk. The library route runs first, while the library's
//! regex cache still has its default size; `PhoneNumber::parse` then raises it, and the
//! library route runs once more with the larger cache.

use domain::PhoneNumber;
use domain::phone::fold;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn main() {
    let count = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = SplitMix(0x5EED_CA11_0000_0001);
    let inputs: Vec<(Kind, String)> = (0..count).map(|_| rng.typed()).collect();
    let all: Vec<&str> = inputs.iter().map(|(_, raw)| raw.as_str()).collect();
    let japanese: Vec<&str> = inputs
        .iter()
        .filter(|(kind, _)| *kind == Kind::Japanese)
        .map(|(_, raw)| raw.as_str())
        .collect();
    let others: Vec<&str> = inputs
        .iter()
        .filter(|(kind, _)| *kind == Kind::Other)
        .map(|(_, raw)| raw.as_str())
        .collect();

    let library_cold = time(&all, library_route);
    let fast = time(&all, |raw| PhoneNumber::parse(raw).ok());
    let library_warm = time(&all, library_route);
    assert_eq!(
        library_cold.valid, fast.valid,
        "both routes find as many valid numbers"
    );
    println!(
        "{count} inputs ({} Japanese in the usual forms, {} other), {} valid",
        japanese.len(),
        others.len(),
        fast.valid
    );
    library_cold.report("all: library route, regex cache 100");
    fast.report("all: PhoneNumber::parse");
    library_warm.report("all: library route, regex cache raised");
    time(&japanese, library_route).report("Japanese: library route");
    time(&japanese, |raw| PhoneNumber::parse(raw).ok()).report("Japanese: PhoneNumber::parse");
    time(&others, library_route).report("other: library route");
    time(&others, |raw| PhoneNumber::parse(raw).ok()).report("other: PhoneNumber::parse");
}

/// `PhoneNumber::parse` as it was before the fast path: fold, then the library parses,
/// validates and formats (the withheld-word check is left out; it costs nothing next to this).
fn library_route(raw: &str) -> Option<PhoneNumber> {
    let folded = fold(raw);
    let text = folded.trim();
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let parsed = phonenumber::parse(Some(phonenumber::country::Id::JP), text).ok()?;
    if !phonenumber::is_valid(&parsed) {
        return None;
    }
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    Some(PhoneNumber::from_trusted(e164, raw.trim()))
}

struct Timing {
    took: Duration,
    count: usize,
    valid: usize,
}

impl Timing {
    fn report(&self, what: &str) {
        let seconds = self.took.as_secs_f64();
        println!(
            "{what:<40} {:>8} in {seconds:>7.3} s: {:>7.3} s per million, {:>5.0} ns each",
            self.count,
            seconds * 1_000_000.0 / self.count as f64,
            self.took.as_nanos() as f64 / self.count as f64
        );
    }
}

fn time(inputs: &[&str], route: impl Fn(&str) -> Option<PhoneNumber>) -> Timing {
    let start = Instant::now();
    let valid = inputs
        .iter()
        .filter(|raw| black_box(route(black_box(raw))).is_some())
        .count();
    Timing {
        took: start.elapsed(),
        count: inputs.len(),
        valid,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Japanese,
    Other,
}

/// Japanese prefixes (with the trunk `0`) and the number of digits numbers behind them have.
const JAPANESE: &[(&str, usize)] = &[
    ("03", 10),
    ("06", 10),
    ("045", 10),
    ("052", 10),
    ("011", 10),
    ("092", 10),
    ("0466", 10),
    ("0263", 10),
    ("090", 11),
    ("080", 11),
    ("070", 11),
    ("050", 11),
    ("0120", 10),
    ("0800", 11),
    ("0570", 10),
];
const OTHERS: &[&str] = &[
    "+1 415-555-2671",
    "+44 20 7946 0958",
    "+86 10 1234 5678",
    "010-1-212-555-0123",
    "非通知",
    "",
    "03-1234",
    "tel 03 1234 5678 ext 2",
];

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// 95% Japanese numbers in the usual forms, 5% other text.
    fn typed(&mut self) -> (Kind, String) {
        if self.below(100) < 5 {
            return (Kind::Other, OTHERS[self.below(OTHERS.len())].to_owned());
        }
        let (prefix, len) = JAPANESE[self.below(JAPANESE.len())];
        let mut digits = prefix.to_owned();
        while digits.len() < len {
            digits.push(char::from(b'0' + self.below(10) as u8));
        }
        let (head, rest) = digits.split_at(prefix.len());
        let (middle, last) = rest.split_at(rest.len() - 4);
        let text = match self.below(100) {
            0..60 => format!("{head}-{middle}-{last}"),
            60..80 => digits,
            80..85 => format!("{head} {middle} {last}"),
            85..90 => format!("({head}) {middle}-{last}"),
            90..95 => format!("+81 {} {middle} {last}", &head[1..]),
            _ => format!("{head}-{middle}-{last}")
                .chars()
                .map(|c| match c {
                    '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap_or(c),
                    '-' => 'ー',
                    other => other,
                })
                .collect(),
        };
        (Kind::Japanese, text)
    }
}
