//! Headless Chromium driven over the DevTools protocol, just enough for the admin page's
//! browser test: open a page, type, click, read the DOM text, take a screenshot.
//!
//! Chromium is `CALLSYNC_CHROMIUM` (set by `cargo xtask test`, which installs the Debian
//! package `chromium` when it is missing) or `/usr/bin/chromium`. Without it the test fails
//! with a message saying how to get it, in CI and locally alike: it never skips.
//!
//! Chromium is started with `--remote-debugging-port=0` and a fresh profile directory; the port
//! it picked is read from `DevToolsActivePort` in that directory. One websocket to the browser
//! carries everything, with the page's session attached in flat mode.

use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long one DevTools command, a page load or Chromium's start may take.
const LIMIT: Duration = Duration::from_secs(30);
/// Interval of the condition polls below.
const POLL: Duration = Duration::from_millis(50);

/// The Chromium binary, or a panic that says how to get one.
pub(crate) fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CALLSYNC_CHROMIUM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "CALLSYNC_CHROMIUM={} is not a file: point it at a Chromium binary or unset it",
            p.display()
        );
        return p;
    }
    let p = PathBuf::from("/usr/bin/chromium");
    assert!(
        p.is_file(),
        "the admin page's browser test needs Chromium, and neither CALLSYNC_CHROMIUM nor \
         /usr/bin/chromium names one: run the tests with `cargo xtask test` (it installs the \
         Debian package `chromium`), or `apt-get install chromium`"
    );
    p
}

/// Where screenshots go: `<target dir>/browser/`.
pub(crate) fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        // Cargo resolves a relative target dir against the workspace; tests run elsewhere.
        Some(dir) if dir.is_relative() => workspace.join(dir),
        Some(dir) => dir,
        None => workspace.join("target"),
    };
    target.join("browser")
}

