//! The admin page: the 連携 (integration) settings screen of the seed, steps 1–8, and the
//! integration status (R40, R41), server-rendered in Japanese with English, no JavaScript.
//!
//! Login takes the tenant admin token once and sets an HMAC-signed session cookie (HttpOnly,
//! SameSite=Lax, scoped to `/admin/{t}`). Every form carries the session's CSRF token in a
//! hidden field; a POST without the right one is refused.
//!
//! Lax, not Strict: connecting ends with Salesforce (another site) redirecting the browser to
//! `/oauth/callback`, which redirects to `/admin/{t}?connect=…`. Browsers withhold Strict
//! cookies from every request of a navigation another site started, so with Strict the admin
//! came back from the consent page logged out. Lax cookies go with such top-level GETs only;
//! cross-site POSTs still get none, and every form needs the CSRF token anyway.

use super::AppState;
use super::error::ApiError;
use super::html::{bar_chart, esc, jst, page};
use crate::security::after;
use crate::service;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use domain::{EventKind, IntegrationSettings, Language, SfObject, SyncTargets, TenantId};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

const COOKIE_NAME: &str = "callsync_admin";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/{t}", get(show))
        .route("/admin/{t}/login", get(login_form).post(login))
        .route("/admin/{t}/logout", post(logout))
        .route("/admin/{t}/settings", post(save_settings))
        .route("/admin/{t}/connect", post(connect))
        .route("/admin/{t}/disconnect", post(disconnect))
        .route("/admin/{t}/sync", post(sync_now))
        .route("/admin/{t}/failed/{id}/retry", post(retry))
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

fn cookie_value(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_owned())
}

/// A logged-in admin of the tenant in the path, with the session cookie (for CSRF).
pub struct Session {
    pub tenant: TenantId,
    pub cookie: String,
}

/// Not logged in (or logged in to another tenant): go to the login page.
pub struct NeedLogin(String);

impl IntoResponse for NeedLogin {
    fn into_response(self) -> Response {
        see_other(&format!("/admin/{}/login", self.0))
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let tenant = super::auth::path_tenant(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let cookie =
            cookie_value(parts).ok_or_else(|| NeedLogin(tenant.to_string()).into_response())?;
        match state.keys.check_session(&cookie, chrono::Utc::now()) {
            Some(t) if t == tenant => Ok(Session { tenant, cookie }),
            _ => Err(NeedLogin(tenant.to_string()).into_response()),
        }
    }
}

/// Checks a form's CSRF field against the session.
fn check_csrf(
    state: &AppState,
    s: &Session,
    form: &[(String, String)],
) -> Result<(), CsrfRejected> {
    let presented = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if state.keys.check_csrf(&s.cookie, presented) {
        Ok(())
    } else {
        Err(CsrfRejected)
    }
}

/// A form without the session's CSRF token.
pub struct CsrfRejected;

impl IntoResponse for CsrfRejected {
    fn into_response(self) -> Response {
        ApiError::bad_request("csrf", "the form expired; reload the page and try again")
            .into_response()
    }
}

fn parse_form(body: &Bytes) -> Vec<(String, String)> {
    serde_html_form::from_bytes(body).unwrap_or_default()
}

fn csrf_field(state: &AppState, s: &Session) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        esc(&state.keys.csrf_token(&s.cookie))
    )
}

// --- login ------------------------------------------------------------------------------------

async fn login_form(Path(t): Path<String>) -> Response {
    let Ok(t) = TenantId::parse(&t) else {
        return ApiError::NotFound.into_response();
    };
    Html(login_page(&t, None)).into_response()
}

