//! `jetsaga console`'s JSON API against a real system: who may sign in, who may act, and that
//! each view shows what the CLI shows and each action is the CLI's own, signed by its operator.

mod common;

use anyhow::Context as _;
use common::{
    leave_the_durable_an_upgrade_abandons, poison_four_consumers, token_of, ConsoleProcess,
    Jetsaga, Started, ABANDONED_DURABLE, POISONED_SERVICES, VIEWERS,
};
use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

const SETTLE: Duration = Duration::from_secs(60);

/// A person signed in with `token`.
async fn signed_in(console: &ConsoleProcess, token: &str) -> anyhow::Result<Browser> {
    let mut browser = Browser::new(console);
    let (status, who) = browser.sign_in(token).await?;
    anyhow::ensure!(status == StatusCode::OK, "sign-in refused: {who}");
    Ok(browser)
}

/// The open dead letters as `(service, id)`.
async fn open_letters(browser: &Browser) -> anyhow::Result<BTreeSet<(String, i64)>> {
    let (status, doc) = browser.get("/api/dead-letters").await?;
    anyhow::ensure!(status == StatusCode::OK, "{doc}");
    Ok(doc["groups"]
        .as_array()
        .context("groups")?
        .iter()
        .flat_map(|g| g["letters"].as_array().cloned().unwrap_or_default())
        .map(|l| {
            (
                l["service"].as_str().unwrap_or_default().to_owned(),
                l["id"].as_i64().unwrap_or_default(),
            )
        })
        .collect())
}

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

#[tokio::test]
async fn without_a_session_every_api_route_answers_401() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let order = Uuid::new_v4().to_string();
    let routes = [
        (Method::GET, "/api/session".to_owned()),
        (Method::DELETE, "/api/session".to_owned()),
        (Method::GET, "/api/sagas".to_owned()),
        (Method::GET, format!("/api/sagas/{order}")),
        (Method::GET, "/api/outcomes".to_owned()),
        (Method::GET, "/api/dead-letters".to_owned()),
        (Method::POST, "/api/dead-letters/requeue".to_owned()),
        (Method::POST, "/api/dead-letters/discard".to_owned()),
        (Method::POST, "/api/reconcile".to_owned()),
        (Method::POST, "/api/reconcile/repair".to_owned()),
        (Method::GET, "/api/health".to_owned()),
        (Method::GET, "/api/audit".to_owned()),
        (Method::GET, "/api/live".to_owned()),
        (Method::GET, "/api/no-such-route".to_owned()),
    ];
    let mut forged = Browser::new(&console);
    forged.cookie = Some(
        "jetsaga_console=0000000000000000000000000000000000000000000000000000000000000000".into(),
    );
    for browser in [Browser::new(&console), forged] {
        for (method, path) in &routes {
            let body = (method == Method::POST)
                .then(|| json!({"group": "x", "reason": "x", "confirm": true}));
            let (status, doc) = browser.call(method.clone(), path, body).await?;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {doc}");
            assert_eq!(doc["error"], "unauthorized", "{method} {path}");
            assert!(doc["message"].is_string(), "{method} {path}: {doc}");
        }
    }
    // A wrong bearer token is no better; the right one is a session of its own.
    let client = reqwest::Client::new();
    let wrong = client
        .get(format!("{}/api/sagas", console.base_url()))
        .bearer_auth("not-a-token-of-anyone-here")
        .send()
        .await?;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = client
        .get(format!("{}/api/sagas", console.base_url()))
        .bearer_auth(token_of("alice"))
        .send()
        .await?;
    assert_eq!(right.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn a_viewer_is_refused_every_write_and_nothing_changes() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    poison_four_consumers(&sys).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let victor = signed_in(&console, VIEWERS[0].1).await?;
    let before = open_letters(&victor).await?;
    assert_eq!(before.len(), 4, "{before:?}");
    let (_, doc) = victor.get("/api/dead-letters").await?;
    let group = doc["groups"][0]["key"]
        .as_str()
        .context("a group")?
        .to_owned();

    for (path, body) in [
        (
            "/api/dead-letters/requeue",
            json!({"group": group, "reason": "try again"}),
        ),
        (
            "/api/dead-letters/discard",
            json!({"letters": [{"service": "payment", "id": 1}], "reason": "junk"}),
        ),
        (
            "/api/reconcile/repair",
            json!({"date": null, "settlement": null, "confirm": true}),
        ),
    ] {
        let (status, answer) = victor.post(path, body).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(answer["error"], "forbidden", "{path}");
    }
    assert_eq!(
        open_letters(&victor).await?,
        before,
        "nothing was requeued or discarded"
    );
    let (_, audit) = victor.get("/api/audit").await?;
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );

    // Looking is allowed: the reconciler's check only reads.
    let (status, checked) = victor.post("/api/reconcile", json!({})).await?;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert!(checked["differences"].is_array(), "{checked}");
    Ok(())
}

