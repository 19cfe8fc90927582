//! callsync's HTTP API as the demo uses it: only public routes (docs/api.md), no shortcuts.

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode, redirect};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A client for one callsync.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

/// What `POST /api/v1/tenants` returns once.
pub(crate) struct NewTenant {
    pub(crate) admin_token: String,
    pub(crate) webhook_secret: String,
    pub(crate) webhook_url: String,
    pub(crate) admin_url: String,
}

impl Api {
    pub(crate) fn new(base: &str) -> Result<Api> {
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = res.status();
        let bytes = res.bytes().await?;
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, v))
    }

    /// Operator: creates the tenant.
    pub(crate) async fn create_tenant(
        &self,
        operator_key: &str,
        id: &str,
        name: &str,
    ) -> Result<NewTenant> {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/v1/tenants",
                operator_key,
                Some(&json!({"id": id, "name": name})),
            )
            .await?;
        if s != StatusCode::CREATED {
            bail!("POST /api/v1/tenants: {s} {}", error_text(&v));
        }
        let field = |k: &str| -> Result<String> {
            v[k].as_str()
                .map(str::to_owned)
                .with_context(|| format!("POST /api/v1/tenants: no {k} in the answer"))
        };
        Ok(NewTenant {
            admin_token: field("admin_token")?,
            webhook_secret: field("webhook_secret")?,
            webhook_url: field("webhook_url")?,
            admin_url: field("admin_url")?,
        })
    }

    pub(crate) fn tenant(&self, id: &str, token: &str) -> Tenant {
        Tenant {
            api: self.clone(),
            id: id.to_owned(),
            token: token.to_owned(),
        }
    }
}

/// The tenant admin API of one tenant.
pub(crate) struct Tenant {
    api: Api,
    pub(crate) id: String,
    token: String,
}

/// `message` (and `fields`) of an error body, for messages.
pub(crate) fn error_text(v: &Value) -> String {
    let mut s = v["message"].as_str().unwrap_or("").to_owned();
    if let Some(fields) = v["fields"].as_array() {
        for f in fields {
            s.push_str(&format!(
                "; {}: {}",
                f["field"].as_str().unwrap_or("?"),
                f["message"].as_str().unwrap_or("?")
            ));
        }
    }
    if s.is_empty() { v.to_string() } else { s }
}

impl Tenant {
    fn path(&self, rest: &str) -> String {
        format!("/api/v1/tenants/{}{rest}", self.id)
    }

    /// GET a tenant route; anything but 200 is an error.
    pub(crate) async fn get(&self, rest: &str) -> Result<Value> {
        let path = self.path(rest);
        let (s, v) = self.api.call(Method::GET, &path, &self.token, None).await?;
        if s != StatusCode::OK {
            bail!("GET {path}: {s} {}", error_text(&v));
        }
        Ok(v)
    }

    /// GET a tenant route that may answer 404 (`None`).
    pub(crate) async fn find(&self, rest: &str) -> Result<Option<Value>> {
        let path = self.path(rest);
        let (s, v) = self.api.call(Method::GET, &path, &self.token, None).await?;
        match s {
            StatusCode::OK => Ok(Some(v)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => bail!("GET {path}: {s} {}", error_text(&v)),
        }
    }

    /// The settings with the demo's choices: both targets, activities on, unknown callers
    /// become Leads, transcription on, the default notification events.
    pub(crate) async fn configure(&self) -> Result<Value> {
        let mut s = self.get("/settings").await?;
        s["sync_targets"] = json!({"lead": true, "contact": true});
        s["write_activity"] = json!(true);
        s["create_customers"] = json!(true);
        s["create_as"] = json!("Lead");
        s["write_transcription"] = json!(true);
        s["notify_on"] = json!([
            "call_ended",
            "missed",
            "unanswered",
            "voicemail",
            "memo_saved"
        ]);
        let path = self.path("/settings");
        let (st, v) = self
            .api
            .call(Method::PUT, &path, &self.token, Some(&s))
            .await?;
        if st != StatusCode::OK {
            bail!("PUT {path}: {st} {}", error_text(&v));
        }
        Ok(v)
    }

    /// R7 as a browser does it: callsync's connect URL → Salesforce's authorize (the sim
    /// consents at once) → callsync's `/oauth/callback` → the admin page. Returns the
    /// `connect=` value the callback redirected with (`connected` on success).
    pub(crate) async fn connect(&self) -> Result<String> {
        let http = self.api.http();
        let path = self.path("/salesforce/connect");
        let res = http
            .get(format!("{}{path}", self.api.base()))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let mut url = location(&res, &path)?;
        let mut hops = 0;
        loop {
            hops += 1;
            if hops > 5 {
                bail!("too many redirects while connecting");
            }
            let res = http.get(url.as_str()).send().await?;
            let next = location(&res, url.path())?;
            if next.path() == format!("/admin/{}", self.id) {
                let connect = next
                    .query_pairs()
                    .find(|(k, _)| k == "connect")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                return Ok(connect);
            }
            url = next;
        }
    }

    /// Starts the import and waits for its run to finish; returns the run.
    pub(crate) async fn sync_and_wait(&self, timeout: Duration) -> Result<Value> {
        let path = self.path("/sync");
        let (s, v) = self
            .api
            .call(Method::POST, &path, &self.token, Some(&json!({})))
            .await?;
        if s != StatusCode::ACCEPTED {
            bail!("POST {path}: {s} {}", error_text(&v));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let runs = self.get("/sync-runs?limit=1").await?;
            if let Some(run) = runs["runs"].get(0)
                && !run["finished_at"].is_null()
            {
                return Ok(run.clone());
            }
            if Instant::now() > deadline {
                bail!("the import did not finish within {} s", timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls the status until no queue item is ready, leased or waiting for a retry.
    pub(crate) async fn wait_queue_empty(&self, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.get("/status").await?;
            let q = &st["queue"];
            let busy: u64 = ["ready", "leased", "waiting"]
                .iter()
                .map(|k| q[*k].as_u64().unwrap_or(0))
                .sum();
            if busy == 0 {
                return Ok(st);
            }
            if Instant::now() > deadline {
                bail!(
                    "the queue did not empty within {} s: {q}",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn location(res: &reqwest::Response, from: &str) -> Result<url::Url> {
    if !res.status().is_redirection() {
        bail!("{from}: expected a redirect, got {}", res.status());
    }
    let loc = res
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .with_context(|| format!("{from}: redirect without Location"))?;
    // Relative redirects (callsync's own) resolve against the response's URL.
    Ok(res.url().join(loc)?)
}
