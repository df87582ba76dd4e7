//! `jetsaga provision`: creates or updates the five streams as the NATS admin, with the settings
//! the services expect. On a locked-down server (nats/users.conf) the services may not create or
//! change streams, so this runs once before they start (compose runs it), and again to change the
//! replicas (3 on the cluster) or a byte limit. It is the same code a service runs at start-up.

use crate::cli::Outcome;
use crate::targets::Targets;
use anyhow::Context as _;
use clap::Args;
use jetsaga_contracts::Producer;
use saga_kit::provision::{self, StreamSettings};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Replicas of each stream: 1 on a single server, 3 on the 3-node cluster.
    #[arg(long, env = "STREAM_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
    /// Byte limit of each stream, -1 for none (a limit is reserved up front in the file store).
    #[arg(long, env = "STREAM_MAX_BYTES", default_value_t = -1, allow_negative_numbers = true)]
    pub max_bytes: i64,
    /// How long to wait for NATS to accept the admin (a server that is still starting).
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
}

pub async fn run(args: ProvisionArgs, targets: &Targets) -> Outcome {
    let settings = StreamSettings {
        replicas: args.replicas.max(1),
        max_bytes: args.max_bytes,
        ..StreamSettings::default()
    };
    let js = tokio::time::timeout(Duration::from_secs(args.wait_secs), targets.nats())
        .await
        .with_context(|| {
            format!(
                "NATS at {} did not accept the connection within {} s",
                provision::redact(targets.nats_url()),
                args.wait_secs
            )
        })??;
    provision::ensure_streams_as(
        &js,
        &Producer::ALL,
        &settings,
        provision::Provisioner::Operator,
    )
    .await
    .context("provisioning the streams (as the NATS admin)")?;
    for config in provision::stream_configs(&Producer::ALL, &settings) {
        println!(
            "{}: subjects {}, {} replica(s), max age {} days, dedupe window {} s",
            config.name,
            config.subjects.join(" "),
            config.num_replicas,
            config.max_age.as_secs() / 86_400,
            config.duplicate_window.as_secs()
        );
    }
    Ok(ExitCode::SUCCESS)
}
