//! `/api/v1`: the operator API (tenants and their credentials) and the tenant admin API
//! (settings, connection, sync, customers, failures, status). JSON in and out; documented in
//! `docs/api.md` and `/api/v1/openapi.json`.

use super::AppState;
use super::auth::{Operator, TenantAdmin};
use super::error::{ApiError, ApiResult};
use crate::ports::CustomerPatch;
use crate::service;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, patch, post};
use domain::{CustomerFields, CustomerId, IntegrationSettings, PhoneNumber, TenantId};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(super::openapi::document))
        .route("/api/v1/tenants", post(create_tenant))
        .route("/api/v1/tenants/{t}/admin-token", post(new_admin_token))
        .route(
            "/api/v1/tenants/{t}/webhook-secret",
            post(rotate_webhook_secret),
        )
        .route(
            "/api/v1/tenants/{t}/settings",
            get(get_settings).put(put_settings),
        )
        .route("/api/v1/tenants/{t}/salesforce/connect", get(connect))
        .route(
            "/api/v1/tenants/{t}/salesforce/disconnect",
            post(disconnect),
        )
        .route("/oauth/callback", get(oauth_callback))
        .route("/api/v1/tenants/{t}/sync", post(sync_now))
        .route("/api/v1/tenants/{t}/sync-runs", get(sync_runs))
        .route(
            "/api/v1/tenants/{t}/customers",
            get(lookup_customer).post(create_customer),
        )
        .route("/api/v1/tenants/{t}/customers/{id}", patch(edit_customer))
        .route("/api/v1/tenants/{t}/duplicates", get(duplicates))
        .route("/api/v1/tenants/{t}/failed", get(failed))
        .route("/api/v1/tenants/{t}/failed/{id}/retry", post(retry_failed))
        .route(
            "/api/v1/tenants/{t}/members-without-user",
            get(members_without_user),
        )
        .route("/api/v1/tenants/{t}/status", get(status))
        .route("/api/v1/tenants/{t}/api-usage", get(api_usage))
}

/// Parses a JSON body; a malformed one is a 422 naming the problem (never a 500).
fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    if body.is_empty() {
        return serde_json::from_str("{}").map_err(|e| body_error(&e));
    }
    serde_json::from_slice(body).map_err(|e| body_error(&e))
}

fn body_error(e: &serde_json::Error) -> ApiError {
    ApiError::invalid(
        "body",
        &format!("invalid JSON body: {e}"),
        "リクエスト本文のJSONが不正です",
    )
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<u64>,
}

impl Limit {
    fn get(&self, default: u64) -> u64 {
        self.limit.unwrap_or(default).clamp(1, 500)
    }
}

// --- operator -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    id: String,
    name: Option<String>,
}

async fn create_tenant(
    _: Operator,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: NewTenant = json_body(&body)?;
    let id = TenantId::parse(&req.id).map_err(|_| {
        ApiError::invalid(
            "id",
            "1–64 characters of a-z, 0-9, '-' or '_'",
            "テナントIDは英小文字・数字・'-'・'_'の1〜64文字で指定してください",
        )
    })?;
    let name = req.name.unwrap_or_else(|| id.to_string());
    let tenant = state
        .ports
        .admin
        .create_tenant(&id, &name)
        .await
        .map_err(|e| match e {
            domain::StoreError::Conflict(_) => ApiError::Conflict {
                code: "tenant_exists",
                message: "a tenant with this id exists".into(),
            },
            other => other.into(),
        })?;
    state
        .ports
        .settings
        .save_settings(&id, &service::default_settings(&state))
        .await?;
    let token = state.ports.admin.rotate_admin_token(&id).await?;
    let secret = state
        .ports
        .admin
        .rotate_webhook_secret(&id, Duration::ZERO)
        .await?;
    service::audit(&state, &id, "operator", "tenant.create", "").await;
    let body = json!({
        "tenant": tenant,
        "admin_token": token.expose_secret(),
        "webhook_secret": secret.expose_secret(),
        "webhook_url": format!("{}/webhooks/{}/calls", state.settings.public_url(), id),
        "admin_url": format!("{}/admin/{}", state.settings.public_url(), id),
    });
    Ok((StatusCode::CREATED, no_store(), Json(body)).into_response())
}

/// Responses that carry a secret must not be cached anywhere.
fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

fn tenant_param(t: &str) -> ApiResult<TenantId> {
    TenantId::parse(t).map_err(|_| ApiError::NotFound)
}

