//! [`SalesforceClient`]: the domain ports implemented over the executor and the transformers.

use crate::config::{ConfigError, SfConfig};
use crate::executor::{Call, Executor, Target, spawn_keeping_request_id};
use crate::transformers::{
    ACTIVE_USERS_SOQL, DescribeDto, QueryPageDto, SaveResultDto, SearchDto, account_by_name_soql,
    bad_response, collection_record, confirm_phone_hits, deleted_from_json, deleted_soql,
    first_hidden_field, first_id, new_record_json, phone_search_terms, phone_sosl,
    record_from_json, record_page, record_soql, records_by_id_soql, save_result,
    task_by_call_object_soql, task_json, task_patch_json, tasks_by_call_objects_soql, update_json,
    user_from_json,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{
    ApiUsage, ApiUsageView, CredentialStore, DeletedRecord, NewRecord, PageCursor, RecordPage,
    RecordQuery, RecordUpdate, SalesforceReader, SalesforceWriter, TaskDraft, TaskPatch,
};
use domain::{
    ErrorClass, PhoneNumber, SalesforceId, SalesforceRecordRef, SfError, SfObject, SfRecord,
    SfUser, SyncTargets, TenantId,
};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::Instrument as _;

/// Most records one sObject Collections request may carry.
pub const COLLECTION_LIMIT: usize = 200;
/// Ids per `WHERE Id IN (…)` query, to stay far below the URI length limit.
const IDS_PER_QUERY: usize = 200;

/// The Salesforce adapter: implements [`SalesforceReader`], [`SalesforceWriter`] and
/// [`ApiUsageView`] for every tenant, plus the OAuth helpers (see `oauth.rs`).
///
/// Cheap to clone: clones share the HTTP connection pool, the credential cache and the
/// per-tenant API usage.
#[derive(Clone)]
pub struct SalesforceClient {
    pub(crate) exec: Arc<Executor>,
}

impl std::fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceClient")
            .field("login_url", &self.exec.login_base)
            .field("api_version", &self.exec.config.api_version)
            .finish_non_exhaustive()
    }
}

/// Whether an error is about the whole request rather than the record in it.
fn whole_call(e: &SfError) -> bool {
    matches!(
        e.class(),
        ErrorClass::Transient | ErrorClass::Throttled | ErrorClass::NeedsReconnect
    ) || crate::executor::is_ip_restricted(e)
        || matches!(
            e,
            SfError::OrgConfig {
                problem: domain::OrgProblem::ApiDisabled,
                ..
            }
        )
}

/// The request for one page of a query: the query itself (`soql`), or the page behind a
/// `nextRecordsUrl` cursor.
fn page_call(
    endpoint: &str,
    soql: String,
    cursor: Option<&PageCursor>,
    object: &'static str,
) -> Result<Call, SfError> {
    let call = match cursor {
        None => Call::query(endpoint, soql),
        Some(c) => Call::get(Target::Path(cursor_path(c)?)),
    };
    Ok(call.about(object))
}

/// A `nextRecordsUrl` must be a path on the instance: never a URL the token could leak to.
fn cursor_path(c: &PageCursor) -> Result<String, SfError> {
    let p = c.0.as_str();
    let ok = p.starts_with("/services/data/")
        && !p.contains("..")
        && !p.contains("//")
        && !p
            .bytes()
            .any(|b| b.is_ascii_control() || b == b'\\' || b == b'@');
    if ok {
        Ok(p.to_owned())
    } else {
        Err(SfError::BadData {
            code: "INVALID_CURSOR".to_owned(),
            object: None,
            field: None,
            cause: "the page cursor is not a Salesforce query path".to_owned(),
        })
    }
}

