//! `sf-sim` binary: start the simulator with one (optionally seeded) demo org and print how to
//! reach it. Example: `cargo run -p sf-sim -- --port 8787 --seed demo`.

use std::process::ExitCode;

use clap::Parser;
use sf_sim::{OrgSpec, SfSim, SimOptions, SimUser};

#[derive(Parser, Debug)]
#[command(name = "sf-sim", about = "A stateful Salesforce simulator")]
struct Args {
    /// Port of the login origin; the demo org's instance origin uses the next port (0 = any).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// `demo` (seed 1), a number (that seed), or `none` (empty org).
    #[arg(long, default_value = "demo")]
    seed: String,
    /// Number of Leads + Contacts to seed.
    #[arg(long, default_value_t = 2000)]
    records: usize,
    /// Show the HTML consent page instead of redirecting at once.
    #[arg(long)]
    consent_page: bool,
    /// Seed, print the summary and exit without serving (a quick seeding-speed check).
    #[arg(long)]
    no_serve: bool,
    /// Fixed connected-app credentials (random otherwise).
    #[arg(long, env = "SF_SIM_CLIENT_ID")]
    client_id: Option<String>,
    #[arg(long, env = "SF_SIM_CLIENT_SECRET")]
    client_secret: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let opts = SimOptions {
        port: args.port,
        auto_consent: !args.consent_page,
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
        ..SimOptions::default()
    };
    let sim = match SfSim::start_with(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sf-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let org = sim.add_org(OrgSpec {
        name: "デモ株式会社".into(),
        users: vec![SimUser::new("admin@demo.example.jp", "太郎", "管理者")],
        port: if args.port == 0 {
            0
        } else {
            args.port.saturating_add(1)
        },
        ..OrgSpec::default()
    });
    let seed = match args.seed.as_str() {
        "none" => None,
        "demo" => Some(1),
        s => s.parse().ok(),
    };
    if let Some(seed) = seed {
        let t = std::time::Instant::now();
        let s = org.seed_japanese(args.records, seed);
        println!("seeded in {:?}: {s:?}", t.elapsed());
    }
    if args.no_serve {
        sim.shutdown().await;
        return ExitCode::SUCCESS;
    }
    let (id, secret) = sim.client_credentials();
    println!("login_url     {}", sim.login_url());
    println!("instance_url  {}", org.instance_url());
    println!("org_id        {}", org.org_id());
    println!("client_id     {id}");
    println!("client_secret {secret}");
    println!("access_token  {}", org.issue_token());
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}
