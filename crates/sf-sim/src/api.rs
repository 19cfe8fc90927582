//! REST under `/services/data/`: the per-request pipeline (auth → server-error fault → IP and API
//! switches → daily limit → dispatch) and every resource handler.

use std::sync::Arc;

use serde_json::Value;

use crate::ids::{SfId, random_b62};
use crate::oauth;
use crate::schema::{ALL_OBJS, FType, Kind, Obj};
use crate::server::{Cursor, OrgInner, OrgState, Req, Resp, RespBody, Shared, lock};
use crate::soql;
use crate::sosl;
use crate::store::{ApiError, WriteCtx};
use crate::value::{DAY_MS, J, fmt_dt, parse_dt, write_int, write_str_parts};

fn err_resp(e: &ApiError) -> Resp {
    Resp::json(e.status, J::Arr(vec![e.to_j()]))
}

fn version_label(v: &str) -> String {
    let major: i64 = v
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(20);
    let idx = (major - 20).max(0);
    let season = ["Winter", "Spring", "Summer"][(idx % 3) as usize];
    format!("{season} '{:02}", 11 + idx / 3)
}

/// Handle a request on an org's instance origin. Returns the response and whether it was
/// counted against the daily API allocation.
pub(crate) fn handle(sh: &Arc<Shared>, org: &Arc<OrgInner>, req: &Req) -> (Resp, bool) {
    if req.path.starts_with("/services/oauth2/") || req.path.starts_with("/id/") {
        return (oauth::handle(sh, req, Some(org)).0, false);
    }
    let path = req.path.as_str();
    if path == "/services/data" || path == "/services/data/" {
        let list = sh
            .opts
            .api_versions
            .iter()
            .map(|v| {
                J::obj()
                    .with("label", J::s(version_label(v)))
                    .with("url", J::s(format!("/services/data/v{v}")))
                    .with("version", J::s(v))
            })
            .collect();
        return (Resp::json(200, J::Arr(list)), false);
    }
    let Some(rest) = path.strip_prefix("/services/data/") else {
        return (err_resp(&ApiError::not_found()), false);
    };
    let mut segs: Vec<&str> = rest.split('/').collect();
    while segs.last() == Some(&"") {
        segs.pop();
    }
    let vseg = segs.first().copied().unwrap_or("");
    let version = if vseg == "latest" {
        sh.opts.api_versions.last().cloned().unwrap_or_default()
    } else {
        vseg.strip_prefix('v').unwrap_or("").to_string()
    };
    if !sh.opts.api_versions.contains(&version) {
        return (err_resp(&ApiError::not_found()), false);
    }
    // Authentication.
    let session = req
        .bearer()
        .and_then(|t| oauth::session(sh, &t))
        .filter(|(o, _)| *o == org.index);
    let Some((_, user)) = session else {
        return (
            err_resp(&ApiError::new(
                401,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            )),
            false,
        );
    };
    let mut st = lock(&org.state);
    if st.data.faults.server_error > 0 {
        st.data.faults.server_error -= 1;
        let html = "<html><head><title>Service Unavailable</title></head><body><h1>Internal Server Error</h1>\
<p>An unexpected error occurred. Please try again later.</p></body></html>";
        return (Resp::text(500, html, "text/html;charset=UTF-8"), false);
    }
    if st.data.faults.ip_restricted {
        return (
            err_resp(&ApiError::new(
                401,
                "INVALID_SESSION_ID",
                "This session is not valid for use with the REST API",
            )),
            false,
        );
    }
    if st.data.faults.api_disabled {
        return (
            err_resp(&ApiError::new(
                403,
                "API_DISABLED_FOR_ORG",
                "The REST API is not enabled for this Organization.",
            )),
            false,
        );
    }
    let limit_header = |st: &OrgState| format!("api-usage={}/{}", st.api_used, st.api_max);
    if st.data.faults.limit_exceeded || st.api_used >= st.api_max {
        let r = err_resp(&ApiError::new(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        ));
        return (r.header("Sforce-Limit-Info", limit_header(&st)), false);
    }
    st.api_used += 1;
    let ctx = Ctx {
        version,
        user,
        login_url: sh.login_url.clone(),
        org_id: org.org_id,
        allow_dup: dup_header_allows(req.header("sforce-duplicate-rule-header")),
        batch: req.header("sforce-query-options").and_then(parse_batch),
    };
    let body = req.body.as_slice();
    let resp = dispatch(
        &mut st,
        &ctx,
        &req.method,
        &segs[1..],
        req.query.as_deref().unwrap_or(""),
        body,
    );
    let hdr = limit_header(&st);
    (resp.header("Sforce-Limit-Info", hdr), true)
}

fn dup_header_allows(h: Option<&str>) -> bool {
    h.is_some_and(|h| {
        h.split(';').any(|kv| {
            let mut it = kv.splitn(2, '=');
            let k = it.next().unwrap_or("").trim();
            let v = it.next().unwrap_or("").trim();
            k.eq_ignore_ascii_case("allowSave") && v.eq_ignore_ascii_case("true")
        })
    })
}

