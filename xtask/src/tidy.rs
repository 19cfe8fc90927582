//! `cargo xtask tidy`: the architecture's dependency arrows, checked over `cargo metadata`.
//!
//! Only declared normal and build dependencies count; dev-dependencies are free (tests may use
//! anything). The rules:
//! - `domain` depends on no workspace adapter crate and on no IO/framework crate;
//! - adapters do not depend on each other, nor on `app`;
//! - only `app` and `it` (the `tests/` package) depend on adapters;
//! - `sf-sim` is a normal dependency only of `app`, `it` and `xtask`.
//!
//! Also: every crate's `src/lib.rs` starts with a `//!` paragraph.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use anyhow::{Result, bail};
use serde_json::Value;

use crate::util;

const DOMAIN: &str = "domain";
const ADAPTERS: &[&str] = &["sf-adapter", "store-adapter", "event-ingest"];
const APP: &str = "app";
const SIM: &str = "sf-sim";
const IT: &str = "it";
/// Crates `domain` must not depend on: it is sans-IO.
const DOMAIN_FORBIDDEN: &[&str] = &[
    "tokio",
    "reqwest",
    "sea-orm",
    "sea-orm-migration",
    "sqlx",
    "axum",
    "figment",
    "hyper",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) krate: String,
    /// The offending dependency, or the offending file for doc checks.
    pub(crate) dependency: String,
    pub(crate) rule: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}: {}", self.krate, self.dependency, self.rule)
    }
}

/// The workspace members of a `cargo metadata` document.
fn members(metadata: &Value) -> Vec<&Value> {
    let ids: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    metadata["packages"]
        .as_array()
        .map(|pkgs| {
            pkgs.iter()
                .filter(|p| p["id"].as_str().is_some_and(|id| ids.contains(id)))
                .collect()
        })
        .unwrap_or_default()
}

/// Names of the normal and build dependencies a package declares.
fn runtime_deps(pkg: &Value) -> BTreeSet<&str> {
    pkg["dependencies"]
        .as_array()
        .map(|deps| {
            deps.iter()
                .filter(|d| matches!(d["kind"].as_str(), None | Some("normal" | "build")))
                .filter_map(|d| d["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// The dependency-arrow rules over a `cargo metadata --format-version 1` document. Pure.
pub(crate) fn check(metadata: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut push = |krate: &str, dep: &str, rule: &'static str| {
        out.push(Violation {
            krate: krate.to_string(),
            dependency: dep.to_string(),
            rule,
        });
    };
    for pkg in members(metadata) {
        let Some(name) = pkg["name"].as_str() else {
            continue;
        };
        for dep in runtime_deps(pkg) {
            if name == DOMAIN {
                if ADAPTERS.contains(&dep) || dep == APP || dep == SIM {
                    push(
                        name,
                        dep,
                        "domain must not depend on adapters, app or sf-sim",
                    );
                    continue;
                }
                if DOMAIN_FORBIDDEN.contains(&dep) {
                    push(
                        name,
                        dep,
                        "domain is sans-IO: no tokio, reqwest, sea-orm, sea-orm-migration, sqlx, axum, figment, hyper",
                    );
                    continue;
                }
            }
            if ADAPTERS.contains(&name) && (ADAPTERS.contains(&dep) || dep == APP) {
                push(
                    name,
                    dep,
                    "adapters must not depend on each other nor on app",
                );
                continue;
            }
            if ADAPTERS.contains(&dep) && name != APP && name != IT {
                push(name, dep, "only app and it (tests/) may depend on adapters");
                continue;
            }
            if dep == SIM && ![APP, IT, "xtask"].contains(&name) {
                push(
                    name,
                    dep,
                    "sf-sim may be a dev-dependency anywhere, a normal one only of app, it, xtask",
                );
            }
        }
    }
    out
}

/// Every member's `src/lib.rs` (its lib target) must start with a `//!` doc paragraph.
/// `read` is injected so this is testable without files.
pub(crate) fn check_lib_docs(
    metadata: &Value,
    read: impl Fn(&Path) -> std::io::Result<String>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for pkg in members(metadata) {
        let name = pkg["name"].as_str().unwrap_or("?");
        let libs = pkg["targets"].as_array().into_iter().flatten().filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "lib" || k == "rlib"))
        });
        for lib in libs {
            let Some(path) = lib["src_path"].as_str() else {
                continue;
            };
            let starts_with_doc = read(Path::new(path)).is_ok_and(|text| {
                text.lines()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| l.trim_start().starts_with("//!"))
            });
            if !starts_with_doc {
                out.push(Violation {
                    krate: name.to_string(),
                    dependency: path.to_string(),
                    rule: "lib.rs must start with a `//!` paragraph: what the crate is, what it may depend on, where to start reading",
                });
            }
        }
    }
    out
}

