//! The worker: claims queued call events, lets the domain's [`CallLogger`] decide and write
//! them, and records each item's fate in the queue. Several workers (tasks or processes) can
//! run against one store; the store's claim keeps them apart.

use chrono::Utc;
use domain::StoreError;
use domain::ports::{EventLog, EventOutcome, WorkItem, WorkKind, WorkQueue};
use domain::usecases::call_logging::{CallLogger, ItemResult};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Name used for leases (unique per process and loop).
    pub name: String,
    /// Items claimed per step: the Task inserts of one tenant in a step go out together
    /// (up to 200 per Salesforce request).
    pub batch_size: u32,
    /// How long a claimed item stays invisible to other workers.
    pub lease: Duration,
    /// After a wake-up, wait this long for more events so a burst goes out in one request;
    /// a lone call waits no longer than this.
    pub linger: Duration,
    /// With nothing to do, look again after this long (new webhooks wake the worker sooner).
    pub idle_poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            name: "worker-1".to_owned(),
            batch_size: 200,
            lease: Duration::from_secs(120),
            linger: Duration::from_millis(50),
            idle_poll: Duration::from_secs(1),
        }
    }
}

/// Counts of one step, for logs, metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    pub claimed: usize,
    pub done: usize,
    pub retried: usize,
    pub held: usize,
    pub dead: usize,
    pub crashed: usize,
}