fn parse_batch(h: &str) -> Option<usize> {
    h.split([';', ',']).find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("batchSize")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

pub(crate) struct Ctx {
    version: String,
    user: SfId,
    login_url: String,
    org_id: SfId,
    allow_dup: bool,
    batch: Option<usize>,
}

fn qparam(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn method_not_allowed(method: &str, allowed: &str) -> Resp {
    err_resp(&ApiError::new(
        405,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    ))
}

fn parse_json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            400,
            "JSON_PARSER_ERROR",
            format!(
                "Unexpected character: was expecting a JSON value at [line:{}, column:{}]",
                e.line(),
                e.column()
            ),
        )
    })
}

fn sobject_type(name: &str) -> Result<Obj, ApiError> {
    Obj::parse(name)
        .ok_or_else(|| ApiError::new(404, "NOT_FOUND", "The requested resource does not exist"))
}

/// Dispatch a REST call (also used for composite subrequests, which are not counted again).
pub(crate) fn dispatch(
    st: &mut OrgState,
    ctx: &Ctx,
    method: &str,
    segs: &[&str],
    query: &str,
    body: &[u8],
) -> Resp {
    let r = match (method, segs) {
        ("GET", []) => Ok(resources(ctx)),
        (m, []) => Ok(method_not_allowed(m, "GET,HEAD")),
        ("GET", ["limits"]) => Ok(limits(st)),
        ("GET", [q @ ("query" | "queryAll")]) => query_start(st, ctx, query, *q == "queryAll"),
        ("GET", ["query" | "queryAll", locator]) => query_more(st, ctx, locator),
        ("GET", ["search"]) => search(st, ctx, query),
        ("GET", ["parameterizedSearch"]) => parameterized_search(st, ctx, query),
        ("GET", ["sobjects"]) => Ok(describe_global(ctx)),
        ("GET", ["sobjects", t]) => sobject_type(t).map(|o| sobject_info(ctx, o)),
        ("POST", ["sobjects", t]) => sobject_type(t).and_then(|o| create_one(st, ctx, o, body)),
        ("GET", ["sobjects", t, "describe"]) => sobject_type(t).map(|o| describe(st, ctx, o)),
        ("GET", ["sobjects", t, "updated"]) => sobject_type(t).and_then(|o| updated(st, o, query)),
        ("GET", ["sobjects", t, "deleted"]) => sobject_type(t).and_then(|o| deleted(st, o, query)),
        ("GET", ["sobjects", t, id]) => {
            sobject_type(t).and_then(|o| get_one(st, ctx, o, id, query))
        }
        ("PATCH", ["sobjects", t, id]) => {
            sobject_type(t).and_then(|o| update_one(st, ctx, o, id, body))
        }
        ("DELETE", ["sobjects", t, id]) => sobject_type(t).and_then(|o| delete_one(st, o, id)),
        (m, ["sobjects", _, _]) => Ok(method_not_allowed(m, "GET,PATCH,DELETE,HEAD")),
        ("POST", ["composite"]) => composite(st, ctx, body),
        ("POST", ["composite", "sobjects"]) => collections_write(st, ctx, body, true),
        ("PATCH", ["composite", "sobjects"]) => collections_write(st, ctx, body, false),
        ("DELETE", ["composite", "sobjects"]) => collections_delete(st, query),
        _ => Err(ApiError::not_found()),
    };
    r.unwrap_or_else(|e| err_resp(&e))
}

fn resources(ctx: &Ctx) -> Resp {
    let v = &ctx.version;
    let mut j = J::obj();
    for k in [
        "tooling",
        "metadata",
        "eclair",
        "folders",
        "prechatForms",
        "jsonxform",
        "chatter",
        "tabs",
        "appMenu",
        "quickActions",
        "queryAll",
        "commerce",
        "wave",
        "analytics",
        "search",
        "identity",
        "composite",
        "parameterizedSearch",
        "theme",
        "nouns",
        "recent",
        "licensing",
        "limits",
        "process",
        "connect",
        "dedupe",
        "async-queries",
        "query",
        "emailConnect",
        "compactLayouts",
        "knowledgeManagement",
        "sobjects",
        "actions",
        "support",
    ] {
        let val = if k == "identity" {
            format!("{}/id/{}/{}", ctx.login_url, ctx.org_id, ctx.user)
        } else {
            format!("/services/data/v{v}/{k}")
        };
        j.push(k, J::s(val));
    }
    Resp::json(200, j)
}

fn limits(st: &OrgState) -> Resp {
    let e = |max: i64, rem: i64| {
        J::obj()
            .with("Max", J::Int(max))
            .with("Remaining", J::Int(rem))
    };
    let max = st.api_max as i64;
    let j = J::obj()
        .with("ConcurrentAsyncGetReportInstances", e(200, 200))
        .with("ConcurrentSyncReportRuns", e(20, 20))
        .with(
            "DailyApiRequests",
            e(max, (max - st.api_used as i64).max(0)),
        )
        .with("DailyAsyncApexExecutions", e(250_000, 250_000))
        .with("DailyBulkApiBatches", e(15_000, 15_000))
        .with("DailyBulkV2QueryFileStorageMB", e(976_562, 976_562))
        .with("DailyBulkV2QueryJobs", e(10_000, 10_000))
        .with("DailyDurableStreamingApiEvents", e(10_000, 10_000))
        .with("DataStorageMB", e(5, 5))
        .with("FileStorageMB", e(20, 20))
        .with("HourlyTimeBasedWorkflow", e(50, 50))
        .with("SingleEmail", e(15, 15));
    Resp::json(200, j)
}

