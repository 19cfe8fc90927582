//! Listeners, shared state, and the glue between axum and the synchronous request handlers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::task::JoinHandle;

use crate::ids::{SfId, random_b62};
use crate::oauth::AuthState;
use crate::schema::Obj;
use crate::soql::Query;
use crate::store::{OrgData, Record, WriteCtx};
use crate::value::J;
use crate::{Origin, RecordedRequest, SimError, SimOptions, SimUser};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Shared {
    pub(crate) opts: SimOptions,
    pub(crate) login_url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) auto_consent: AtomicBool,
    pub(crate) orgs: Mutex<Vec<Arc<OrgInner>>>,
    pub(crate) auth: Mutex<AuthState>,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
}

pub(crate) struct Cursor {
    pub(crate) query: Query,
    pub(crate) rows: Vec<u32>,
    pub(crate) batch: usize,
}

pub(crate) struct OrgState {
    pub(crate) data: OrgData,
    pub(crate) api_used: u64,
    pub(crate) api_max: u64,
    pub(crate) cursors: HashMap<String, Cursor>,
    pub(crate) log: Vec<RecordedRequest>,
    pub(crate) page_cap: Option<usize>,
}

pub(crate) struct OrgInner {
    pub(crate) index: usize,
    pub(crate) org_id: SfId,
    pub(crate) name: String,
    pub(crate) instance_url: String,
    pub(crate) admin: SfId,
    pub(crate) state: Mutex<OrgState>,
}

/// A request, fully read.
pub(crate) struct Req {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Req {
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
    pub(crate) fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub(crate) fn bearer(&self) -> Option<String> {
        let h = self.header("authorization")?;
        let (scheme, tok) = h.split_once(' ')?;
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
            .then(|| tok.trim().to_string())
    }
}

pub(crate) enum RespBody {
    Empty,
    Json(J),
    Text(String, &'static str),
}

pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) body: RespBody,
    pub(crate) headers: Vec<(String, String)>,
}

pub(crate) const JSON_CT: &str = "application/json;charset=UTF-8";

impl Resp {
    pub(crate) fn json(status: u16, j: J) -> Resp {
        Resp {
            status,
            body: RespBody::Json(j),
            headers: Vec::new(),
        }
    }
    pub(crate) fn empty(status: u16) -> Resp {
        Resp {
            status,
            body: RespBody::Empty,
            headers: Vec::new(),
        }
    }
    pub(crate) fn text(status: u16, s: impl Into<String>, ct: &'static str) -> Resp {
        Resp {
            status,
            body: RespBody::Text(s.into(), ct),
            headers: Vec::new(),
        }
    }
    pub(crate) fn header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    /// The body as sent on the wire, with its content type.
    fn body_bytes(body: RespBody) -> (Vec<u8>, Option<&'static str>) {
        match body {
            RespBody::Empty => (Vec::new(), None),
            RespBody::Json(J::Raw(s)) => (s.into_bytes(), Some(JSON_CT)),
            RespBody::Json(j) => (j.to_json_string().into_bytes(), Some(JSON_CT)),
            RespBody::Text(s, ct) => (s.into_bytes(), Some(ct)),
        }
    }
    fn into_response(self) -> Response {
        let (bytes, ct) = Self::body_bytes(self.body);
        let mut resp = Response::new(Body::from(bytes));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        if let Some(ct) = ct {
            h.insert("content-type", HeaderValue::from_static(ct));
        }
        for (k, v) in self.headers {
            if let (Ok(name), Ok(val)) = (
                axum::http::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                h.append(name, val);
            }
        }
        resp
    }
}

async fn read(req: Request) -> Req {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    Req {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    }
}

fn record(org: &OrgInner, req: &Req, status: u16, counted: bool, origin: Origin) {
    let mut st = lock(&org.state);
    let at = chrono::DateTime::from_timestamp_millis(st.data.now()).unwrap_or_default();
    st.log.push(RecordedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        api_counted: counted,
        status,
        origin,
        at,
    });
}

async fn login_handler(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let req = read(req).await;
    let (resp, org) = crate::oauth::handle(&sh, &req, None);
    if let Some(org) = org {
        record(&org, &req, resp.status, false, Origin::Login);
    }
    resp.into_response()
}

async fn instance_handler(
    State((sh, org)): State<(Arc<Shared>, Arc<OrgInner>)>,
    req: Request,
) -> Response {
    let req = read(req).await;
    let latency = lock(&org.state).data.faults.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (resp, counted) = crate::api::handle(&sh, &org, &req);
    record(&org, &req, resp.status, counted, Origin::Instance);
    resp.into_response()
}

/// One request to an org's instance origin without a socket: the same handler, request log and
/// body serialization as [`instance_handler`] (no latency fault). Returns status and body bytes.
pub(crate) fn serve_in_process(
    sh: &Arc<Shared>,
    org: &Arc<OrgInner>,
    method: &str,
    path_and_query: &str,
    access_token: &str,
) -> (u16, Vec<u8>) {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (path_and_query, None),
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {access_token}")) {
        headers.insert("authorization", v);
    }
    let req = Req {
        method: method.to_string(),
        path: path.to_string(),
        query,
        headers,
        body: Vec::new(),
    };
    let (resp, counted) = crate::api::handle(sh, org, &req);
    record(org, &req, resp.status, counted, Origin::Instance);
    (resp.status, Resp::body_bytes(resp.body).0)
}

