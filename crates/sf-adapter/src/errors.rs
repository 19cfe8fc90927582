//! The one table that turns Salesforce's answers into [`SfError`], and [`explain`], which turns
//! an [`SfError`] into text for admins (R40).
//!
//! Inputs are the wire shapes: REST error arrays (`errorCode`), sObject Collections per-record
//! errors (`statusCode`), OAuth `{error, error_description}` bodies, HTML pages from proxies,
//! and transport failures. Every outcome names the object and field when Salesforce did.

use domain::ports::Failure;
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
        "CANNOT_UPDATE_CONVERTED_LEAD" => org(
            OrgProblem::ConvertedLead,
            Some(object_s.clone().unwrap_or_else(|| "Lead".to_owned())),
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

/// Text for admins (R40): what went wrong and which Salesforce setting to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub message_en: String,
    pub message_ja: String,
    pub fix_en: Option<String>,
    pub fix_ja: Option<String>,
}

fn field_ref(object: &Option<String>, field: &Option<String>) -> String {
    match (object, field) {
        (Some(o), Some(f)) => format!("{o}.{f}"),
        (Some(o), None) => o.clone(),
        (None, Some(f)) => f.clone(),
        (None, None) => "-".to_owned(),
    }
}

fn object_ja(object: &Option<String>) -> String {
    match object.as_deref() {
        Some("Lead") => "リード".to_owned(),
        Some("Contact") => "取引先責任者".to_owned(),
        Some("Account") => "取引先".to_owned(),
        Some("Task") => "ToDo".to_owned(),
        Some(o) => o.to_owned(),
        None => "オブジェクト".to_owned(),
    }
}

/// Explains an error in English and Japanese with the fix, for the admin view (R40).
pub fn explain(e: &SfError) -> Explanation {
    let some = |s: String| Some(s);
    match e {
        SfError::Transient { cause, .. } => Explanation {
            message_en: format!("Salesforce was temporarily unavailable: {cause}. callsync retries automatically."),
            message_ja: format!("Salesforce に一時的に接続できませんでした（{cause}）。自動的に再試行します。"),
            fix_en: None,
            fix_ja: None,
        },
        SfError::Throttled { cause, .. } => Explanation {
            message_en: format!("The Salesforce org's API request allowance is used up ({cause}). Work resumes when the allowance recovers; nothing is lost."),
            message_ja: format!("Salesforce 組織の API リクエスト上限に達しました（{cause}）。上限が回復すると自動で再開します。データは失われません。"),
            fix_en: some("Check Setup > Company Information > API Requests, Last 24 Hours, and other integrations using the same org.".to_owned()),
            fix_ja: some("設定 > 組織情報 の「API 要求数 (過去 24 時間)」と、同じ組織を使う他の連携を確認してください。".to_owned()),
        },
        SfError::NeedsReconnect { cause, .. } => Explanation {
            message_en: format!("The Salesforce connection is no longer valid ({cause}). Calls are held until an admin reconnects."),
            message_ja: format!("Salesforce との接続が無効になりました（{cause}）。管理者が再接続するまで処理を保留します。"),
            fix_en: some("Reconnect Salesforce in callsync's integration settings. If it keeps happening, check the connected app's refresh token policy (Setup > App Manager > the app > Manage > Edit Policies) and the 5-grant limit per user.".to_owned()),
            fix_ja: some("callsync の連携設定から Salesforce に再接続してください。繰り返す場合は、接続アプリケーションの更新トークンポリシー（設定 > アプリケーションマネージャ > 対象アプリ > 管理 > ポリシーを編集）を確認してください。".to_owned()),
        },
        SfError::OrgConfig { problem, object, field, cause, .. } => explain_org(*problem, object, field, cause),
        SfError::Duplicate { matches, cause } => Explanation {
            message_en: format!("A Salesforce duplicate rule matched {} existing record(s): {cause}.", matches.len()),
            message_ja: format!("Salesforce の重複ルールにより既存のレコード {} 件が一致しました（{cause}）。", matches.len()),
            fix_en: some("callsync links the existing record. To create new records anyway, set the duplicate rule's action to Allow with Alert (Setup > Duplicate Management > Duplicate Rules) and enable allowSave in callsync.".to_owned()),
            fix_ja: some("callsync は既存のレコードに紐付けます。新規作成を優先する場合は、重複ルールの処理を「許可（警告）」にし（設定 > 重複管理 > 重複ルール）、callsync で allowSave を有効にしてください。".to_owned()),
        },
        SfError::BadData { code, object, field, cause } => Explanation {
            message_en: format!("Salesforce rejected the data ({code} on {}): {cause}", field_ref(object, field)),
            message_ja: format!("Salesforce がデータを受け付けませんでした（{code}、{}）：{cause}", field_ref(object, field)),
            fix_en: some("Correct the value in callsync (or in Salesforce), then retry the item.".to_owned()),
            fix_ja: some("callsync（または Salesforce）で値を修正してから再試行してください。".to_owned()),
        },
        SfError::NotFound { cause } => Explanation {
            message_en: format!("The Salesforce record was not found: {cause}"),
            message_ja: format!("Salesforce のレコードが見つかりません：{cause}"),
            fix_en: None,
            fix_ja: None,
        },
    }
}