// ----- query ----------------------------------------------------------------------------------

fn page_size(st: &OrgState, ctx: &Ctx) -> usize {
    let b = ctx.batch.map_or(2000, |b| b.clamp(200, 2000));
    st.page_cap.map_or(b, |c| b.min(c.max(1)))
}

fn query_start(st: &mut OrgState, ctx: &Ctx, query: &str, all: bool) -> Result<Resp, ApiError> {
    let Some(q) = qparam(query, "q").filter(|q| !q.trim().is_empty()) else {
        return Err(ApiError::new(
            400,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        ));
    };
    let parsed = soql::parse(&q, &st.data)?;
    let rows = soql::execute(&st.data, &parsed, all, &|_| true);
    if parsed.select.is_none() {
        let j = J::obj()
            .with("totalSize", J::Int(rows.len() as i64))
            .with("done", J::Bool(true))
            .with("records", J::Arr(vec![]));
        return Ok(Resp::json(200, j));
    }
    let batch = page_size(st, ctx);
    let cursor = Cursor {
        query: parsed,
        rows,
        batch,
    };
    let locator = format!("01g{}", random_b62(15));
    let resp = page(st, ctx, &cursor, &locator, 0);
    if cursor.rows.len() > batch {
        st.cursors.insert(locator, cursor);
    }
    Ok(resp)
}

fn page(st: &OrgState, ctx: &Ctx, c: &Cursor, locator: &str, offset: usize) -> Resp {
    let total = c.rows.len();
    let end = (offset + c.batch).min(total);
    let rows = &c.rows[offset.min(end)..end];
    let plan = soql::Plan::new(c.query.select.as_deref().unwrap_or(&[]), &ctx.version);
    let table = st.data.table(c.query.obj);
    // Written straight to text (no JSON tree per record), in the order Salesforce sends:
    // totalSize, done, nextRecordsUrl, records.
    let mut out = String::with_capacity(256);
    out.push_str("{\"totalSize\":");
    write_int(total as i64, &mut out);
    out.push_str(if end >= total {
        ",\"done\":true"
    } else {
        ",\"done\":false"
    });
    if end < total {
        out.push_str(",\"nextRecordsUrl\":");
        let end = end.to_string();
        let url = [
            "/services/data/v",
            &ctx.version,
            "/query/",
            locator,
            "-",
            &end,
        ];
        write_str_parts(&url, &mut out);
    }
    out.push_str(",\"records\":[");
    for (n, &i) in rows.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let before = out.len();
        let rec = &table.recs[i as usize];
        soql::render_into(&st.data, c.query.obj, rec, &plan, &mut out);
        if n == 0 {
            // Room for the rest at the first record's size, with slack, so the page is not
            // copied over and over as it grows.
            let first = out.len() - before + 1;
            out.reserve(first.saturating_mul(rows.len() - 1).saturating_mul(5) / 4);
        }
    }
    out.push_str("]}");
    Resp::json(200, J::Raw(out))
}

fn query_more(st: &mut OrgState, ctx: &Ctx, locator: &str) -> Result<Resp, ApiError> {
    let bad = || ApiError::new(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    let (id, off) = locator.rsplit_once('-').ok_or_else(bad)?;
    let off: usize = off.parse().map_err(|_| bad())?;
    let cursor = st.cursors.get(id).ok_or_else(bad)?;
    if off > cursor.rows.len() {
        return Err(bad());
    }
    Ok(page(st, ctx, cursor, id, off))
}

fn search(st: &OrgState, ctx: &Ctx, query: &str) -> Result<Resp, ApiError> {
    let Some(q) = qparam(query, "q") else {
        return Err(ApiError::new(
            400,
            "MALFORMED_SEARCH",
            "No search term found. The search term must be enclosed in braces.",
        ));
    };
    let recs = sosl::search(&st.data, &q, &ctx.version)?;
    let major: f64 = ctx.version.parse().unwrap_or(60.0);
    Ok(if major >= 36.0 {
        Resp::json(200, J::obj().with("searchRecords", J::Arr(recs)))
    } else {
        Resp::json(200, J::Arr(recs))
    })
}

/// Minimal `GET parameterizedSearch?q=…&sobject=Lead&sobject=Contact&in=PHONE&fields=Id,Phone
/// [&Lead.limit=n][&overallLimit=n]`, translated to SOSL (SOSL syntax in `q` is escaped).
fn parameterized_search(st: &OrgState, ctx: &Ctx, query: &str) -> Result<Resp, ApiError> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.clone())
    };
    let Some(q) = get("q").filter(|q| !q.trim().is_empty()) else {
        return Err(ApiError::new(
            400,
            "MISSING_ARGUMENT",
            "missing required parameter: q",
        ));
    };
    let mut escaped = String::new();
    for c in q.chars() {
        if "?&|!{}[]()^~*:\\\"'+-".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    let scope = get("in")
        .unwrap_or_else(|| "ALL".into())
        .to_ascii_uppercase();
    let fields = get("fields").unwrap_or_else(|| "Id".into());
    let mut objs: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "sobject")
        .map(|(_, v)| v.clone())
        .collect();
    if objs.is_empty() {
        objs = vec!["Account".into(), "Contact".into(), "Lead".into()];
    }
    let returning: Vec<String> = objs
        .iter()
        .map(|o| match get(&format!("{o}.limit")) {
            Some(l) => format!("{o}({fields} LIMIT {l})"),
            None => format!("{o}({fields})"),
        })
        .collect();
    let mut sosl = format!(
        "FIND {{{escaped}}} IN {scope} FIELDS RETURNING {}",
        returning.join(", ")
    );
    if let Some(l) = get("overallLimit") {
        sosl.push_str(&format!(" LIMIT {l}"));
    }
    let recs = sosl::search(&st.data, &sosl, &ctx.version)?;
    Ok(Resp::json(
        200,
        J::obj().with("searchRecords", J::Arr(recs)),
    ))
}