#[tokio::test]
async fn the_sagas_list_pages_by_key_and_filters_by_reason() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_000, 100).await?;
    let rich = ledger.customer(&api, 100_000).await?;
    let poor = ledger.customer(&api, 10).await?;
    let mut confirmed = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for _ in 0..4 {
        confirmed.insert(ledger.order(&api, &rich, &[(&mug, 1)], None).await?);
    }
    for _ in 0..3 {
        failed.insert(ledger.order(&api, &poor, &[(&mug, 1)], None).await?);
    }
    assert_invariants(&api, &ledger, SETTLE).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let alice = signed_in(&console, token_of("alice")).await?;

    // Walk every page of two: each order once, newest first, and the last page says so.
    let mut seen = Vec::new();
    let mut path = "/api/sagas?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = alice.get(&path).await?;
        assert_eq!(status, StatusCode::OK, "{page}");
        let sagas = page["sagas"].as_array().context("sagas")?;
        assert!(sagas.len() <= 2, "{page}");
        for saga in sagas {
            seen.push((
                saga["created_at"].as_str().unwrap_or_default().to_owned(),
                saga["order_id"].as_str().unwrap_or_default().to_owned(),
            ));
            assert_eq!(saga["overdue"], false);
        }
        pages += 1;
        match page["next"].as_str() {
            Some(next) => path = format!("/api/sagas?limit=2&after={next}"),
            None => break,
        }
        anyhow::ensure!(pages < 10, "the pages never end");
    }
    assert_eq!(pages, 4, "7 orders in pages of 2");
    let ids: BTreeSet<String> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), seen.len(), "no order twice: {seen:?}");
    assert_eq!(
        ids,
        confirmed.union(&failed).cloned().collect(),
        "no order left out"
    );
    let times: Vec<&String> = seen.iter().map(|(t, _)| t).collect();
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first, "newest first");

    // Filters
    let ids_of = |page: &Value| -> BTreeSet<String> {
        page["sagas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["order_id"].as_str().map(str::to_owned))
            .collect()
    };
    let (_, page) = alice.get("/api/sagas?reason=payment_failed").await?;
    assert_eq!(ids_of(&page), failed);
    assert!(page["sagas"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|s| s["status"] == "CANCELLED" && s["cancel_reason"] == "payment_failed"));
    let (_, page) = alice.get("/api/sagas?status=CONFIRMED").await?;
    assert_eq!(ids_of(&page), confirmed);
    let (_, page) = alice
        .get(&format!("/api/sagas?customer={poor}&status=CANCELLED"))
        .await?;
    assert_eq!(ids_of(&page), failed);
    let (_, page) = alice.get("/api/sagas?reason=stock_failed").await?;
    assert!(ids_of(&page).is_empty());
    let (_, page) = alice.get("/api/sagas?overdue=true").await?;
    assert!(ids_of(&page).is_empty());
    let (_, page) = alice
        .get("/api/sagas?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z")
        .await?;
    assert!(ids_of(&page).is_empty());
    let (status, bad) = alice.get("/api/sagas?reason=bored").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["error"], "bad_filter");
    let (status, _) = alice.get("/api/sagas?limit=0").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The outcomes per minute count them all.
    let (_, outcomes) = alice.get("/api/outcomes?minutes=60").await?;
    let sum = |k: &str| -> i64 {
        outcomes["minutes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m[k].as_i64())
            .sum()
    };
    assert_eq!((sum("confirmed"), sum("cancelled")), (4, 3), "{outcomes}");
    Ok(())
}