async fn new_admin_token(
    _: Operator,
    State(state): State<AppState>,
    Path(t): Path<String>,
) -> ApiResult<Response> {
    let t = tenant_param(&t)?;
    let token = state.ports.admin.rotate_admin_token(&t).await?;
    service::audit(&state, &t, "operator", "admin_token.rotate", "").await;
    Ok((
        no_store(),
        Json(json!({"admin_token": token.expose_secret()})),
    )
        .into_response())
}

async fn rotate_webhook_secret(
    _: Operator,
    State(state): State<AppState>,
    Path(t): Path<String>,
) -> ApiResult<Response> {
    let t = tenant_param(&t)?;
    let grace = Duration::from_secs(state.settings.server.webhook_secret_grace_secs);
    let secret = state.ports.admin.rotate_webhook_secret(&t, grace).await?;
    service::audit(&state, &t, "operator", "webhook_secret.rotate", "").await;
    let until = chrono::Utc::now() + chrono::Duration::seconds(grace.as_secs() as i64);
    Ok((
        no_store(),
        Json(json!({"webhook_secret": secret.expose_secret(), "previous_valid_until": until})),
    )
        .into_response())
}

// --- settings and connection -----------------------------------------------------------------

async fn get_settings(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<IntegrationSettings>> {
    Ok(Json(service::settings(&state, &t).await?))
}

async fn put_settings(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<IntegrationSettings>> {
    let s: IntegrationSettings = json_body(&body)?;
    service::save_settings(&state, &t, &s, "admin").await?;
    Ok(Json(s))
}

/// 302 to the org's authorize URL.
async fn connect(TenantAdmin(t): TenantAdmin, State(state): State<AppState>) -> Response {
    let url = service::start_connect(&state, &t);
    (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
}

#[derive(Debug, Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The redirect target registered on the connected app. Authenticated by the single-use
/// `state` (which names the tenant that started the flow), not by a header.
async fn oauth_callback(
    State(state): State<AppState>,
    Query(q): Query<Callback>,
) -> ApiResult<Redirect> {
    let pending = q
        .state
        .as_deref()
        .and_then(|s| state.oauth.take(s, chrono::Utc::now()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                "this sign-in link expired or was already used; start the connection again",
            )
        })?;
    let t = pending.tenant;
    let result = match (q.error.as_deref(), q.code.as_deref()) {
        (Some(err), _) => {
            tracing::info!(error = err, "authorization not granted");
            service::audit(&state, &t, "admin", "salesforce.connect_denied", err).await;
            service::ConnectResult::Denied
        }
        (None, Some(code)) => service::finish_connect(&state, &t, code, &pending.verifier).await,
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing_code",
                "the callback has no code",
            ));
        }
    };
    let target = format!(
        "/admin/{t}?connect={}",
        url::form_urlencoded::byte_serialize(result.query_value().as_bytes()).collect::<String>()
    );
    Ok(Redirect::to(&target))
}

async fn disconnect(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    let (was_connected, revoked) = service::disconnect(&state, &t, "admin").await?;
    Ok(Json(
        json!({"was_connected": was_connected, "revoked": revoked}),
    ))
}

// --- sync -------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncRequest {
    #[serde(default)]
    full: bool,
}

async fn sync_now(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: SyncRequest = json_body(&body)?;
    match service::start_sync(&state, &t, req.full) {
        Some(job) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"job_id": job, "full": req.full, "runs": format!("/api/v1/tenants/{t}/sync-runs")})),
        )
            .into_response()),
        None => Err(ApiError::Conflict {
            code: "sync_running",
            message: "a sync is already running for this tenant".into(),
        }),
    }
}

async fn sync_runs(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
    Query(l): Query<Limit>,
) -> ApiResult<Json<Value>> {
    let runs = state.ports.runs.runs(&t, l.get(20)).await?;
    Ok(Json(json!({"runs": runs})))
}

// --- customers --------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct NumberQuery {
    number: Option<String>,
}

fn parse_number(raw: &str) -> ApiResult<PhoneNumber> {
    PhoneNumber::parse(raw).map_err(|_| {
        ApiError::invalid(
            "number",
            "not a valid phone number",
            "電話番号が正しくありません",
        )
    })
}