fn bind(rt: &tokio::runtime::Handle, port: u16) -> std::io::Result<(tokio::net::TcpListener, u16)> {
    let l = std::net::TcpListener::bind(("127.0.0.1", port))?;
    l.set_nonblocking(true)?;
    let port = l.local_addr()?.port();
    let _guard = rt.enter();
    Ok((tokio::net::TcpListener::from_std(l)?, port))
}

pub(crate) async fn start(opts: SimOptions) -> Result<Arc<Shared>, SimError> {
    let rt = tokio::runtime::Handle::current();
    let (listener, port) = bind(&rt, opts.port)?;
    let shared = Arc::new(Shared {
        login_url: format!("http://127.0.0.1:{port}"),
        client_id: opts
            .client_id
            .clone()
            .unwrap_or_else(|| format!("3MVG9{}", random_b62(80))),
        client_secret: opts.client_secret.clone().unwrap_or_else(|| random_b62(64)),
        auto_consent: AtomicBool::new(opts.auto_consent),
        opts,
        orgs: Mutex::new(Vec::new()),
        auth: Mutex::new(AuthState::default()),
        rt: rt.clone(),
        tasks: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .fallback(login_handler)
        .with_state(shared.clone());
    let task = rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    lock(&shared.tasks).push(task);
    Ok(shared)
}

pub(crate) fn insert_user(data: &mut OrgData, u: &SimUser) -> SfId {
    let mut map = serde_json::Map::new();
    if let Some(id) = &u.id {
        map.insert("Id".into(), id.clone().into());
    }
    map.insert("Username".into(), u.email.clone().into());
    map.insert("Email".into(), u.email.clone().into());
    map.insert("FirstName".into(), u.first_name.clone().into());
    map.insert("LastName".into(), u.last_name.clone().into());
    map.insert("IsActive".into(), u.active.into());
    let alias: String = u.email.chars().take_while(|c| *c != '@').take(8).collect();
    map.insert("Alias".into(), alias.into());
    let placeholder = SfId::make("005", 0, 0);
    let ctx = WriteCtx {
        user: placeholder,
        seeding: true,
        allow_duplicates: true,
    };
    match data.create(Obj::User, &map, ctx) {
        Ok(id) => {
            // A caller-chosen id replaces the generated one.
            if let Some(want) = u.id.as_deref().and_then(SfId::parse) {
                let t = &mut data.tables[Obj::User.index()];
                if let Some(idx) = t.by_id.remove(&id) {
                    t.recs[idx as usize].id = want;
                    t.by_id.insert(want, idx);
                }
                return want;
            }
            id
        }
        Err(_) => placeholder,
    }
}

pub(crate) fn add_org(sh: &Arc<Shared>, spec: crate::OrgSpec) -> Arc<OrgInner> {
    let (listener, port) = match bind(&sh.rt, spec.port) {
        Ok(x) => x,
        Err(e) => panic!("sf-sim: cannot bind the org's instance origin: {e}"),
    };
    let mut orgs = lock(&sh.orgs);
    let index = orgs.len();
    let pod = index as u32 + 1;
    let mut data = OrgData::new(pod);
    let users = if spec.users.is_empty() {
        vec![SimUser::new(
            &format!("admin{pod}@example.co.jp"),
            "太郎",
            "管理者",
        )]
    } else {
        spec.users.clone()
    };
    let mut admin = None;
    for u in &users {
        let id = insert_user(&mut data, u);
        admin.get_or_insert(id);
    }
    let admin = admin.unwrap_or_else(|| SfId::make("005", pod, 1));
    // Users own and created themselves: point their audit fields at the admin.
    for i in ["OwnerId", "CreatedById", "LastModifiedById"]
        .iter()
        .filter_map(|f| Obj::User.field_idx(f))
    {
        for r in &mut data.tables[Obj::User.index()].recs {
            r.set(i, crate::value::Val::Id(admin));
        }
    }
    let inner = Arc::new(OrgInner {
        index,
        org_id: SfId::make("00D", pod, 1),
        name: spec.name,
        instance_url: format!("http://127.0.0.1:{port}"),
        admin,
        state: Mutex::new(OrgState {
            data,
            api_used: 0,
            api_max: spec.daily_api_limit,
            cursors: HashMap::new(),
            log: Vec::new(),
            page_cap: None,
        }),
    });
    orgs.push(inner.clone());
    drop(orgs);
    let app = Router::new()
        .fallback(instance_handler)
        .with_state((sh.clone(), inner.clone()));
    let task = sh.rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    lock(&sh.tasks).push(task);
    inner
}

/// The admin's view of a record (hidden fields included), with the latest version's attributes.
pub(crate) fn full_record(data: &OrgData, o: Obj, r: &Record) -> J {
    let mut out = J::obj().with("attributes", OrgData::attributes(o, r.id, "65.0"));
    for (i, fd) in o.fields().iter().enumerate() {
        out.push(fd.name, data.field_j(o, r, i as u16));
    }
    out
}

pub(crate) fn auto_consent(sh: &Shared) -> bool {
    sh.auto_consent.load(Ordering::SeqCst)
}