impl SalesforceClient {
    /// Builds the client. `credentials` is where tenants' tokens live: loaded on first use,
    /// updated after every refresh.
    pub fn new(
        config: SfConfig,
        credentials: Arc<dyn CredentialStore>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            exec: Arc::new(Executor::new(config, credentials)?),
        })
    }

    pub fn config(&self) -> &SfConfig {
        &self.exec.config
    }

    async fn query_page(
        &self,
        t: &TenantId,
        endpoint: &str,
        soql: String,
        cursor: Option<&PageCursor>,
        object: &'static str,
    ) -> Result<QueryPageDto, SfError> {
        let call = page_call(endpoint, soql, cursor, object)?;
        self.exec.execute(t, &call).await?.json()
    }

    /// Every record of a (small) query, following `nextRecordsUrl`.
    async fn query_all_records(
        &self,
        t: &TenantId,
        endpoint: &str,
        soql: String,
        object: &'static str,
    ) -> Result<Vec<Value>, SfError> {
        let mut out = Vec::new();
        let mut page = self
            .query_page(t, endpoint, soql.clone(), None, object)
            .await?;
        loop {
            out.append(&mut page.records);
            match page.next_records_url.take().filter(|_| !page.done) {
                Some(next) => {
                    page = self
                        .query_page(t, endpoint, String::new(), Some(&PageCursor(next)), object)
                        .await?;
                }
                None => return Ok(out),
            }
        }
    }

    async fn create_one(
        &self,
        t: &TenantId,
        object: &'static str,
        body: serde_json::Map<String, Value>,
        allow_duplicate_save: bool,
    ) -> Result<SalesforceId, SfError> {
        let mut call = Call::send(
            Method::POST,
            format!("sobjects/{object}"),
            Value::Object(body),
        )
        .about(object);
        if allow_duplicate_save {
            call = call.header("Sforce-Duplicate-Rule-Header", "allowSave=true");
        }
        let resp = self.exec.execute(t, &call).await?;
        let r: SaveResultDto = resp.json()?;
        save_result(&r, object)?.ok_or_else(|| bad_response("the create response has no id"))
    }

    /// POST or PATCH `/composite/sobjects` in chunks of 200, `allOrNone: false`. Results in
    /// input order. A chunk refused for a whole-call reason (throttled, transient, reconnect)
    /// fails the whole call when nothing was written yet, else its records and the unsent
    /// ones after it; a chunk refused for its content fails only its own records.
    async fn collections(
        &self,
        t: &TenantId,
        method: Method,
        records: Vec<Value>,
        object: &'static str,
    ) -> Result<Vec<Result<SaveResultDto, SfError>>, SfError> {
        let mut out: Vec<Result<SaveResultDto, SfError>> = Vec::with_capacity(records.len());
        let total = records.len();
        let mut iter = records.into_iter().peekable();
        while iter.peek().is_some() {
            let chunk: Vec<Value> = iter.by_ref().take(COLLECTION_LIMIT).collect();
            let n = chunk.len();
            let call = Call::send(
                method.clone(),
                "composite/sobjects".to_owned(),
                json!({ "allOrNone": false, "records": chunk }),
            )
            .about(object);
            let results = self
                .exec
                .execute(t, &call)
                .await
                .and_then(|r| r.json::<Vec<SaveResultDto>>())
                .and_then(|rs| {
                    if rs.len() == n {
                        Ok(rs)
                    } else {
                        Err(bad_response(format!(
                            "Salesforce returned {} results for {n} records",
                            rs.len()
                        )))
                    }
                });
            match results {
                Ok(rs) => out.extend(rs.into_iter().map(Ok)),
                // Nothing written yet: the call as a whole failed.
                Err(e) if whole_call(&e) && out.is_empty() => return Err(e),
                // Throttled or disconnected midway: the rest fail with it, unsent.
                Err(e) if whole_call(&e) => {
                    let rest = total - out.len();
                    out.extend(std::iter::repeat_n(e, rest).map(Err));
                    return Ok(out);
                }
                // The chunk was rejected for its content (e.g. a hidden field): its records
                // fail, later chunks are still tried.
                Err(e) => out.extend(std::iter::repeat_n(e, n).map(Err)),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl SalesforceReader for SalesforceClient {
    #[tracing::instrument(name = "sf.check_field_access", skip_all, fields(tenant = %t))]
    async fn check_field_access(&self, t: &TenantId, objects: &[SfObject]) -> Result<(), SfError> {
        for &object in objects {
            let call = Call::get(Target::Data(format!(
                "sobjects/{}/describe",
                object.as_str()
            )))
            .about(object.as_str());
            let describe: DescribeDto = self.exec.execute(t, &call).await?.json()?;
            if let Some(e) = first_hidden_field(object, &describe) {
                return Err(e);
            }
        }
        Ok(())
    }

    #[tracing::instrument(name = "sf.fetch_page", skip_all, fields(tenant = %t))]
    async fn fetch_page(
        &self,
        t: &TenantId,
        query: &RecordQuery,
        cursor: Option<PageCursor>,
    ) -> Result<RecordPage, SfError> {
        let object = query.object;
        let call = page_call(
            "query",
            record_soql(query),
            cursor.as_ref(),
            object.as_str(),
        )?;
        // The request runs as a task of its own, so it goes on while the caller is busy
        // deciding the previous page (an import overlaps the two); reading 2,000 records is
        // CPU work, done off the async threads.
        let exec = self.exec.clone();
        let tenant = t.clone();
        let fetch = async move {
            let response = exec.execute(&tenant, &call).await?;
            tokio::task::spawn_blocking(move || record_page(object, &response.body))
                .await
                .map_err(|e| bad_response(format!("reading the {object} page failed: {e}")))?
        };
        let page = spawn_keeping_request_id(fetch.in_current_span())
            .await
            .map_err(|e| bad_response(format!("reading the {object} page failed: {e}")))??;
        Ok(RecordPage {
            records: page.records,
            next: page.next_records_url.filter(|_| !page.done).map(PageCursor),
            total_size: page.total_size,
        })
    }

    #[tracing::instrument(name = "sf.fetch_records", skip_all, fields(tenant = %t))]
    async fn fetch_records(
        &self,
        t: &TenantId,
        records: &[SalesforceRecordRef],
    ) -> Result<Vec<SfRecord>, SfError> {
        let mut out = Vec::new();
        for object in [SfObject::Lead, SfObject::Contact] {
            let ids: Vec<&SalesforceId> = records
                .iter()
                .filter(|r| r.object == object)
                .map(|r| &r.id)
                .collect();
            for chunk in ids.chunks(IDS_PER_QUERY) {
                let rows = self
                    .query_all_records(
                        t,
                        "query",
                        records_by_id_soql(object, chunk),
                        object.as_str(),
                    )
                    .await?;
                for v in rows {
                    out.push(record_from_json(Some(object), v)?);
                }
            }
        }
        Ok(out)
    }

    #[tracing::instrument(name = "sf.search_by_phone", skip_all, fields(tenant = %t))]
    async fn search_by_phone(
        &self,
        t: &TenantId,
        number: &PhoneNumber,
        targets: SyncTargets,
    ) -> Result<Vec<SfRecord>, SfError> {
        for term in phone_search_terms(number) {
            let Some(sosl) = phone_sosl(&term, targets) else {
                return Ok(Vec::new());
            };
            let mut call = Call::get(Target::Data("search".to_owned()));
            call.query.push(("q", sosl));
            let found: SearchDto = self.exec.execute(t, &call).await?.json()?;
            let hits = found
                .into_records()
                .into_iter()
                .map(|v| record_from_json(None, v))
                .collect::<Result<Vec<_>, _>>()?;
            let confirmed = confirm_phone_hits(hits, number);
            if !confirmed.is_empty() {
                return Ok(confirmed);
            }
        }
        Ok(Vec::new())
    }

    #[tracing::instrument(name = "sf.deleted_since", skip_all, fields(tenant = %t))]
    async fn deleted_since(
        &self,
        t: &TenantId,
        object: SfObject,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DeletedRecord>, SfError> {
        self.query_all_records(
            t,
            "queryAll",
            deleted_soql(object, since, until),
            object.as_str(),
        )
        .await?
        .into_iter()
        .map(|v| deleted_from_json(object, v))
        .collect()
    }

    #[tracing::instrument(name = "sf.active_users", skip_all, fields(tenant = %t))]
    async fn active_users(&self, t: &TenantId) -> Result<Vec<SfUser>, SfError> {
        self.query_all_records(t, "query", ACTIVE_USERS_SOQL.to_owned(), "User")
            .await?
            .into_iter()
            .map(user_from_json)
            .collect()
    }
}

#[async_trait]
impl SalesforceWriter for SalesforceClient {
    #[tracing::instrument(name = "sf.create_tasks", skip_all, fields(tenant = %t))]
    async fn create_tasks(
        &self,
        t: &TenantId,
        tasks: &[TaskDraft],
    ) -> Result<Vec<Result<SalesforceId, SfError>>, SfError> {
        match tasks {
            [] => Ok(Vec::new()),
            [one] => match self.create_one(t, "Task", task_json(one), false).await {
                Ok(id) => Ok(vec![Ok(id)]),
                Err(e) if whole_call(&e) => Err(e),
                Err(e) => Ok(vec![Err(e)]),
            },
            many => {
                let records = many
                    .iter()
                    .map(|d| collection_record("Task", None, task_json(d)))
                    .collect();
                let out = self
                    .collections(t, Method::POST, records, "Task")
                    .await?
                    .into_iter()
                    .map(|r| {
                        r.and_then(|r| save_result(&r, "Task")).and_then(|id| {
                            id.ok_or_else(|| bad_response("a save result had no id"))
                        })
                    })
                    .collect();
                Ok(out)
            }
        }
    }

    #[tracing::instrument(name = "sf.update_task", skip_all, fields(tenant = %t))]
    async fn update_task(
        &self,
        t: &TenantId,
        id: &SalesforceId,
        patch: &TaskPatch,
    ) -> Result<(), SfError> {
        let fields = task_patch_json(patch);
        if fields.is_empty() {
            return Ok(());
        }
        let call = Call::send(
            Method::PATCH,
            format!("sobjects/Task/{}", id.as_str()),
            Value::Object(fields),
        )
        .about("Task");
        self.exec.execute(t, &call).await.map(|_| ())
    }

    #[tracing::instrument(name = "sf.find_task_by_call_object", skip_all, fields(tenant = %t))]
    async fn find_task_by_call_object(
        &self,
        t: &TenantId,
        call_object: &str,
    ) -> Result<Option<SalesforceId>, SfError> {
        let page = self
            .query_page(
                t,
                "query",
                task_by_call_object_soql(call_object),
                None,
                "Task",
            )
            .await?;
        first_id(&page)
    }

    #[tracing::instrument(name = "sf.find_tasks", skip_all, fields(tenant = %t, n = call_objects.len()))]
    async fn find_tasks_by_call_objects(
        &self,
        t: &TenantId,
        call_objects: &[String],
    ) -> Result<std::collections::HashMap<String, SalesforceId>, SfError> {
        let mut found = std::collections::HashMap::new();
        // 100 per query keeps the URI well under Salesforce's 16 KiB limit.
        for chunk in call_objects.chunks(100) {
            let mut cursor: Option<PageCursor> = None;
            loop {
                let page = self
                    .query_page(
                        t,
                        "query",
                        tasks_by_call_objects_soql(chunk),
                        cursor.as_ref(),
                        "Task",
                    )
                    .await?;
                for r in &page.records {
                    if let (Some(id), Some(co)) = (
                        r.get("Id").and_then(serde_json::Value::as_str),
                        r.get("CallObject").and_then(serde_json::Value::as_str),
                    ) && let Ok(id) = SalesforceId::parse(id)
                    {
                        found.entry(co.to_owned()).or_insert(id);
                    }
                }
                match page.next_records_url.clone() {
                    Some(next) => cursor = Some(PageCursor(next)),
                    None => break,
                }
            }
        }
        Ok(found)
    }

    #[tracing::instrument(name = "sf.find_account", skip_all, fields(tenant = %t))]
    async fn find_account(
        &self,
        t: &TenantId,
        name: &str,
    ) -> Result<Option<SalesforceId>, SfError> {
        let page = self
            .query_page(t, "query", account_by_name_soql(name), None, "Account")
            .await?;
        first_id(&page)
    }

    #[tracing::instrument(name = "sf.create_account", skip_all, fields(tenant = %t))]
    async fn create_account(&self, t: &TenantId, name: &str) -> Result<SalesforceId, SfError> {
        let mut body = serde_json::Map::new();
        body.insert("Name".into(), json!(name));
        self.create_one(t, "Account", body, false).await
    }

    #[tracing::instrument(name = "sf.create_record", skip_all, fields(tenant = %t))]
    async fn create_record(
        &self,
        t: &TenantId,
        record: &NewRecord,
        allow_duplicate_save: bool,
    ) -> Result<SalesforceId, SfError> {
        self.create_one(
            t,
            record.object.as_str(),
            new_record_json(record),
            allow_duplicate_save,
        )
        .await
    }

    #[tracing::instrument(name = "sf.update_records", skip_all, fields(tenant = %t))]
    async fn update_records(
        &self,
        t: &TenantId,
        updates: &[RecordUpdate],
    ) -> Result<Vec<Result<(), SfError>>, SfError> {
        // Positions of the updates that have something to send; the rest succeed trivially.
        let mut out: Vec<Result<(), SfError>> = updates.iter().map(|_| Ok(())).collect();
        let sendable: Vec<(usize, &RecordUpdate, serde_json::Map<String, Value>)> = updates
            .iter()
            .enumerate()
            .map(|(i, u)| (i, u, update_json(u.record.object, &u.changes)))
            .filter(|(_, _, f)| !f.is_empty())
            .collect();
        match sendable.as_slice() {
            [] => {}
            [(i, u, fields)] => {
                let object = u.record.object.as_str();
                let call = Call::send(
                    Method::PATCH,
                    format!("sobjects/{object}/{}", u.record.id.as_str()),
                    Value::Object(fields.clone()),
                )
                .about(object);
                match self.exec.execute(t, &call).await {
                    Ok(_) => {}
                    Err(e) if whole_call(&e) => return Err(e),
                    Err(e) => out[*i] = Err(e),
                }
            }
            many => {
                let records = many
                    .iter()
                    .map(|(_, u, f)| {
                        collection_record(u.record.object.as_str(), Some(&u.record.id), f.clone())
                    })
                    .collect();
                let results = self
                    .collections(t, Method::PATCH, records, "Lead/Contact")
                    .await?;
                for ((i, u, _), r) in many.iter().zip(results) {
                    out[*i] = r.and_then(|r| save_result(&r, u.record.object.as_str()).map(|_| ()));
                }
            }
        }
        Ok(out)
    }
}

impl ApiUsageView for SalesforceClient {
    fn usage(&self, t: &TenantId) -> Option<ApiUsage> {
        self.exec.usage(t)
    }
    fn requests_sent(&self, t: &TenantId) -> u64 {
        self.exec.requests_sent(t)
    }

    fn requests_last_24h(&self, t: &TenantId) -> u64 {
        self.exec.requests_last_24h(t)
    }
}
