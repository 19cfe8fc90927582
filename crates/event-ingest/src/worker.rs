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
        let items = self
            .queue
            .claim(
                &self.config.name,
                self.config.batch_size,
                self.config.lease,
                Utc::now(),
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
        let WorkKind::CallEvent {
            event_id,
            call_id,
            event,
        } = &item.kind;
        let span = tracing::info_span!("item", tenant = %item.tenant, call_id = %call_id, event = %event, item = item.id);
        let _enter = span.enter();
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
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.step().await {
                Ok(r) if r.claimed as u32 >= self.config.batch_size => continue,
                Ok(r) if r.claimed > 0 => {}
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "claim failed"),
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
