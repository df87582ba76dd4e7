//! Each service against its own OpenAPI document, with schemathesis (PyPI): first requests that
//! break the document (nothing may be stored, every one refused with a 4xx), then requests that fit
//! it (no server error, no answer the document does not describe). The counts are printed and go
//! into the README's reliability section.

use anyhow::Context as _;
use jetsaga_scenarios::{Svc, System, SystemOptions};
use std::path::PathBuf;

/// schemathesis from `JETSAGA_SCHEMATHESIS`, else the repository's `.venv` (scripts/test installs it).
fn schemathesis() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("JETSAGA_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.venv/bin/schemathesis"
            ))
        });
    anyhow::ensure!(
        path.exists(),
        "schemathesis is not installed at {} (scripts/test installs it into .venv; or set JETSAGA_SCHEMATHESIS)",
        path.display()
    );
    Ok(path)
}

/// Runs schemathesis on one service in `mode` (`negative` or `positive`) as the operator whose
/// `token` the admin routes admit (none against a deployment given without one); returns its
/// summary. (Its `ignored_auth` check also sends each admin request without the token, and fails
/// if one is not refused.)
async fn run(svc: Svc, base: &str, mode: &str, token: Option<&str>) -> anyhow::Result<String> {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemathesis.toml");
    let mut command = tokio::process::Command::new(schemathesis()?);
    command
        .args(["--config-file", config, "run"])
        .arg(format!("{base}/openapi.json"))
        .args([
            "--mode",
            mode,
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--seed",
            "2026",
        ])
        .args(["--no-color", "--suppress-health-check", "all"]);
    if let Some(token) = token {
        command
            .arg("--header")
            .arg(format!("Authorization: Bearer {token}"));
    }
    let out = command.output().await.context("running schemathesis")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary: String = text
        .lines()
        .filter(|l| l.contains("generated") || l.contains('❌'))
        .collect::<Vec<_>>()
        .join("; ");
    println!("schemathesis {mode} on the {svc:?} service: {summary}");
    anyhow::ensure!(
        out.status.success(),
        "schemathesis {mode} on {base} failed:\n{text}"
    );
    Ok(summary)
}

#[tokio::test]
async fn every_service_answers_as_its_openapi_document_says_and_a_refused_request_stores_nothing(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let services = [
        Svc::Order,
        Svc::Voucher,
        Svc::Points,
        Svc::Payment,
        Svc::Stock,
    ];
    // Every service first, so that no saga started by an accepted request touches the outboxes.
    for svc in services {
        run(svc, sys.api.base(svc), "negative", sys.api.operator_token()).await?;
    }
    for svc in services {
        // Everything was refused: no business change, so no event in the outbox.
        let pool = sqlx::PgPool::connect(&sys.database_url(svc)?).await?;
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM kit_outbox")
            .fetch_one(&pool)
            .await?;
        assert_eq!(
            stored, 0,
            "{svc:?}: a refused request stored {stored} event(s)"
        );
        pool.close().await;
    }
    for svc in services {
        run(svc, sys.api.base(svc), "positive", sys.api.operator_token()).await?;
    }
    Ok(())
}
