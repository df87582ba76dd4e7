//! Reading a stream from a start sequence up to the end it had when the replay began, without
//! ending early and without losing the consumer on a long replay.

use crate::consumer::RawMessage;
use async_nats::jetstream::{self, consumer::pull, consumer::DeliverPolicy};
use futures::StreamExt;
use std::collections::VecDeque;
use std::time::Duration;
use time::OffsetDateTime;

/// A replay's consumers live this long without a pull: a replay that spends minutes on one batch
/// (a slow database, a wait for an outage) must find its consumer again.
const INACTIVE_THRESHOLD: Duration = Duration::from_secs(3600);
/// Empty fetches in a row, while the server says more is pending, before the read gives up.
const EMPTY_FETCHES: u32 = 30;
/// Messages per fetch.
const BATCH: usize = 256;

/// Why a stream could not be read. Each keeps the server's error as its source.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{stream}: {step}: {source}")]
    Nats {
        stream: &'static str,
        step: &'static str,
        #[source]
        source: async_nats::Error,
    },
    #[error(
        "{stream}: the server holds {pending} more message(s) of {filters} from seq {next} but \
         delivered none in {fetches} fetches"
    )]
    Stalled {
        stream: &'static str,
        filters: String,
        next: u64,
        pending: u64,
        fetches: u32,
    },
    #[error("{stream}: reading from seq {next} keeps failing: {source}")]
    KeepsFailing {
        stream: &'static str,
        next: u64,
        #[source]
        source: Box<ReadError>,
    },
}

/// Turns a server error at `step` of reading `stream` into a [`ReadError`].
fn nats<E>(stream: &'static str, step: &'static str) -> impl Fn(E) -> ReadError
where
    E: Into<async_nats::Error>,
{
    move |e| ReadError::Nats {
        stream,
        step,
        source: e.into(),
    }
}

/// What a stream held when the replay began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The first sequence the stream still holds (`last + 1` when it holds nothing).
    pub first: u64,
    /// The last sequence it ever stored.
    pub last: u64,
}

/// The bounds of `stream` now.
pub async fn bounds(js: &jetstream::Context, stream: &'static str) -> Result<Bounds, ReadError> {
    let mut s = js
        .get_stream(stream)
        .await
        .map_err(nats(stream, "looking up the stream"))?;
    let state = s
        .info()
        .await
        .map_err(nats(stream, "reading the stream's state"))?
        .state
        .clone();
    Ok(Bounds {
        first: if state.messages == 0 {
            state.last_sequence + 1
        } else {
            state.first_sequence
        },
        last: state.last_sequence,
    })
}