fn explain_org(
    problem: OrgProblem,
    object: &Option<String>,
    field: &Option<String>,
    cause: &str,
) -> Explanation {
    let obj = object.clone().unwrap_or_else(|| "the object".to_owned());
    let fld = field.clone().unwrap_or_else(|| "the field".to_owned());
    let (message_en, message_ja, fix_en, fix_ja) = match problem {
        OrgProblem::HiddenField => (
            format!("The field {} is not visible to the connected Salesforce user, so callsync cannot read or write it ({cause}).", field_ref(object, field)),
            format!("連携ユーザーから項目 {} が参照できないため、callsync が読み書きできません（{cause}）。", field_ref(object, field)),
            format!("In Salesforce: Setup > Object Manager > {obj} > Fields & Relationships > {fld} > Set Field-Level Security, and make it Visible (and editable where callsync writes it) for the connected user's profile."),
            format!("Salesforce の 設定 > オブジェクトマネージャ > {} > 項目とリレーション > {fld} > 項目レベルセキュリティを設定 で、連携ユーザーのプロファイルに「参照可能」（書き込む項目は編集可能）を付与してください。", object_ja(object)),
        ),
        OrgProblem::ValidationRule => (
            format!("A Salesforce validation rule on {obj} rejected the record: {cause}"),
            format!("{} の入力規則によりレコードが拒否されました：{cause}", object_ja(object)),
            format!("Review the validation rules in Setup > Object Manager > {obj} > Validation Rules, or complete the data it requires."),
            format!("設定 > オブジェクトマネージャ > {} > 入力規則 を確認するか、必要なデータを入力してください。", object_ja(object)),
        ),
        OrgProblem::DuplicateRule => (
            format!("A Salesforce duplicate rule on {obj} blocked the save and named no record to link: {cause}"),
            format!("{} の重複ルールにより保存がブロックされ、紐付け先のレコードも示されませんでした：{cause}", object_ja(object)),
            "Review Setup > Duplicate Management > Duplicate Rules (set the action to Allow with Alert and enable allowSave in callsync, or report matched records).".to_owned(),
            "設定 > 重複管理 > 重複ルール を確認してください（処理を「許可（警告）」にして callsync で allowSave を有効にする、など）。".to_owned(),
        ),
        OrgProblem::ConvertedLead => (
            format!("The Lead was converted in Salesforce and can no longer be updated: {cause}"),
            format!("このリードは Salesforce で取引開始済みのため更新できません：{cause}"),
            "callsync relinks the customer to the converted Contact at the next sync; retry after it.".to_owned(),
            "次回の同期で callsync が取引開始後の取引先責任者に紐付け直します。その後に再試行してください。".to_owned(),
        ),
        OrgProblem::ApiDisabled => (
            format!("The Salesforce org or the connecting user has no REST API access, which callsync requires ({cause})."),
            format!("Salesforce 組織または連携ユーザーに REST API へのアクセス権がありません。callsync には API アクセスが必要です（{cause}）。"),
            "callsync needs an edition with API access (Enterprise, Unlimited, Performance or Developer; Professional only with the API add-on) and a user with the \"API Enabled\" permission (Setup > Users > Profiles > System Permissions).".to_owned(),
            "API が利用できるエディション（Enterprise / Unlimited / Performance / Developer、Professional は API オプション契約時のみ）と、「API の有効化」権限を持つユーザー（設定 > ユーザー > プロファイル > システム管理者権限）が必要です。".to_owned(),
        ),
        OrgProblem::IpRestricted => (
            format!("Salesforce rejects callsync's servers because of IP restrictions ({cause})."),
            format!("IP 制限により Salesforce が callsync のサーバーからのアクセスを拒否しています（{cause}）。"),
            "Add callsync's server addresses to the profile's Login IP Ranges (Setup > Profiles > the profile > Login IP Ranges), or set the connected app's IP Relaxation to \"Relax IP restrictions\" (Setup > App Manager > the app > Manage > Edit Policies), then reconnect.".to_owned(),
            "プロファイルのログイン IP アドレスの制限に callsync のサーバーアドレスを追加するか（設定 > プロファイル > 対象プロファイル > ログイン IP アドレスの制限）、接続アプリケーションの IP 制限の緩和を「IP 制限の緩和」に設定し（設定 > アプリケーションマネージャ > 対象アプリ > 管理 > ポリシーを編集）、再接続してください。".to_owned(),
        ),
        OrgProblem::MissingPermission => (
            format!("The connected Salesforce user lacks a permission callsync needs on {obj}: {cause}"),
            format!("連携ユーザーに {} に対する必要な権限がありません：{cause}", object_ja(object)),
            format!("Give the connected user's profile or a permission set Read/Create/Edit on {obj} (Setup > Users > Profiles > Object Settings), then retry."),
            format!("連携ユーザーのプロファイルまたは権限セットに {} の参照・作成・編集権限を付与してから再試行してください（設定 > ユーザー > プロファイル > オブジェクト設定）。", object_ja(object)),
        ),
    };
    Explanation {
        message_en,
        message_ja,
        fix_en: Some(fix_en),
        fix_ja: Some(fix_ja),
    }
}

/// The queue's failure record for an error: class, code and [`explain`]'s text.
pub fn failure(e: &SfError) -> Failure {
    let x = explain(e);
    Failure {
        class: e.class(),
        code: e.code().to_owned(),
        message_en: x.message_en,
        message_ja: x.message_ja,
        fix_en: x.fix_en,
        fix_ja: x.fix_ja,
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
