//! The one place where failures become HTTP responses.
//!
//! Every error body is `{"code": "...", "message": "..."}` (plus `fields` for validation
//! errors): `code` is stable for clients, `message` is for people. Internal error text
//! (database, Salesforce causes) is logged with the request's span, never put in a body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{FieldError, SfError, StoreError};
use serde::Serialize;

/// A field-level validation problem (settings R1–R6, request bodies), in English and Japanese.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
    pub message_ja: String,
}

impl From<&FieldError> for FieldProblem {
    fn from(e: &FieldError) -> Self {
        Self {
            field: e.field.to_owned(),
            message: e.message.clone(),
            message_ja: e.message_ja.clone(),
        }
    }
}

#[derive(Debug)]
pub enum ApiError {
    /// Missing or wrong credentials.
    Unauthorized,
    /// Not there — or not yours (a tenant token on another tenant's path looks the same).
    NotFound,
    /// Already exists / already running.
    Conflict {
        code: &'static str,
        message: String,
    },
    BadRequest {
        code: &'static str,
        message: String,
    },
    /// Validation failed; each field named, EN + JA.
    Invalid(Vec<FieldProblem>),
    /// The tenant has no Salesforce connection.
    NotConnected,
    /// Salesforce refused; the explanation is R40's, the cause is only logged.
    Salesforce(SfError),
    /// The store is down; retry later.
    Unavailable,
    /// Anything else: logged, answered with a generic message.
    Internal(anyhow::Error),
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_ja: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a [FieldProblem]>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotConnected => StatusCode::CONFLICT,
            Self::Salesforce(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::Conflict { code, .. } | Self::BadRequest { code, .. } => code,
            Self::Invalid(_) => "invalid",
            Self::NotConnected => "not_connected",
            Self::Salesforce(_) => "salesforce_error",
            Self::Unavailable => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(field: &str, message: &str, message_ja: &str) -> Self {
        Self::Invalid(vec![FieldProblem {
            field: field.to_owned(),
            message: message.to_owned(),
            message_ja: message_ja.to_owned(),
        }])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Self::NotFound,
            StoreError::Conflict(_) => Self::Conflict {
                code: "conflict",
                message: "it already exists".to_owned(),
            },
            StoreError::Unavailable(cause) => {
                tracing::error!(%cause, "store unavailable");
                Self::Unavailable
            }
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<SfError> for ApiError {
    fn from(e: SfError) -> Self {
        Self::Salesforce(e)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let explained;
        let (message, message_ja): (String, Option<String>) = match &self {
            Self::Unauthorized => ("missing or invalid bearer token".into(), None),
            Self::NotFound => ("no such resource".into(), None),
            Self::Conflict { message, .. } | Self::BadRequest { message, .. } => {
                (message.clone(), None)
            }
            Self::Invalid(_) => (
                "some fields are invalid".into(),
                Some("入力内容に誤りがあります".into()),
            ),
            Self::NotConnected => (
                "this tenant is not connected to Salesforce".into(),
                Some("Salesforceと連携されていません".into()),
            ),
            Self::Salesforce(e) => {
                tracing::warn!(code = %e.code(), class = ?e.class(), error = %e, "salesforce error");
                explained = domain::rules::explain::explain(e);
                (
                    explained.message_en.clone(),
                    Some(explained.message_ja.clone()),
                )
            }
            Self::Unavailable => (
                "the service is temporarily unavailable; try again".into(),
                None,
            ),
            Self::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                ("internal error".into(), None)
            }
        };
        let fields = match &self {
            Self::Invalid(f) => Some(f.as_slice()),
            _ => None,
        };
        let body = Body {
            code: self.code(),
            message: &message,
            message_ja: message_ja.as_deref(),
            fields,
        };
        (status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