// ----- describe -------------------------------------------------------------------------------

fn obj_urls(ctx: &Ctx, o: Obj) -> J {
    let b = format!("/services/data/v{}/sobjects/{}", ctx.version, o.name());
    J::obj()
        .with("rowTemplate", J::s(format!("{b}/{{ID}}")))
        .with(
            "defaultValues",
            J::s(format!("{b}/defaultValues?recordTypeId&fields")),
        )
        .with("describe", J::s(format!("{b}/describe")))
        .with("sobject", J::s(b))
}

fn obj_summary(ctx: &Ctx, o: Obj) -> J {
    let (label, plural) = o.label();
    J::obj()
        .with("activateable", J::Bool(false))
        .with("createable", J::Bool(true))
        .with("custom", J::Bool(false))
        .with("customSetting", J::Bool(false))
        .with("deletable", J::Bool(o != Obj::User))
        .with("deprecatedAndHidden", J::Bool(false))
        .with("feedEnabled", J::Bool(true))
        .with("keyPrefix", J::s(o.prefix()))
        .with("label", J::s(label))
        .with("labelPlural", J::s(plural))
        .with("layoutable", J::Bool(true))
        .with(
            "mergeable",
            J::Bool(matches!(o, Obj::Lead | Obj::Contact | Obj::Account)),
        )
        .with("name", J::s(o.name()))
        .with("queryable", J::Bool(true))
        .with("retrieveable", J::Bool(true))
        .with("searchable", J::Bool(o != Obj::Task))
        .with("triggerable", J::Bool(true))
        .with("undeletable", J::Bool(o != Obj::User))
        .with("updateable", J::Bool(true))
        .with("urls", obj_urls(ctx, o))
}

fn describe_global(ctx: &Ctx) -> Resp {
    let j = J::obj()
        .with("encoding", J::s("UTF-8"))
        .with("maxBatchSize", J::Int(200))
        .with(
            "sobjects",
            J::Arr(ALL_OBJS.iter().map(|o| obj_summary(ctx, *o)).collect()),
        );
    Resp::json(200, j)
}

fn sobject_info(ctx: &Ctx, o: Obj) -> Resp {
    Resp::json(
        200,
        J::obj()
            .with("objectDescribe", obj_summary(ctx, o))
            .with("recentItems", J::Arr(vec![])),
    )
}

fn soap_type(t: FType) -> &'static str {
    match t {
        FType::Id | FType::Reference => "tns:ID",
        FType::Boolean => "xsd:boolean",
        FType::DateTime => "xsd:dateTime",
        FType::Date => "xsd:date",
        FType::Int => "xsd:int",
        FType::Double => "xsd:double",
        FType::Address => "urn:address",
        _ => "xsd:string",
    }
}

fn describe(st: &OrgState, ctx: &Ctx, o: Obj) -> Resp {
    let mut fields = Vec::new();
    for (i, fd) in o.fields().iter().enumerate() {
        if st.data.is_hidden(o, i as u16) {
            continue;
        }
        let picks = fd
            .picklist
            .iter()
            .map(|v| {
                J::obj()
                    .with("active", J::Bool(true))
                    .with("defaultValue", J::Bool(fd.default == Some(*v)))
                    .with("label", J::s(*v))
                    .with("validFor", J::Null)
                    .with("value", J::s(*v))
            })
            .collect();
        let calculated = matches!(
            fd.kind,
            Kind::Name | Kind::TaskIsClosed | Kind::TaskAccountId
        );
        fields.push(
            J::obj()
                .with("autoNumber", J::Bool(false))
                .with("byteLength", J::Int(i64::from(fd.len) * 3))
                .with("calculated", J::Bool(calculated))
                .with("compoundFieldName", J::Null)
                .with("createable", J::Bool(fd.create))
                .with("custom", J::Bool(false))
                .with("defaultValue", J::Null)
                .with(
                    "defaultedOnCreate",
                    J::Bool(
                        fd.default.is_some() || fd.name == "OwnerId" || fd.kind != Kind::Stored,
                    ),
                )
                .with("filterable", J::Bool(fd.ty != FType::Address))
                .with(
                    "idLookup",
                    J::Bool(fd.ty == FType::Id || (fd.name == "Email")),
                )
                .with("label", J::s(fd.label))
                .with(
                    "length",
                    J::Int(i64::from(
                        if fd.ty.is_text() || fd.ty == FType::Id || fd.ty == FType::Reference {
                            fd.len
                        } else {
                            0
                        },
                    )),
                )
                .with("name", J::s(fd.name))
                .with("nameField", J::Bool(fd.name == "Name"))
                .with("nillable", J::Bool(fd.nillable))
                .with("picklistValues", J::Arr(picks))
                .with(
                    "referenceTo",
                    J::Arr(fd.refs.iter().map(|r| J::s(*r)).collect()),
                )
                .with("relationshipName", fd.rel.map_or(J::Null, J::s))
                .with("soapType", J::s(soap_type(fd.ty)))
                .with(
                    "sortable",
                    J::Bool(!matches!(fd.ty, FType::Address | FType::Textarea)),
                )
                .with("type", J::s(fd.ty.api_name()))
                .with("unique", J::Bool(false))
                .with("updateable", J::Bool(fd.update)),
        );
    }
    let mut j = obj_summary(ctx, o);
    if let J::Obj(m) = &mut j {
        let pos = m
            .iter()
            .position(|(k, _)| k == "feedEnabled")
            .map_or(m.len(), |p| p + 1);
        m.insert(pos, ("fields".into(), J::Arr(fields)));
    }
    Resp::json(200, j)
}

