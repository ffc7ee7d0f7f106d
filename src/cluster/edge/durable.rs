//! Durable remote edges: the frames go through a JetStream stream of their own instead of a
//! core NATS subject, so they survive a crash of the receiving runtime.
//!
//! - The stream (one per edge, named from its subject) keeps frames on disk in the server
//!   until the receiver acknowledges them (work-queue retention), and holds at most
//!   [`STREAM_FRAMES`] frames and [`STREAM_BYTES`] bytes: when it is full, the server refuses
//!   a publish and the sender tries again a little later. That is the backpressure JetStream
//!   does not give by itself, and it bounds what waits between the two ends.
//! - Each frame is published with its first sequence number as the message id, so a publish
//!   repeated after a lost acknowledgement is stored once (JetStream's deduplication).
//! - The receiver consumes with a durable pull consumer, explicit acks, in order, and
//!   acknowledges a frame only after passing all its IPs downstream. When it starts, it
//!   replaces any consumer an earlier life left, so every unacknowledged frame is delivered
//!   again at once, in order.
//!
//! So across a crash of the receiving runtime no IP is lost and none is reordered; the frame
//! being passed on when it crashed may be passed on again (at most one frame repeated per
//! crash). IPs already passed downstream live in that runtime's memory and go with it.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;

use super::EdgeLink;

/// Frames a durable edge's stream holds at most.
const STREAM_FRAMES: i64 = 64;

/// Bytes a durable edge's stream holds at most.
const STREAM_BYTES: i64 = 64 << 20;

/// How long the sender waits before publishing again into a full stream.
const FULL_BACKOFF: Duration = Duration::from_millis(5);

/// How long publishing may keep failing for other reasons (the server restarting) before the
/// edge fails.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(30);

/// The consumer's name: one per edge.
const CONSUMER: &str = "receiver";

/// The stream of `link`: its name is derived from the edge's subject (stream names may not
/// hold dots).
fn stream_name(link: &EdgeLink) -> String {
    // FNV-1a: stable across runs and programs, which std's hasher is not.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in link.data.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("FLOWD-EDGE-{hash:016x}")
}

/// Creates the edge's stream, or finds it (both ends call this, at the same time as often as
/// not: whoever loses the race to create it finds it).
pub(super) async fn ensure_stream(
    client: &async_nats::Client,
    link: &EdgeLink,
) -> Result<stream::Stream, String> {
    let context = jetstream::new(client.clone());
    let name = stream_name(link);
    if let Ok(stream) = context.get_stream(&name).await {
        return Ok(stream);
    }
    let created = context
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![link.data.clone()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            max_messages: STREAM_FRAMES,
            max_bytes: STREAM_BYTES,
            discard: stream::DiscardPolicy::New,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await;
    match created {
        Ok(stream) => Ok(stream),
        Err(error) => context
            .get_stream(&name)
            .await
            .map_err(|_| format!("cannot create its JetStream stream (is JetStream on?): {error}")),
    }
}

/// Publishes `frame` with the message id `id`, waiting while the stream is full.
pub(super) async fn publish(
    client: &async_nats::Client,
    link: &EdgeLink,
    id: String,
    frame: Bytes,
) -> Result<(), String> {
    let context = jetstream::new(client.clone());
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        let message = jetstream::message::PublishMessage::build()
            .payload(frame.clone())
            .message_id(id.clone());
        let acknowledged = match context.send_publish(link.data.clone(), message).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let Err(error) = acknowledged else {
            return Ok(());
        };
        if !error.contains("maximum") {
            let since = *failing_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() > PUBLISH_PATIENCE {
                return Err(format!("cannot publish to its JetStream stream: {error}"));
            }
        }
        tokio::time::sleep(FULL_BACKOFF).await;
    }
}

/// The edge's consumer, made afresh so that every frame not yet acknowledged comes again.
pub(super) async fn consume(
    client: &async_nats::Client,
    link: &EdgeLink,
) -> Result<consumer::pull::Stream, String> {
    let stream = ensure_stream(client, link).await?;
    // An earlier life's consumer would hold its unacknowledged frames until they time out.
    let _ = stream.delete_consumer(CONSUMER).await;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(CONSUMER.to_string()),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            max_ack_pending: STREAM_FRAMES,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("cannot create its JetStream consumer: {e}"))?;
    consumer
        .messages()
        .await
        .map_err(|e| format!("cannot consume its JetStream stream: {e}"))
}

/// Removes the edge's stream once the stream of IPs has ended.
pub(super) async fn remove(client: &async_nats::Client, link: &EdgeLink) {
    let _ = jetstream::new(client.clone())
        .delete_stream(stream_name(link))
        .await;
}
