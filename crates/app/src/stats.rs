//! Per-tenant hourly counts for the admin page's charts (activities written, Salesforce
//! requests sent), kept in this process for the last 24 hours, and the Prometheus metrics.
//!
//! Activities are counted by wrapping the event log: an event whose outcome is a created Task
//! is one activity. Requests are sampled from the Salesforce adapter's counter.

use async_trait::async_trait;
use chrono::{DateTime, Timelike, Utc};
use domain::ports::{Accepted, EventLog, EventOutcome, RawPayload, StoredEvent};
use domain::{CallEvent, CallId, StoreError, TenantId};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Hours kept.
pub const HOURS: usize = 24;

#[derive(Default)]
struct Series {
    /// hour start (unix seconds) → count
    buckets: BTreeMap<i64, u64>,
}

impl Series {
    fn add(&mut self, hour: i64, n: u64) {
        *self.buckets.entry(hour).or_default() += n;
        while self.buckets.len() > HOURS + 1 {
            self.buckets.pop_first();
        }
    }
}

fn hour_of(t: DateTime<Utc>) -> i64 {
    t.timestamp() - i64::from(t.minute()) * 60 - i64::from(t.second())
}

/// One hour of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HourCount {
    pub hour_start: DateTime<Utc>,
    pub count: u64,
}

#[derive(Default)]
pub struct HourlyStats {
    activities: Mutex<HashMap<TenantId, Series>>,
    requests: Mutex<HashMap<TenantId, Series>>,
    /// Last sampled `requests_sent` per tenant.
    last_sent: Mutex<HashMap<TenantId, u64>>,
}

impl HourlyStats {
    pub fn activity_written(&self, t: &TenantId, at: DateTime<Utc>) {
        if let Ok(mut m) = self.activities.lock() {
            m.entry(t.clone()).or_default().add(hour_of(at), 1);
        }
    }

    /// Records the adapter's running total of requests sent for `t`.
    pub fn sample_requests(&self, t: &TenantId, total_sent: u64, at: DateTime<Utc>) {
        let delta = match self.last_sent.lock() {
            Ok(mut m) => {
                let prev = m.insert(t.clone(), total_sent).unwrap_or(0);
                total_sent.saturating_sub(prev)
            }
            Err(_) => 0,
        };
        if let Ok(mut m) = self.requests.lock() {
            m.entry(t.clone()).or_default().add(hour_of(at), delta);
        }
    }

    fn series(
        map: &Mutex<HashMap<TenantId, Series>>,
        t: &TenantId,
        now: DateTime<Utc>,
    ) -> Vec<HourCount> {
        let guard = map.lock().ok();
        let series = guard.as_ref().and_then(|m| m.get(t));
        let this_hour = hour_of(now);
        (0..HOURS as i64)
            .rev()
            .map(|back| {
                let h = this_hour - back * 3600;
                HourCount {
                    hour_start: DateTime::from_timestamp(h, 0).unwrap_or(now),
                    count: series.and_then(|s| s.buckets.get(&h)).copied().unwrap_or(0),
                }
            })
            .collect()
    }

    /// The last 24 hours of activities written, oldest first.
    pub fn activities(&self, t: &TenantId, now: DateTime<Utc>) -> Vec<HourCount> {
        Self::series(&self.activities, t, now)
    }

    /// The last 24 hours of Salesforce requests, oldest first.
    pub fn requests(&self, t: &TenantId, now: DateTime<Utc>) -> Vec<HourCount> {
        Self::series(&self.requests, t, now)
    }
}

/// Wraps the event log to count written activities (and Prometheus outcomes).
pub struct CountingEventLog {
    pub inner: Arc<dyn EventLog>,
    pub stats: Arc<HourlyStats>,
}

#[async_trait]
impl EventLog for CountingEventLog {
    async fn accept(
        &self,
        t: &TenantId,
        raw: &RawPayload,
        event: &CallEvent,
        now: DateTime<Utc>,
    ) -> Result<Accepted, StoreError> {
        let r = self.inner.accept(t, raw, event, now).await;
        if let Ok(a) = &r {
            let kind = match a {
                Accepted::New { .. } => "new",
                Accepted::Duplicate { .. } => "duplicate",
            };
            metrics::counter!("callsync_events_received_total", "result" => kind).increment(1);
        }
        r
    }

    async fn event(&self, t: &TenantId, event_id: i64) -> Result<Option<StoredEvent>, StoreError> {
        self.inner.event(t, event_id).await
    }

    async fn call_events(
        &self,
        t: &TenantId,
        call: &CallId,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.call_events(t, call).await
    }

    async fn set_outcome(
        &self,
        t: &TenantId,
        event_id: i64,
        o: &EventOutcome,
    ) -> Result<(), StoreError> {
        let r = self.inner.set_outcome(t, event_id, o).await;
        if r.is_ok() {
            let outcome = match o {
                EventOutcome::TaskCreated { .. } => {
                    self.stats.activity_written(t, Utc::now());
                    "task_created"
                }
                EventOutcome::TaskUpdated { .. } => "task_updated",
                EventOutcome::Skipped { .. } => "skipped",
                EventOutcome::Failed { .. } => "failed",
            };
            let name = if matches!(o, EventOutcome::Failed { .. }) {
                "callsync_events_failed_total"
            } else {
                "callsync_events_processed_total"
            };
            metrics::counter!(name, "outcome" => outcome).increment(1);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn hourly_series_are_24_buckets_oldest_first() {
        let s = HourlyStats::default();
        let t = TenantId::parse("acme").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 30, 0).unwrap();
        s.activity_written(&t, now);
        s.activity_written(&t, now - chrono::Duration::hours(2));
        s.activity_written(&t, now - chrono::Duration::hours(30));
        let a = s.activities(&t, now);
        assert_eq!(a.len(), 24);
        assert_eq!(a[23].count, 1);
        assert_eq!(a[21].count, 1);
        assert_eq!(a.iter().map(|h| h.count).sum::<u64>(), 2);
        s.sample_requests(&t, 10, now);
        s.sample_requests(&t, 15, now);
        assert_eq!(s.requests(&t, now)[23].count, 15);
        let other = TenantId::parse("other").unwrap();
        assert_eq!(
            s.requests(&other, now).iter().map(|h| h.count).sum::<u64>(),
            0
        );
    }
}
