//! The last check of a chaos run: each service rebuilt from the streams alone must be the live
//! service, row for row (`jetsaga replay --verify`, for every service).

use jetsaga_cli::replay::rebuild_and_compare;
use jetsaga_cli::targets::Targets;
use jetsaga_contracts::Producer;
use std::collections::BTreeMap;

/// Per service, the rows of a rebuild that differ from the live database, plus the inputs whose
/// replay diverged or failed; and the first of them in words.
pub async fn differences(targets: &Targets) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut by_service = BTreeMap::new();
    let mut problems = Vec::new();
    for producer in Producer::ALL {
        let service = producer.service();
        match rebuild_and_compare(targets, producer).await {
            Ok((replay, compared)) => {
                let t = replay.total();
                let n = compared.differences.len() + (t.diverged + t.failed) as usize;
                by_service.insert(service.to_owned(), n);
                problems.extend(compared.differences.iter().take(3).map(|d| {
                    format!(
                        "the {service} service rebuilt from the streams: {} {} {} (live {}, rebuilt {})",
                        d.table,
                        d.key,
                        d.what(),
                        d.live.as_ref().map_or("-".to_owned(), |v| v.to_string()),
                        d.rebuilt.as_ref().map_or("-".to_owned(), |v| v.to_string()),
                    )
                }));
                problems.extend(
                    replay
                        .divergences
                        .iter()
                        .chain(&replay.failures)
                        .take(3)
                        .map(|p| format!("the {service} service rebuilt from the streams: {p}")),
                );
            }
            Err(e) => {
                by_service.insert(service.to_owned(), 1);
                problems.push(format!("rebuilding the {service} service: {e:#}"));
            }
        }
    }
    (by_service, problems)
}
