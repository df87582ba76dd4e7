//! Each service's `/metrics` after real sagas: valid for `promtool check metrics`, OpenMetrics for
//! a scraper that asks for it, with counts in the handler, saga and relay histograms and the gauges
//! read at scrape time.

use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use jetsaga_testkit::wait_until;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `promtool` from `JETSAGA_PROMTOOL` or the PATH; a clear failure when there is none.
fn promtool() -> anyhow::Result<String> {
    let promtool = std::env::var("JETSAGA_PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    match Command::new(&promtool).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(promtool),
        _ => anyhow::bail!(
            "promtool is missing ({promtool}): install Debian's prometheus package (.ci/run does) \
             or set JETSAGA_PROMTOOL"
        ),
    }
}

/// `promtool check metrics` on `body`: its findings, or nothing when it passes.
fn check_metrics(promtool: &str, body: &str) -> anyhow::Result<Option<String>> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("promtool has no stdin"))?
        .write_all(body.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok((!out.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }))
}

/// The sum of the samples named `name` whose labels contain each of `labels`.
fn sample(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn every_service_exposes_valid_metrics_with_handler_saga_and_relay_histograms(
) -> anyhow::Result<()> {
    let promtool = promtool()?;
    // Given the whole system, and one saga that confirms and one that is cancelled
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("GAUGE");
    ledger.sku(api, &sku, 1_000, 10).await?;
    let rich = ledger.customer(api, 10_000).await?;
    let broke = ledger.customer(api, 0).await?;
    let confirmed = ledger.order(api, &rich, &[(&sku, 1)], None).await?;
    let cancelled = ledger.order(api, &broke, &[(&sku, 1)], None).await?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&confirmed), "CONFIRMED");
    assert_eq!(outcome.status(&cancelled), "CANCELLED");

    let http = reqwest::Client::new();
    let scrape = |svc: Svc, accept: Option<&'static str>| {
        let req = http.get(format!("{}/metrics", api.base(svc)));
        let req = match accept {
            Some(a) => req.header(reqwest::header::ACCEPT, a),
            None => req,
        };
        async move {
            let resp = req.send().await?.error_for_status()?;
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            Ok::<_, anyhow::Error>((content_type, resp.text().await?))
        }
    };

    // The saga durations are read just after each saga's commit.
    wait_until(
        "both saga outcomes in the duration histogram",
        SETTLE,
        || async {
            match scrape(Svc::Order, None).await {
                Ok((_, body)) => {
                    let count = "jetsaga_saga_duration_seconds_count";
                    sample(&body, count, &["outcome=\"confirmed\""]) >= 1.0
                        && sample(
                            &body,
                            count,
                            &["outcome=\"cancelled\"", "reason=\"payment_failed\""],
                        ) >= 1.0
                }
                Err(_) => false,
            }
        },
    )
    .await?;

    for svc in Svc::ALL {
        // Then promtool accepts what curl and promtool read
        let (content_type, body) = scrape(svc, None).await?;
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{svc:?}: {content_type}"
        );
        if let Some(findings) = check_metrics(&promtool, &body)? {
            panic!("promtool check metrics refuses {svc:?}'s /metrics:\n{findings}\n---\n{body}");
        }
        // and a scraper that asks for OpenMetrics gets it
        let (content_type, openmetrics) = scrape(svc, Some(OPENMETRICS)).await?;
        assert_eq!(content_type, OPENMETRICS, "{svc:?}");
        assert!(openmetrics.ends_with("# EOF\n"), "{svc:?}");

        // Every consumer of the service timed what it applied
        let consumers: Vec<String> = body
            .lines()
            .filter(|l| l.starts_with("jetsaga_events_handled_total{"))
            .filter_map(|l| l.split('"').nth(1).map(str::to_owned))
            .collect();
        assert!(!consumers.is_empty(), "{svc:?} applied nothing:\n{body}");
        for consumer in &consumers {
            let timed = sample(
                &body,
                "jetsaga_handler_duration_seconds_count",
                &[&format!("consumer=\"{consumer}\""), "outcome=\"applied\""],
            );
            let applied = sample(
                &body,
                "jetsaga_events_handled_total",
                &[&format!("consumer=\"{consumer}\"")],
            );
            assert!(
                timed >= applied && timed > 0.0,
                "{svc:?} {consumer}: {timed} timed, {applied} applied"
            );
        }
        // the relay timed its publishes
        assert!(
            sample(&body, "jetsaga_relay_publish_duration_seconds_count", &[]) > 0.0,
            "{svc:?}: no relay publish timed"
        );
        // and the scrape-time gauges are there: database and NATS up, the outbox drained
        assert_eq!(sample(&body, "jetsaga_database_up", &[]), 1.0, "{svc:?}");
        assert_eq!(sample(&body, "jetsaga_nats_up", &[]), 1.0, "{svc:?}");
        for gauge in [
            "jetsaga_outbox_backlog",
            "jetsaga_outbox_oldest_age_seconds",
            "jetsaga_dead_letters_open",
        ] {
            assert!(
                body.lines().any(|l| l.starts_with(&format!("{gauge} "))),
                "{svc:?} has no {gauge}"
            );
        }
        for consumer in &consumers {
            assert!(
                body.contains(&format!(
                    "jetsaga_consumer_pending{{consumer=\"{consumer}\"}} "
                )),
                "{svc:?} has no lag for {consumer}"
            );
        }
    }

    // The order service's own: sagas by outcome, and orders past their deadline (none)
    let (_, order) = scrape(Svc::Order, None).await?;
    assert_eq!(
        sample(&order, "jetsaga_sagas_total", &["outcome=\"confirmed\""]),
        1.0
    );
    assert_eq!(
        sample(
            &order,
            "jetsaga_sagas_total",
            &["reason=\"payment_failed\""]
        ),
        1.0
    );
    assert_eq!(sample(&order, "jetsaga_sagas_past_deadline", &[]), 0.0);
    Ok(())
}
