//! Prometheus counters around the Salesforce ports: calls per operation and failures by
//! error class (`callsync_sf_calls_total{op}`, `callsync_sf_errors_total{op,class}`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{
    DeletedRecord, NewRecord, PageCursor, RecordPage, RecordQuery, RecordUpdate, SalesforceReader,
    SalesforceWriter, TaskDraft, TaskPatch,
};
use domain::{
    PhoneNumber, SalesforceId, SalesforceRecordRef, SfError, SfObject, SfRecord, SfUser,
    SyncTargets, TenantId,
};
use std::sync::Arc;

/// Wraps a reader and a writer (usually the same client).
pub struct MeteredSf {
    pub reader: Arc<dyn SalesforceReader>,
    pub writer: Arc<dyn SalesforceWriter>,
}

fn count<T>(op: &'static str, r: Result<T, SfError>) -> Result<T, SfError> {
    metrics::counter!("callsync_sf_calls_total", "op" => op).increment(1);
    if let Err(e) = &r {
        let class = match e.class() {
            domain::ErrorClass::Transient => "transient",
            domain::ErrorClass::Throttled => "throttled",
            domain::ErrorClass::NeedsReconnect => "needs_reconnect",
            domain::ErrorClass::OrgConfig => "org_config",
            domain::ErrorClass::BadData => "bad_data",
        };
        metrics::counter!("callsync_sf_errors_total", "op" => op, "class" => class).increment(1);
    }
    r
}

#[async_trait]
impl SalesforceReader for MeteredSf {
    async fn check_field_access(&self, t: &TenantId, objects: &[SfObject]) -> Result<(), SfError> {
        count(
            "check_field_access",
            self.reader.check_field_access(t, objects).await,
        )
    }
    async fn fetch_page(
        &self,
        t: &TenantId,
        query: &RecordQuery,
        cursor: Option<PageCursor>,
    ) -> Result<RecordPage, SfError> {
        count("fetch_page", self.reader.fetch_page(t, query, cursor).await)
    }
    async fn fetch_records(
        &self,
        t: &TenantId,
        records: &[SalesforceRecordRef],
    ) -> Result<Vec<SfRecord>, SfError> {
        count("fetch_records", self.reader.fetch_records(t, records).await)
    }
    async fn search_by_phone(
        &self,
        t: &TenantId,
        number: &PhoneNumber,
        targets: SyncTargets,
    ) -> Result<Vec<SfRecord>, SfError> {
        count(
            "search_by_phone",
            self.reader.search_by_phone(t, number, targets).await,
        )
    }
    async fn deleted_since(
        &self,
        t: &TenantId,
        object: SfObject,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DeletedRecord>, SfError> {
        count(
            "deleted_since",
            self.reader.deleted_since(t, object, since, until).await,
        )
    }
    async fn active_users(&self, t: &TenantId) -> Result<Vec<SfUser>, SfError> {
        count("active_users", self.reader.active_users(t).await)
    }
}

#[async_trait]
impl SalesforceWriter for MeteredSf {
    async fn create_tasks(
        &self,
        t: &TenantId,
        tasks: &[TaskDraft],
    ) -> Result<Vec<Result<SalesforceId, SfError>>, SfError> {
        let r = count("create_tasks", self.writer.create_tasks(t, tasks).await);
        if let Ok(results) = &r {
            let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
            metrics::counter!("callsync_sf_tasks_created_total").increment(ok);
        }
        r
    }
    async fn update_task(
        &self,
        t: &TenantId,
        id: &SalesforceId,
        patch: &TaskPatch,
    ) -> Result<(), SfError> {
        count("update_task", self.writer.update_task(t, id, patch).await)
    }
    async fn find_task_by_call_object(
        &self,
        t: &TenantId,
        call_object: &str,
    ) -> Result<Option<SalesforceId>, SfError> {
        count(
            "find_task_by_call_object",
            self.writer.find_task_by_call_object(t, call_object).await,
        )
    }
    async fn find_tasks_by_call_objects(
        &self,
        t: &TenantId,
        call_objects: &[String],
    ) -> Result<std::collections::HashMap<String, SalesforceId>, SfError> {
        count(
            "find_tasks_by_call_objects",
            self.writer
                .find_tasks_by_call_objects(t, call_objects)
                .await,
        )
    }
    async fn find_account(
        &self,
        t: &TenantId,
        name: &str,
    ) -> Result<Option<SalesforceId>, SfError> {
        count("find_account", self.writer.find_account(t, name).await)
    }
    async fn create_account(&self, t: &TenantId, name: &str) -> Result<SalesforceId, SfError> {
        count("create_account", self.writer.create_account(t, name).await)
    }
    async fn create_record(
        &self,
        t: &TenantId,
        record: &NewRecord,
        allow_duplicate_save: bool,
    ) -> Result<SalesforceId, SfError> {
        count(
            "create_record",
            self.writer
                .create_record(t, record, allow_duplicate_save)
                .await,
        )
    }
    async fn update_records(
        &self,
        t: &TenantId,
        updates: &[RecordUpdate],
    ) -> Result<Vec<Result<(), SfError>>, SfError> {
        count(
            "update_records",
            self.writer.update_records(t, updates).await,
        )
    }
}
