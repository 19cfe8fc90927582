//! Background loops: the incremental sync scheduler (R16) and the monitor that samples API
//! usage and queue depth for the charts and Prometheus.
//!
//! The scheduler starts at most one run per tenant from this process; across instances on
//! one PostgreSQL the sync use case's `Locks` lease keeps it to one run per tenant.

use crate::http::AppState;
use crate::service;
use domain::TenantId;
use rand::Rng as _;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// When each tenant is next due: first sight is spread over the jitter, then every
/// `interval + random(0..jitter)`.
pub struct Plan {
    interval: Duration,
    jitter: Duration,
    due: HashMap<TenantId, Instant>,
}

impl Plan {
    pub fn new(interval: Duration, jitter: Duration) -> Self {
        Self {
            interval,
            jitter,
            due: HashMap::new(),
        }
    }

    fn jitter(&self) -> Duration {
        let max = self.jitter.as_millis() as u64;
        if max == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::rng().random_range(0..max))
        }
    }

    /// The tenants due at `now` (and schedules their next run); forgets tenants that went.
    pub fn due(&mut self, tenants: &[TenantId], now: Instant) -> Vec<TenantId> {
        self.due.retain(|t, _| tenants.contains(t));
        let mut out = Vec::new();
        for t in tenants {
            let first = now + self.jitter();
            let at = *self.due.entry(t.clone()).or_insert(first);
            if at <= now {
                out.push(t.clone());
                let next = now + self.interval + self.jitter();
                self.due.insert(t.clone(), next);
            }
        }
        out
    }
}

/// Runs until `shutdown`.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_secs(state.settings.sync.interval_secs);
    let jitter = Duration::from_secs(state.settings.sync.jitter_secs);
    let tick = interval
        .min(Duration::from_secs(30))
        .max(Duration::from_secs(1));
    let mut plan = Plan::new(interval, jitter);
    loop {
        match state.ports.admin.tenants().await {
            Ok(tenants) => {
                for t in plan.due(&tenants, Instant::now()) {
                    match state.ports.credentials.load(&t).await {
                        Ok(Some(_)) => {
                            if service::start_sync(&state, &t, false).is_none() {
                                tracing::debug!(tenant = %t, "sync still running; skipped this turn");
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(tenant = %t, error = %e, "could not load credentials")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduler could not list tenants"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
}

/// Samples per-tenant gauges every minute (and at start).
pub async fn monitor(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Ok(tenants) = state.ports.admin.tenants().await {
            let now = chrono::Utc::now();
            for t in tenants {
                let sent = state.ports.usage.requests_sent(&t);
                state.stats.sample_requests(&t, sent, now);
                let label = t.to_string();
                metrics::gauge!("callsync_sf_requests_sent", "tenant" => label.clone())
                    .set(sent as f64);
                if let Some(u) = state.ports.usage.usage(&t) {
                    metrics::gauge!("callsync_sf_api_used", "tenant" => label.clone())
                        .set(u.used as f64);
                    metrics::gauge!("callsync_sf_api_max", "tenant" => label.clone())
                        .set(u.max as f64);
                }
                if let Ok(d) = state.ports.queue.depth(&t).await {
                    for (s, v) in [
                        ("ready", d.ready),
                        ("leased", d.leased),
                        ("waiting", d.waiting),
                        ("held", d.held),
                        ("dead", d.dead),
                    ] {
                        metrics::gauge!("callsync_queue_depth", "tenant" => label.clone(), "state" => s).set(v as f64);
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_runs_once_per_interval() {
        let mut p = Plan::new(Duration::from_secs(3600), Duration::ZERO);
        let a = TenantId::parse("a").unwrap();
        let b = TenantId::parse("b").unwrap();
        let t0 = Instant::now();
        assert_eq!(
            p.due(&[a.clone(), b.clone()], t0),
            vec![a.clone(), b.clone()]
        );
        assert!(
            p.due(&[a.clone(), b.clone()], t0 + Duration::from_secs(10))
                .is_empty()
        );
        assert_eq!(
            p.due(std::slice::from_ref(&a), t0 + Duration::from_secs(3600)),
            vec![a.clone()]
        );
    }

    #[test]
    fn jitter_spreads_first_runs_within_bounds() {
        let mut p = Plan::new(Duration::from_secs(3600), Duration::from_secs(300));
        let ts: Vec<TenantId> = (0..50)
            .map(|i| TenantId::parse(&format!("t{i}")).unwrap())
            .collect();
        let t0 = Instant::now();
        let now_due = p.due(&ts, t0).len();
        assert!(now_due < 50, "jitter delays most first runs");
        assert_eq!(
            p.due(&ts, t0 + Duration::from_secs(300)).len() + now_due,
            50
        );
    }
}