// ----- single-record writes -------------------------------------------------------------------

fn write_ctx(ctx: &Ctx) -> WriteCtx {
    WriteCtx {
        user: ctx.user,
        seeding: false,
        allow_duplicates: ctx.allow_dup,
    }
}

fn save_ok(id: SfId) -> J {
    J::obj()
        .with("id", J::s(id.to_string()))
        .with("success", J::Bool(true))
        .with("errors", J::Arr(vec![]))
}

fn create_one(st: &mut OrgState, ctx: &Ctx, o: Obj, body: &[u8]) -> Result<Resp, ApiError> {
    let v = parse_json_body(body)?;
    let Value::Object(map) = v else {
        return Err(ApiError::new(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of sobject from START_ARRAY value",
        ));
    };
    st.data.consume_lock_fault(None)?;
    let id = st.data.create(o, &map, write_ctx(ctx)).map_err(|mut e| {
        if let Some(d) = &mut e.duplicate {
            d.replace_version(&ctx.version);
        }
        e
    })?;
    let loc = format!("/services/data/v{}/sobjects/{}/{id}", ctx.version, o.name());
    Ok(Resp::json(201, save_ok(id)).header("Location", loc))
}

fn parse_id(o: Obj, id: &str) -> Result<SfId, ApiError> {
    SfId::parse(id)
        .filter(|i| i.prefix() == o.prefix())
        .ok_or_else(|| {
            ApiError::new(
                404,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {id}"),
            )
        })
}

fn get_one(st: &OrgState, ctx: &Ctx, o: Obj, id: &str, query: &str) -> Result<Resp, ApiError> {
    let id = parse_id(o, id)?;
    let idx = st.data.live_index(o, id)?;
    let only = match qparam(query, "fields") {
        Some(f) => {
            let mut v = Vec::new();
            for name in f.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match o.field_idx(name).filter(|i| !st.data.is_hidden(o, *i)) {
                    Some(i) => v.push(i),
                    None => {
                        return Err(ApiError::new(
                            400,
                            "INVALID_FIELD",
                            format!("No such column '{name}' on sobject of type {}", o.name()),
                        ));
                    }
                }
            }
            Some(v)
        }
        None => None,
    };
    let rec = &st.data.table(o).recs[idx as usize];
    Ok(Resp::json(
        200,
        st.data.record_j(o, rec, &ctx.version, only.as_deref()),
    ))
}

fn update_one(
    st: &mut OrgState,
    ctx: &Ctx,
    o: Obj,
    id: &str,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let id = parse_id(o, id)?;
    let v = parse_json_body(body)?;
    let Value::Object(map) = v else {
        return Err(ApiError::new(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of sobject from START_ARRAY value",
        ));
    };
    st.data.live_index(o, id)?;
    st.data.consume_lock_fault(Some(id))?;
    st.data.update(o, id, &map, write_ctx(ctx))?;
    Ok(Resp::empty(204))
}

fn delete_one(st: &mut OrgState, o: Obj, id: &str) -> Result<Resp, ApiError> {
    let id = parse_id(o, id)?;
    st.data.live_index(o, id)?;
    st.data.consume_lock_fault(Some(id))?;
    st.data.delete(o, id)?;
    Ok(Resp::empty(204))
}

// ----- replication ----------------------------------------------------------------------------

fn window(st: &OrgState, query: &str, max_days: i64) -> Result<(i64, i64, i64), ApiError> {
    let bad = |m: &str| ApiError::new(400, "INVALID_REPLICATION_DATE", m);
    let start = qparam(query, "start").and_then(|s| parse_dt(&s));
    let end = qparam(query, "end").and_then(|s| parse_dt(&s));
    let (Some(start), Some(end)) = (start, end) else {
        return Err(ApiError::new(
            400,
            "MALFORMED_QUERY",
            "start and end date parameters are required and must be ISO 8601 datetimes",
        ));
    };
    let minute = 60_000;
    let (start, end) = (
        start.div_euclid(minute) * minute,
        end.div_euclid(minute) * minute,
    );
    let now = st.data.now();
    if end <= start {
        return Err(bad("EndDate must chronologically follow the StartDate"));
    }
    if start < now - max_days * DAY_MS {
        return Err(bad(&format!(
            "startDate cannot be more than {max_days} days ago"
        )));
    }
    let latest = end.min(now.div_euclid(minute) * minute);
    Ok((start, end, latest))
}