fn login_page(t: &TenantId, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!(r#"<p class="msg err">{}</p>"#, esc(e)))
        .unwrap_or_default();
    page(
        "callsync ログイン",
        &format!(
            r#"<h1>callsync 管理画面 <span class="en">Admin</span></h1>{err}
<form method="post" action="/admin/{t}/login">
<p><label>管理トークン <span class="en">Admin token</span><br>
<input type="password" name="token" autocomplete="off" required size="60"></label></p>
<button type="submit">ログイン <span class="en">Log in</span></button></form>"#,
            t = esc(t.as_str())
        ),
    )
}

async fn login(State(state): State<AppState>, Path(t): Path<String>, body: Bytes) -> Response {
    let Ok(t) = TenantId::parse(&t) else {
        return ApiError::NotFound.into_response();
    };
    let form = parse_form(&body);
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    match state.ports.admin.verify_admin_token(&t, &token).await {
        Ok(true) => {
            let ttl = std::time::Duration::from_secs(state.settings.server.session_ttl_secs);
            let cookie = state.keys.issue_session(&t, after(chrono::Utc::now(), ttl));
            let secure = if state.settings.public_url().starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let header = format!(
                "{COOKIE_NAME}={cookie}; Path=/admin/{t}; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                ttl.as_secs()
            );
            service::audit(&state, &t, "admin", "admin.login", "").await;
            let mut resp = see_other(&format!("/admin/{t}"));
            if let Ok(v) = HeaderValue::from_str(&header) {
                resp.headers_mut().insert(SET_COOKIE, v);
            }
            resp
        }
        Ok(false) => (
            StatusCode::UNAUTHORIZED,
            Html(login_page(
                &t,
                Some("トークンが正しくありません / The token is not valid"),
            )),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn logout(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    if let Err(r) = check_csrf(&state, &s, &parse_form(&body)) {
        return r.into_response();
    }
    let mut resp = see_other(&format!("/admin/{}/login", s.tenant));
    let clear = format!(
        "{COOKIE_NAME}=; Path=/admin/{}; HttpOnly; SameSite=Lax; Max-Age=0",
        s.tenant
    );
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}

// --- the page ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct PageQuery {
    connect: Option<String>,
    saved: Option<String>,
    sync: Option<String>,
    retried: Option<String>,
    disconnected: Option<String>,
}

async fn show(State(state): State<AppState>, s: Session, Query(q): Query<PageQuery>) -> Response {
    let settings = match service::settings(&state, &s.tenant).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    render(&state, &s, &settings, &q, &[]).await
}

fn message(q: &PageQuery, state: &AppState, t: &TenantId) -> String {
    let mut out = String::new();
    let push = |out: &mut String, class: &str, ja: &str, en: &str| {
        let _ = write!(
            out,
            r#"<p class="msg {class}">{} <span class="en">{}</span></p>"#,
            esc(ja),
            esc(en)
        );
    };
    match q.connect.as_deref() {
        Some("connected") => push(
            &mut out,
            "ok",
            "Salesforceと連携しました。",
            "Connected to Salesforce.",
        ),
        Some("denied") => push(
            &mut out,
            "warn",
            "Salesforceでアクセスが許可されなかったため、連携は行われませんでした。",
            "Access was not granted in Salesforce; nothing was connected.",
        ),
        Some(other) if other.starts_with("failed") => match state.oauth.failure(t) {
            Some(f) => {
                let fix = match (&f.fix_ja, &f.fix_en) {
                    (Some(ja), Some(en)) => format!(
                        "<br>対処: {} <span class=\"en\">Fix: {}</span>",
                        esc(ja),
                        esc(en)
                    ),
                    _ => String::new(),
                };
                let _ = write!(
                    out,
                    r#"<p class="msg err">連携に失敗しました: {} <span class="en">Connecting failed: {}</span>{fix}</p>"#,
                    esc(&f.message_ja),
                    esc(&f.message_en)
                );
            }
            None => push(
                &mut out,
                "err",
                "連携に失敗しました。",
                "Connecting failed.",
            ),
        },
        _ => {}
    }
    if q.saved.is_some() {
        push(&mut out, "ok", "設定を保存しました。", "Settings saved.");
    }
    match q.sync.as_deref() {
        Some("started") => push(&mut out, "ok", "同期を開始しました。", "Sync started."),
        Some("running") => push(
            &mut out,
            "warn",
            "同期はすでに実行中です。",
            "A sync is already running.",
        ),
        _ => {}
    }
    if q.retried.is_some() {
        push(&mut out, "ok", "再試行を登録しました。", "Retry queued.");
    }
    if q.disconnected.is_some() {
        push(
            &mut out,
            "ok",
            "連携を解除しました。",
            "Disconnected from Salesforce.",
        );
    }
    out
}

fn checked(b: bool) -> &'static str {
    if b { " checked" } else { "" }
}

fn settings_form(
    state: &AppState,
    s: &Session,
    v: &IntegrationSettings,
    errors: &[super::error::FieldProblem],
    connected: bool,
) -> String {
    let t = esc(s.tenant.as_str());
    let csrf = csrf_field(state, s);
    let mut errs = String::new();
    if !errors.is_empty() {
        errs.push_str(r#"<div class="msg err"><ul>"#);
        for e in errors {
            let _ = write!(
                errs,
                r#"<li><b>{}</b>: {} <span class="en">{}</span></li>"#,
                esc(&e.field),
                esc(&e.message_ja),
                esc(&e.message)
            );
        }
        errs.push_str("</ul></div>");
    }
    let opt = |o: SfObject| {
        let sel = if v.create_as == Some(o) {
            " selected"
        } else {
            ""
        };
        format!(
            r#"<option value="{}"{sel}>{} ({})</option>"#,
            o.as_str(),
            o.label_ja(),
            o.as_str()
        )
    };
    let mut events = String::new();
    for k in EventKind::ALL {
        let _ = write!(
            events,
            r#"<label><input type="checkbox" name="notify_on" value="{}"{}> {} <span class="en">{}</span></label><br>"#,
            k.as_str(),
            checked(v.notify_on.contains(&k)),
            k.label_ja(),
            k.as_str()
        );
    }
    let connect_block = if connected {
        format!(
            r#"<form method="post" action="/admin/{t}/disconnect">{csrf}<button type="submit">連携解除 <span class="en">Disconnect</span></button></form>"#
        )
    } else {
        format!(
            r#"<form method="post" action="/admin/{t}/connect">{csrf}<button type="submit">連携 <span class="en">Connect</span></button></form>"#
        )
    };
    format!(
        r#"<h2>Salesforce 連携設定 <span class="en">Integration settings</span></h2>{errs}
<form method="post" action="/admin/{t}/settings">{csrf}
<fieldset><legend><span class="step">1.</span>連携先 <span class="en">Integration</span></legend>Salesforce</fieldset>
<fieldset><legend><span class="step">2.</span>同期対象 <span class="en">Sync targets (R1)</span></legend>
<label><input type="checkbox" name="sync_lead" value="on"{lead}> リード <span class="en">Lead</span></label>
<label><input type="checkbox" name="sync_contact" value="on"{contact}> 取引先責任者 <span class="en">Contact</span></label></fieldset>
<fieldset><legend><span class="step">3.</span>履歴オプション <span class="en">Activity history (R2)</span></legend>
<label><input type="checkbox" name="write_activity" value="on"{wa}> 通話イベント終了時に活動履歴へ書き出す <span class="en">Write each call to the activity history</span></label></fieldset>
<fieldset><legend><span class="step">4.</span>顧客作成 <span class="en">Create customers (R3)</span></legend>
<label><input type="checkbox" name="create_customers" value="on"{cc}> 取り込まれていない新規の相手をSalesforceへ登録する <span class="en">Create unknown callers in Salesforce</span></label></fieldset>
<fieldset><legend><span class="step">5.</span>作成先 <span class="en">Create as (R4)</span></legend>
<select name="create_as"><option value="">（選択なし / none）</option>{ol}{oc}</select></fieldset>
<fieldset><legend><span class="step">6.</span>録音テキスト変換 <span class="en">Recording transcription (R5)</span></legend>
<label><input type="checkbox" name="write_transcription" value="on"{wt}> テキスト変換の完了時にタイムラインへ書き出す <span class="en">Add transcripts to the call's activity</span></label></fieldset>
<fieldset><legend><span class="step">7.</span>通知イベント <span class="en">Notification events (R6)</span></legend>{events}</fieldset>
<fieldset><legend>詳細設定 <span class="en">Advanced</span></legend>
<label>取引先名（会社名なしの取引先責任者） <span class="en">Placeholder account (R31)</span><br><input name="placeholder_account" value="{pa}" size="40"></label><br>
<label>API使用上限 (%) <span class="en">Share of the org's daily API allowance (C3)</span> <input name="api_budget_percent" value="{abp}" size="4"></label><br>
<label><input type="checkbox" name="duplicate_allow_save" value="on"{das}> 重複ルールを許可して保存 <span class="en">Save despite duplicate rules (R35)</span></label><br>
<label>言語 <span class="en">Language of activities</span> <select name="language"><option value="ja"{ja}>日本語</option><option value="en"{en}>English</option></select></label><br>
<label>タイムゾーン <span class="en">Time zone</span> <input name="time_zone" value="{tz}" size="20"></label>
</fieldset>
<button type="submit">保存 <span class="en">Save</span></button></form>
<fieldset><legend><span class="step">8.</span>連携 <span class="en">Connect (R7)</span></legend>{connect_block}</fieldset>"#,
        lead = checked(v.sync_targets.lead),
        contact = checked(v.sync_targets.contact),
        wa = checked(v.write_activity),
        cc = checked(v.create_customers),
        ol = opt(SfObject::Lead),
        oc = opt(SfObject::Contact),
        wt = checked(v.write_transcription),
        pa = esc(&v.placeholder_account),
        abp = v.api_budget_percent,
        das = checked(v.duplicate_allow_save),
        ja = if v.language == Language::Ja {
            " selected"
        } else {
            ""
        },
        en = if v.language == Language::En {
            " selected"
        } else {
            ""
        },
        tz = esc(&v.time_zone),
    )
}

fn status_html(state: &AppState, s: &Session, st: &service::Status) -> String {
    let t = esc(s.tenant.as_str());
    let csrf = csrf_field(state, s);
    let mut out =
        String::from(r#"<h2>連携状況 <span class="en">Integration status (R40)</span></h2>"#);
    match &st.connection {
        Some(c) => {
            let _ = write!(
                out,
                r#"<table><tr><th>組織 <span class="en">Org</span></th><td>{}<br><span class="en">{}</span></td></tr>
<tr><th>連携ユーザー <span class="en">Connected user</span></th><td>{} {}</td></tr>
<tr><th>連携日時 <span class="en">Connected at</span></th><td>{}</td></tr></table>"#,
                esc(c.user.org_id.as_str()),
                esc(&c.instance_url),
                esc(&c.user.name),
                esc(c.user.email.as_ref().map(|e| e.as_str()).unwrap_or("")),
                jst(c.connected_at)
            );
        }
        None => out.push_str(r#"<p class="msg warn">未連携です。 <span class="en">Not connected to Salesforce.</span></p>"#),
    }
    // API usage against the allowance (C3).
    let api = &st.api;
    let usage = match api.org {
        Some(u) => format!(
            "組織全体 {} / {} 件（24時間） <span class=\"en\">org-wide, last 24 h</span>; callsync上限 {} 件 ({}%) <span class=\"en\">callsync ceiling</span>; この処理での送信 {} <span class=\"en\">sent by this process</span> <span class=\"en\">(observed {})</span>",
            u.used,
            u.max,
            api.ceiling.unwrap_or(0),
            api.budget_percent,
            api.requests_sent,
            jst(u.observed_at)
        ),
        None => format!(
            "まだ計測されていません <span class=\"en\">not observed yet</span>; 上限 {}% <span class=\"en\">budget</span>",
            api.budget_percent
        ),
    };
    let _ = write!(
        out,
        r#"<h3>API使用量 <span class="en">API usage</span></h3><p>{usage}</p>"#
    );
    let hourly_allowance = api.ceiling.map(|c| c as f64 / 24.0);
    out.push_str(&bar_chart(
        "Salesforce API requests per hour / 1時間あたりのAPI要求数",
        &st.requests_per_hour,
        hourly_allowance.map(|v| (v, "上限/24h")),
    ));
    let _ = write!(
        out,
        r#"<h3>活動の書き出し <span class="en">Activities written per hour</span></h3>"#
    );
    out.push_str(&bar_chart(
        "Activities written per hour / 1時間あたりの活動書き出し数",
        &st.activities_per_hour,
        None,
    ));
    // Queue.
    let q = &st.queue;
    let _ = write!(
        out,
        r#"<h3>キュー <span class="en">Queue</span></h3><p>待機 {} <span class="en">ready</span> / 処理中 {} <span class="en">in progress</span> / 再試行待ち {} <span class="en">waiting</span> / 保留 {} <span class="en">held</span> / 失敗 {} <span class="en">failed</span></p>"#,
        q.ready, q.leased, q.waiting, q.held, q.dead
    );
    // Sync runs (R17).
    let running = if st.sync_running {
        " <b>（実行中 / running）</b>"
    } else {
        ""
    };
    let _ = write!(
        out,
        r#"<h3>同期履歴 <span class="en">Sync runs (R17)</span>{running}</h3><form method="post" action="/admin/{t}/sync">{csrf}<button type="submit">今すぐ同期 <span class="en">Sync now</span></button></form>"#
    );
    if st.last_runs.is_empty() {
        out.push_str(r#"<p>まだありません <span class="en">none yet</span></p>"#);
    } else {
        out.push_str(r#"<table><tr><th>開始 <span class="en">Started</span></th><th>種類 <span class="en">Kind</span></th><th>結果 <span class="en">Result</span></th><th>件数 <span class="en">Counts</span></th><th>エラー <span class="en">Errors</span></th></tr>"#);
        for r in &st.last_runs {
            let result = match r.ok {
                Some(true) => "成功 / ok",
                Some(false) => "失敗 / failed",
                None => "実行中 / running",
            };
            let rep = &r.report;
            let skipped: Vec<String> = rep
                .skipped
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{:?}</td><td>{}</td><td>seen {} / created {} / updated {} / unlinked {} / duplicates {} / written back {} / API {}{}</td><td>{}</td></tr>",
                jst(r.started_at),
                r.kind,
                result,
                rep.seen,
                rep.created,
                rep.updated,
                rep.unlinked,
                rep.duplicates,
                rep.written_back,
                rep.api_requests,
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!("<br>skipped: {}", esc(&skipped.join(", ")))
                },
                esc(&rep.errors.join("; "))
            );
        }
        out.push_str("</table>");
    }
    // Failures (R40).
    let _ = write!(
        out,
        r#"<h3>失敗した処理 <span class="en">Failed items (R40)</span></h3>"#
    );
    if st.failures.is_empty() {
        out.push_str(r#"<p>ありません <span class="en">none</span></p>"#);
    } else {
        out.push_str(r#"<table><tr><th>日時 <span class="en">When</span></th><th>対象 <span class="en">Item</span></th><th>原因 <span class="en">Cause</span></th><th>Salesforceで変更する設定 <span class="en">Setting to change</span></th><th></th></tr>"#);
        for f in &st.failures {
            let domain::ports::WorkKind::CallEvent { call_id, event, .. } = &f.kind;
            let fix = match (&f.failure.fix_ja, &f.failure.fix_en) {
                (Some(ja), Some(en)) => {
                    format!("{}<br><span class=\"en\">{}</span>", esc(ja), esc(en))
                }
                _ => "—".to_owned(),
            };
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td>通話 {} ({})<br><span class="en">attempts {}</span></td><td>{}<br><span class="en">{}</span><br><code>{}</code></td><td>{fix}</td><td><form method="post" action="/admin/{t}/failed/{}/retry">{csrf}<button type="submit">再試行 <span class="en">Retry</span></button></form></td></tr>"#,
                jst(f.failed_at),
                esc(call_id.as_str()),
                esc(event.label_ja()),
                f.attempts,
                esc(&f.failure.message_ja),
                esc(&f.failure.message_en),
                esc(&f.failure.code),
                f.id
            );
        }
        out.push_str("</table>");
    }
    // R41.
    let _ = write!(
        out,
        r#"<h3>Salesforceユーザーが見つからないメンバー <span class="en">Members without a Salesforce user (R41)</span></h3>"#
    );
    if st.members_without_user.is_empty() {
        out.push_str(r#"<p>ありません <span class="en">none</span></p>"#);
    } else {
        out.push_str(r#"<p class="en">Their calls are owned by the connecting user (R23). / これらのメンバーの通話は連携ユーザーの活動として書き出されます。</p><ul>"#);
        for m in &st.members_without_user {
            let _ = write!(
                out,
                "<li>{} &lt;{}&gt;</li>",
                esc(m.name.as_deref().unwrap_or(&m.external_id)),
                esc(m
                    .email
                    .as_ref()
                    .map(|e| e.as_str())
                    .unwrap_or("メールなし / no email"))
            );
        }
        out.push_str("</ul>");
    }
    out
}

async fn render(
    state: &AppState,
    s: &Session,
    settings: &IntegrationSettings,
    q: &PageQuery,
    errors: &[super::error::FieldProblem],
) -> Response {
    let st = match service::status(state, &s.tenant).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let t = esc(s.tenant.as_str());
    let body = format!(
        r#"<h1>連携 — Salesforce <span class="en">Integration ({t})</span></h1>
<form method="post" action="/admin/{t}/logout" style="float:right">{csrf}<button type="submit">ログアウト <span class="en">Log out</span></button></form>
{msg}{form}{status}"#,
        csrf = csrf_field(state, s),
        msg = message(q, state, &s.tenant),
        form = settings_form(state, s, settings, errors, st.connection.is_some()),
        status = status_html(state, s, &st),
    );
    let code = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (code, Html(page("callsync 連携設定", &body))).into_response()
}

// --- actions ----------------------------------------------------------------------------------

/// Applies the form to the current settings (fields the form does not show are kept).
fn apply_form(
    mut v: IntegrationSettings,
    form: &[(String, String)],
) -> (IntegrationSettings, Vec<super::error::FieldProblem>) {
    let one: HashMap<&str, &str> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let on = |k: &str| one.get(k).is_some_and(|v| *v == "on");
    let mut errors = Vec::new();
    v.sync_targets = SyncTargets {
        lead: on("sync_lead"),
        contact: on("sync_contact"),
    };
    v.write_activity = on("write_activity");
    v.create_customers = on("create_customers");
    v.create_as = one.get("create_as").and_then(|s| SfObject::parse(s));
    v.write_transcription = on("write_transcription");
    v.notify_on = form
        .iter()
        .filter(|(k, _)| k == "notify_on")
        .filter_map(|(_, val)| EventKind::parse(val))
        .collect::<BTreeSet<_>>();
    v.duplicate_allow_save = on("duplicate_allow_save");
    if let Some(p) = one.get("placeholder_account") {
        v.placeholder_account = p.trim().to_owned();
    }
    if let Some(tz) = one.get("time_zone") {
        v.time_zone = tz.trim().to_owned();
    }
    match one.get("language").copied() {
        Some("en") => v.language = Language::En,
        Some("ja") => v.language = Language::Ja,
        _ => {}
    }
    if let Some(p) = one.get("api_budget_percent") {
        match p.trim().parse::<u8>() {
            Ok(n) => v.api_budget_percent = n,
            Err(_) => errors.push(super::error::FieldProblem {
                field: "api_budget_percent".into(),
                message: "must be a number between 1 and 100".into(),
                message_ja: "API使用上限は1〜100の数値で指定してください".into(),
            }),
        }
    }
    (v, errors)
}

async fn save_settings(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    let form = parse_form(&body);
    if let Err(r) = check_csrf(&state, &s, &form) {
        return r.into_response();
    }
    let current = match service::settings(&state, &s.tenant).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let (new, mut errors) = apply_form(current, &form);
    if errors.is_empty() {
        match service::save_settings(&state, &s.tenant, &new, "admin").await {
            Ok(()) => return see_other(&format!("/admin/{}?saved=1", s.tenant)),
            Err(ApiError::Invalid(fields)) => errors = fields,
            Err(e) => return e.into_response(),
        }
    }
    let q = PageQuery {
        connect: None,
        saved: None,
        sync: None,
        retried: None,
        disconnected: None,
    };
    render(&state, &s, &new, &q, &errors).await
}

async fn connect(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    if let Err(r) = check_csrf(&state, &s, &parse_form(&body)) {
        return r.into_response();
    }
    see_other(&service::start_connect(&state, &s.tenant))
}

async fn disconnect(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    if let Err(r) = check_csrf(&state, &s, &parse_form(&body)) {
        return r.into_response();
    }
    match service::disconnect(&state, &s.tenant, "admin").await {
        Ok(_) => see_other(&format!("/admin/{}?disconnected=1", s.tenant)),
        Err(e) => e.into_response(),
    }
}

async fn sync_now(State(state): State<AppState>, s: Session, body: Bytes) -> Response {
    if let Err(r) = check_csrf(&state, &s, &parse_form(&body)) {
        return r.into_response();
    }
    let r = if service::start_sync(&state, &s.tenant, false).is_some() {
        "started"
    } else {
        "running"
    };
    see_other(&format!("/admin/{}?sync={r}", s.tenant))
}

async fn retry(
    State(state): State<AppState>,
    s: Session,
    Path((_, id)): Path<(String, i64)>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_csrf(&state, &s, &parse_form(&body)) {
        return r.into_response();
    }
    match service::retry_failed(&state, &s.tenant, id, "admin").await {
        Ok(true) => see_other(&format!("/admin/{}?retried=1", s.tenant)),
        Ok(false) => ApiError::NotFound.into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_maps_to_settings_steps_2_to_7() {
        let (s, errors) = apply_form(
            IntegrationSettings::default(),
            &form(&[
                ("sync_contact", "on"),
                ("write_activity", "on"),
                ("create_customers", "on"),
                ("create_as", "Contact"),
                ("write_transcription", "on"),
                ("notify_on", "missed"),
                ("notify_on", "voicemail"),
                ("api_budget_percent", "15"),
            ]),
        );
        assert!(errors.is_empty());
        assert_eq!(
            s.sync_targets,
            SyncTargets {
                lead: false,
                contact: true
            }
        );
        assert!(s.write_activity && s.create_customers && s.write_transcription);
        assert_eq!(s.create_as, Some(SfObject::Contact));
        assert_eq!(
            s.notify_on,
            [EventKind::Missed, EventKind::Voicemail]
                .into_iter()
                .collect()
        );
        assert_eq!(s.api_budget_percent, 15);
        assert!(s.validate().is_ok());
        // Unticked boxes turn options off.
        let (s, _) = apply_form(s, &form(&[("sync_lead", "on")]));
        assert!(!s.write_activity && !s.create_customers && s.notify_on.is_empty());
    }
}
