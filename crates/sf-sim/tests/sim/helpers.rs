use reqwest::header::HeaderMap;
use serde_json::Value;
use sf_sim::{Org, OrgSpec, SfSim, SimUser};

pub(crate) const V: &str = "62.0";

pub(crate) struct Env {
    pub(crate) sim: SfSim,
    pub(crate) org: Org,
    pub(crate) http: reqwest::Client,
    pub(crate) token: String,
}

pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The single error of a REST error array.
    pub(crate) fn error_code(&self) -> String {
        self.json()[0]["errorCode"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

pub(crate) fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) async fn env() -> Env {
    let sim = SfSim::start().await.unwrap();
    let org = sim.add_org(OrgSpec {
        name: "Test Org".into(),
        users: vec![
            SimUser::new("admin@test.example.jp", "太郎", "管理者"),
            SimUser {
                active: false,
                ..SimUser::new("gone@test.example.jp", "花子", "退職")
            },
        ],
        ..OrgSpec::default()
    });
    let token = org.issue_token();
    Env {
        sim,
        org,
        http: http(),
        token,
    }
}

impl Env {
    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("/") {
            format!("{}{}", self.org.instance_url(), path)
        } else {
            format!("{}/services/data/v{V}/{path}", self.org.instance_url())
        }
    }

    pub(crate) async fn req(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self
            .http
            .request(m, self.url(path))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Resp {
            status,
            headers,
            text,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None, &[]).await
    }

    pub(crate) async fn query(&self, soql: &str) -> Resp {
        let q: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        self.get(&format!("query?q={q}")).await
    }
}
