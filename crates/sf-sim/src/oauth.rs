//! OAuth 2.0 web-server flow (authorize with auto-consent or an HTML consent page, token with
//! PKCE S256, refresh, revoke), identity URLs and userinfo. Served on the login origin and, like
//! My Domain, on every instance origin.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::ids::{SfId, random_b62};
use crate::schema::Obj;
use crate::server::{OrgInner, Req, Resp, Shared, auto_consent, lock};
use crate::value::{J, Val, fmt_dt};

pub(crate) struct Session {
    pub(crate) org: usize,
    pub(crate) user: SfId,
    pub(crate) valid: bool,
    refresh: Option<String>,
}

struct RefreshGrant {
    org: usize,
    user: SfId,
    revoked: bool,
}

struct CodeGrant {
    org: usize,
    user: SfId,
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
    used: bool,
}

#[derive(Default)]
pub(crate) struct AuthState {
    pub(crate) access: HashMap<String, Session>,
    refresh: HashMap<String, RefreshGrant>,
    codes: HashMap<String, CodeGrant>,
}

pub(crate) fn issue_access(
    sh: &Shared,
    org: &OrgInner,
    user: SfId,
    refresh: Option<&str>,
) -> String {
    let tok = format!("{}!{}", &org.org_id.as_str()[..15], random_b62(96));
    lock(&sh.auth).access.insert(
        tok.clone(),
        Session {
            org: org.index,
            user,
            valid: true,
            refresh: refresh.map(str::to_string),
        },
    );
    tok
}

pub(crate) fn issue_refresh(sh: &Shared, org: &OrgInner, user: SfId) -> String {
    let tok = format!("5Aep861{}", random_b62(80));
    lock(&sh.auth).refresh.insert(
        tok.clone(),
        RefreshGrant {
            org: org.index,
            user,
            revoked: false,
        },
    );
    tok
}

pub(crate) fn expire_sessions(sh: &Shared, org: &OrgInner) {
    for s in lock(&sh.auth)
        .access
        .values_mut()
        .filter(|s| s.org == org.index)
    {
        s.valid = false;
    }
}

pub(crate) fn revoke_refresh_tokens(sh: &Shared, org: &OrgInner) {
    for g in lock(&sh.auth)
        .refresh
        .values_mut()
        .filter(|g| g.org == org.index)
    {
        g.revoked = true;
    }
}

/// The session of a valid access token: (org index, user).
pub(crate) fn session(sh: &Shared, token: &str) -> Option<(usize, SfId)> {
    let auth = lock(&sh.auth);
    auth.access
        .get(token)
        .filter(|s| s.valid)
        .map(|s| (s.org, s.user))
}

fn org_by_index(sh: &Shared, i: usize) -> Option<Arc<OrgInner>> {
    lock(&sh.orgs).get(i).cloned()
}

