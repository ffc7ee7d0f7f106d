//! `nats/Publish` and `nats/Subscribe`: core NATS subjects as the ends of a network.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::bridge;
use super::{AbortOnDrop, io_runtime, wait_for};
use crate::component::native::{NativeComponent, setting};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError, ReceivedOr};

/// The server when `url` is not set.
const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// How long connecting may take before the process fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages on their way between a process and its NATS task, at most.
const IN_FLIGHT: usize = 1024;

/// Publishes each data IP on `in` as one message on the subject set on `subject`, to the NATS
/// server at `url` (default `nats://127.0.0.1:4222`; `nats://user:pass@host:port` and several
/// servers separated by commas work too).
///
/// Backpressure: while the server connection is slow or lost, the NATS client buffers a bounded
/// amount and then publishing waits, and so does `in`. The client reconnects by itself; each
/// change is logged. At end of stream everything published is flushed to the server before
/// the process ends. Brackets are not published. Failing to connect at start ends the process
/// with an error naming the server.
#[derive(Default)]
pub struct Publish;

impl NativeComponent for Publish {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("nats/Publish", "Publishes each packet to a NATS subject")
            .icon("paper-plane")
            .inport(PortSpec::new("in", "all", "Payloads to publish"))
            .inport(url_port())
            .inport(PortSpec::new("subject", "string", "The subject to publish on").required())
    }
}

impl Component for Publish {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let url = read_url(ctx)?;
        // A `Subject` shares its bytes: one clone per message copies nothing.
        let subject = async_nats::Subject::from(read_required(ctx, "subject")?);
        let input = ctx.inport("in")?;
        let runtime = io_runtime()?;
        let (address, node) = (url.clone(), ctx.node().to_string());
        let client = wait_for(ctx, async move {
            connect(&address, &node, "nats/Publish").await
        })??;
        let (to_task, mut from_process) = bridge::to_task::<Bytes>(IN_FLIGHT);
        let (done, finished) = crossbeam_channel::bounded::<Result<(), String>>(1);
        let publisher = runtime.spawn(async move {
            let mut batch = Vec::with_capacity(64);
            let result = async {
                while from_process.recv_many(&mut batch, 64).await > 0 {
                    for payload in batch.drain(..) {
                        client
                            .publish(subject.clone(), payload)
                            .await
                            .map_err(|e| format!("cannot publish to {url}: {e}"))?;
                    }
                }
                client
                    .flush()
                    .await
                    .map_err(|e| format!("cannot flush to {url}: {e}"))
            }
            .await;
            let _ = done.send(result);
        });
        let _publisher = AbortOnDrop(publisher);
        bridge::forward_from_port(ctx, input, &to_task)?;
        drop(to_task);
        match ctx.recv_any_or(&[], &finished)? {
            ReceivedOr::Channel(Some(Err(reason))) => Err(ProcessError::Failed(reason)),
            _ => Ok(()),
        }
    }
}

/// Sends the payload of each message on the subject set on `subject` (wildcards allowed) from
/// the NATS server at `url` to `out`, until the network stops. With `queue` set, the messages
/// are shared among every subscriber of that queue group instead of copied to each.
///
/// Core NATS has no backpressure towards publishers: when the network is slower than they are,
/// up to 1,024 messages wait here and 65,536 more in the NATS client, and beyond that the
/// client drops messages (a "slow consumer", logged as a warning). Use a faster network, a
/// queue group, or JetStream where no message may be lost.
#[derive(Default)]
pub struct Subscribe;

impl NativeComponent for Subscribe {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("nats/Subscribe", "Sends the messages of a NATS subject")
            .icon("rss")
            .inport(url_port())
            .inport(
                PortSpec::new(
                    "subject",
                    "string",
                    "The subject to subscribe to (wildcards * and > allowed)",
                )
                .required(),
            )
            .inport(PortSpec::new(
                "queue",
                "string",
                "A queue group to share the messages with (default: none)",
            ))
            .outport(PortSpec::new("out", "all", "The payloads of the messages"))
    }
}

impl Component for Subscribe {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let url = read_url(ctx)?;
        let subject = read_required(ctx, "subject")?;
        let queue = ctx
            .read_config("queue")?
            .map(|q| q.to_string_lossy().trim().to_string())
            .filter(|q| !q.is_empty());
        let output = ctx.outport("out")?;
        let runtime = io_runtime()?;
        let node = ctx.node().to_string();
        let address = url.clone();
        let subscriber = wait_for(ctx, async move {
            let (url, subject) = (address, subject);
            let client = connect(&url, &node, "nats/Subscribe").await?;
            let subscribed = match queue {
                Some(queue) => client.queue_subscribe(subject.clone(), queue).await,
                None => client.subscribe(subject.clone()).await,
            };
            subscribed.map_err(|e| {
                ProcessError::failed(format!("cannot subscribe to '{subject}' on {url}: {e}"))
            })
        })??;
        let (to_process, from_task) = bridge::channel::<Bytes>(IN_FLIGHT);
        let forwarder = runtime.spawn(async move {
            let mut subscriber = subscriber;
            while let Some(message) = subscriber.next().await {
                if to_process.send(message.payload).await.is_err() {
                    break;
                }
            }
        });
        let _forwarder = AbortOnDrop(forwarder);
        bridge::forward_to_port(ctx, &from_task, output)
    }
}

/// The `url` port, shared by both components.
fn url_port() -> PortSpec {
    PortSpec::new(
        "url",
        "string",
        "The NATS server (default nats://127.0.0.1:4222)",
    )
}

fn read_url(ctx: &mut ProcessContext) -> Result<String, ProcessError> {
    Ok(ctx
        .read_config("url")?
        .map(|url| url.to_string_lossy().trim().to_string())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string()))
}

/// The text of the setting on `name`, which must be given.
fn read_required(ctx: &mut ProcessContext, name: &'static str) -> Result<String, ProcessError> {
    match ctx.read_config(name)? {
        Some(value) => setting::text(name, value).map(|text| text.trim().to_string()),
        None => Err(ProcessError::failed(format!(
            "inport '{name}': no value given"
        ))),
    }
}

/// A client connected to `url`, logging its connection's changes under `node`.
async fn connect(
    url: &str,
    node: &str,
    component: &str,
) -> Result<async_nats::Client, ProcessError> {
    client(
        url,
        &format!("flowd {node}"),
        format!("{component} '{node}' ({url})"),
    )
    .await
    .map_err(ProcessError::Failed)
}

/// A client connected to `url` under the connection name `name`, logging each change of its
/// connection with `label` in front.
///
/// # Errors
///
/// When the first connection fails within [`CONNECT_TIMEOUT`]; the message names `url`.
pub(crate) async fn client(
    url: &str,
    name: &str,
    label: String,
) -> Result<async_nats::Client, String> {
    client_with(async_nats::ConnectOptions::new(), url, name, label).await
}

/// As [`client`], starting from `options` (credentials, TLS).
pub(crate) async fn client_with(
    options: async_nats::ConnectOptions,
    url: &str,
    name: &str,
    label: String,
) -> Result<async_nats::Client, String> {
    options
        .name(name)
        .connection_timeout(CONNECT_TIMEOUT)
        .event_callback(move |event| {
            let label = label.clone();
            async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("{label}: connected"),
                    other => tracing::warn!("{label}: {other}"),
                }
            }
        })
        .connect(url)
        .await
        .map_err(|e| format!("cannot connect to NATS at {url}: {e}"))
}
