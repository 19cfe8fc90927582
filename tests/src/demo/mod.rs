//! The demo driver's steps. Everything goes through callsync's public surface (HTTP API,
//! OAuth redirects, signed webhooks); sf-sim runs in this process so the report can read the
//! org's state directly.

mod api;
mod calls;
mod callsync;
mod org;
mod report;
mod secrets;
mod text;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use text::{Out, thousands};

const USAGE: &str = "\
usage: cargo xtask demo [--exit]

Starts a simulated Salesforce org (sf-sim, ~3,000 Japanese Leads and Contacts), runs
`callsync serve` against it, connects, imports, sends a morning of call webhooks and prints
a report with one ✔/✘ per scenario. Then it keeps callsync running for the admin page until
Ctrl-C.

  --exit   stop callsync and exit after the report (exit status 1 if a scenario failed)";

const TENANT: &str = "demo";
const STEPS: usize = 6;

pub(crate) fn main() -> ExitCode {
    let mut exit = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--exit" => exit = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    it::install_crypto();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(exit)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("\ndemo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `target/demo/run-…` for this run; older runs are removed (their databases and logs are
/// only useful until the next run).
fn run_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .context("the demo binary is not in target/<profile>/")?;
    let demo = target.join("demo");
    std::fs::create_dir_all(&demo)?;
    for e in std::fs::read_dir(&demo)?.flatten() {
        if e.file_name().to_string_lossy().starts_with("run-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let dir = demo.join(format!(
        "run-{}-{}",
        chrono::Local::now().format("%Y%m%d-%H%M%S"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir.canonicalize()?)
}

async fn run(exit: bool) -> Result<bool> {
    let mut out = Out::new();
    out.line("callsync demo — 電話システム × Salesforce 連携のデモ");
    out.blank();
    let dir = run_dir()?;

    // 1. Salesforce.
    let fx = org::Fixture::start().await?;
    out.step(
        1,
        STEPS,
        "Salesforce (sf-sim)",
        format!(
            "org 株式会社デモ商事, {} Leads + Contacts, at {}",
            thousands((fx.org.count("Lead") + fx.org.count("Contact")) as u64),
            fx.org.instance_url()
        ),
    );

    let at_start = fx.org.api_requests_used();

    // 2. callsync.
    let keys = callsync::Keys::generate();
    let (client_id, client_secret) = fx.sim.client_credentials();
    let login_url = fx.sim.login_url();
    let mut service = callsync::Callsync::start(
        &dir,
        &keys,
        &callsync::SalesforceApp {
            login_url: &login_url,
            client_id: &client_id,
            client_secret: &client_secret,
        },
    )
    .await?;
    out.step(
        2,
        STEPS,
        "callsync serve",
        format!("{} (SQLite, log {})", service.base_url, rel(&service.log)),
    );

    // 3. Tenant, settings, OAuth.
    let api = api::Api::new(&service.base_url)?;
    let created = api
        .create_tenant(&keys.operator_key, TENANT, "株式会社デモ商事")
        .await?;
    let tenant = api.tenant(TENANT, &created.admin_token);
    tenant.configure().await?;
    let connected = tenant.connect().await?;
    if connected != "connected" {
        bail!(
            "connecting to Salesforce ended with connect={connected}; see {}",
            service.log.display()
        );
    }
    let status = tenant.get("/status").await?;
    let user = &status["connection"]["user"];
    out.step(
        3,
        STEPS,
        "tenant, settings, OAuth connect",
        format!(
            "tenant {TENANT}, connected as {} <{}>",
            user["name"].as_str().unwrap_or("?"),
            user["email"].as_str().unwrap_or("?")
        ),
    );

    // 4. Import.
    let before_import = fx.org.api_requests_used();
    let import = tenant.sync_and_wait(Duration::from_secs(90)).await?;
    let after_import = fx.org.api_requests_used();
    out.step(
        4,
        STEPS,
        "import (POST /sync)",
        format!(
            "{} customers",
            thousands(import["report"]["created"].as_u64().unwrap_or(0))
        ),
    );

    // 5. A morning of calls.
    let known = calls::pick_known(&fx, &tenant, 3).await?;
    let before = report::Before::take(&fx);
    let sender = calls::Sender::new(
        api.http().clone(),
        &created.webhook_url,
        &created.webhook_secret,
    );
    let mut morning = calls::morning(&sender, known).await?;
    tenant.wait_queue_empty(Duration::from_secs(60)).await?;
    out.step(
        5,
        STEPS,
        "a morning of calls (webhooks)",
        format!("{} sent, queue empty", morning.sent),
    );

    // 6. The transcription, "twenty minutes later".
    let s = calls::transcription(&sender, &morning.answered).await?;
    morning.sent += 1;
    morning.accepted += usize::from((200..300).contains(&s));
    tenant.wait_queue_empty(Duration::from_secs(30)).await?;
    out.step(6, STEPS, "late transcription (JSON)", "queue empty");

    let requests = report::Requests {
        at_start,
        before_import,
        after_import,
        end: fx.org.api_requests_used(),
    };
    let scenarios_ok = report::print(
        &mut out,
        &report::Inputs {
            fx: &fx,
            tenant: &tenant,
            morning: &morning,
            before: &before,
            import: &import,
            requests: &requests,
        },
    )
    .await?;

    if exit {
        service.stop()?;
    }
    let log = std::fs::read_to_string(&service.log).unwrap_or_default();
    let leaked = secrets::find(
        &[
            secrets::Secret {
                name: "operator key",
                value: keys.operator_key.clone(),
            },
            secrets::Secret {
                name: "token key",
                value: keys.token_key.clone(),
            },
            secrets::Secret {
                name: "tenant admin token",
                value: created.admin_token.clone(),
            },
            secrets::Secret {
                name: "webhook secret",
                value: created.webhook_secret.clone(),
            },
            secrets::Secret {
                name: "Salesforce client secret",
                value: client_secret.clone(),
            },
        ],
        &fx.org,
        &[("callsync's log", &log), ("this report", out.text())],
    );
    out.blank();
    if leaked.is_empty() {
        out.line("  ✔ secrets in logs: none");
    } else {
        for (what, place) in &leaked {
            out.line(format!(
                "  ✘ secrets in logs: the {what} appears in {place}"
            ));
        }
    }
    let ok = scenarios_ok && leaked.is_empty();
    out.blank();
    out.line(format!(
        "{} in {:.1} s",
        if ok {
            "全シナリオ成功 / all scenarios passed"
        } else {
            "失敗したシナリオがあります / some scenarios FAILED"
        },
        out.elapsed_secs()
    ));
    if exit {
        return Ok(ok);
    }

    // Interactive: the admin page stays up until Ctrl-C.
    out.blank();
    out.line(format!("管理画面 / admin page:  {}", created.admin_url));
    out.line(format!(
        "ログイン用トークン / login token (paste it at {}/login):",
        created.admin_url
    ));
    println!("    {}", created.admin_token);
    out.line(format!("callsync log:  {}", service.log.display()));
    out.line("Ctrl-C で終了 / press Ctrl-C to stop");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if !service.running() {
                    eprintln!("callsync exited; see {}", service.log.display());
                    break;
                }
            }
        }
    }
    service.stop()?;
    Ok(ok)
}

/// `path` relative to the current directory when it is below it.
fn rel(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|d| path.strip_prefix(d).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
