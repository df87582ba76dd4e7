//! `jetsaga console`'s JSON API against a real system: who may sign in, who may act, and that
//! each view shows what the CLI shows and each action is the CLI's own, signed by its operator.

mod common;

use anyhow::Context as _;
use common::{token_of, ConsoleProcess, VIEWERS};
use jetsaga_scenarios::{System, SystemOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A person at the console: their session cookie, once signed in.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(console: &ConsoleProcess) -> Browser {
        Browser {
            client: reqwest::Client::new(),
            base: console.base_url().to_owned(),
            cookie: None,
        }
    }

    /// Signs in with a token; returns the status and the answer.
    async fn sign_in(&mut self, token: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .client
            .post(format!("{}/api/session", self.base))
            .json(&json!({ "token": token }))
            .send()
            .await?;
        let status = response.status();
        if let Some(set) = response.headers().get("set-cookie") {
            let set = set.to_str()?.to_owned();
            assert!(set.contains("HttpOnly"), "{set}");
            assert!(set.contains("SameSite=Strict"), "{set}");
            self.cookie = set.split(';').next().map(str::to_owned);
        }
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| path.to_owned())?;
        let status = response.status();
        let text = response.text().await?;
        eprintln!(
            "{path}: {status} {}",
            text.chars().take(400).collect::<String>()
        );
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.call(Method::GET, path, None).await
    }

    #[allow(dead_code)] // the write tests come next
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
        self.call(Method::POST, path, Some(body)).await
    }
}

#[tokio::test]
async fn an_operator_and_a_viewer_sign_in_with_their_roles_and_sign_out() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let console = ConsoleProcess::start(&sys).await?;

    let mut alice = Browser::new(&console);
    let (status, who) = alice.sign_in(token_of("alice")).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who, json!({"name": "alice", "role": "operator"}));
    assert_eq!(alice.get("/api/session").await?.1["name"], "alice");

    let mut victor = Browser::new(&console);
    let (status, who) = victor.sign_in(VIEWERS[0].1).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who, json!({"name": "victor", "role": "viewer"}));

    let mut stranger = Browser::new(&console);
    let (status, body) = stranger.sign_in("not-a-token-of-anyone-here").await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    assert!(stranger.cookie.is_none(), "no session for a wrong token");

    let (status, _) = alice.call(Method::DELETE, "/api/session", None).await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = alice.get("/api/session").await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old cookie is dead");
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(victor.get("/api/session").await?.0, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn the_console_serves_its_embedded_assets_under_a_strict_policy() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let client = reqwest::Client::new();
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let response = client
            .get(format!("{}{path}", console.base_url()))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert!(
            headers["content-type"].to_str()?.starts_with(kind),
            "{path}: {headers:?}"
        );
        assert!(
            headers["content-security-policy"]
                .to_str()?
                .starts_with("default-src 'self'"),
            "{path}: {headers:?}"
        );
    }
    let response = client
        .get(format!("{}/api/sagas", console.base_url()))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("content-security-policy"));
    Ok(())
}

#[tokio::test]
async fn without_operators_the_console_refuses_to_start_unless_insecure_by_choice(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let refused = ConsoleProcess::start_with(&sys, &[]).await;
    let message = format!("{:#}", refused.err().context("started without operators")?);
    assert!(message.contains("--insecure-admin"), "{message}");

    let console = ConsoleProcess::start_with(&sys, &[("INSECURE_ADMIN", "true")]).await?;
    let anyone = Browser::new(&console);
    let (status, who) = anyone.get("/api/session").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who, json!({"name": "anonymous", "role": "operator"}));
    Ok(())
}
