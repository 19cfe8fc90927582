//! The HTTP surface: operator and tenant API under `/api/v1`, the OAuth callback, the admin
//! page under `/admin`, the webhook intake, and the operational endpoints.
//!
//! Middleware, outermost first: request id (taken from `x-request-id` or generated, and echoed
//! back), a trace span per request carrying it, a timeout and a body size limit.

pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod html;
pub mod openapi;
pub mod ops;

use crate::config::Settings;
use crate::ports::Ports;
use crate::security::{Keys, PendingAuths};
use crate::service::SyncJobs;
use crate::stats::HourlyStats;
use axum::Router;
use axum::http::{HeaderName, Request};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub ports: Ports,
    pub settings: Arc<Settings>,
    pub keys: Arc<Keys>,
    pub oauth: Arc<PendingAuths>,
    pub jobs: Arc<SyncJobs>,
    pub stats: Arc<HourlyStats>,
    /// Wakes the workers (new or retried items).
    pub wake: Arc<Notify>,
    pub metrics: Option<PrometheusHandle>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole router, with `extra` (the webhook intake) merged in before the middleware.
pub fn router(state: AppState, extra: Router) -> Router {
    let app = Router::new()
        .merge(ops::routes())
        .merge(api::routes())
        .merge(admin::routes())
        .with_state(state)
        .merge(extra);
    app.layer(
        tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "http",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id,
                        tenant = tracing::field::Empty,
                    )
                }),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(60),
            ))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(1024 * 1024)),
    )
}