pub(crate) struct Browser {
    child: Child,
    profile: PathBuf,
    ws: Ws,
    next_id: u64,
    /// The page's flat-mode session id.
    session: String,
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and opens one blank page.
    pub(crate) async fn launch() -> Browser {
        let exe = chromium();
        let profile = std::env::temp_dir().join(format!(
            "callsync-chromium-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let log = std::fs::File::create(profile.join("chromium.log")).unwrap();
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1100,1400",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        // Its own process group, so the renderers go with it when the test ends.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", exe.display()));
        // Chromium writes the port it bound when it is ready to take connections; it offers
        // no other signal, so this waits for the file (bounded, and failing if it exits).
        let active = profile.join("DevToolsActivePort");
        let started = Instant::now();
        let (port, path) = loop {
            if let Ok(s) = std::fs::read_to_string(&active) {
                let mut lines = s.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.trim().to_owned(), path.trim().to_owned());
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "Chromium exited ({status}) before opening DevTools:\n{}",
                    log_tail(&profile)
                );
            }
            if started.elapsed() > LIMIT {
                let _ = child.kill();
                panic!(
                    "Chromium did not write {} within {LIMIT:?}:\n{}",
                    active.display(),
                    log_tail(&profile)
                );
            }
            tokio::time::sleep(POLL).await;
        };
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (ws, _) = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(&url))
            .await
            .expect("DevTools websocket connects in time")
            .unwrap_or_else(|e| panic!("DevTools websocket {url}: {e}"));
        let mut b = Browser {
            child,
            profile,
            ws,
            next_id: 0,
            session: String::new(),
        };
        let target = b
            .call_on(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await
            .expect("Target.createTarget");
        let attached = b
            .call_on(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await
            .expect("Target.attachToTarget");
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        b
    }

    /// One DevTools command; `session` `None` is the browser itself. Events that arrive in
    /// between are dropped (nothing here subscribes to any).
    async fn call_on(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .map_err(|e| format!("{method}: sending: {e}"))?;
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, self.ws.next())
                .await
                .map_err(|_| format!("{method}: no answer within {LIMIT:?}"))?;
            let Some(frame) = next else {
                return Err(format!("{method}: DevTools connection closed"));
            };
            let Message::Text(text) = frame.map_err(|e| format!("{method}: {e}"))? else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(v["result"].clone());
            }
        }
    }

    /// A command on the page.
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let session = self.session.clone();
        self.call_on(Some(&session), method, params).await
    }

    /// Evaluates `expr` in the page; its value as JSON, or the exception's text.
    pub(crate) async fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(format!("{expr}: {e}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Marks the current document, so [`Browser::wait_for_new_page`] can tell when another
    /// one has replaced it (a reload or a redirect to the same URL included).
    async fn mark(&mut self) {
        self.eval("window.__callsync_old_page = true")
            .await
            .expect("marking the page");
    }

    /// Waits until the marked document is gone and a new one has loaded. Page loads are
    /// asynchronous in the browser and may pass through several redirects (the OAuth round
    /// trip), so this polls for that condition, bounded; evaluation errors while the page is
    /// being replaced count as "not yet".
    async fn wait_for_new_page(&mut self, what: &str) {
        let started = Instant::now();
        loop {
            let ready = self
                .eval("!window.__callsync_old_page && document.readyState === 'complete'")
                .await;
            if ready == Ok(Value::Bool(true)) {
                return;
            }
            assert!(
                started.elapsed() < LIMIT,
                "{what}: no new page within {LIMIT:?} (still at {:?})",
                self.eval("location.href").await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Opens `url` and waits until it has loaded.
    pub(crate) async fn goto(&mut self, url: &str) {
        self.mark().await;
        let r = self
            .call("Page.navigate", json!({"url": url}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            r.get("errorText").is_none_or(Value::is_null),
            "opening {url}: {r}"
        );
        self.wait_for_new_page(url).await;
    }

    /// Reloads the page and waits until it has loaded.
    pub(crate) async fn reload(&mut self) {
        self.mark().await;
        self.call("Page.reload", json!({})).await.unwrap();
        self.wait_for_new_page("reload").await;
    }

    /// The page's URL.
    pub(crate) async fn location(&mut self) -> url::Url {
        let href = self.eval("location.href").await.unwrap();
        url::Url::parse(href.as_str().unwrap()).unwrap()
    }

    /// The text a reader sees (`innerText` of the body).
    pub(crate) async fn text(&mut self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks the element `selector` names with the mouse, as a person would: scrolled into
    /// view, at its centre, and only if nothing else covers that point.
    pub(crate) async fn click(&mut self, selector: &str) {
        let js = format!(
            r#"(() => {{
                const e = document.querySelector({sel});
                if (!e) return "missing";
                e.scrollIntoView({{block: "center"}});
                const r = e.getBoundingClientRect();
                const x = r.left + r.width / 2, y = r.top + r.height / 2;
                const hit = document.elementFromPoint(x, y);
                if (!hit || !(hit === e || e.contains(hit) || hit.contains(e))) return "covered";
                return [x, y];
            }})()"#,
            sel = json!(selector)
        );
        let at = self.eval(&js).await.unwrap();
        let (Some(x), Some(y)) = (at[0].as_f64(), at[1].as_f64()) else {
            panic!("cannot click {selector}: {at} on {}", self.location().await);
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await
            .unwrap();
        }
    }

    /// Clicks something that leaves the page (a submit button) and waits for where it leads.
    pub(crate) async fn click_and_wait(&mut self, selector: &str) {
        self.mark().await;
        self.click(selector).await;
        self.wait_for_new_page(selector).await;
    }

    /// Focuses the field and types `text` into it (as keyboard input).
    pub(crate) async fn type_into(&mut self, selector: &str, text: &str) {
        let focused = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); if (!e) return false; e.focus(); return document.activeElement === e; }})()",
                json!(selector)
            ))
            .await
            .unwrap();
        assert_eq!(focused, Value::Bool(true), "cannot focus {selector}");
        self.call("Input.insertText", json!({"text": text}))
            .await
            .unwrap();
    }

    /// Chooses the option with `value` in a `<select>` (the native list cannot be clicked
    /// headless), firing the events a choice by hand fires.
    pub(crate) async fn select(&mut self, selector: &str, value: &str) {
        let chosen = self
            .eval(&format!(
                r#"(() => {{
                    const e = document.querySelector({sel});
                    if (!e) return null;
                    e.focus();
                    e.value = {val};
                    e.dispatchEvent(new Event("input", {{bubbles: true}}));
                    e.dispatchEvent(new Event("change", {{bubbles: true}}));
                    return e.value;
                }})()"#,
                sel = json!(selector),
                val = json!(value)
            ))
            .await
            .unwrap();
        assert_eq!(chosen, json!(value), "no option {value:?} in {selector}");
    }

    /// A property of the element `selector` names (`checked`, `value`…).
    pub(crate) async fn prop(&mut self, selector: &str, prop: &str) -> Value {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); return e ? e[{}] : null; }})()",
            json!(selector),
            json!(prop)
        ))
        .await
        .unwrap()
    }

    /// Saves a PNG of the whole page to `target/browser/{name}.png` (for people; tests assert
    /// on the DOM) and returns its path.
    pub(crate) async fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Closes the browser and removes its profile.
    pub(crate) async fn close(mut self) {
        let _ = self.call_on(None, "Browser.close", json!({})).await;
        let started = Instant::now();
        // Browser.close returns before the process has exited.
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        // Drop kills whatever is left and removes the profile.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Still running (a test failed, or it did not close): end its whole process group,
        // which it leads, renderers included. Once it has exited and been reaped its id may
        // belong to someone else, so then nothing is signalled.
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn log_tail(profile: &Path) -> String {
    let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