fn updated(st: &OrgState, o: Obj, query: &str) -> Result<Resp, ApiError> {
    let (start, _end, latest) = window(st, query, 30)?;
    let ids = st
        .data
        .table(o)
        .recs
        .iter()
        .filter(|r| r.is_live() && r.modstamp >= start && r.modstamp < latest)
        .map(|r| J::s(r.id.to_string()))
        .collect();
    Ok(Resp::json(
        200,
        J::obj()
            .with("ids", J::Arr(ids))
            .with("latestDateCovered", J::s(fmt_dt(latest))),
    ))
}

fn deleted(st: &OrgState, o: Obj, query: &str) -> Result<Resp, ApiError> {
    let (start, end, latest) = window(st, query, 15)?;
    let minute = 60_000;
    let recs = st
        .data
        .delete_log
        .iter()
        .filter(|(lo, _, at)| *lo == o && *at >= start && *at < end)
        .filter(|(_, id, _)| {
            st.data
                .find(o, *id)
                .is_some_and(|(_, r)| r.deleted_at.is_some())
        })
        .map(|(_, id, at)| {
            J::obj()
                .with("id", J::s(id.to_string()))
                .with("deletedDate", J::s(fmt_dt(*at)))
        })
        .collect();
    let earliest = (st.data.now() - 15 * DAY_MS).div_euclid(minute) * minute;
    let j = J::obj()
        .with("deletedRecords", J::Arr(recs))
        .with("earliestDateAvailable", J::s(fmt_dt(earliest)))
        .with("latestDateCovered", J::s(fmt_dt(latest)));
    Ok(Resp::json(200, j))
}

// ----- sObject Collections ----------------------------------------------------------------------

const ROLLED_BACK: &str = "Record rolled back because not all records were valid and the request was using AllOrNone header";

