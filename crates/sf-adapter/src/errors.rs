//! The one table that turns Salesforce's answers into [`SfError`], and [`explain`], which turns
//! an [`SfError`] into text for admins (R40).
//!
//! Inputs are the wire shapes: REST error arrays (`errorCode`), sObject Collections per-record
//! errors (`statusCode`), OAuth `{error, error_description}` bodies, HTML pages from proxies,
//! and transport failures. Every outcome names the object and field when Salesforce did.

use domain::{DuplicateMatch, ErrorClass, OrgProblem, SalesforceId, SfError};
use serde::Deserialize;

/// One element of a REST error array, or of a Collections `errors` array.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ApiErrorDto {
    #[serde(default)]
    pub message: String,
    /// REST calls say `errorCode`; Collections per-record errors say `statusCode`.
    #[serde(default, rename = "errorCode", alias = "statusCode")]
    pub error_code: String,
    #[serde(default)]
    pub fields: Vec<String>,
    /// Spelled `duplicateResut` in every capture seen; accept the correct spelling too.
    #[serde(default, rename = "duplicateResut", alias = "duplicateResult")]
    pub duplicate_result: Option<DuplicateResultDto>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DuplicateResultDto {
    #[serde(default)]
    pub match_results: Vec<MatchResultDto>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MatchResultDto {
    #[serde(default)]
    pub entity_type: Option<String>,
    #[serde(default)]
    pub match_records: Vec<MatchRecordDto>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct MatchRecordDto {
    #[serde(default)]
    pub record: Option<MatchedRecordDto>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct MatchedRecordDto {
    #[serde(default, rename = "Id")]
    pub id: Option<String>,
    #[serde(default)]
    pub attributes: Option<AttributesDto>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AttributesDto {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `{"error": "...", "error_description": "..."}` from `/services/oauth2/*`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct OAuthErrorDto {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: String,
}

/// The message Salesforce sends when a session may not call the REST API, typically because
/// the session is locked to another IP range (C2). jsforce refuses to refresh on it.
pub(crate) const SESSION_NOT_VALID_FOR_REST: &str = "not valid for use with the REST API";

fn first_field(fields: &[String]) -> Option<String> {
    fields.first().cloned()
}

/// `No such column 'Email' on entity 'Lead'` → `Email`.
fn column_from_message(message: &str) -> Option<String> {
    let rest = message.split("No such column '").nth(1)?;
    let col = rest.split('\'').next()?;
    (!col.is_empty()).then(|| col.to_owned())
}

/// `… on entity 'Lead'` / `… on sobject of type Lead` → `Lead`.
fn entity_from_message(message: &str) -> Option<String> {
    if let Some(rest) = message.split("on entity '").nth(1) {
        return rest.split('\'').next().map(str::to_owned);
    }
    let rest = message.split("on sobject of type ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Maps one Salesforce error (REST or Collections) to an [`SfError`].
///
/// `object` is the sObject the request was about, when the caller knows it.
pub(crate) fn map_api_error(status: u16, e: &ApiErrorDto, object: Option<&str>) -> SfError {
    let code = e.error_code.as_str();
    let msg = e.message.trim().to_owned();
    let object_s = object.map(str::to_owned);
    let field = first_field(&e.fields);
    let org =
        |problem: OrgProblem, object: Option<String>, field: Option<String>, cause: String| {
            SfError::OrgConfig {
                problem,
                code: code.to_owned(),
                object,
                field,
                cause,
            }
        };
    let bad = |field: Option<String>, cause: String| SfError::BadData {
        code: code.to_owned(),
        object: object_s.clone(),
        field,
        cause,
    };
    match code {
        "INVALID_SESSION_ID" if msg.contains(SESSION_NOT_VALID_FOR_REST) => org(
            OrgProblem::IpRestricted,
            None,
            None,
            format!(
                "Salesforce refused callsync's session for the REST API ({msg}); login IP restrictions or the connected app's IP relaxation policy block callsync's servers"
            ),
        ),
        "INVALID_SESSION_ID" => SfError::NeedsReconnect {
            code: code.to_owned(),
            cause: format!("the session was rejected ({msg})"),
        },
        "REQUEST_LIMIT_EXCEEDED" if msg.contains("Concurrent") => SfError::Transient {
            code: code.to_owned(),
            cause: format!("too many concurrent long-running requests in the org ({msg})"),
        },
        "REQUEST_LIMIT_EXCEEDED" => SfError::Throttled {
            code: code.to_owned(),
            cause: format!("the org's daily API request allowance is used up ({msg})"),
        },
        "UNABLE_TO_LOCK_ROW"
        | "SERVER_UNAVAILABLE"
        | "REQUEST_RUNNING_TOO_LONG"
        | "QUERY_TIMEOUT"
        | "TXN_SECURITY_METERING_ERROR" => SfError::Transient {
            code: code.to_owned(),
            cause: if msg.is_empty() { code.to_owned() } else { msg },
        },
        "API_DISABLED_FOR_ORG" | "API_CURRENTLY_DISABLED" => org(
            OrgProblem::ApiDisabled,
            None,
            None,
            format!(
                "the org or the connecting user has no REST API access ({msg}); Salesforce's REST API needs Enterprise, Unlimited, Performance or Developer Edition (Professional only with the API add-on) and the \"API Enabled\" user permission"
            ),
        ),
        "INVALID_FIELD" | "INVALID_FIELD_FOR_INSERT_UPDATE" => {
            let field = field.or_else(|| column_from_message(&msg)).or_else(|| {
                msg.strip_prefix("Unable to create/update fields: ")
                    .and_then(|r| r.split(['.', ',']).next())
                    .map(|s| s.trim().to_owned())
            });
            let object = entity_from_message(&msg).or(object_s.clone());
            org(
                OrgProblem::HiddenField,
                object,
                field,
                format!("the field is not visible or not editable for the connecting user ({msg})"),
            )
        }
        "FIELD_CUSTOM_VALIDATION_EXCEPTION" => org(
            OrgProblem::ValidationRule,
            object_s.clone(),
            field,
            format!("a validation rule rejected the record: {msg}"),
        ),
        "DUPLICATES_DETECTED" => duplicate_error(e, object),
        // The converted record is always a Lead, also when the request was about another object
        // (a Task whose WhoId is a converted Lead, reference §3.7).
        "CANNOT_UPDATE_CONVERTED_LEAD" => org(
            OrgProblem::ConvertedLead,
            Some("Lead".to_owned()),
            None,
            format!("the Lead was converted and can no longer be written ({msg})"),
        ),
        "INSUFFICIENT_ACCESS"
        | "INSUFFICIENT_ACCESS_OR_READONLY"
        | "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"
        | "INVALID_TYPE"
        | "FUNCTIONALITY_NOT_ENABLED"
        | "NOT_API_ENABLED"
        | "INVALID_OPERATION_WITH_EXPIRED_PASSWORD"
        | "INSUFFICIENT_PRIVILEGES" => org(
            OrgProblem::MissingPermission,
            object_s.clone().or_else(|| entity_from_message(&msg)),
            field,
            format!("the connecting user lacks a permission or access ({msg})"),
        ),
        "NOT_FOUND" | "ENTITY_IS_DELETED" => SfError::NotFound {
            cause: format!(
                "{}{msg}",
                object.map(|o| format!("{o}: ")).unwrap_or_default()
            ),
        },
        "INVALID_QUERY_LOCATOR" => SfError::NotFound {
            cause: format!("the query cursor expired; restart the query ({msg})"),
        },
        "REQUIRED_FIELD_MISSING"
        | "STRING_TOO_LONG"
        | "INVALID_CROSS_REFERENCE_KEY"
        | "MALFORMED_ID"
        | "MALFORMED_QUERY"
        | "MALFORMED_SEARCH"
        | "INVALID_EMAIL_ADDRESS"
        | "FIELD_INTEGRITY_EXCEPTION"
        | "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        | "DUPLICATE_VALUE"
        | "JSON_PARSER_ERROR"
        | "INVALID_QUERY_FILTER_OPERATOR"
        | "NUMBER_OUTSIDE_VALID_RANGE"
        | "INVALID_ID_FIELD"
        | "INVALID_TYPE_ON_FIELD_IN_RECORD"
        | "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
        | "INVALID_SEARCH"
        | "STORAGE_LIMIT_EXCEEDED" => {
            let field = field.or_else(|| bracketed_field(&msg));
            bad(field, if msg.is_empty() { code.to_owned() } else { msg })
        }
        _ => by_status(status, code, &msg, object_s, field),
    }
}

/// `Required fields are missing: [Company]` → `Company`.
fn bracketed_field(msg: &str) -> Option<String> {
    let inner = msg.split('[').nth(1)?.split(']').next()?;
    let first = inner.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

fn by_status(
    status: u16,
    code: &str,
    msg: &str,
    object: Option<String>,
    field: Option<String>,
) -> SfError {
    let code = if code.is_empty() {
        format!("HTTP_{status}")
    } else {
        code.to_owned()
    };
    let cause = if msg.is_empty() {
        format!("Salesforce answered HTTP {status}")
    } else {
        msg.to_owned()
    };
    match status {
        500..=599 | 408 | 429 => SfError::Transient { code, cause },
        401 => SfError::NeedsReconnect { code, cause },
        403 => SfError::OrgConfig {
            problem: OrgProblem::MissingPermission,
            code,
            object,
            field,
            cause,
        },
        404 => SfError::NotFound { cause },
        _ => SfError::BadData {
            code,
            object,
            field,
            cause,
        },
    }
}

/// `DUPLICATES_DETECTED` → [`SfError::Duplicate`] with the matches, records of `object`'s type
/// first (R35); a rule that lists nothing usable is an org-config problem.
fn duplicate_error(e: &ApiErrorDto, object: Option<&str>) -> SfError {
    let mut matches: Vec<DuplicateMatch> = Vec::new();
    if let Some(dr) = &e.duplicate_result {
        for mr in &dr.match_results {
            for rec in &mr.match_records {
                let Some(r) = &rec.record else { continue };
                let Some(id) = r.id.as_deref().and_then(|i| SalesforceId::parse(i).ok()) else {
                    continue;
                };
                let kind = r
                    .attributes
                    .as_ref()
                    .and_then(|a| a.kind.clone())
                    .or_else(|| mr.entity_type.clone())
                    .unwrap_or_default();
                if !matches.iter().any(|m| m.id == id) {
                    matches.push(DuplicateMatch { object: kind, id });
                }
            }
        }
    }
    // Stable: keeps Salesforce's order within each group.
    if let Some(o) = object {
        matches.sort_by_key(|m| m.object != o);
    }
    let cause = if e.message.is_empty() {
        "a duplicate rule blocked the save".to_owned()
    } else {
        e.message.clone()
    };
    if matches.is_empty() {
        SfError::OrgConfig {
            problem: OrgProblem::DuplicateRule,
            code: "DUPLICATES_DETECTED".to_owned(),
            object: object.map(str::to_owned),
            field: None,
            cause: format!(
                "a duplicate rule blocked the save and named no record callsync can use ({cause})"
            ),
        }
    } else {
        SfError::Duplicate { matches, cause }
    }
}

/// Maps a non-2xx REST response body to an [`SfError`]: the JSON error array (first element;
/// Salesforce sends one in practice), else a status-based error that says what came back
/// without echoing the body (HTML pages from proxies, truncated bodies).
pub(crate) fn map_error_body(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    object: Option<&str>,
) -> SfError {
    if let Ok(errors) = serde_json::from_slice::<Vec<ApiErrorDto>>(body)
        && let Some(first) = errors.first()
    {
        return map_api_error(status, first, object);
    }
    if let Ok(one) = serde_json::from_slice::<ApiErrorDto>(body)
        && !one.error_code.is_empty()
    {
        return map_api_error(status, &one, object);
    }
    let what = match content_type {
        Some(ct) if ct.starts_with("text/html") => "an HTML page",
        Some(ct) if ct.contains("json") => "an unrecognised JSON body",
        Some(_) | None if body.is_empty() => "an empty body",
        _ => "a non-JSON body",
    };
    let e = ApiErrorDto {
        message: format!("Salesforce answered HTTP {status} with {what}"),
        ..ApiErrorDto::default()
    };
    map_api_error(status, &e, object)
}

/// Maps an OAuth token/revoke endpoint failure (R7, C2).
pub(crate) fn map_oauth_error(status: u16, body: &[u8]) -> SfError {
    let dto = serde_json::from_slice::<OAuthErrorDto>(body).unwrap_or_else(|_| {
        // jsforce parses revoke errors as urlencoded; accept both.
        let text = String::from_utf8_lossy(body);
        let mut dto = OAuthErrorDto::default();
        for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
            match k.as_ref() {
                "error" => dto.error = v.into_owned(),
                "error_description" => dto.error_description = v.into_owned(),
                _ => {}
            }
        }
        dto
    });
    let code = if dto.error.is_empty() {
        format!("HTTP_{status}")
    } else {
        dto.error.clone()
    };
    let desc = dto.error_description.clone();
    let desc_l = desc.to_ascii_lowercase();
    match dto.error.as_str() {
        "invalid_grant" if desc_l.contains("ip restricted") => SfError::OrgConfig {
            problem: OrgProblem::IpRestricted,
            code,
            object: None,
            field: None,
            cause: format!(
                "Salesforce refused the grant from callsync's IP address ({desc}); login IP ranges or the connected app's IP relaxation policy block callsync's servers"
            ),
        },
        "invalid_grant" | "inactive_user" | "inactive_org" => SfError::NeedsReconnect {
            code,
            cause: format!(
                "the Salesforce grant is no longer valid ({desc}); reconnect the integration"
            ),
        },
        "invalid_client"
        | "invalid_client_id"
        | "invalid_client_credentials"
        | "unsupported_grant_type"
        | "redirect_uri_mismatch" => SfError::OrgConfig {
            problem: OrgProblem::MissingPermission,
            code,
            object: None,
            field: None,
            cause: format!(
                "Salesforce rejected callsync's OAuth client configuration ({desc}); check the connected app's consumer key, consumer secret and callback URL against callsync's salesforce settings"
            ),
        },
        "rate_limit_exceeded" => SfError::Transient {
            code,
            cause: format!("Salesforce's login endpoint is rate limiting ({desc})"),
        },
        _ if status >= 500 => SfError::Transient {
            code,
            cause: format!("Salesforce's login endpoint answered HTTP {status}"),
        },
        _ => SfError::BadData {
            code,
            object: None,
            field: None,
            cause: if desc.is_empty() {
                format!("the OAuth request failed with HTTP {status}")
            } else {
                desc
            },
        },
    }
}

/// A transport failure (no HTTP answer, or an unreadable one).
pub(crate) fn map_transport(e: &reqwest::Error) -> SfError {
    // The URL may carry a SOQL query (customer data); never put it in the error.
    if e.is_timeout() {
        SfError::transient("TIMEOUT", "Salesforce did not answer in time")
    } else if e.is_connect() {
        SfError::transient("CONNECTION", "could not connect to Salesforce")
    } else {
        SfError::transient(
            "HTTP_ERROR",
            "the connection to Salesforce failed mid-request",
        )
    }
}

/// Whether an error may be retried by resending a request that Salesforce may already have
/// acted on. Only codes that prove the request was refused before any change are safe.
pub(crate) fn refused_before_processing(e: &SfError) -> bool {
    matches!(e, SfError::Transient { code, .. } if code == "UNABLE_TO_LOCK_ROW" || code == "CONNECTION" || code == "REQUEST_LIMIT_EXCEEDED" || code == "SERVER_UNAVAILABLE")
}

/// Whether the error is worth retrying at all.
pub(crate) fn is_transient(e: &SfError) -> bool {
    e.class() == ErrorClass::Transient
}
