//! How much CPU the simulator spends serving the import's query pages.
//!
//! Seeds an org the way the import benchmark's `sim-host` does (same users, `seed_japanese` with
//! seed 7), freezes the sim clock (so the output is the same on every run), then serves the
//! importer's Lead and Contact queries page by page through the same handler and JSON writer as
//! HTTP, in-process ([`sf_sim::Org::serve_in_process`]). Prints records/s, the main thread's CPU
//! time, and a digest of every page body (locators normalized) to prove the output unchanged.
//!
//! `CARGO_BUILD_JOBS=1 cargo run --release -p sf-sim --example page_speed -- --records 200000`

use std::error::Error;
use std::time::Instant;

use sf_sim::{OrgSpec, SfSim, SimOptions};
use sha2::{Digest, Sha256};

/// The import's field lists and filters (`sf-adapter` `record_soql` for an initial import).
const LEAD: &str = "SELECT Id, Phone, LastName, FirstName, Company, Email, Address, Description, \
IsConverted, ConvertedContactId, SystemModstamp, LastModifiedDate FROM Lead WHERE \
LastModifiedDate >= {after} AND Phone != null AND IsConverted = false ORDER BY SystemModstamp, Id";
const CONTACT: &str = "SELECT Id, Phone, LastName, FirstName, Account.Name, Email, MailingAddress, \
Description, SystemModstamp, LastModifiedDate FROM Contact WHERE LastModifiedDate >= {after} AND \
Phone != null ORDER BY SystemModstamp, Id";

/// CPU time of the calling thread (the in-process requests run on it), in seconds.
fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

struct Served {
    /// CPU seconds inside `serve_in_process` (this example's own checks excluded).
    cpu: f64,
    /// Of which the first page (parse, filter, sort, first render).
    first_cpu: f64,
    pages: usize,
    records: usize,
    bytes: usize,
}

/// Serves every page of `soql`; each body (locator replaced) goes into `digest`.
fn serve_all(
    org: &sf_sim::Org,
    token: &str,
    soql: &str,
    digest: &mut Sha256,
) -> Result<Served, Box<dyn Error>> {
    let q: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
    let object = soql
        .split(" FROM ")
        .nth(1)
        .and_then(|s| s.split(' ').next());
    let top_level = format!("\"attributes\":{{\"type\":\"{}\"", object.unwrap_or(""));
    let top_level = top_level.as_str();
    let mut path = format!("/services/data/v62.0/query?q={q}");
    let mut served = Served {
        cpu: 0.0,
        first_cpu: 0.0,
        pages: 0,
        records: 0,
        bytes: 0,
    };
    loop {
        let t = thread_cpu_secs();
        let (status, body) = org.serve_in_process("GET", &path, token);
        let cpu = thread_cpu_secs() - t;
        served.cpu += cpu;
        if served.pages == 0 {
            served.first_cpu = cpu;
        }
        let text = String::from_utf8(body)?;
        if status != 200 {
            return Err(format!("{status}: {text}").into());
        }
        served.pages += 1;
        served.bytes += text.len();
        served.records += text.matches(top_level).count();
        let next = text
            .split_once("\"nextRecordsUrl\":\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(url, _)| url.to_string());
        let normalized = match &next {
            Some(url) => {
                let locator = url.rsplit('/').next().and_then(|l| l.split_once('-'));
                match locator {
                    Some((id, _)) => text.replace(id, "01gLOCATOR"),
                    None => text,
                }
            }
            None => text,
        };
        digest.update(normalized.as_bytes());
        match next {
            Some(url) => path = url,
            None => return Ok(served),
        }
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let records: usize = arg("--records").map_or(Ok(200_000), |s| s.parse())?;
    let rounds: usize = arg("--rounds").map_or(Ok(3), |s| s.parse())?;
    let sim = SfSim::start_with(SimOptions::default()).await?;
    let org = sim.add_org(OrgSpec::sample());
    org.set_daily_api_limit(1_000_000_000);
    let now = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")?.to_utc();
    org.set_time(now);
    let began = Instant::now();
    let summary = org.seed_japanese(records, 7);
    println!(
        "seeded {records} records in {:.1} s ({} Leads, {} Contacts)",
        began.elapsed().as_secs_f64(),
        summary.leads,
        summary.contacts
    );
    let after = (now - chrono::TimeDelta::days(3650))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let token = org.issue_token();
    let mut best = f64::INFINITY;
    for round in 1..=rounds {
        let mut digest = Sha256::new();
        let (mut pages, mut recs, mut bytes) = (0, 0, 0);
        let (mut cpu, mut first_pages) = (0.0, 0.0);
        let wall = Instant::now();
        for soql in [LEAD, CONTACT] {
            let s = serve_all(&org, &token, &soql.replace("{after}", &after), &mut digest)?;
            cpu += s.cpu;
            first_pages += s.first_cpu;
            pages += s.pages;
            recs += s.records;
            bytes += s.bytes;
        }
        let wall = wall.elapsed().as_secs_f64();
        best = best.min(cpu);
        let hex: String = digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!(
            "round {round}: {pages} pages, {recs} records, {:.1} MB; {wall:.3} s wall in all, \
             {cpu:.3} s CPU serving ({:.3} s of it in the two first pages: parse, filter, \
             sort); {:.0} records/CPU-s; {:.1} ms CPU per page; sha256 {}",
            bytes as f64 / 1e6,
            first_pages,
            recs as f64 / cpu,
            cpu * 1000.0 / pages as f64,
            &hex[..16]
        );
    }
    println!("best CPU: {best:.3} s");
    sim.shutdown().await;
    Ok(())
}
