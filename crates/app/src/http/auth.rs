//! Who is calling: the operator (the operator key) or a tenant admin (that tenant's token).
//!
//! A tenant token only opens its own tenant's paths. A token that does not verify for the
//! tenant in the path is answered 404, exactly like a tenant that does not exist, so a token
//! never learns which other tenants exist. A request without a bearer token is 401.

use super::AppState;
use super::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::TenantId;
use std::collections::HashMap;

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The operator, authenticated by `Authorization: Bearer <security.operator_key>`.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(token) if state.keys.is_operator(token) => Ok(Operator),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// A tenant admin acting on the tenant in the path (`{t}`).
pub struct TenantAdmin(pub TenantId);

/// The `{t}` path segment as a tenant id; a malformed one is simply not found.
pub(crate) async fn path_tenant(parts: &mut Parts, state: &AppState) -> Result<TenantId, ApiError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::NotFound)?;
    params
        .get("t")
        .and_then(|t| TenantId::parse(t).ok())
        .ok_or(ApiError::NotFound)
}

impl FromRequestParts<AppState> for TenantAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?.to_owned();
        let tenant = path_tenant(parts, state).await?;
        if state
            .ports
            .admin
            .verify_admin_token(&tenant, &token)
            .await?
        {
            tracing::Span::current().record("tenant", tracing::field::display(&tenant));
            Ok(TenantAdmin(tenant))
        } else {
            Err(ApiError::NotFound)
        }
    }
}
