//! The `callsync` command line: `serve`, `migrate`, `sync`, `status`, `check-config`.

use crate::config::{ConfigError, ConfigSource, Settings};
use crate::service;
use crate::startup::Application;
use clap::{Parser, Subcommand};
use domain::TenantId;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "callsync",
    version,
    about = "Syncs a cloud phone system with Salesforce"
)]
pub struct Cli {
    /// Directory holding base.toml and {env}.toml (env from CALLSYNC_ENV, default local).
    #[arg(long, global = true, env = "CALLSYNC_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server, workers and scheduler until SIGTERM or Ctrl-C.
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Sync one tenant now and wait for the result.
    Sync {
        #[arg(long)]
        tenant: String,
        /// Re-import everything in the import window instead of changes since the watermark.
        #[arg(long)]
        full: bool,
    },
    /// Show a tenant's integration status.
    Status {
        #[arg(long)]
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load and validate the configuration; print what is wrong, or "ok" and a masked summary.
    CheckConfig,
}

fn load(cli: &Cli) -> Result<Settings, ExitCode> {
    let source = ConfigSource::from_env(cli.config_dir.clone());
    Settings::load(&source).map_err(|e| {
        report_config_error(&source, &e);
        ExitCode::from(2)
    })
}

fn report_config_error(source: &ConfigSource, e: &ConfigError) {
    eprintln!(
        "configuration error (dir {}, env {}):",
        source.dir.display(),
        source.env
    );
    for line in e.lines() {
        eprintln!("  {line}");
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> ExitCode {
    let settings = match load(&cli) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::CheckConfig => {
            println!("ok");
            println!("{}", settings.summary());
            Ok(())
        }
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            crate::telemetry::init_logging(&settings.log);
            crate::wiring::migrate(&settings)
                .await
                .map(|()| println!("migrations applied"))
        }
        Command::Sync { tenant, full } => sync(settings, &tenant, full).await,
        Command::Status { tenant, json } => status(settings, &tenant, json).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await
}

fn tenant(raw: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(raw).map_err(|e| anyhow::anyhow!("--tenant: {e}"))
}

/// Builds the app without serving (port 0, no workers) to reach its ports and services.
async fn offline_app(mut settings: Settings) -> anyhow::Result<Application> {
    settings.server.listen = "127.0.0.1:0".to_owned();
    settings.workers.count = 0;
    Application::build(settings).await
}

async fn sync(settings: Settings, raw: &str, full: bool) -> anyhow::Result<()> {
    let t = tenant(raw)?;
    let app = offline_app(settings).await?;
    let state = app.state().clone();
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message(format!("syncing {t}{}", if full { " (full)" } else { "" }));
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(b)
    } else {
        eprintln!("sync {t}: started{}", if full { " (full)" } else { "" });
        None
    };
    let run = state.ports.sync.clone();
    let outcome = run.run(&t, full).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let runs = state
        .ports
        .runs
        .runs(&t, 1)
        .await
        .map_err(anyhow::Error::new)?;
    match outcome? {
        None => {
            println!("sync {t}: another run holds the tenant's lease; nothing started");
            Ok(())
        }
        Some(id) => {
            let last = runs.into_iter().find(|r| r.id == id);
            match last {
                Some(r) => {
                    let rep = &r.report;
                    println!(
                        "sync {t}: run {id} {} — seen {} created {} updated {} unlinked {} duplicates {} written back {} api requests {}",
                        if r.ok == Some(true) { "ok" } else { "failed" },
                        rep.seen,
                        rep.created,
                        rep.updated,
                        rep.unlinked,
                        rep.duplicates,
                        rep.written_back,
                        rep.api_requests
                    );
                    for e in &rep.errors {
                        println!("  error: {e}");
                    }
                    if r.ok == Some(true) {
                        Ok(())
                    } else {
                        anyhow::bail!("sync run {id} failed")
                    }
                }
                None => {
                    println!("sync {t}: run {id} finished");
                    Ok(())
                }
            }
        }
    }
}

async fn status(settings: Settings, raw: &str, json: bool) -> anyhow::Result<()> {
    let t = tenant(raw)?;
    let app = offline_app(settings).await?;
    let st = service::status(app.state(), &t)
        .await
        .map_err(|e| anyhow::anyhow!("could not read the status ({})", e.code()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    println!("tenant        {}", st.tenant);
    match &st.connection {
        Some(c) => println!(
            "connected     org {} as {} ({}) since {}",
            c.user.org_id,
            c.user.name,
            c.instance_url,
            crate::http::html::jst(c.connected_at)
        ),
        None => println!("connected     no"),
    }
    match st.api.org {
        Some(u) => println!(
            "api usage     {} / {} org-wide; callsync ceiling {} ({}%)",
            u.used,
            u.max,
            st.api.ceiling.unwrap_or(0),
            st.api.budget_percent
        ),
        None => println!(
            "api usage     not observed yet ({}% budget)",
            st.api.budget_percent
        ),
    }
    let q = st.queue;
    println!(
        "queue         ready {} leased {} waiting {} held {} failed {}",
        q.ready, q.leased, q.waiting, q.held, q.dead
    );
    println!("sync runs");
    for r in &st.last_runs {
        println!(
            "  {:>6}  {}  {:<11}  {:<7}  seen {} created {} updated {}",
            r.id,
            crate::http::html::jst(r.started_at),
            format!("{:?}", r.kind),
            match r.ok {
                Some(true) => "ok",
                Some(false) => "failed",
                None => "running",
            },
            r.report.seen,
            r.report.created,
            r.report.updated
        );
    }
    println!("failed items  {}", st.failures.len());
    for f in &st.failures {
        println!(
            "  {:>6}  {}  {}",
            f.id, f.failure.code, f.failure.message_en
        );
    }
    println!(
        "members without a Salesforce user  {}",
        st.members_without_user.len()
    );
    Ok(())
}