fn collections_write(
    st: &mut OrgState,
    ctx: &Ctx,
    body: &[u8],
    create: bool,
) -> Result<Resp, ApiError> {
    let v = parse_json_body(body)?;
    let all_or_none = v.get("allOrNone").and_then(Value::as_bool).unwrap_or(false);
    let Some(records) = v.get("records").and_then(Value::as_array) else {
        return Err(ApiError::new(400, "INVALID_FIELD", "records is required"));
    };
    if records.len() > 200 {
        return Err(ApiError::new(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    if all_or_none {
        st.data.begin();
    }
    let wctx = write_ctx(ctx);
    let mut results: Vec<(Option<SfId>, Result<SfId, ApiError>)> = Vec::new();
    for rec in records {
        let Some(map) = rec.as_object() else {
            results.push((
                None,
                Err(ApiError::rec(
                    "JSON_PARSER_ERROR",
                    "record must be an object",
                    &[],
                )),
            ));
            continue;
        };
        let ty = map
            .get("attributes")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str);
        let Some(o) = ty.and_then(Obj::parse) else {
            results.push((
                None,
                Err(ApiError::rec(
                    "INVALID_TYPE",
                    "Must specify a valid type in attributes for each record",
                    &[],
                )),
            ));
            continue;
        };
        let mut fields = map.clone();
        fields.remove("attributes");
        if create {
            let r = st
                .data
                .consume_lock_fault(None)
                .and_then(|_| st.data.create(o, &fields, wctx));
            results.push((None, r));
        } else {
            let id_str = fields.remove("id").or_else(|| fields.remove("Id"));
            let id = id_str
                .as_ref()
                .and_then(Value::as_str)
                .and_then(SfId::parse)
                .filter(|i| i.prefix() == o.prefix());
            let Some(id) = id else {
                results.push((
                    None,
                    Err(ApiError::rec(
                        "MISSING_ARGUMENT",
                        "Id not specified in an update call",
                        &[],
                    )),
                ));
                continue;
            };
            let r = st
                .data
                .live_index(o, id)
                .and_then(|_| st.data.consume_lock_fault(Some(id)))
                .and_then(|_| st.data.update(o, id, &fields, wctx))
                .map(|_| id);
            results.push((Some(id), r));
        }
    }
    let failed = results.iter().any(|(_, r)| r.is_err());
    if all_or_none {
        if failed {
            st.data.rollback();
        } else {
            st.data.commit();
        }
    }
    let out = results
        .into_iter()
        .map(|(given, r)| match r {
            Ok(id) if all_or_none && failed => rolled_back(Some(id).filter(|_| !create)),
            Ok(id) => save_ok(id),
            Err(e) => save_err(given, &e),
        })
        .collect();
    Ok(Resp::json(200, J::Arr(out)))
}

fn save_err(id: Option<SfId>, e: &ApiError) -> J {
    let mut j = J::obj();
    if let Some(id) = id {
        j.push("id", J::s(id.to_string()));
    }
    j.with("success", J::Bool(false))
        .with("errors", J::Arr(vec![e.to_record_j()]))
}

fn rolled_back(id: Option<SfId>) -> J {
    save_err(
        id,
        &ApiError::rec("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK, &[]),
    )
}

fn collections_delete(st: &mut OrgState, query: &str) -> Result<Resp, ApiError> {
    let ids: Vec<String> = qparam(query, "ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Err(ApiError::new(
            400,
            "MALFORMED_QUERY",
            "ids parameter is required",
        ));
    }
    if ids.len() > 200 {
        return Err(ApiError::new(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    let all_or_none = qparam(query, "allOrNone").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if all_or_none {
        st.data.begin();
    }
    let mut results = Vec::new();
    for s in &ids {
        let parsed = SfId::parse(s);
        let r = match parsed.and_then(|id| Obj::from_prefix(id.prefix()).map(|o| (o, id))) {
            Some((o, id)) => st
                .data
                .live_index(o, id)
                .and_then(|_| st.data.consume_lock_fault(Some(id)))
                .and_then(|_| st.data.delete(o, id))
                .map(|_| id),
            None => Err(ApiError::rec(
                "MALFORMED_ID",
                format!("malformed id {s}"),
                &[],
            )),
        };
        results.push((parsed, r));
    }
    let failed = results.iter().any(|(_, r)| r.is_err());
    if all_or_none {
        if failed {
            st.data.rollback();
        } else {
            st.data.commit();
        }
    }
    let out = results
        .into_iter()
        .map(|(given, r)| match r {
            Ok(id) if all_or_none && failed => rolled_back(Some(id)),
            Ok(id) => save_ok(id),
            Err(e) => {
                let e = if e.code == "NOT_FOUND" || e.code == "ENTITY_IS_DELETED" {
                    ApiError::rec("ENTITY_IS_DELETED", "entity is deleted", &[])
                } else {
                    e
                };
                save_err(given, &e)
            }
        })
        .collect();
    Ok(Resp::json(200, J::Arr(out)))
}

// ----- Composite ----------------------------------------------------------------------------------

const HALTED_TX: &str =
    "The transaction was rolled back since another operation in the same transaction failed.";

fn halted(msg: &str) -> J {
    J::Arr(vec![ApiError::new(400, "PROCESSING_HALTED", msg).to_j()])
}

/// Resolve `ref.a.b[0].c` against earlier results.
fn resolve_ref(results: &[(String, Value)], expr: &str) -> Option<String> {
    let (name, path) = match expr.find(['.', '[']) {
        Some(i) => (&expr[..i], &expr[i..]),
        None => (expr, ""),
    };
    let mut cur = &results.iter().find(|(r, _)| r == name)?.1;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let i: usize = r[..end].parse().ok()?;
            cur = cur.get(i)?;
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Null | Value::Object(_) | Value::Array(_) => None,
        other => Some(other.to_string()),
    }
}

/// Substitute `@{…}` references; Err carries the first unresolved expression.
fn substitute(text: &str, results: &[(String, Value)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("@{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let expr = &after[..end];
        match resolve_ref(results, expr) {
            Some(v) => out.push_str(&v),
            None => return Err(expr.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// referenceId, status, body, headers of one subrequest.
type SubResult = (String, u16, J, Vec<(String, String)>);

fn composite(st: &mut OrgState, ctx: &Ctx, body: &[u8]) -> Result<Resp, ApiError> {
    let v = parse_json_body(body)?;
    let all_or_none = v.get("allOrNone").and_then(Value::as_bool).unwrap_or(false);
    let Some(subs) = v.get("compositeRequest").and_then(Value::as_array) else {
        return Err(ApiError::new(
            400,
            "JSON_PARSER_ERROR",
            "compositeRequest is required",
        ));
    };
    if subs.len() > 25 {
        return Err(ApiError::new(
            400,
            "LIMIT_EXCEEDED",
            "The composite request has more than the maximum of 25 subrequests.",
        ));
    }
    let mut query_like = 0;
    for s in subs {
        let ref_id = s.get("referenceId").and_then(Value::as_str).unwrap_or("");
        if ref_id.is_empty()
            || !ref_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ApiError::new(
                400,
                "INVALID_REFERENCE_ID",
                format!(
                    "Invalid reference id: {ref_id}. Reference ids can only contain alphanumeric characters and underscores."
                ),
            ));
        }
        let url = s.get("url").and_then(Value::as_str).unwrap_or("");
        if url.contains("/query")
            || url.contains("/queryAll")
            || url.contains("/composite/sobjects")
        {
            query_like += 1;
        }
    }
    if query_like > 5 {
        return Err(ApiError::new(
            400,
            "LIMIT_EXCEEDED",
            "The composite request cannot have more than 5 query or sObject Collections subrequests.",
        ));
    }
    if all_or_none {
        st.data.begin();
    }
    let mut results: Vec<(String, Value)> = Vec::new();
    let mut out: Vec<SubResult> = Vec::new();
    let mut failed_at = None;
    for (n, s) in subs.iter().enumerate() {
        let ref_id = s
            .get("referenceId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if failed_at.is_some() {
            out.push((ref_id, 400, halted(HALTED_TX), vec![]));
            continue;
        }
        let method = s
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let url = s.get("url").and_then(Value::as_str).unwrap_or("");
        let body_text = s.get("body").map(|b| b.to_string());
        let subst = substitute(url, &results).and_then(|u| match &body_text {
            Some(b) => substitute(b, &results).map(|b| (u, Some(b))),
            None => Ok((u, None)),
        });
        let (status, body, headers) = match subst {
            Err(expr) => {
                let name = expr.split(['.', '[']).next().unwrap_or("");
                let msg = format!(
                    "Invalid reference specified. No value for {expr} found in {name}. Provided referenceId ('{expr}') is not valid."
                );
                (400, halted(&msg), vec![])
            }
            Ok((u, b)) => {
                let (path, query) = u.split_once('?').unwrap_or((u.as_str(), ""));
                let segs: Vec<&str> = path
                    .trim_start_matches("/services/data/")
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .collect();
                let sub_version = segs.first().and_then(|s| s.strip_prefix('v')).unwrap_or("");
                if !path.starts_with("/services/data/") || sub_version.is_empty() {
                    (
                        400,
                        J::Arr(vec![
                            ApiError::new(
                                400,
                                "NOT_FOUND",
                                "The requested resource does not exist",
                            )
                            .to_j(),
                        ]),
                        vec![],
                    )
                } else {
                    let sub_ctx = Ctx {
                        version: sub_version.to_string(),
                        user: ctx.user,
                        login_url: ctx.login_url.clone(),
                        org_id: ctx.org_id,
                        allow_dup: ctx.allow_dup
                            || s.get("httpHeaders")
                                .and_then(|h| h.get("Sforce-Duplicate-Rule-Header"))
                                .and_then(Value::as_str)
                                .is_some_and(|h| dup_header_allows(Some(h))),
                        batch: ctx.batch,
                    };
                    let r = dispatch(
                        st,
                        &sub_ctx,
                        &method,
                        &segs[1..],
                        query,
                        b.as_deref().unwrap_or("").as_bytes(),
                    );
                    let body = match r.body {
                        RespBody::Json(j) => j,
                        RespBody::Empty => J::Null,
                        RespBody::Text(t, _) => J::Str(t),
                    };
                    let headers = r
                        .headers
                        .into_iter()
                        .filter(|(k, _)| k == "Location")
                        .collect();
                    (r.status, body, headers)
                }
            }
        };
        if status >= 400 && all_or_none {
            failed_at = Some(n);
        }
        if status < 400 {
            results.push((ref_id.clone(), body.to_value()));
        }
        out.push((ref_id, status, body, headers));
    }
    if all_or_none {
        if failed_at.is_some() {
            st.data.rollback();
        } else {
            st.data.commit();
        }
    }
    let arr = out
        .into_iter()
        .enumerate()
        .map(|(i, (ref_id, status, body, headers))| {
            let (status, body) = match failed_at {
                Some(f) if i < f => (400, halted(HALTED_TX)),
                _ => (status, body),
            };
            let mut h = J::obj();
            for (k, v) in headers {
                h.push(&k, J::s(v));
            }
            J::obj()
                .with("body", body)
                .with("httpHeaders", h)
                .with("httpStatusCode", J::Int(i64::from(status)))
                .with("referenceId", J::s(ref_id))
        })
        .collect();
    Ok(Resp::json(
        200,
        J::obj().with("compositeResponse", J::Arr(arr)),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::soql::tests::{odd_org, render_reference, wide_select};

    /// The page as first written: a `J` tree, records rendered by the reference renderer.
    fn page_reference(st: &OrgState, ctx: &Ctx, c: &Cursor, locator: &str, offset: usize) -> J {
        let total = c.rows.len();
        let end = (offset + c.batch).min(total);
        let paths = c.query.select.clone().unwrap_or_default();
        let table = st.data.table(c.query.obj);
        let records = c.rows[offset.min(end)..end]
            .iter()
            .map(|&i| {
                let rec = &table.recs[i as usize];
                render_reference(&st.data, c.query.obj, rec, &paths, &ctx.version)
            })
            .collect();
        let mut j = J::obj()
            .with("totalSize", J::Int(total as i64))
            .with("done", J::Bool(end >= total));
        if end < total {
            j.push(
                "nextRecordsUrl",
                J::s(format!(
                    "/services/data/v{}/query/{locator}-{end}",
                    ctx.version
                )),
            );
        }
        j.with("records", J::Arr(records))
    }

    #[test]
    fn pages_are_written_exactly_as_the_json_tree_was() {
        let st = OrgState {
            data: odd_org(),
            api_used: 0,
            api_max: 1000,
            cursors: HashMap::new(),
            log: Vec::new(),
            page_cap: None,
        };
        let ctx = Ctx {
            version: "62.0".into(),
            user: SfId::make("005", 1, 1),
            login_url: String::new(),
            org_id: SfId::make("00D", 1, 1),
            allow_dup: false,
            batch: None,
        };
        let mut pages = 0;
        for soql in [
            wide_select(Obj::Contact),
            wide_select(Obj::Task),
            "SELECT Id FROM Lead WHERE Id = null".to_string(),
        ] {
            let query = soql::parse(&soql, &st.data).unwrap();
            let rows = soql::execute(&st.data, &query, false, &|_| true);
            let c = Cursor {
                query,
                rows,
                batch: 200,
            };
            for offset in (0..=c.rows.len()).step_by(200) {
                let want = page_reference(&st, &ctx, &c, "01gAbC", offset).to_json_string();
                let RespBody::Json(got) = page(&st, &ctx, &c, "01gAbC", offset).body else {
                    panic!("a page is JSON");
                };
                assert_eq!(got.to_json_string(), want, "{soql} at {offset}");
                pages += 1;
            }
        }
        assert!(pages >= 4);
    }
}