#[tokio::test]
async fn a_saga_shows_its_steps_trace_id_and_verdict() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_250, 10).await?;
    let alice_customer = ledger.customer(&api, 10_000).await?;
    let order = ledger
        .order(&api, &alice_customer, &[(&mug, 2)], None)
        .await?;
    assert_invariants(&api, &ledger, SETTLE).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let alice = signed_in(&console, token_of("alice")).await?;

    let (status, saga) = alice.get(&format!("/api/sagas/{order}")).await?;
    assert_eq!(status, StatusCode::OK, "{saga}");
    assert_eq!(saga["order"]["status"], "CONFIRMED");
    assert_eq!(saga["order"]["total_cents"], 2_500);
    assert_eq!(saga["order"]["items"][0]["sku"], mug.as_str());
    assert_eq!(saga["summary"]["status"], "CONFIRMED");
    let steps = saga["steps"].as_array().context("steps")?;
    let events: Vec<&str> = steps.iter().filter_map(|s| s["event"].as_str()).collect();
    assert_eq!(events.first(), Some(&"orders.created"), "{events:?}");
    assert!(events.contains(&"payments.succeeded"), "{events:?}");
    assert!(events.contains(&"orders.confirmed"), "{events:?}");
    for step in steps {
        assert_eq!(step["headers"]["ce-id"], step["event_id"], "{step}");
        assert_eq!(step["headers"]["correlation-id"], order.as_str(), "{step}");
        assert_eq!(step["payload"]["order_id"], order.as_str(), "{step}");
    }
    assert_eq!(steps[0]["caused_by"], Value::Null);
    let trace_id = saga["trace_id"].as_str().context("a trace id")?;
    assert_eq!(trace_id.len(), 32);
    assert!(
        steps[0]["headers"]["traceparent"]
            .as_str()
            .is_some_and(|t| t.contains(trace_id)),
        "{saga}"
    );
    assert_eq!(
        saga["services"],
        json!(["order", "voucher", "points", "payment", "stock"])
    );
    assert_eq!(saga["verdict"]["clean"], true, "{saga}");
    assert_eq!(saga["verdict"]["state"], "judged", "{saga}");

    let (status, missing) = alice.get(&format!("/api/sagas/{}", Uuid::new_v4())).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"], "saga_not_found");
    let (status, _) = alice.get("/api/sagas/not-an-order").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn the_same_poison_for_two_orders_is_one_group_per_consumer() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let js = jetsaga_scenarios::inject::jetstream(sys.nats_url()).await?;
    let orders = [Uuid::new_v4(), Uuid::new_v4()];
    for order in orders {
        jetsaga_scenarios::inject::publish_junk(
            &js,
            &format!("orders.cancelled.{order}"),
            b"{not json".to_vec(),
        )
        .await?;
    }
    let console = ConsoleProcess::start(&sys).await?;
    let alice = signed_in(&console, token_of("alice")).await?;
    jetsaga_testkit::wait_until(
        "both poison messages dead-lettered by the four services",
        Duration::from_secs(120),
        || async { open_letters(&alice).await.is_ok_and(|l| l.len() == 8) },
    )
    .await?;

    // Their reasons name their own orders; the failure they share makes one group per consumer.
    let (_, doc) = alice.get("/api/dead-letters").await?;
    let groups = doc["groups"].as_array().context("groups")?;
    assert_eq!(groups.len(), POISONED_SERVICES.len(), "{doc}");
    for group in groups {
        assert_eq!(group["count"], 2, "{group}");
        let reasons: BTreeSet<&str> = group["letters"]
            .as_array()
            .context("letters")?
            .iter()
            .filter_map(|l| l["reason"].as_str())
            .collect();
        assert_eq!(
            reasons.len(),
            2,
            "each letter keeps its own reason: {group}"
        );
        let shared = group["reason"].as_str().context("reason")?;
        assert!(
            orders.iter().all(|o| !shared.contains(&o.to_string())),
            "the group's failure names no order: {shared}"
        );
    }

    // One requeue of the group takes both letters.
    let payment = groups
        .iter()
        .find(|g| g["service"] == "payment")
        .context("the payment group")?;
    let (status, answer) = alice
        .post(
            "/api/dead-letters/discard",
            json!({"group": payment["key"], "reason": "junk from a broken publisher"}),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["done"].as_array().map(Vec::len), Some(2), "{answer}");
    Ok(())
}

