//! Faults on the wire: events published straight onto a stream, as a duplicate, a replay, a forgery
//! or junk would arrive.

use async_nats::jetstream::{self, message::PublishMessage};
use saga_kit::Envelope;

/// A JetStream context on the system's NATS (with the URL's credentials, if any).
pub async fn jetstream(nats_url: &str) -> anyhow::Result<jetstream::Context> {
    let client = saga_kit::provision::connect(nats_url, "scenario-inject").await?;
    Ok(jetstream::new(client))
}

/// Publishes an event envelope under the given `Nats-Msg-Id`; returns the stream sequence.
pub async fn publish_envelope(
    js: &jetstream::Context,
    env: &Envelope,
    msg_id: &str,
) -> anyhow::Result<u64> {
    let publish = env.publish_message().message_id(msg_id);
    Ok(js
        .send_publish(env.subject.clone(), publish)
        .await?
        .await?
        .sequence)
}

/// Publishes raw bytes with no envelope at all.
pub async fn publish_junk(
    js: &jetstream::Context,
    subject: &str,
    payload: Vec<u8>,
) -> anyhow::Result<u64> {
    publish_junk_with_headers(js, subject, payload, async_nats::HeaderMap::new()).await
}

/// Publishes raw bytes with the given headers and no envelope, as a broken producer would (a NUL
/// byte in a header value, say); a fresh `Nats-Msg-Id` is added.
pub async fn publish_junk_with_headers(
    js: &jetstream::Context,
    subject: &str,
    payload: Vec<u8>,
    headers: async_nats::HeaderMap,
) -> anyhow::Result<u64> {
    let publish = PublishMessage::build()
        .payload(payload.into())
        .headers(headers)
        .message_id(uuid::Uuid::new_v4().to_string());
    Ok(js
        .send_publish(subject.to_owned(), publish)
        .await?
        .await?
        .sequence)
}

/// Reads a stored message back by its stream sequence: (subject, headers as JSON, payload).
pub async fn read_message(
    js: &jetstream::Context,
    stream: &str,
    seq: u64,
) -> anyhow::Result<(String, serde_json::Value, Vec<u8>)> {
    let m = js.get_stream(stream).await?.get_raw_message(seq).await?;
    let mut headers = serde_json::Map::new();
    for (k, vals) in m.headers.iter() {
        if let Some(v) = vals.first() {
            headers.insert(
                k.to_string(),
                serde_json::Value::String(v.as_str().to_owned()),
            );
        }
    }
    Ok((
        m.subject.to_string(),
        serde_json::Value::Object(headers),
        m.payload.to_vec(),
    ))
}

/// Publishes a stored message again under a new Msg-Id: the same event, past the dedupe window.
pub async fn republish(js: &jetstream::Context, stream: &str, seq: u64) -> anyhow::Result<u64> {
    let (subject, headers, payload) = read_message(js, stream, seq).await?;
    let publish = PublishMessage::build()
        .payload(payload.into())
        .headers(saga_kit::envelope::header_map(&headers))
        .message_id(uuid::Uuid::new_v4().to_string());
    Ok(js.send_publish(subject, publish).await?.await?.sequence)
}
