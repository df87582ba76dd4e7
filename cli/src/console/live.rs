//! `GET /api/live`: server-sent events. Every [`EVERY`] an event `change` carries the figures a
//! page depends on (sagas by outcome, open dead letters); the page refreshes what it shows when
//! one of them moved. A figure that cannot be read is left out of that event, and the stream goes
//! on.

use super::session::Signed;
use super::Shared;
use crate::stats;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::Stream;
use jetsaga_contracts::Producer;
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;

/// How often the figures are read and sent.
pub const EVERY: Duration = Duration::from_secs(2);

/// The figures of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub confirmed: i64,
    pub cancelled: i64,
    pub pending: i64,
    pub dead_letters_open: i64,
}

/// The figures now: the sagas by outcome as `jetsaga stats` counts them, and the open dead
/// letters of every service.
pub async fn figures(state: &Shared) -> anyhow::Result<Figures> {
    let sagas = stats::outcomes(state.sources.pool(Producer::ORDER)).await?;
    let mut dead_letters_open = 0;
    for producer in Producer::ALL {
        dead_letters_open +=
            saga_kit::dead_letter::open_count(state.sources.pool(producer)).await?;
    }
    Ok(Figures {
        confirmed: sagas.confirmed,
        cancelled: sagas.cancelled,
        pending: sagas.pending,
        dead_letters_open,
    })
}

/// `GET /api/live`.
pub async fn stream(
    Signed(_): Signed,
    State(state): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = tokio::time::interval(EVERY);
    let events = futures::stream::unfold((state, ticks), |(state, mut ticks)| async move {
        ticks.tick().await;
        let event = match figures(&state).await {
            Ok(f) => Event::default()
                .event("change")
                .json_data(&f)
                .unwrap_or_else(|_| Event::default().comment("unserializable figures")),
            // A comment may not break a line.
            Err(e) => Event::default()
                .comment(format!("figures unavailable: {e}").replace(['\n', '\r'], " ")),
        };
        Some((Ok(event), (state, ticks)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