#[tokio::test]
async fn requeuing_a_dead_letter_group_from_the_console_is_signed_by_the_operator(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    poison_four_consumers(&sys).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let bob = signed_in(&console, token_of("bob")).await?;

    let (_, doc) = bob.get("/api/dead-letters").await?;
    let groups = doc["groups"].as_array().context("groups")?;
    let services: BTreeSet<&str> = groups
        .iter()
        .filter_map(|g| g["service"].as_str())
        .collect();
    assert_eq!(services, BTreeSet::from(POISONED_SERVICES), "{doc}");
    let payment = groups
        .iter()
        .find(|g| g["service"] == "payment")
        .context("the payment group")?;
    assert_eq!(payment["count"], 1);
    let letter = &payment["letters"][0];
    assert_eq!(letter["raw"], "{not json");
    assert_eq!(letter["kind"], payment["kind"]);
    let key = payment["key"].as_str().context("key")?.to_owned();
    let requeued = ("payment".to_owned(), letter["id"].as_i64().context("id")?);

    // A decision without a reason is refused, and nothing is done.
    let (status, refused) = bob
        .post(
            "/api/dead-letters/requeue",
            json!({"group": key, "reason": " "}),
        )
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"], "reason_required");
    assert!(open_letters(&bob).await?.contains(&requeued));

    let (status, answer) = bob
        .post(
            "/api/dead-letters/requeue",
            json!({"group": key, "reason": "the payment service is fixed"}),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["done"],
        json!([{"service": "payment", "id": requeued.1}])
    );
    assert_eq!(answer["failed"], json!([]));
    assert_eq!(answer["by"], "bob");
    assert!(
        !open_letters(&bob).await?.contains(&requeued),
        "the requeued letter left the open list"
    );
    // Discarding one named letter works the same way.
    let (status, answer) = bob
        .post(
            "/api/dead-letters/discard",
            json!({"letters": [{"service": "stock", "id": 1}], "reason": "junk"}),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["done"], json!([{"service": "stock", "id": 1}]));

    // The audit shows both under bob's name, in the console and in `jetsaga audit`.
    let (_, audit) = bob.get("/api/audit?operator=bob").await?;
    let kinds: BTreeSet<&str> = audit["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["operator"] == "bob")
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["dlq.requeued", "dlq.discarded"]),
        "{audit}"
    );
    let (code, cli) = Jetsaga::new(&sys)?
        .json(&["audit", "--operator", "bob", "--kind", "dlq.requeued"])
        .await?;
    assert_eq!(code, 0);
    let entries = cli["entries"].as_array().context("entries")?;
    assert_eq!(entries.len(), 1, "{cli}");
    assert_eq!(entries[0]["service"], "payment");
    // And `jetsaga dlq show` names bob as who requeued it.
    let (_, shown) = Jetsaga::new(&sys)?
        .json(&["dlq", "show", &format!("payment:{}", requeued.1)])
        .await?;
    assert_eq!(shown["audit"][0]["actor"], "bob", "{shown}");
    assert_eq!(shown["audit"][0]["action"], "requeued", "{shown}");
    assert_eq!(
        shown["audit"][0]["reason"], "the payment service is fixed",
        "{shown}"
    );
    // The reason is in the stream's record of the decision too, so the audit shows it.
    assert!(
        entries[0]["outcome"]
            .as_str()
            .is_some_and(|o| o.ends_with(": the payment service is fixed")),
        "{cli}"
    );
    Ok(())
}