/// R18: caller-ID lookup by any formatting of the number.
async fn lookup_customer(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
    Query(q): Query<NumberQuery>,
) -> ApiResult<Json<domain::Customer>> {
    let raw = q.number.ok_or_else(|| {
        ApiError::invalid(
            "number",
            "the number query parameter is required",
            "numberを指定してください",
        )
    })?;
    let n = parse_number(&raw)?;
    state
        .ports
        .customers
        .find_by_number(&t, n.e164())
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCustomerBody {
    number: String,
    name: Option<String>,
    company: Option<String>,
    email: Option<String>,
    address: Option<String>,
    memo: Option<String>,
}

fn check_email(e: Option<&str>) -> ApiResult<()> {
    match e {
        Some(e) if domain::EmailAddress::parse(e).is_err() => Err(ApiError::invalid(
            "email",
            "not a valid email address",
            "メールアドレスが正しくありません",
        )),
        _ => Ok(()),
    }
}

async fn create_customer(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NewCustomerBody = json_body(&body)?;
    let number = parse_number(&b.number)?;
    check_email(b.email.as_deref())?;
    let fields = CustomerFields {
        name: b.name,
        company: b.company,
        email: b.email,
        address: b.address,
        memo: b.memo,
    };
    let c = state
        .ports
        .admin
        .create_customer(&t, &number, &fields)
        .await
        .map_err(|e| match e {
            domain::StoreError::Conflict(_) => ApiError::Conflict {
                code: "number_taken",
                message: "a customer with this number exists".into(),
            },
            other => other.into(),
        })?;
    service::audit(&state, &t, "admin", "customer.create", &c.id.to_string()).await;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

/// A JSON field that may be absent (keep), `null` (clear) or a string (set).
fn optional_text(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> ApiResult<Option<Option<String>>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(ApiError::invalid(
            key,
            "must be a string or null",
            "文字列またはnullを指定してください",
        )),
    }
}

/// Edits fields in the phone system; synced fields are written back to Salesforce by the
/// next write-back (R11). Address and a Contact's company are import-only.
async fn edit_customer(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, i64)>,
    body: Bytes,
) -> ApiResult<Json<domain::Customer>> {
    let v: Value = json_body(&body)?;
    let obj = v.as_object().ok_or_else(|| {
        ApiError::invalid(
            "body",
            "must be a JSON object",
            "JSONオブジェクトを指定してください",
        )
    })?;
    const KNOWN: [&str; 6] = ["number", "name", "company", "email", "address", "memo"];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::invalid(k, "unknown field", "不明な項目です"));
    }
    let number = match obj.get("number") {
        None => None,
        Some(Value::String(s)) => Some(parse_number(s)?),
        Some(_) => {
            return Err(ApiError::invalid(
                "number",
                "must be a string",
                "文字列を指定してください",
            ));
        }
    };
    let patch = CustomerPatch {
        number,
        name: optional_text(obj, "name")?,
        company: optional_text(obj, "company")?,
        email: optional_text(obj, "email")?,
        address: optional_text(obj, "address")?,
        memo: optional_text(obj, "memo")?,
    };
    if let Some(Some(e)) = &patch.email {
        check_email(Some(e))?;
    }
    let c = state
        .ports
        .admin
        .edit_customer(&t, CustomerId(id), &patch)
        .await
        .map_err(|e| match e {
            domain::StoreError::Conflict(_) => ApiError::Conflict {
                code: "number_taken",
                message: "another customer has this number".into(),
            },
            other => other.into(),
        })?;
    service::audit(&state, &t, "admin", "customer.edit", &id.to_string()).await;
    Ok(Json(c))
}

async fn duplicates(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
    Query(l): Query<Limit>,
) -> ApiResult<Json<Value>> {
    let d = state.ports.admin.duplicates(&t, l.get(100)).await?;
    Ok(Json(json!({"duplicates": d})))
}

// --- failures and status ----------------------------------------------------------------------

async fn failed(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
    Query(l): Query<Limit>,
) -> ApiResult<Json<Value>> {
    let items = state.ports.queue.failed(&t, l.get(100)).await?;
    Ok(Json(json!({"failed": items})))
}

async fn retry_failed(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    if service::retry_failed(&state, &t, id, "admin").await? {
        Ok(Json(json!({"retried": id})))
    } else {
        Err(ApiError::NotFound)
    }
}

async fn members_without_user(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    let members = service::members_without_user(&state, &t).await?;
    Ok(Json(json!({"members": members})))
}

async fn status(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<service::Status>> {
    Ok(Json(service::status(&state, &t).await?))
}

async fn api_usage(
    TenantAdmin(t): TenantAdmin,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    let budget = service::api_budget(&state, &t).await?;
    let per_hour = state.stats.requests(&t, chrono::Utc::now());
    Ok(Json(json!({"api": budget, "requests_per_hour": per_hour})))
}
