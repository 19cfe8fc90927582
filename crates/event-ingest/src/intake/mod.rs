//! HTTP intake: `POST /webhooks/{tenant}/calls` (SPEC "Call events", R25, R27).
//!
//! One request goes through these steps, and the first that fails answers:
//! tenant slug (404) → declared size (413) → content type (415) → the tenant's secrets
//! (404 unknown tenant, 503 store down) → body within the limit (413) → signature (401) →
//! parse (400, every bad field named) → [`EventLog::accept`] (503 when the store fails).
//! Only after `accept` returned does the sender get its 2xx: 202 for a new event, 200 for the
//! same (call id, event) again. Nothing is stored before the signature and the fields check out.
//!
//! Every response body is JSON with a stable `code` and a human `message`; the body and the
//! signature are never logged or echoed.

use crate::parse::{self, FieldProblem};
use crate::signature::{self, DEFAULT_REPLAY_WINDOW, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use domain::ports::{Accepted, Clock, EventLog, RawPayload};
use domain::{StoreError, TenantId};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{Instrument, field};

/// The route this module serves.
pub const WEBHOOK_PATH: &str = "/webhooks/{tenant}/calls";
/// The request id header: taken from the request when present, generated otherwise, and
/// returned on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Where the intake finds a tenant's webhook secrets.
#[async_trait]
pub trait TenantSecrets: Send + Sync {
    /// The tenant's active webhook secrets (several during a rotation: any of them
    /// authenticates). `Ok(None)` when there is no such tenant; `Ok(Some(vec![]))` for a tenant
    /// that accepts no webhooks yet (answered 401). Errors: `StoreError::Unavailable` when the
    /// store cannot be reached (answered 503, so the sender retries).
    async fn webhook_secrets(&self, t: &TenantId) -> Result<Option<Vec<SecretString>>, StoreError>;
}

/// Bounds on what one request may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLimits {
    /// Largest body accepted (413 beyond). Default 256 KiB.
    pub max_body_bytes: usize,
    /// How far a signature's timestamp may be from our clock (401 beyond). Default ±300 s.
    pub replay_window: Duration,
    /// Sent as `Retry-After` with a 503. Default 30 s.
    pub retry_after: Duration,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            replay_window: DEFAULT_REPLAY_WINDOW,
            retry_after: Duration::from_secs(30),
        }
    }
}

/// What the intake needs, shared by all requests.
#[derive(Clone)]
pub struct IntakeState {
    events: Arc<dyn EventLog>,
    secrets: Arc<dyn TenantSecrets>,
    clock: Arc<dyn Clock>,
    limits: IntakeLimits,
    notify: Option<Arc<Notify>>,
}

impl IntakeState {
    pub fn new(
        events: Arc<dyn EventLog>,
        secrets: Arc<dyn TenantSecrets>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            events,
            secrets,
            clock,
            limits: IntakeLimits::default(),
            notify: None,
        }
    }

    pub fn with_limits(mut self, limits: IntakeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Poked with [`Notify::notify_one`] after each *new* event is stored, so a worker waiting on
    /// it wakes at once. `notify_one` keeps a permit when no worker is waiting, so a wake-up
    /// is never lost; workers should still poll now and then (events stored by another process
    /// poke nobody here).
    pub fn with_notifier(mut self, notify: Arc<Notify>) -> Self {
        self.notify = Some(notify);
        self
    }

    pub fn limits(&self) -> IntakeLimits {
        self.limits
    }
}

impl std::fmt::Debug for IntakeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeState")
            .field("limits", &self.limits)
            .field("notify", &self.notify.is_some())
            .finish_non_exhaustive()
    }
}

/// The webhook routes, ready to be merged into the application's router.
pub fn webhook_router(state: IntakeState) -> Router {
    let limit = state.limits.max_body_bytes;
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn receive(State(state): State<IntakeState>, request: Request) -> Response {
    let request_id = request_id(request.headers());
    let span = tracing::info_span!(
        "webhook",
        tenant = field::Empty,
        call_id = field::Empty,
        request_id = %request_id,
    );
    let mut response = handle(state, request, &request_id)
        .instrument(span)
        .await
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }
    response
}

/// The sender's request id when it is a sane token, else a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Form,
    Json,
}

/// `application/x-www-form-urlencoded` or `application/json`, with no charset or UTF-8.
fn format_of(headers: &HeaderMap) -> Option<Format> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = value.split(';');
    let format = match parts.next()?.trim().to_ascii_lowercase().as_str() {
        "application/x-www-form-urlencoded" => Format::Form,
        "application/json" => Format::Json,
        _ => return None,
    };
    for param in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = value.trim().trim_matches('"');
            if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                return None;
            }
        }
    }
    Some(format)
}