#[tokio::test]
async fn a_planted_difference_is_shown_and_repaired_after_confirmation() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_000, 5).await?;
    let customer = ledger.customer(&api, 100_000).await?;
    // Charged, then refunded when stock failed.
    let cancelled = ledger.order(&api, &customer, &[(&mug, 20)], None).await?;
    let outcome = assert_invariants(&api, &ledger, SETTLE).await?;
    assert_eq!(outcome.reason(&cancelled), "stock_failed");
    let console = ConsoleProcess::start(&sys).await?;
    let alice = signed_in(&console, token_of("alice")).await?;
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let (_, clean) = alice.post("/api/reconcile", json!({"date": today})).await?;
    assert_eq!(clean["clean"], true, "{clean}");

    // Plant: the cancelled order's payment is CHARGED again (the balance moved with it).
    let payment_db = sys.db(Svc::Payment).await?;
    let (payer, amount): (Uuid, i64) = sqlx::query_as(
        "UPDATE payments SET status = 'CHARGED' WHERE order_id = $1 RETURNING customer_id, amount_cents",
    )
    .bind(Uuid::parse_str(&cancelled)?)
    .fetch_one(&payment_db)
    .await?;
    sqlx::query("UPDATE accounts SET balance_cents = balance_cents - $2 WHERE customer_id = $1")
        .bind(payer)
        .bind(amount)
        .execute(&payment_db)
        .await?;

    let (status, checked) = alice
        .post("/api/reconcile", json!({"date": today, "settlement": null}))
        .await?;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(checked["clean"], false);
    let differences = checked["differences"].as_array().context("differences")?;
    assert_eq!(differences.len(), 1, "{checked}");
    let d = &differences[0];
    assert_eq!(d["kind"], "status_mismatch");
    assert_eq!(d["service"], "payment");
    assert_eq!(d["order_id"], cancelled.as_str());
    assert_eq!(d["repairable"], true);
    assert!(
        d["repair"].as_str().is_some_and(|r| r.contains("refund")),
        "{d}"
    );
    let id = d["id"].as_str().context("id")?.to_owned();
    // The saga's own page shows it too.
    let (_, saga) = alice.get(&format!("/api/sagas/{cancelled}")).await?;
    assert_eq!(saga["verdict"]["clean"], false, "{saga}");
    assert_eq!(saga["verdict"]["differences"][0]["service"], "payment");

    // Without the confirmation nothing is repaired.
    let (status, refused) = alice
        .post("/api/reconcile/repair", json!({"date": today}))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"], "confirmation_required");
    let (_, still) = alice.post("/api/reconcile", json!({"date": today})).await?;
    assert_eq!(
        still["differences"].as_array().map(Vec::len),
        Some(1),
        "{still}"
    );

    let (status, repaired) = alice
        .post(
            "/api/reconcile/repair",
            json!({"date": today, "confirm": true}),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{repaired}");
    assert_eq!(repaired["by"], "alice");
    assert_eq!(repaired["repaired"][0]["id"], id.as_str(), "{repaired}");
    assert_eq!(
        repaired["repaired"][0]["event_type"],
        "jetsaga.payments.refunded.v1"
    );
    assert_eq!(repaired["left"], json!([]), "{repaired}");
    let (_, after) = alice.post("/api/reconcile", json!({"date": today})).await?;
    assert_eq!(after["clean"], true, "{after}");

    // The repair is signed: the audit names alice as who refunded that order.
    let refund = repaired["repaired"][0]["event_id"]
        .as_str()
        .context("event_id")?
        .to_owned();
    let signed = |audit: &Value| {
        audit["entries"].as_array().into_iter().flatten().any(|e| {
            e["kind"] == "dlq.repaired"
                && e["operator"] == "alice"
                && e["service"] == "payment"
                && e["about"] == format!("order {cancelled}").as_str()
                && e["outcome"].as_str().is_some_and(|o| o.contains(&refund))
        })
    };
    jetsaga_testkit::wait_until(
        "the repair signed by alice in the audit",
        Duration::from_secs(60),
        || async {
            alice
                .get("/api/audit?kind=dlq.repaired")
                .await
                .is_ok_and(|(_, audit)| signed(&audit))
        },
    )
    .await?;
    let (code, cli) = Jetsaga::new(&sys)?
        .json(&["audit", "--operator", "alice", "--kind", "dlq.repaired"])
        .await?;
    assert_eq!(code, 0, "{cli}");
    assert!(signed(&cli), "{cli}");
    Ok(())
}