fn oauth_error(error: &str, desc: &str) -> Resp {
    Resp::json(
        400,
        J::obj()
            .with("error", J::s(error))
            .with("error_description", J::s(desc)),
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn redirect(uri: &str, params: &[(&str, &str)]) -> Resp {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    Resp::empty(302).header("Location", format!("{uri}{sep}{}", ser.finish()))
}

/// Route OAuth/identity requests. `here` is the org whose instance origin received the request.
/// Returns the response and the org the request concerned (for its request log).
pub(crate) fn handle(
    sh: &Arc<Shared>,
    req: &Req,
    here: Option<&Arc<OrgInner>>,
) -> (Resp, Option<Arc<OrgInner>>) {
    let path = req.path.trim_end_matches('/');
    match (req.method.as_str(), path) {
        ("GET", "/services/oauth2/authorize") => {
            (authorize(sh, req, here, &params_of(req, false)), None)
        }
        ("POST", "/services/oauth2/authorize") => (consent_post(sh, req, here), None),
        ("POST", "/services/oauth2/token") => token(sh, req),
        ("POST" | "GET", "/services/oauth2/revoke") => revoke(sh, req),
        ("GET" | "POST", "/services/oauth2/userinfo") => userinfo(sh, req),
        ("POST", "/services/oauth2/introspect") => introspect(sh, req),
        ("GET", p) if p.starts_with("/id/") => identity(sh, req, p),
        _ => (
            Resp::text(404, not_found_html(), "text/html;charset=UTF-8"),
            None,
        ),
    }
}

fn not_found_html() -> String {
    "<html><head><title>URL No Longer Exists</title></head><body><p>You have attempted to reach a URL that no longer exists on salesforce.com.</p></body></html>".into()
}

fn params_of(req: &Req, form: bool) -> HashMap<String, String> {
    if form {
        req.form()
    } else {
        url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }
}

/// Which org and user log in: the My Domain org when called on an instance origin; otherwise the
/// user whose username/email equals `login_hint`; otherwise the admin of the newest org.
fn login_user(
    sh: &Shared,
    here: Option<&Arc<OrgInner>>,
    hint: Option<&str>,
) -> Option<(Arc<OrgInner>, SfId)> {
    if let Some(o) = here {
        return Some((o.clone(), o.admin));
    }
    let orgs = lock(&sh.orgs).clone();
    if let Some(h) = hint.filter(|h| !h.is_empty()) {
        for o in &orgs {
            let st = lock(&o.state);
            let (Some(ui), Some(ei)) = (
                Obj::User.field_idx("Username"),
                Obj::User.field_idx("Email"),
            ) else {
                continue;
            };
            let hit = st.data.table(Obj::User).recs.iter().find(|r| {
                [ui, ei].iter().any(|i| {
                    r.get(*i)
                        .as_text()
                        .is_some_and(|v| v.eq_ignore_ascii_case(h))
                })
            });
            if let Some(r) = hit {
                return Some((o.clone(), r.id));
            }
        }
    }
    orgs.last().map(|o| (o.clone(), o.admin))
}

fn authorize(
    sh: &Shared,
    _req: &Req,
    here: Option<&Arc<OrgInner>>,
    p: &HashMap<String, String>,
) -> Resp {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != sh.client_id {
        return Resp::text(
            400,
            "<html><body><h1>OAuth Error</h1><p>error=invalid_client_id&amp;error_description=client identifier invalid</p></body></html>",
            "text/html;charset=UTF-8",
        );
    }
    let redirect_uri = get("redirect_uri");
    if redirect_uri.is_empty() {
        return Resp::text(
            400,
            "<html><body><h1>OAuth Error</h1><p>error=redirect_uri_mismatch&amp;error_description=redirect_uri must match configuration</p></body></html>",
            "text/html;charset=UTF-8",
        );
    }
    if get("response_type") != "code" {
        return redirect(
            redirect_uri,
            &[
                ("error", "unsupported_response_type"),
                ("error_description", "response type not supported"),
                ("state", get("state")),
            ],
        );
    }
    if !auto_consent(sh) && get("approve").is_empty() {
        let hidden: String = [
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "scope",
            "code_challenge",
            "code_challenge_method",
            "login_hint",
        ]
        .iter()
        .filter_map(|k| {
            p.get(*k).map(|v| {
                format!(
                    "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                    html_escape(v)
                )
            })
        })
        .collect();
        let who = login_user(sh, here, p.get("login_hint").map(String::as_str));
        let org_name = who
            .as_ref()
            .map(|(o, _)| o.name.clone())
            .unwrap_or_default();
        let page = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Allow Access?</title></head><body>\
<h1>Allow Access?</h1><p>The connected app is asking to access your Salesforce org <b>{}</b>.</p>\
<form method=\"POST\" action=\"/services/oauth2/authorize\" id=\"consent\">{hidden}\
<button type=\"submit\" name=\"approve\" value=\"Allow\" id=\"oaapprove\">Allow</button> \
<button type=\"submit\" name=\"deny\" value=\"Deny\" id=\"oadeny\">Deny</button></form></body></html>",
            html_escape(&org_name)
        );
        return Resp::text(200, page, "text/html;charset=UTF-8");
    }
    let Some((org, user)) = login_user(sh, here, p.get("login_hint").map(String::as_str)) else {
        return redirect(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "no org to log in to"),
                ("state", get("state")),
            ],
        );
    };
    let code = format!("aPrx{}", random_b62(60));
    lock(&sh.auth).codes.insert(
        code.clone(),
        CodeGrant {
            org: org.index,
            user,
            redirect_uri: redirect_uri.to_string(),
            challenge: p.get("code_challenge").filter(|c| !c.is_empty()).cloned(),
            scope: p
                .get("scope")
                .cloned()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "api refresh_token".into()),
            used: false,
        },
    );
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = p.get("state") {
        params.push(("state", s.as_str()));
    }
    redirect(redirect_uri, &params)
}

fn consent_post(sh: &Shared, req: &Req, here: Option<&Arc<OrgInner>>) -> Resp {
    let mut p = params_of(req, true);
    if p.contains_key("deny")
        || p.get("action")
            .is_some_and(|a| a.eq_ignore_ascii_case("deny"))
    {
        let uri = p.get("redirect_uri").cloned().unwrap_or_default();
        let state = p.get("state").cloned().unwrap_or_default();
        return redirect(
            &uri,
            &[
                ("error", "access_denied"),
                ("error_description", "end-user denied authorization"),
                ("state", &state),
            ],
        );
    }
    p.insert("approve".into(), "Allow".into());
    authorize(sh, req, here, &p)
}

