//! `cargo xtask rules`: which tests cover which SPEC rule.
//!
//! Rule ids are every `R<n>`/`C<n>` that starts a list item or bold definition in
//! `docs/specs/SPEC.md` (`- R1 ...`, `- **C2** ...`). Tests are `#[test]`/`#[tokio::test]`-style
//! functions (any attribute whose path ends in `test`) and the `fn`s inside `proptest! { }` in
//! `*.rs` under `crates/` and `tests/`. A test covers a rule when the id appears as a whole word
//! in the comment/attribute lines directly above it or in its body (ranges like `R30–R33` count
//! for each id), or as a `_`-separated segment of its name (`fn r14_dedupe_...`).
//! Prints `rule | #tests | example test (file:line)` and fails when a rule has no test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::util;

/// Rule ids in the order the spec defines them, without duplicates.
pub(crate) fn parse_spec_ids(spec: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for line in spec.lines() {
        let mut rest = line.trim_start();
        if let Some(r) = ["- ", "* ", "+ "].iter().find_map(|m| rest.strip_prefix(m)) {
            rest = r.trim_start();
        } else if !rest.starts_with("**") {
            continue;
        }
        let rest = rest.strip_prefix("**").unwrap_or(rest);
        if let Some(id) = leading_id(rest)
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

/// `R12` or `C3` at the start of `s`, followed by a non-word character or the end.
fn leading_id(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let letter = *bytes.first()?;
    if letter != b'R' && letter != b'C' {
        return None;
    }
    let digits = bytes[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let end = 1 + digits;
    if bytes.get(end).is_some_and(|b| is_word(*b)) {
        return None;
    }
    Some(s[..end].to_string())
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every rule id mentioned as a whole word in `text`, with `R30–R33` / `R30-R33` / `R30..R33`
/// ranges expanded.
pub(crate) fn ids_in_text(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut ids = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary = i == 0 || !is_word(bytes[i - 1]);
        if at_boundary
            && (bytes[i] == b'R' || bytes[i] == b'C')
            && let Some(id) = leading_id(&text[i..])
        {
            let letter = &id[..1];
            let end = i + id.len();
            let from: u32 = id[1..].parse().unwrap_or(0);
            ids.insert(id.clone());
            // A range: R30–R33, R30-R33, R30..R33, R30..=R33.
            let after = &text[end..];
            let sep = ["–", "-", "..=", ".."]
                .iter()
                .find_map(|s| after.strip_prefix(s));
            if let Some(upper) = sep.and_then(leading_id) {
                let to: u32 = upper[1..].parse().unwrap_or(0);
                if upper.starts_with(letter) && from < to && to - from <= 50 {
                    for n in from..=to {
                        ids.insert(format!("{letter}{n}"));
                    }
                }
            }
            i = end;
            continue;
        }
        i += 1;
    }
    ids
}

/// Rule ids in a test's name: `_`-separated segments like `r14` or `C2`.
pub(crate) fn ids_in_name(name: &str) -> BTreeSet<String> {
    name.split('_')
        .filter_map(|seg| {
            let upper = seg.to_ascii_uppercase();
            leading_id(&upper).filter(|id| id.len() == upper.len())
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestFn {
    pub(crate) name: String,
    /// 1-based line of the `fn`.
    pub(crate) line: usize,
    pub(crate) ids: BTreeSet<String>,
}

/// `src` with comments and string/char literal contents replaced by spaces (newlines kept), so
/// braces and `fn` can be found by plain scanning. Byte offsets are unchanged.
fn mask(src: &str) -> Vec<u8> {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                let mut j = i;
                while j < b.len() {
                    if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            b'r' if (i == 0 || !is_word(b[i - 1]))
                && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let body = i + 2 + hashes;
                let mut closing = vec![b'"'];
                closing.extend(std::iter::repeat_n(b'#', hashes));
                let end = b[body..]
                    .windows(closing.len())
                    .position(|w| w == closing.as_slice())
                    .map_or(b.len(), |p| body + p);
                blank(&mut out, body, end);
                i = end + closing.len();
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j);
                i = j + 1;
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{1F600}', '{') or a lifetime ('a).
                let close = if b.get(i + 1) == Some(&b'\\') {
                    b[i + 2..]
                        .iter()
                        .take(10)
                        .position(|&c| c == b'\'')
                        .map(|p| i + 2 + p)
                } else {
                    let len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 1 + len)
                };
                match close {
                    Some(end) => {
                        blank(&mut out, i + 1, end);
                        i = end + 1;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out
}

fn matching_brace(code: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, &c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    code.len().saturating_sub(1)
}

/// Whether a (masked) line is an attribute whose path ends in `test`: `#[test]`,
/// `#[tokio::test(flavor = "multi_thread")]`.
fn is_test_attr(line: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix("#[") else {
        return false;
    };
    let path: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let after = rest[path.len()..].trim_start();
    path.rsplit("::").next() == Some("test") && (after.starts_with(']') || after.starts_with('('))
}

/// Offsets of `fn` keywords in masked code between `from` and `to`.
fn fn_keywords(code: &[u8], from: usize, to: usize) -> Vec<usize> {
    (from..to.saturating_sub(2))
        .filter(|&i| {
            code[i] == b'f'
                && code[i + 1] == b'n'
                && code[i + 2].is_ascii_whitespace()
                && (i == 0 || !is_word(code[i - 1]))
        })
        .collect()
}

/// The test functions in one Rust source file.
pub(crate) fn find_tests(src: &str) -> Vec<TestFn> {
    let code = mask(src);
    let masked = String::from_utf8_lossy(&code).into_owned();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(src.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |off: usize| line_starts.partition_point(|&s| s <= off);
    let src_lines: Vec<&str> = src.lines().collect();
    let masked_lines: Vec<&str> = masked.lines().collect();

    // `fn` offsets that are tests: after a test attribute, or at depth 1 inside `proptest! {}`.
    let mut starts = BTreeSet::new();
    for (n, line) in masked_lines.iter().enumerate() {
        if is_test_attr(line) {
            let from = line_starts[n];
            if let Some(&f) = fn_keywords(&code, from, code.len()).first() {
                starts.insert(f);
            }
        }
    }
    for (pos, _) in masked.match_indices("proptest!") {
        let after = masked[pos + "proptest!".len()..].trim_start();
        if !after.starts_with('{') {
            continue;
        }
        let open = masked.len() - after.len();
        let close = matching_brace(&code, open);
        let mut depth = 0usize;
        let fns: BTreeSet<usize> = fn_keywords(&code, open, close).into_iter().collect();
        for (j, &c) in code.iter().enumerate().take(close).skip(open) {
            match c {
                b'{' => depth += 1,
                b'}' => depth = depth.saturating_sub(1),
                _ if depth == 1 && fns.contains(&j) => {
                    starts.insert(j);
                }
                _ => {}
            }
        }
    }

    let mut tests = Vec::new();
    for f in starts {
        let name: String = masked[f + 2..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let line = line_of(f);
        let body_end = masked[f..]
            .find('{')
            .map_or(f, |p| matching_brace(&code, f + p));
        let mut ids = ids_in_name(&name);
        ids.extend(ids_in_text(&src[f..=body_end.min(src.len() - 1)]));
        // Comment and attribute lines directly above the fn.
        let mut above = line.saturating_sub(1);
        while above > 0 {
            let l = src_lines[above - 1].trim_start();
            if l.starts_with("//") || l.starts_with("#[") || l.starts_with("#![") {
                ids.extend(ids_in_text(l));
                above -= 1;
            } else {
                break;
            }
        }
        tests.push(TestFn { name, line, ids });
    }
    tests
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

pub(crate) fn run() -> Result<()> {
    let root = util::workspace_root();
    let spec_path = root.join("docs/specs/SPEC.md");
    let spec = std::fs::read_to_string(&spec_path)
        .with_context(|| format!("reading {}", spec_path.display()))?;
    let rules = parse_spec_ids(&spec);
    if rules.is_empty() {
        bail!("no rule ids found in {}", spec_path.display());
    }
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files)?;
    rust_files(&root.join("tests"), &mut files)?;

    let mut covered: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut unknown: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut n_tests = 0;
    for file in &files {
        let src =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for t in find_tests(&src) {
            n_tests += 1;
            let place = format!("{} ({rel}:{})", t.name, t.line);
            for id in &t.ids {
                match rules.iter().find(|r| *r == id) {
                    Some(r) => covered.entry(r.as_str()).or_default().push(place.clone()),
                    None => unknown.entry(id.clone()).or_default().push(place.clone()),
                }
            }
        }
    }

    let width = rules.iter().map(String::len).max().unwrap_or(4).max(4);
    println!("{:<width$} | #tests | example test (file:line)", "rule");
    println!("{}-|--------|-------------------------", "-".repeat(width));
    let mut missing = Vec::new();
    for rule in &rules {
        let tests = covered.get(rule.as_str()).map_or(&[][..], Vec::as_slice);
        let example = tests.first().map_or("-", String::as_str);
        println!("{rule:<width$} | {:>6} | {example}", tests.len());
        if tests.is_empty() {
            missing.push(rule.as_str());
        }
    }
    println!(
        "\n{} rules, {} tests scanned in {} files, {} rules covered",
        rules.len(),
        n_tests,
        files.len(),
        rules.len() - missing.len()
    );
    for (id, places) in &unknown {
        eprintln!(
            "warning: {id} is not a rule in SPEC.md but is cited by {}",
            places.join(", ")
        );
    }
    if !missing.is_empty() {
        bail!(
            "{} rule(s) have no test: {}",
            missing.len(),
            missing.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spec_ids_come_from_list_items_and_bold_definitions() {
        let spec = "\
Rule ids (R1, R2, …) are stable.
- R1 `sync_targets`: Lead or Contact.
  continuation mentioning R9 and (R14 picks one).
- R2 write_activity
  - R3 nested item
* **R4** bold in a list
**R5** bold definition
- R10 Fields
- R2 repeated
- Rx not an id
- R11: colon
- R120abc not an id
- C1 The org must have REST API access.
See R40 in prose.
";
        assert_eq!(
            parse_spec_ids(spec),
            ["R1", "R2", "R3", "R4", "R5", "R10", "R11", "C1"]
        );
    }

    #[test]
    fn real_spec_has_the_known_rules() {
        let spec = include_str!("../../docs/specs/SPEC.md");
        let ids = parse_spec_ids(spec);
        for id in ["R1", "R7", "R14", "R27", "R35", "R41", "C1", "C3"] {
            assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
        }
        assert!(!ids.iter().any(|i| i == "R8"), "R8 is not defined: {ids:?}");
    }

    #[test]
    fn ids_in_text_are_whole_words_and_ranges_expand() {
        assert_eq!(
            ids_in_text("// R14: dedupe; see (R3), C2. Not R140x, XR5, R"),
            set(&["C2", "R14", "R3"])
        );
        assert_eq!(
            ids_in_text("R30–R33 and C1-C2"),
            set(&["C1", "C2", "R30", "R31", "R32", "R33"])
        );
        assert_eq!(ids_in_text("R7-C9"), set(&["C9", "R7"]));
    }

    #[test]
    fn ids_in_names_are_segments() {
        assert_eq!(ids_in_name("r14_dedupe_picks_one"), set(&["R14"]));
        assert_eq!(ids_in_name("r14_r18_c3_limits"), set(&["C3", "R14", "R18"]));
        assert_eq!(ids_in_name("error_rate_is_low"), set(&[]));
        assert_eq!(ids_in_name("r14x_not"), set(&[]));
    }

    #[test]
    fn finds_tests_and_attributes_ids() {
        let src = r####"
/// Not a test, mentions R1.
fn helper() -> &'static str { "R1 {" }

#[cfg(test)]
mod tests {
    use super::*;

    /// R14: one customer per number.
    #[test]
    fn dedupe() {
        let s = "}"; let c = '{';
        assert_eq!(helper(), "R1 {");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn r25_one_task() {
        // checks R26 too
        let x = r#"R99 } "#;
    }

    #[test]
    fn plain() { assert!(true); }

    fn not_a_test() { let _ = "R2"; }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        // R13 normalization
        #[test]
        fn normalizes(s in "[0-9]{1,3}") { let _ = s; }

        fn without_attr(x in 0..10u32) { fn inner() {} let _ = x; }
    }
}
"####;
        let tests = find_tests(src);
        let got: Vec<(&str, Vec<&str>)> = tests
            .iter()
            .map(|t| (t.name.as_str(), t.ids.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("dedupe", vec!["R1", "R14"]),
                ("r25_one_task", vec!["R25", "R26", "R99"]),
                ("plain", vec![]),
                ("normalizes", vec!["R13"]),
                ("without_attr", vec![]),
            ]
        );
        assert_eq!(tests[0].line, 11);
    }
}