pub struct Worker {
    queue: Arc<dyn WorkQueue>,
    events: Arc<dyn EventLog>,
    logger: Arc<CallLogger>,
    config: WorkerConfig,
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(
        queue: Arc<dyn WorkQueue>,
        events: Arc<dyn EventLog>,
        logger: Arc<CallLogger>,
        config: WorkerConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            queue,
            events,
            logger,
            config,
            wake,
        }
    }

    /// One claim–process–record round. Tests drive the worker with this.
    pub async fn step(&self) -> Result<StepReport, StoreError> {
        self.step_at(Utc::now()).await
    }

    /// A round that claims what is due at `now`: tests use a later `now` to run retries
    /// scheduled for the future, and expired leases, without waiting for them.
    pub async fn step_at(&self, now: chrono::DateTime<Utc>) -> Result<StepReport, StoreError> {
        let items = self
            .queue
            .claim(
                &self.config.name,
                self.config.batch_size,
                self.config.lease,
                now,
            )
            .await?;
        let mut report = StepReport {
            claimed: items.len(),
            ..Default::default()
        };
        if items.is_empty() {
            return Ok(report);
        }
        let results = self.logger.process(&items).await;
        for (item, result) in items.iter().zip(results) {
            self.record(item, result, &mut report).await;
        }
        Ok(report)
    }

    async fn record(&self, item: &WorkItem, result: ItemResult, report: &mut StepReport) {
        let WorkKind::CallEvent { call_id, event, .. } = &item.kind;
        let span = tracing::info_span!("item", tenant = %item.tenant, call_id = %call_id, event = %event, item = item.id);
        // `instrument`, never `span.enter()` across an await: an entered guard held over a
        // suspension point corrupts the span stack of whichever thread resumes the task (it
        // made tracing-subscriber panic and killed both workers once).
        self.record_in_span(item, result, report)
            .instrument(span)
            .await;
    }

    async fn record_in_span(&self, item: &WorkItem, result: ItemResult, report: &mut StepReport) {
        let WorkKind::CallEvent { event_id, .. } = &item.kind;
        let outcome = match &result {
            ItemResult::Done(_) => {
                report.done += 1;
                self.queue.complete(item).await
            }
            ItemResult::RetryAt(at, why) => {
                report.retried += 1;
                tracing::info!(code = %why.code, retry_at = %at, "retrying later");
                self.queue.retry_at(item, *at, why).await
            }
            ItemResult::Wait(at, why) => {
                report.retried += 1;
                tracing::debug!(code = %why.code, retry_at = %at, "waiting for another worker");
                self.queue.defer(item, *at, why).await
            }
            ItemResult::Hold(reason, why) => {
                report.held += 1;
                tracing::warn!(code = %why.code, ?reason, "held");
                self.queue.hold(item, *reason, why).await
            }
            ItemResult::Dead(why) => {
                report.dead += 1;
                tracing::warn!(code = %why.code, message = %why.message_en, "dead-lettered");
                let failed = EventOutcome::Failed {
                    class: why.class,
                    code: why.code.clone(),
                    message: why.message_en.clone(),
                };
                if let Err(e) = self
                    .events
                    .set_outcome(&item.tenant, *event_id, &failed)
                    .await
                {
                    tracing::warn!(error = %e, "could not record the failure on the event");
                }
                self.queue.dead_letter(item, why, Utc::now()).await
            }
            ItemResult::Crashed(point) => {
                report.crashed += 1;
                tracing::warn!(
                    ?point,
                    "fail point: leaving the item as a crashed worker would"
                );
                Ok(())
            }
        };
        if let Err(e) = outcome {
            // The lease was lost or the store is down: the item becomes claimable again when
            // its lease expires, and the exactly-once check covers the replay.
            tracing::warn!(error = %e, "could not record the item's result");
        }
    }

    /// Runs until `shutdown` turns true. Stops claiming at once; the batch in flight finishes
    /// (or its lease expires and another worker takes it).
    ///
    /// Each round runs as its own task, so a panic in one round (a bug) is logged and the
    /// worker goes on; the items of that round run again when their lease expires.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let round = tokio::spawn({
                let worker = self.clone();
                async move { worker.step().await }
            });
            match round.await {
                Ok(Ok(r)) if r.claimed as u32 >= self.config.batch_size => continue,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "claim failed"),
                Err(e) => {
                    let panic = e.is_panic();
                    tracing::error!(
                        worker = %self.config.name,
                        panic,
                        error = %e,
                        "worker round did not finish; its items run again when their lease expires"
                    );
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {
                    // Let a burst gather so it is written in one request.
                    tokio::time::sleep(self.config.linger).await;
                }
                _ = tokio::time::sleep(self.config.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::fakes::{FakeSalesforce, InMemoryStore, QState};
    use domain::ports::{
        Accepted, CredentialStore, EventLog, RawPayload, SettingsStore, SkipReason, SystemClock,
    };
    use domain::usecases::call_logging::{CallLoggingOptions, CallLoggingPorts, NoFailPoints};
    use domain::{
        CallEvent, CallId, ContactInfo, EventKind, IntegrationSettings, PartyNumber, PhoneNumber,
        SfError, SfLink, SfObject, TenantId,
    };

    fn event(id: &str, number: &str) -> CallEvent {
        CallEvent {
            call_id: CallId::parse(id).unwrap(),
            kind: EventKind::Missed,
            direction: None,
            status_code: None,
            party: PartyNumber::classify(number),
            contact: ContactInfo::default(),
            member: None,
            started_at: None,
            answered_at: None,
            ended_at: None,
            duration_secs: None,
            memo: None,
            call_url: None,
            recording_url: None,
            transcript: None,
            extra: Default::default(),
        }
    }

    async fn setup() -> (TenantId, Arc<InMemoryStore>, Arc<FakeSalesforce>, Worker) {
        setup_with(|store| store, WorkerConfig::default()).await
    }

    /// `settings` wraps the store's settings port (to inject a fault into the logger).
    async fn setup_with(
        settings: impl FnOnce(Arc<InMemoryStore>) -> Arc<dyn SettingsStore>,
        config: WorkerConfig,
    ) -> (TenantId, Arc<InMemoryStore>, Arc<FakeSalesforce>, Worker) {
        let t = TenantId::parse("acme").unwrap();
        let store = Arc::new(InMemoryStore::new());
        let sf = Arc::new(FakeSalesforce::new());
        let admin = sf.add_user("admin@example.jp", true);
        store.save(&t, &sf.credentials(&admin)).await.unwrap();
        store
            .save_settings(&t, &IntegrationSettings::default())
            .await
            .unwrap();
        let r = sf.add_record(SfObject::Lead, "03-1234-5678", "既存", Utc::now());
        store.insert_customer(
            &t,
            PhoneNumber::parse("03-1234-5678").unwrap(),
            Some(SfLink {
                record: r,
                system_modstamp: None,
            }),
        );
        let ports = CallLoggingPorts {
            sf_read: sf.clone(),
            sf_write: sf.clone(),
            usage: sf.clone(),
            customers: store.clone(),
            events: store.clone(),
            tasks: store.clone(),
            directory: store.clone(),
            settings: settings(store.clone()),
            credentials: store.clone(),
            locks: store.clone(),
            clock: Arc::new(SystemClock),
        };
        let logger = Arc::new(CallLogger::new(
            ports,
            CallLoggingOptions::default(),
            Arc::new(NoFailPoints),
        ));
        let worker = Worker::new(
            store.clone(),
            store.clone(),
            logger,
            config,
            Arc::new(Notify::new()),
        );
        (t, store, sf, worker)
    }

    async fn post(store: &InMemoryStore, t: &TenantId, e: &CallEvent) -> Accepted {
        let raw = RawPayload {
            content_type: "application/json".into(),
            body: vec![],
            request_id: None,
        };
        store.accept(t, &raw, e, Utc::now()).await.unwrap()
    }

    #[tokio::test]
    async fn step_writes_known_calls_and_records_skips() {
        let (t, store, sf, worker) = setup().await;
        post(&store, &t, &event("c1", "03-1234-5678")).await;
        post(&store, &t, &event("c2", "非通知")).await;
        let r = worker.step().await.unwrap();
        assert_eq!((r.claimed, r.done), (2, 2));
        assert_eq!(sf.tasks().len(), 1);
        let outcomes = store.outcomes(&t);
        assert!(outcomes.iter().any(|(_, o)| matches!(
            o,
            Some(EventOutcome::Skipped {
                reason: SkipReason::NoNumber
            })
        )));
        assert!(store.queue_items().iter().all(|q| q.state == QState::Done));
        assert_eq!(worker.step().await.unwrap().claimed, 0);
    }

    #[tokio::test]
    async fn dead_letters_keep_the_item_and_mark_the_event_failed() {
        let (t, store, sf, worker) = setup().await;
        sf.fail_next(SfError::BadData {
            code: "STRING_TOO_LONG".into(),
            object: Some("Task".into()),
            field: Some("Subject".into()),
            cause: "too long".into(),
        });
        // The first request of the tenant loads the user directory; fail the Task insert instead.
        domain::ports::DirectoryStore::save_users(
            &*store,
            &t,
            &[domain::SfUser {
                id: domain::SalesforceId::parse("005000000000001").unwrap(),
                email: None,
                name: "a".into(),
                active: true,
            }],
        )
        .await
        .unwrap();
        post(&store, &t, &event("c1", "03-1234-5678")).await;
        let r = worker.step().await.unwrap();
        assert_eq!(r.dead, 1);
        let items = store.queue_items();
        assert_eq!(items.len(), 1, "never deleted");
        assert_eq!(items[0].state, QState::Dead);
        assert!(
            matches!(store.outcomes(&t)[0].1, Some(EventOutcome::Failed { ref code, .. }) if code == "STRING_TOO_LONG")
        );
    }

    /// Settings that panic on the first read: a bug in one round, as in the soak where a
    /// tracing guard held across an await made tracing-subscriber panic.
    struct PanicOnce {
        inner: Arc<InMemoryStore>,
        fired: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl SettingsStore for PanicOnce {
        async fn settings(
            &self,
            t: &TenantId,
        ) -> Result<Option<IntegrationSettings>, domain::StoreError> {
            if !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
                panic!("injected: a bug in one worker round");
            }
            self.inner.settings(t).await
        }
        async fn save_settings(
            &self,
            t: &TenantId,
            s: &IntegrationSettings,
        ) -> Result<(), domain::StoreError> {
            self.inner.save_settings(t, s).await
        }
    }

    /// A panic inside a round must not end the worker: the round's items are claimed again
    /// once their lease expires and the call is still logged (nothing stays leased forever).
    #[tokio::test(start_paused = true)]
    async fn a_panicking_round_does_not_stop_the_worker() {
        let config = WorkerConfig {
            // Expired at once, so the next round takes the panicked round's items again.
            lease: Duration::ZERO,
            ..WorkerConfig::default()
        };
        let (t, store, sf, worker) = setup_with(
            |store| {
                Arc::new(PanicOnce {
                    inner: store,
                    fired: Default::default(),
                })
            },
            config,
        )
        .await;
        post(&store, &t, &event("c1", "03-1234-5678")).await;
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(Arc::new(worker).run(stopped));
        // Paused time: the worker's idle waits advance the clock instantly; this loop only
        // yields until the item is done (or the virtual minute runs out).
        let done = tokio::time::timeout(Duration::from_secs(60), async {
            while !store.queue_items().iter().all(|q| q.state == QState::Done) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        stop.send(true).unwrap();
        running.await.unwrap();
        assert!(done.is_ok(), "the item was never processed after the panic");
        assert_eq!(sf.tasks().len(), 1);
    }
}
