//! `jetsaga-lab docs`: writes the contract documents generated from the code:
//! `docs/events/asyncapi.json` (every event, from the contracts crate) and `docs/api/<service>.json`
//! (each service's HTTP API, from its routes). With `--check` it writes
//! nothing and fails when a committed document is not what the code generates.

use anyhow::Context as _;
use clap::Args;
use jetsaga_cli::cli::Outcome;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DocsArgs {
    /// The docs folder of the repository.
    #[arg(long, default_value = "docs")]
    pub out: PathBuf,
    /// Write nothing; exit 1 when a committed document differs from the generated one.
    #[arg(long)]
    pub check: bool,
}

/// Each document: its path under the docs folder and its generated text.
pub fn documents() -> anyhow::Result<Vec<(PathBuf, String)>> {
    use jetsaga_runtime::openapi::to_pretty_json;
    use utoipa::OpenApi as _;
    let asyncapi = serde_json::to_string_pretty(&jetsaga_contracts::asyncapi::document())?;
    Ok(vec![
        (
            PathBuf::from("events/asyncapi.json"),
            format!("{asyncapi}\n"),
        ),
        (
            PathBuf::from("api/order.json"),
            to_pretty_json(&order_service::api::ApiDoc::openapi()),
        ),
        (
            PathBuf::from("api/voucher.json"),
            to_pretty_json(&voucher_service::api::ApiDoc::openapi()),
        ),
        (
            PathBuf::from("api/points.json"),
            to_pretty_json(&points_service::api::ApiDoc::openapi()),
        ),
        (
            PathBuf::from("api/payment.json"),
            to_pretty_json(&payment_service::api::ApiDoc::openapi()),
        ),
        (
            PathBuf::from("api/stock.json"),
            to_pretty_json(&stock_service::api::ApiDoc::openapi()),
        ),
    ])
}

pub fn run(args: DocsArgs) -> Outcome {
    let mut stale = 0;
    for (path, text) in documents()? {
        let path = args.out.join(path);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed == text {
            println!("{}: up to date", path.display());
            continue;
        }
        if args.check {
            println!(
                "{}: differs from what the code generates (run `jetsaga-lab docs`)",
                path.display()
            );
            stale += 1;
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("{}: written", path.display());
    }
    Ok(if stale == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