fn token_body(
    sh: &Shared,
    org: &OrgInner,
    user: SfId,
    access: &str,
    refresh: Option<&str>,
    scope: &str,
) -> J {
    let id_url = format!("{}/id/{}/{}", sh.login_url, org.org_id, user);
    let issued_at = chrono::Utc::now().timestamp_millis().to_string();
    let sig = match hmac::Hmac::<Sha256>::new_from_slice(sh.client_secret.as_bytes()) {
        Ok(mut m) => {
            m.update(id_url.as_bytes());
            m.update(issued_at.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    let mut j = J::obj().with("access_token", J::s(access));
    if let Some(r) = refresh {
        j.push("refresh_token", J::s(r));
    }
    j.with("signature", J::s(sig))
        .with("scope", J::s(scope))
        .with("instance_url", J::s(&org.instance_url))
        .with("id", J::s(id_url))
        .with("token_type", J::s("Bearer"))
        .with("issued_at", J::s(issued_at))
}

fn token(sh: &Shared, req: &Req) -> (Resp, Option<Arc<OrgInner>>) {
    let p = params_of(req, true);
    let get = |k: &str| p.get(k).map(String::as_str);
    let grant = get("grant_type").unwrap_or("");
    if grant != "authorization_code" && grant != "refresh_token" {
        return (
            oauth_error("unsupported_grant_type", "grant type not supported"),
            None,
        );
    }
    if get("client_id") != Some(sh.client_id.as_str()) {
        return (
            oauth_error("invalid_client_id", "client identifier invalid"),
            None,
        );
    }
    if get("client_secret").is_some_and(|s| s != sh.client_secret) {
        return (
            oauth_error("invalid_client", "invalid client credentials"),
            None,
        );
    }
    if grant == "authorization_code" {
        let code = get("code").unwrap_or("");
        let mut auth = lock(&sh.auth);
        let Some(g) = auth.codes.get_mut(code).filter(|g| !g.used) else {
            return (
                oauth_error("invalid_grant", "expired authorization code"),
                None,
            );
        };
        g.used = true;
        let (org_i, user, scope) = (g.org, g.user, g.scope.clone());
        let org = org_by_index(sh, org_i);
        if get("redirect_uri") != Some(g.redirect_uri.as_str()) {
            return (
                oauth_error(
                    "redirect_uri_mismatch",
                    "redirect_uri must match configuration",
                ),
                org,
            );
        }
        match (&g.challenge, get("code_verifier")) {
            (Some(ch), Some(v)) => {
                let digest = Sha256::digest(v.as_bytes());
                let calc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                if &calc != ch {
                    return (oauth_error("invalid_grant", "invalid code verifier"), org);
                }
            }
            (Some(_), None) => return (oauth_error("invalid_grant", "invalid code verifier"), org),
            (None, _) if get("client_secret").is_none() => {
                return (
                    oauth_error("invalid_client", "invalid client credentials"),
                    org,
                );
            }
            (None, _) => {}
        }
        drop(auth);
        let Some(org) = org else {
            return (oauth_error("invalid_grant", "authentication failure"), None);
        };
        if lock(&org.state).data.faults.ip_restricted {
            return (oauth_error("invalid_grant", "ip restricted"), Some(org));
        }
        if !user_active(&org, user) {
            return (oauth_error("invalid_grant", "inactive user"), Some(org));
        }
        let rt = scope
            .split_whitespace()
            .any(|s| s == "refresh_token" || s == "offline_access" || s == "full")
            .then(|| issue_refresh(sh, &org, user));
        let at = issue_access(sh, &org, user, rt.as_deref());
        let scope = if scope.split_whitespace().any(|s| s == "refresh_token") {
            scope
        } else {
            format!("{scope} refresh_token")
        };
        let body = token_body(sh, &org, user, &at, rt.as_deref(), &scope);
        return (Resp::json(200, body), Some(org));
    }
    let rt = get("refresh_token").unwrap_or("");
    let grant = {
        let auth = lock(&sh.auth);
        auth.refresh.get(rt).map(|g| (g.org, g.user, g.revoked))
    };
    let Some((org_i, user, revoked)) = grant else {
        return (
            oauth_error("invalid_grant", "expired access/refresh token"),
            None,
        );
    };
    let org = org_by_index(sh, org_i);
    let Some(org) = org else {
        return (
            oauth_error("invalid_grant", "expired access/refresh token"),
            None,
        );
    };
    let (ip, fault_revoked) = {
        let st = lock(&org.state);
        (st.data.faults.ip_restricted, st.data.faults.refresh_revoked)
    };
    if revoked || fault_revoked {
        return (
            oauth_error("invalid_grant", "expired access/refresh token"),
            Some(org),
        );
    }
    if ip {
        return (oauth_error("invalid_grant", "ip restricted"), Some(org));
    }
    let at = issue_access(sh, &org, user, Some(rt));
    let body = token_body(sh, &org, user, &at, None, "refresh_token api");
    (Resp::json(200, body), Some(org))
}

fn user_active(org: &OrgInner, user: SfId) -> bool {
    let st = lock(&org.state);
    let Some(i) = Obj::User.field_idx("IsActive") else {
        return true;
    };
    st.data
        .find(Obj::User, user)
        .is_none_or(|(_, r)| matches!(r.get(i), Val::Bool(true)))
}

/// Revoke: 200 on success; 400 with a urlencoded `error=…` body otherwise (jsforce parses the
/// revoke error body as a query string).
fn revoke(sh: &Shared, req: &Req) -> (Resp, Option<Arc<OrgInner>>) {
    let mut p = params_of(req, true);
    if p.is_empty() {
        p = params_of(req, false);
    }
    let tok = p.get("token").cloned().unwrap_or_default();
    let mut auth = lock(&sh.auth);
    if let Some(s) = auth.access.get_mut(&tok) {
        let org = s.org;
        s.valid = false;
        drop(auth);
        return (Resp::empty(200), org_by_index(sh, org));
    }
    if let Some(g) = auth.refresh.get_mut(&tok) {
        g.revoked = true;
        let org = g.org;
        for s in auth
            .access
            .values_mut()
            .filter(|s| s.refresh.as_deref() == Some(tok.as_str()))
        {
            s.valid = false;
        }
        drop(auth);
        return (Resp::empty(200), org_by_index(sh, org));
    }
    let body = if tok.is_empty() {
        "error=unsupported_token_type&error_description=unsupported+token+type"
    } else {
        "error=invalid_token&error_description=invalid+token"
    };
    (
        Resp::text(400, body, "application/x-www-form-urlencoded"),
        None,
    )
}

fn token_of(req: &Req) -> Option<String> {
    req.bearer().or_else(|| req.param("oauth_token"))
}

fn bad_token() -> Resp {
    Resp::text(403, "Bad_OAuth_Token", "text/plain;charset=UTF-8")
}

fn user_fields(org: &OrgInner, user: SfId) -> Option<(String, String, String, String, bool, i64)> {
    let st = lock(&org.state);
    let (_, r) = st.data.find(Obj::User, user)?;
    let g = |f: &str| {
        Obj::User
            .field_idx(f)
            .and_then(|i| r.get(i).as_text().map(|s| s.to_string()))
            .unwrap_or_default()
    };
    let active = Obj::User
        .field_idx("IsActive")
        .is_some_and(|i| matches!(r.get(i), Val::Bool(true)));
    Some((
        g("Username"),
        g("Email"),
        g("FirstName"),
        g("LastName"),
        active,
        r.modstamp,
    ))
}

fn urls(org: &OrgInner, version: &str) -> J {
    let base = &org.instance_url;
    let mut u = J::obj();
    for (k, p) in [
        (
            "enterprise",
            format!("/services/Soap/c/{version}/{}", org.org_id),
        ),
        (
            "metadata",
            format!("/services/Soap/m/{version}/{}", org.org_id),
        ),
        (
            "partner",
            format!("/services/Soap/u/{version}/{}", org.org_id),
        ),
        ("rest", format!("/services/data/v{version}/")),
        ("sobjects", format!("/services/data/v{version}/sobjects/")),
        ("search", format!("/services/data/v{version}/search/")),
        ("query", format!("/services/data/v{version}/query/")),
        ("recent", format!("/services/data/v{version}/recent/")),
        ("profile", format!("/{}", org.admin)),
    ] {
        u.push(k, J::s(format!("{base}{p}")));
    }
    u.with("custom_domain", J::s(base))
}

fn identity(sh: &Shared, req: &Req, path: &str) -> (Resp, Option<Arc<OrgInner>>) {
    let parts: Vec<&str> = path.trim_start_matches("/id/").split('/').collect();
    let (Some(org_id), Some(user_id)) = (
        parts.first().and_then(|s| SfId::parse(s)),
        parts.get(1).and_then(|s| SfId::parse(s)),
    ) else {
        return (bad_token(), None);
    };
    let Some((org_i, _)) = token_of(req).and_then(|t| session(sh, &t)) else {
        return (bad_token(), None);
    };
    let Some(org) = org_by_index(sh, org_i).filter(|o| o.org_id == org_id) else {
        return (bad_token(), None);
    };
    let Some((username, email, first, last, active, modstamp)) = user_fields(&org, user_id) else {
        return (
            Resp::text(404, "Not Found", "text/plain;charset=UTF-8"),
            Some(org),
        );
    };
    let version = match req.param("version").as_deref() {
        Some("latest") => sh
            .opts
            .api_versions
            .last()
            .cloned()
            .unwrap_or_else(|| "62.0".into()),
        Some(v) => v.to_string(),
        None => "{version}".to_string(),
    };
    let display = format!("{last} {first}").trim().to_string();
    let j = J::obj()
        .with(
            "id",
            J::s(format!("{}/id/{org_id}/{user_id}", sh.login_url)),
        )
        .with("asserted_user", J::Bool(true))
        .with("user_id", J::s(user_id.to_string()))
        .with("organization_id", J::s(org_id.to_string()))
        .with("username", J::s(username))
        .with("nick_name", J::s(email.split('@').next().unwrap_or("")))
        .with("display_name", J::s(display))
        .with("email", J::s(email))
        .with("email_verified", J::Bool(true))
        .with("first_name", J::s(first))
        .with("last_name", J::s(last))
        .with("timezone", J::s("Asia/Tokyo"))
        .with(
            "photos",
            J::obj().with("picture", J::Null).with("thumbnail", J::Null),
        )
        .with("mobile_phone", J::Null)
        .with(
            "status",
            J::obj().with("created_date", J::Null).with("body", J::Null),
        )
        .with("urls", urls(&org, &version))
        .with("active", J::Bool(active))
        .with("user_type", J::s("STANDARD"))
        .with("language", J::s("ja"))
        .with("locale", J::s("ja_JP"))
        .with("utcOffset", J::Int(32_400_000))
        .with("last_modified_date", J::s(fmt_dt(modstamp)));
    (Resp::json(200, j), Some(org))
}

fn userinfo(sh: &Shared, req: &Req) -> (Resp, Option<Arc<OrgInner>>) {
    let Some((org_i, user)) = token_of(req).and_then(|t| session(sh, &t)) else {
        return (bad_token(), None);
    };
    let Some(org) = org_by_index(sh, org_i) else {
        return (bad_token(), None);
    };
    let Some((username, email, first, last, active, modstamp)) = user_fields(&org, user) else {
        return (bad_token(), Some(org));
    };
    let latest = sh
        .opts
        .api_versions
        .last()
        .cloned()
        .unwrap_or_else(|| "62.0".into());
    let j = J::obj()
        .with(
            "sub",
            J::s(format!("{}/id/{}/{user}", sh.login_url, org.org_id)),
        )
        .with("user_id", J::s(user.to_string()))
        .with("organization_id", J::s(org.org_id.to_string()))
        .with("preferred_username", J::s(username))
        .with("nickname", J::s(email.split('@').next().unwrap_or("")))
        .with("name", J::s(format!("{last} {first}").trim()))
        .with("email", J::s(email))
        .with("email_verified", J::Bool(true))
        .with("given_name", J::s(first))
        .with("family_name", J::s(last))
        .with("zoneinfo", J::s("Asia/Tokyo"))
        .with("urls", urls(&org, &latest))
        .with("active", J::Bool(active))
        .with("user_type", J::s("STANDARD"))
        .with("language", J::s("ja"))
        .with("locale", J::s("ja_JP"))
        .with("utcOffset", J::Int(32_400_000))
        .with("updated_at", J::s(fmt_dt(modstamp)));
    (Resp::json(200, j), Some(org))
}

fn introspect(sh: &Shared, req: &Req) -> (Resp, Option<Arc<OrgInner>>) {
    let p = params_of(req, true);
    let tok = p.get("token").cloned().unwrap_or_default();
    let active =
        session(sh, &tok).is_some() || lock(&sh.auth).refresh.get(&tok).is_some_and(|g| !g.revoked);
    let mut j = J::obj().with("active", J::Bool(active));
    if active {
        j.push("client_id", J::s(&sh.client_id));
        j.push(
            "token_type",
            J::s(if session(sh, &tok).is_some() {
                "access_token"
            } else {
                "refresh_token"
            }),
        );
    }
    (Resp::json(200, j), None)
}