#[tokio::test]
async fn health_shows_every_service_and_instance_and_live_sends_the_figures() -> anyhow::Result<()>
{
    let mut sys = System::start(SystemOptions::default()).await?;
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_000, 10).await?;
    let rich = ledger.customer(&api, 10_000).await?;
    ledger.order(&api, &rich, &[(&mug, 1)], None).await?;
    assert_invariants(&api, &ledger, SETTLE).await?;
    // and the durable an upgrade leaves behind, which no instance pulls
    leave_the_durable_an_upgrade_abandons(&sys).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let victor = signed_in(&console, VIEWERS[0].1).await?;

    let (status, health) = victor.get("/api/health").await?;
    assert_eq!(status, StatusCode::OK, "{health}");
    let services = health["services"].as_array().context("services")?;
    let names: Vec<&str> = services
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    assert_eq!(names, ["order", "voucher", "points", "payment", "stock"]);
    let mut consumers = 0;
    for s in services {
        assert_eq!(s["database"], true, "{s}");
        assert_eq!(s["database_error"], Value::Null, "{s}");
        assert_eq!(s["nats"], true, "{s}");
        let instances = s["instances"].as_array().context("instances")?;
        assert!(!instances.is_empty(), "{s}");
        assert!(instances.iter().all(|i| i["ready"] == true), "{s}");
        assert_eq!(s["dead_letters_open"], 0, "{s}");
        assert_eq!(s["parked"], 0, "{s}");
        // What each database holds on disk, as `jetsaga stats` shows it.
        let database = s["database_bytes"].as_i64().context("database_bytes")?;
        let outbox_inbox = s["outbox_inbox_bytes"]
            .as_i64()
            .context("outbox_inbox_bytes")?;
        assert!(outbox_inbox > 0 && database > outbox_inbox, "{s}");
        consumers += s["consumers"].as_array().map(Vec::len).unwrap_or_default();
    }
    assert_eq!(consumers, 12, "every durable consumer: {health}");
    let abandoned = services
        .iter()
        .flat_map(|s| s["consumers"].as_array().into_iter().flatten())
        .find(|c| c["name"] == ABANDONED_DURABLE)
        .context("the abandoned durable is listed under payment")?;
    assert_eq!(abandoned["nobody_pulls"], true, "{abandoned}");

    // Live: a `change` event with the figures, without asking again.
    let mut live = victor
        .client
        .get(format!("{}/api/live", console.base_url()))
        .header("cookie", victor.cookie.clone().context("cookie")?)
        .send()
        .await?;
    assert_eq!(live.status(), StatusCode::OK);
    assert!(live.headers()["content-type"]
        .to_str()?
        .starts_with("text/event-stream"));
    let mut text = String::new();
    let data = loop {
        let chunk = tokio::time::timeout(Duration::from_secs(30), live.chunk())
            .await
            .context("no live event")??
            .context("the live stream ended")?;
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(line) = text
            .split("event: change\n")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .and_then(|l| l.strip_prefix("data: "))
        {
            break serde_json::from_str::<Value>(line)?;
        }
    };
    assert_eq!(data["confirmed"], 1, "{data}");
    assert_eq!(data["pending"], 0, "{data}");
    assert_eq!(data["dead_letters_open"], 0, "{data}");

    // An instance that stops answering is shown as not ready; its database still answers.
    sys.kill(Svc::Stock)?;
    let (_, health) = victor.get("/api/health").await?;
    let stock = health["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["service"] == "stock")
        .context("stock")?;
    assert_eq!(stock["instances"][0]["ready"], false, "{stock}");
    assert_eq!(stock["database"], true, "{stock}");
    Ok(())
}

/// Plants `n` ended orders straight into the order database, two by two with the same creation
/// time (so the key's second part, the order id, decides between them), one in ten cancelled with
/// `payment_failed`, over the last 30 days. Returns how many were cancelled.
async fn plant_orders(order_db: &sqlx::PgPool, n: i64) -> anyhow::Result<i64> {
    sqlx::query(
        "INSERT INTO orders (order_id, customer_id, status, total_cents, discount_cents,
                             cancel_reason, deadline, created_at, updated_at)
         SELECT gen_random_uuid(), gen_random_uuid(),
                CASE WHEN i % 10 = 0 THEN 'CANCELLED' ELSE 'CONFIRMED' END, 1000, 0,
                CASE WHEN i % 10 = 0 THEN 'payment_failed' END,
                t + interval '30 seconds', t, t + interval '1 second'
         FROM generate_series(1, $1) AS i,
              LATERAL (SELECT now() - interval '30 days' + (i / 2) * interval '50 seconds' AS t) AS x",
    )
    .bind(n)
    .execute(order_db)
    .await
    .context("planting orders")?;
    sqlx::query("ANALYZE orders").execute(order_db).await?;
    Ok(n / 10)
}

/// Walks every page of `path` (which has its filters and limit); returns the order ids in the
/// order given, and how long the first and the last page took (printed, never asserted).
async fn walk(browser: &Browser, path: &str) -> anyhow::Result<(Vec<String>, Duration, Duration)> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    let mut first = Duration::ZERO;
    let mut last;
    loop {
        let page_path = match &next {
            Some(after) => format!("{path}&after={after}"),
            None => path.to_owned(),
        };
        let started = std::time::Instant::now();
        let response = browser
            .client
            .get(format!("{}{page_path}", browser.base))
            .header("cookie", browser.cookie.clone().context("cookie")?)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::OK,
            "{page_path}: {}",
            response.status()
        );
        let page: Value = response.json().await?;
        let took = started.elapsed();
        if next.is_none() {
            first = took;
        }
        last = took;
        ids.extend(
            page["sagas"]
                .as_array()
                .context("sagas")?
                .iter()
                .filter_map(|s| s["order_id"].as_str().map(str::to_owned)),
        );
        match page["next"].as_str() {
            Some(after) => next = Some(after.to_owned()),
            None => return Ok((ids, first, last)),
        }
    }
}