pub(crate) fn run() -> Result<()> {
    let metadata = util::cargo_metadata()?;
    let mut violations = check(&metadata);
    violations.extend(check_lib_docs(&metadata, |p| std::fs::read_to_string(p)));
    if violations.is_empty() {
        eprintln!(
            "xtask tidy: ok ({} workspace crates checked)",
            members(&metadata).len()
        );
        return Ok(());
    }
    for v in &violations {
        eprintln!("tidy violation: {v}");
    }
    bail!("{} tidy violation(s)", violations.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(name: &str, kind: Option<&str>) -> Value {
        json!({ "name": name, "kind": kind, "req": "*", "optional": false })
    }

    fn pkg(name: &str, deps: Vec<Value>) -> Value {
        json!({
            "name": name,
            "id": format!("path+file:///ws/{name}#0.1.0"),
            "dependencies": deps,
            "targets": [{ "kind": ["lib"], "name": name, "src_path": format!("/ws/{name}/src/lib.rs") }],
        })
    }

    fn metadata(pkgs: Vec<Value>) -> Value {
        let ids: Vec<Value> = pkgs.iter().map(|p| p["id"].clone()).collect();
        json!({ "packages": pkgs, "workspace_members": ids })
    }

    /// Acceptance: tidy fails if someone adds sea-orm or reqwest to domain.
    #[test]
    fn domain_depending_on_sea_orm_and_reqwest_is_reported() {
        let md = metadata(vec![
            pkg(
                "domain",
                vec![
                    dep("serde", None),
                    dep("sea-orm", None),
                    dep("reqwest", Some("build")),
                ],
            ),
            pkg("app", vec![dep("domain", None)]),
        ]);
        let v = check(&md);
        let pairs: Vec<(&str, &str)> = v
            .iter()
            .map(|v| (v.krate.as_str(), v.dependency.as_str()))
            .collect();
        assert_eq!(pairs, vec![("domain", "reqwest"), ("domain", "sea-orm")]);
    }

    #[test]
    fn dev_dependencies_are_free() {
        let md = metadata(vec![
            pkg(
                "domain",
                vec![dep("tokio", Some("dev")), dep("sf-sim", Some("dev"))],
            ),
            pkg(
                "event-ingest",
                vec![dep("domain", None), dep("store-adapter", Some("dev"))],
            ),
        ]);
        assert_eq!(check(&md), vec![]);
    }

    #[test]
    fn arrows_between_crates_are_reported() {
        let md = metadata(vec![
            pkg("domain", vec![dep("app", None)]),
            pkg(
                "sf-adapter",
                vec![dep("store-adapter", None), dep("app", None)],
            ),
            pkg("sf-sim", vec![dep("sf-adapter", None)]),
            pkg("store-adapter", vec![dep("sf-sim", None)]),
            pkg(
                "app",
                vec![
                    dep("sf-adapter", None),
                    dep("sf-sim", None),
                    dep("tokio", None),
                ],
            ),
            pkg("it", vec![dep("event-ingest", None), dep("sf-sim", None)]),
            pkg("xtask", vec![dep("sf-sim", None)]),
        ]);
        let pairs: Vec<(String, String)> = check(&md)
            .into_iter()
            .map(|v| (v.krate, v.dependency))
            .collect();
        let expected = [
            ("domain", "app"),
            ("sf-adapter", "app"),
            ("sf-adapter", "store-adapter"),
            ("sf-sim", "sf-adapter"),
            ("store-adapter", "sf-sim"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn non_members_are_ignored() {
        let mut md = metadata(vec![pkg("domain", vec![])]);
        if let Some(pkgs) = md["packages"].as_array_mut() {
            pkgs.push(pkg("domain", vec![dep("tokio", None)]));
        }
        md["packages"][1]["id"] = json!("registry+other#domain@9");
        assert_eq!(check(&md), vec![]);
    }

    #[test]
    fn lib_rs_must_open_with_inner_doc() {
        let md = metadata(vec![
            pkg("good", vec![]),
            pkg("bad", vec![]),
            pkg("gone", vec![]),
        ]);
        let v = check_lib_docs(&md, |p| match p.to_str() {
            Some("/ws/good/src/lib.rs") => Ok("\n//! Good crate.\n\npub fn f() {}\n".into()),
            Some("/ws/bad/src/lib.rs") => Ok("// plain comment\n//! late\n".into()),
            _ => Err(std::io::Error::other("missing")),
        });
        let crates: Vec<&str> = v.iter().map(|v| v.krate.as_str()).collect();
        assert_eq!(crates, vec!["bad", "gone"]);
    }

    /// The real workspace must pass tidy.
    #[test]
    fn real_workspace_is_tidy() {
        let md = util::cargo_metadata().expect("cargo metadata");
        let mut v = check(&md);
        v.extend(check_lib_docs(&md, |p| std::fs::read_to_string(p)));
        let names: Vec<String> = members(&md)
            .iter()
            .filter_map(|p| p["name"].as_str().map(String::from))
            .collect();
        assert!(
            names.iter().any(|n| n == "domain"),
            "metadata lists domain: {names:?}"
        );
        assert!(v.is_empty(), "tidy violations: {v:#?}");
    }
}
