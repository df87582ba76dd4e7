//! The dependency direction of ARCHITECTURE.md, checked on the workspace's manifests: contracts
//! below the kit, the kit below the runtime, the runtime below the services, the services below
//! the operator tools, those below the lab; the test harness only in tests and the lab.

use anyhow::Context as _;
use serde_json::Value;
use std::collections::BTreeMap;

/// A workspace crate's layer: a normal dependency must be on a lower layer. `None`: the test
/// harness, which only tests (dev-dependencies), the lab and the harness itself may use.
fn layer(name: &str) -> Option<u8> {
    match name {
        "jetsaga-contracts" => Some(0),
        "saga-kit" => Some(1),
        "jetsaga-runtime" => Some(2),
        "jetsaga-cli" => Some(4),
        "jetsaga-lab" => Some(5),
        n if n.ends_with("-service") => Some(3),
        _ => None,
    }
}

/// Each workspace crate's normal (not dev, not build) dependencies on other workspace crates.
fn workspace_dependencies() -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
            root,
        ])
        .output()
        .context("running cargo metadata")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout)?;
    let packages = metadata["packages"].as_array().context("no packages")?;
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut deps = BTreeMap::new();
    for p in packages {
        let normal = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|d| names.contains(d))
            .map(str::to_owned)
            .collect();
        deps.insert(p["name"].as_str().unwrap_or_default().to_owned(), normal);
    }
    Ok(deps)
}

#[test]
fn every_crate_depends_only_downwards_and_only_tests_and_the_lab_link_the_harness(
) -> anyhow::Result<()> {
    let deps = workspace_dependencies()?;
    assert!(deps.contains_key("jetsaga-lab") && deps.contains_key("jetsaga-cli"));
    let mut wrong = Vec::new();
    for (krate, on) in &deps {
        for dep in on {
            let allowed = match (layer(krate), layer(dep)) {
                (Some(a), Some(b)) => b < a,
                // The harness: for the lab, and for the harness itself.
                (Some(a), None) => a == 5,
                (None, _) => true,
            };
            if !allowed {
                wrong.push(format!("{krate} -> {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the direction: {wrong:?}"
    );
    Ok(())
}

#[test]
fn the_operator_binary_links_no_test_harness() -> anyhow::Result<()> {
    let deps = workspace_dependencies()?;
    let cli = &deps["jetsaga-cli"];
    for harness in [
        "jetsaga-testkit",
        "jetsaga-servicetest",
        "jetsaga-scenarios",
    ] {
        assert!(
            !cli.contains(&harness.to_owned()),
            "jetsaga-cli depends on {harness}"
        );
    }
    Ok(())
}