/// The sequence of the first message of `filters` stored at or after `time`, if any.
pub async fn first_at(
    js: &jetstream::Context,
    stream: &'static str,
    filters: &[String],
    time: OffsetDateTime,
) -> Result<Option<u64>, ReadError> {
    let s = js
        .get_stream(stream)
        .await
        .map_err(nats(stream, "looking up the stream"))?;
    let probe = s
        .create_consumer(pull::Config {
            filter_subjects: filters.to_vec(),
            deliver_policy: DeliverPolicy::ByStartTime { start_time: time },
            ack_policy: jetstream::consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(nats(stream, "probing where a time starts"))?;
    let mut batch = probe
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .map_err(nats(stream, "probing where a time starts"))?;
    let first = match batch.next().await {
        Some(msg) => Some(
            msg.map_err(nats(stream, "probing where a time starts"))?
                .info()
                .map_err(nats(stream, "reading a message's sequence"))?
                .stream_sequence,
        ),
        None => None,
    };
    let _ = s.delete_consumer(&probe.cached_info().name).await;
    Ok(first)
}

/// One message read, with when its stream stored it.
#[derive(Debug, Clone)]
pub struct Read {
    pub stored: OffsetDateTime,
    pub raw: RawMessage,
}

/// Reads `filters` of `stream` from `start` to `end` (inclusive), in sequence order.
pub struct Reader {
    js: jetstream::Context,
    stream: &'static str,
    filters: Vec<String>,
    label: String,
    consumer: Option<jetstream::consumer::Consumer<pull::Config>>,
    /// The next sequence to ask for.
    next: u64,
    end: u64,
    buffer: VecDeque<Read>,
    done: bool,
    /// Messages read so far.
    pub read: u64,
    /// Messages the server said were pending when the read began.
    pub pending_at_start: u64,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("stream", &self.stream)
            .field("filters", &self.filters)
            .field("next", &self.next)
            .field("end", &self.end)
            .finish()
    }
}

impl Reader {
    /// A reader of `filters` on `stream` from `start` to `end`; `label` names its consumer.
    pub async fn open(
        js: &jetstream::Context,
        stream: &'static str,
        filters: Vec<String>,
        label: &str,
        start: u64,
        end: u64,
    ) -> Result<Self, ReadError> {
        let mut reader = Reader {
            js: js.clone(),
            stream,
            filters,
            label: label.to_owned(),
            consumer: None,
            next: start.max(1),
            end,
            buffer: VecDeque::new(),
            done: start > end,
            read: 0,
            pending_at_start: 0,
        };
        if !reader.done {
            let consumer = reader.create().await?;
            reader.pending_at_start = consumer.cached_info().num_pending;
            reader.done = reader.pending_at_start == 0;
            reader.consumer = Some(consumer);
        }
        Ok(reader)
    }

    async fn create(&self) -> Result<jetstream::consumer::Consumer<pull::Config>, ReadError> {
        let s = self
            .js
            .get_stream(self.stream)
            .await
            .map_err(nats(self.stream, "looking up the stream"))?;
        s.create_consumer(pull::Config {
            name: Some(format!(
                "replay-{}-{}",
                self.label,
                uuid::Uuid::new_v4().simple()
            )),
            description: Some(format!("jetsaga replay: {}", self.label)),
            filter_subjects: self.filters.clone(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: self.next,
            },
            ack_policy: jetstream::consumer::AckPolicy::None,
            inactive_threshold: INACTIVE_THRESHOLD,
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(nats(self.stream, "creating a reading consumer"))
    }

    /// The next message without taking it; `None` once `end` is reached.
    pub async fn peek(&mut self) -> Result<Option<&Read>, ReadError> {
        self.fill().await?;
        Ok(self.buffer.front())
    }

    /// The next message; `None` once `end` is reached.
    pub async fn next(&mut self) -> Result<Option<Read>, ReadError> {
        self.fill().await?;
        Ok(self.buffer.pop_front())
    }

    /// Fetches when the buffer is empty. A short or empty fetch is not the end: the read ends at
    /// `end`, or when the server has nothing pending for the filters. A consumer that went away is
    /// created again from where the read stands.
    async fn fill(&mut self) -> Result<(), ReadError> {
        let mut empty = 0u32;
        let mut recreated = 0u32;
        while self.buffer.is_empty() && !self.done {
            let fetched = self.fetch().await;
            match fetched {
                Ok(0) if !self.done => {
                    let stream = self.stream;
                    let pending = match self.consumer.as_mut() {
                        Some(c) => c
                            .info()
                            .await
                            .map(|i| i.num_pending)
                            .map_err(nats(stream, "asking what is pending")),
                        None => Ok(1),
                    };
                    match pending {
                        Ok(0) => self.done = true,
                        Ok(n) => {
                            empty += 1;
                            if empty >= EMPTY_FETCHES {
                                return Err(ReadError::Stalled {
                                    stream,
                                    filters: self.filters.join(","),
                                    next: self.next,
                                    pending: n,
                                    fetches: EMPTY_FETCHES,
                                });
                            }
                        }
                        Err(e) => self.recreate(&mut recreated, e).await?,
                    }
                }
                Ok(_) => {}
                Err(e) => self.recreate(&mut recreated, e).await?,
            }
        }
        Ok(())
    }

    async fn recreate(&mut self, times: &mut u32, error: ReadError) -> Result<(), ReadError> {
        *times += 1;
        if *times > 5 {
            return Err(ReadError::KeepsFailing {
                stream: self.stream,
                next: self.next,
                source: Box::new(error),
            });
        }
        tracing::warn!(stream = self.stream, next = self.next, error = %error, "replay consumer lost; creating it again");
        tokio::time::sleep(Duration::from_millis(500 * u64::from(*times))).await;
        self.consumer = Some(self.create().await?);
        Ok(())
    }

    /// One fetch; returns how many messages it buffered.
    async fn fetch(&mut self) -> Result<usize, ReadError> {
        let stream = self.stream;
        if self.consumer.is_none() {
            self.consumer = Some(self.create().await?);
        }
        let Some(consumer) = self.consumer.as_ref() else {
            return Ok(0);
        };
        let mut batch = consumer
            .fetch()
            .max_messages(BATCH)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(nats(stream, "fetching"))?;
        let mut n = 0;
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(nats(stream, "fetching"))?;
            let info = msg
                .info()
                .map_err(nats(stream, "reading a message's sequence"))?;
            let (seq, stored) = (info.stream_sequence, info.published);
            if seq < self.next {
                continue;
            }
            self.next = seq + 1;
            if seq > self.end {
                self.done = true;
                break;
            }
            self.buffer.push_back(Read {
                stored,
                raw: RawMessage::from_jetstream(&msg),
            });
            self.read += 1;
            n += 1;
            // Nothing more for the filters (at all, so not up to `end` either): done without
            // waiting for an empty fetch to expire.
            if seq == self.end || info.pending == 0 {
                self.done = true;
                break;
            }
        }
        Ok(n)
    }

    /// Deletes the consumer (it would go after an hour of inactivity anyway).
    pub async fn close(self) {
        if let Some(c) = self.consumer {
            if let Ok(s) = self.js.get_stream(self.stream).await {
                let _ = s.delete_consumer(&c.cached_info().name).await;
            }
        }
    }
}
