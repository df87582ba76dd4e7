//! The committed contract documents (`docs/api/*.json`, `docs/events/asyncapi.json`) are what the
//! code generates: a route, a field or an event that changes without its document fails here.

#[test]
fn every_committed_contract_document_is_what_the_code_generates() -> anyhow::Result<()> {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut stale = Vec::new();
    for (path, generated) in jetsaga_lab::docs::documents()? {
        let committed = std::fs::read_to_string(docs.join(&path)).unwrap_or_default();
        if committed != generated {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "not what the code generates (run `jetsaga-lab docs`): {stale:?}"
    );
    Ok(())
}