async fn handle(state: IntakeState, request: Request, request_id: &str) -> Result<Reply, Reply> {
    let span = tracing::Span::current();
    let (mut parts, body) = request.into_parts();
    let tenant = Path::<String>::from_request_parts(&mut parts, &state)
        .await
        .ok()
        .and_then(|Path(slug)| TenantId::parse(&slug).ok())
        .ok_or(Reply::UnknownTenant)?;
    span.record("tenant", tenant.as_str());

    let limit = state.limits.max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Reply::TooLarge(limit));
    }
    let format = format_of(&parts.headers).ok_or(Reply::UnsupportedMediaType)?;

    let secrets = match state.secrets.webhook_secrets(&tenant).await {
        Ok(Some(secrets)) => secrets,
        Ok(None) => return Err(Reply::UnknownTenant),
        Err(e) => {
            tracing::error!(error = %e, "webhook secrets unavailable");
            return Err(Reply::Unavailable(state.limits.retry_after));
        }
    };

    let headers = parts.headers.clone();
    let body = match Bytes::from_request(Request::from_parts(parts, body), &state).await {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Reply::TooLarge(limit));
        }
        Err(_) => return Err(Reply::UnreadableBody),
    };

    let now = state.clock.now();
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    if let Err(why) = signature::verify(
        &secrets,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        now,
        state.limits.replay_window,
    ) {
        tracing::warn!(reason = %why, "webhook signature refused");
        return Err(Reply::Unauthorized);
    }

    let parsed = match format {
        Format::Form => parse::parse_form(&body),
        Format::Json => parse::parse_json(&body),
    };
    let event = parsed.map_err(|errors| {
        tracing::warn!(fields = ?errors.fields(), "webhook refused: invalid fields");
        Reply::Invalid(errors.0)
    })?;
    span.record("call_id", event.call_id.as_str());

    let raw = RawPayload {
        content_type: headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: body.to_vec(),
        request_id: Some(request_id.to_owned()),
    };
    match state.events.accept(&tenant, &raw, &event, now).await {
        Ok(Accepted::New { event_id }) => {
            tracing::info!(event = %event.kind, event_id, "webhook accepted");
            if let Some(notify) = &state.notify {
                notify.notify_one();
            }
            Ok(Reply::Accepted(event_id))
        }
        Ok(Accepted::Duplicate { event_id }) => {
            tracing::info!(event = %event.kind, event_id, "webhook duplicate acknowledged");
            Ok(Reply::Duplicate(event_id))
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook not stored");
            Err(Reply::Unavailable(state.limits.retry_after))
        }
    }
}

/// Every answer the intake gives.
#[derive(Debug)]
enum Reply {
    Accepted(i64),
    Duplicate(i64),
    Invalid(Vec<FieldProblem>),
    UnreadableBody,
    Unauthorized,
    UnknownTenant,
    TooLarge(usize),
    UnsupportedMediaType,
    Unavailable(Duration),
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let error = |status: StatusCode, code: &str, message: String| {
            (
                status,
                axum::Json(json!({"code": code, "message": message})),
            )
                .into_response()
        };
        match self {
            Reply::Accepted(id) => (
                StatusCode::ACCEPTED,
                axum::Json(json!({"status": "accepted", "event_id": id})),
            )
                .into_response(),
            Reply::Duplicate(id) => (
                StatusCode::OK,
                axum::Json(json!({"status": "duplicate", "event_id": id})),
            )
                .into_response(),
            Reply::Invalid(problems) => {
                let errors: Vec<Value> = problems
                    .iter()
                    .map(|p| json!({"field": p.field, "problem": p.problem}))
                    .collect();
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({
                        "code": "invalid_fields",
                        "message": "The webhook has invalid fields; each is listed in errors.",
                        "errors": errors,
                    })),
                )
                    .into_response()
            }
            Reply::UnreadableBody => error(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "The request body could not be read.".to_owned(),
            ),
            Reply::Unauthorized => error(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "The X-Callsync-Signature or X-Callsync-Timestamp header is missing, does not \
                 match, or is too old."
                    .to_owned(),
            ),
            Reply::UnknownTenant => error(
                StatusCode::NOT_FOUND,
                "unknown_tenant",
                "There is no such tenant.".to_owned(),
            ),
            Reply::TooLarge(limit) => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The body is larger than {limit} bytes."),
            ),
            Reply::UnsupportedMediaType => error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send application/x-www-form-urlencoded or application/json, in UTF-8.".to_owned(),
            ),
            Reply::Unavailable(retry_after) => {
                let mut response = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The event could not be stored now; nothing was accepted. Retry later."
                        .to_owned(),
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                    response.headers_mut().insert(RETRY_AFTER, v);
                }
                response
            }
        }
    }
}

#[cfg(test)]
mod tests;
