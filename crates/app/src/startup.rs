//! [`Application`]: bind the port, start workers and the scheduler, serve until stopped.
//! Production (`callsync serve`) and tests call the same [`Application::build`].

use crate::config::Settings;
use crate::http::{self, AppState};
use crate::ports::Ports;
use crate::security::{Keys, PendingAuths};
use crate::service::SyncJobs;
use crate::stats::HourlyStats;
use crate::{scheduler, telemetry, wiring};
use axum::Router;
use domain::ports::EventLog;
use domain::usecases::call_logging::{
    CallLogger, CallLoggingOptions, CallLoggingPorts, NoFailPoints,
};
use event_ingest::worker::{Worker, WorkerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    workers: Vec<Arc<Worker>>,
    shutdown_tx: watch::Sender<bool>,
    shutdown_rx: watch::Receiver<bool>,
}

/// Stops a running [`Application`] (as SIGTERM would).
#[derive(Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

impl Application {
    /// Connects the adapters described by `settings` (the database must be migrated: see
    /// `callsync migrate`, or `wiring` migrates an embedded SQLite database), binds
    /// `server.listen` (port 0 picks a free port) and prepares workers and scheduler.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        telemetry::init_logging(&settings.log);
        let wired = wiring::connect(&settings).await?;
        Self::build_with(settings, wired.ports, wired.webhooks).await
    }

    /// Like [`Application::build`] with the ports given (tests substitute fakes here).
    /// `webhooks` builds the intake router from the workers' notifier and the event log
    /// (wrapped here for metrics); it is merged as is.
    pub async fn build_with(
        settings: Settings,
        ports: Ports,
        webhooks: impl FnOnce(Arc<Notify>, Arc<dyn EventLog>) -> Router,
    ) -> anyhow::Result<Self> {
        let addr = settings.listen_addr()?;
        let listener = TcpListener::bind(addr).await?;
        let wake = Arc::new(Notify::new());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let settings = Arc::new(settings);
        let stats = Arc::new(HourlyStats::default());
        // Counting decorator: activities per hour and event metrics.
        let mut ports = ports;
        ports.events = Arc::new(crate::stats::CountingEventLog {
            inner: ports.events.clone(),
            stats: stats.clone(),
        });
        let state = AppState {
            ports: ports.clone(),
            keys: Arc::new(Keys::new(&settings.security.operator_key)),
            oauth: Arc::new(PendingAuths::default()),
            jobs: Arc::new(SyncJobs::default()),
            stats,
            wake: wake.clone(),
            metrics: telemetry::prometheus(),
            settings: settings.clone(),
        };
        let workers = (0..settings.workers.count)
            .map(|i| Arc::new(make_worker(&settings, &ports, wake.clone(), i)))
            .collect();
        let router = http::router(state.clone(), webhooks(wake, ports.events.clone()));
        Ok(Self {
            listener,
            router,
            state,
            workers,
            shutdown_tx,
            shutdown_rx,
        })
    }

    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown_tx.clone())
    }

    /// The shared state (tests reach the ports through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The workers, for tests that drive them with `step()` (build with `workers.count`).
    pub fn workers(&self) -> &[Arc<Worker>] {
        &self.workers
    }

    /// Serves until SIGTERM, Ctrl-C or [`ShutdownHandle::shutdown`]. Then: stop accepting
    /// (intake stops), let requests in flight finish, tell workers to stop claiming and wait
    /// for their batch (items not finished keep their lease and run again elsewhere).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            state,
            workers,
            shutdown_tx,
            shutdown_rx,
        } = self;
        let mut handles: Vec<JoinHandle<()>> = workers
            .into_iter()
            .map(|w| tokio::spawn(w.run(shutdown_rx.clone())))
            .collect();
        if state.settings.sync.interval_secs > 0 {
            handles.push(tokio::spawn(scheduler::run(
                state.clone(),
                shutdown_rx.clone(),
            )));
        }
        handles.push(tokio::spawn(scheduler::monitor(
            state.clone(),
            shutdown_rx.clone(),
        )));
        let signal = {
            let tx = shutdown_tx.clone();
            let mut rx = shutdown_rx.clone();
            async move {
                tokio::select! {
                    _ = os_signal() => tracing::info!("shutdown signal received"),
                    _ = rx.wait_for(|stop| *stop) => tracing::info!("shutdown requested"),
                }
                let _ = tx.send(true);
            }
        };
        tracing::info!(addr = ?listener.local_addr().ok(), "callsync listening");
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .await;
        let _ = shutdown_tx.send(true);
        let drain = async {
            for h in handles {
                let _ = h.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), drain)
            .await
            .is_err()
        {
            tracing::warn!("workers did not stop within 30 s; their leases will expire");
        }
        tracing::info!("callsync stopped");
        Ok(served?)
    }
}

async fn os_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// One call-event worker as the pool runs it. Public so tests can build one next to an
/// application started with `workers.count = 0` and drive it with `Worker::step`, instead of
/// waiting for the background pool.
pub fn make_worker(settings: &Settings, ports: &Ports, wake: Arc<Notify>, i: u32) -> Worker {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{}-w{i}-{seq}", instance_name());
    let logger = CallLogger::new(
        CallLoggingPorts {
            sf_read: ports.sf_read.clone(),
            sf_write: ports.sf_write.clone(),
            usage: ports.usage.clone(),
            customers: ports.customers.clone(),
            events: ports.events.clone(),
            tasks: ports.tasks.clone(),
            directory: ports.directory.clone(),
            settings: ports.settings.clone(),
            credentials: ports.credentials.clone(),
            locks: ports.locks.clone(),
            clock: ports.clock.clone(),
        },
        CallLoggingOptions {
            holder: name.clone(),
            ..Default::default()
        },
        Arc::new(NoFailPoints),
    );
    Worker::new(
        ports.queue.clone(),
        ports.events.clone(),
        Arc::new(logger),
        WorkerConfig {
            name,
            batch_size: settings.workers.batch_size,
            lease: Duration::from_secs(settings.workers.lease_secs),
            linger: Duration::from_millis(settings.workers.linger_ms),
            ..Default::default()
        },
        wake,
    )
}

/// A name unique to this process, for leases (host-pid-random).
pub fn instance_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "callsync".to_owned());
        let tag: u16 = rand::random();
        format!("{host}-{}-{tag:04x}", std::process::id())
    })
    .clone()
}