#[tokio::test]
async fn a_hundred_thousand_orders_are_paged_by_the_index_each_exactly_once_and_the_overdue_one_is_found(
) -> anyhow::Result<()> {
    let mut sys = System::start(SystemOptions::default()).await?;
    let order_db = sys.db(Svc::Order).await?;
    const N: i64 = 100_000;
    let cancelled = plant_orders(&order_db, N).await?;
    // One more, PENDING an hour past its deadline, with the order service (and so its deadline
    // sweep) down.
    sys.kill(Svc::Order)?;
    let overdue: Uuid = sqlx::query_scalar(
        "INSERT INTO orders (order_id, customer_id, status, total_cents, deadline, created_at)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'PENDING', 1000,
                 now() - interval '1 hour', now() - interval '61 minutes')
         RETURNING order_id",
    )
    .fetch_one(&order_db)
    .await?;
    let console = ConsoleProcess::start(&sys).await?;
    let alice = signed_in(&console, token_of("alice")).await?;

    let (status, page) = alice.get("/api/sagas?overdue=true").await?;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["sagas"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["sagas"][0]["order_id"], overdue.to_string());
    assert_eq!(page["sagas"][0]["overdue"], true);

    // Every order once, in key order, with creation times shared by pairs.
    let (all, first, last) = walk(&alice, "/api/sagas?limit=200").await?;
    eprintln!("{N} orders in pages of 200: first page {first:?}, last page {last:?}");
    assert_eq!(all.len() as i64, N + 1);
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len() as i64,
        N + 1,
        "no order twice"
    );
    let (failed, first, last) = walk(&alice, "/api/sagas?limit=50&reason=payment_failed").await?;
    eprintln!(
        "{cancelled} cancelled among them in pages of 50: first page {first:?}, last page {last:?}"
    );
    assert_eq!(failed.len() as i64, cancelled);
    assert_eq!(
        failed.iter().collect::<BTreeSet<_>>().len() as i64,
        cancelled
    );

    // The database walks the index from the cursor instead of sorting every order.
    let deep =
        jetsaga_cli::console::sagas::Filter::parse(&jetsaga_cli::console::sagas::SagasQuery {
            after: Some(
                jetsaga_cli::console::sagas::Cursor {
                    created_at: time::OffsetDateTime::now_utc() - time::Duration::days(20),
                    order_id: Uuid::nil(),
                }
                .encode(),
            ),
            reason: Some("payment_failed".into()),
            ..Default::default()
        })?;
    let plan: Vec<String> = deep
        .explain()
        .build_query_scalar()
        .fetch_all(&order_db)
        .await?;
    let plan = plan.join("\n");
    eprintln!("{plan}");
    assert!(
        plan.contains("Index Scan Backward using orders_created_at_order_id"),
        "{plan}"
    );
    assert!(!plan.contains("Sort"), "{plan}");
    Ok(())
}

/// Tests run side by side, each picking a free port for its console; another test's process can
/// take the port first. An answer from that process must not pass for the console: the console
/// could not listen, and the attempt says its port was lost.
#[tokio::test]
async fn a_console_whose_port_another_process_holds_is_not_taken_for_started() -> anyhow::Result<()>
{
    let sys = System::start(SystemOptions::default()).await?;
    let squatter = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = squatter.local_addr()?.port();
    let impostor = axum::Router::new().route(
        "/api/session",
        axum::routing::get(|| async { axum::Json(json!({"role": "operator"})) }),
    );
    let serving = tokio::spawn(async move { axum::serve(squatter, impostor).await });

    let attempt = ConsoleProcess::start_on(&sys, &[("INSECURE_ADMIN", "true")], port).await;

    assert!(
        matches!(attempt, Err(Started::LostPort(_))),
        "the squatter's answer passed for the console: {attempt:?}"
    );
    serving.abort();
    Ok(())
}
