//! `mqtt/Publish` and `mqtt/Subscribe`: MQTT 3.1.1 topics as the ends of a network.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};

use super::bridge;
use super::{AbortOnDrop, io_runtime, wait_for};
use crate::component::native::{NativeComponent, setting};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError, ReceivedOr};

/// The broker when `url` is not set.
const DEFAULT_URL: &str = "mqtt://127.0.0.1:1883";

/// How long connecting may take before the process fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests and messages on their way between a process and its MQTT tasks, at most.
const IN_FLIGHT: usize = 1024;

/// Packets larger than this are refused, both ways.
const MAX_PACKET: usize = 16 * 1024 * 1024;

/// How long to wait before connecting again after the connection broke.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Publishes each data IP on `in` as one message on the topic set on `topic`, to the MQTT
/// broker at `url` (default `mqtt://127.0.0.1:1883`; `mqtt://user:password@host:port` for a
/// login), with the QoS set on `qos` (0, 1 or 2; default 1) and the retain flag on `retain`
/// (default false).
///
/// Backpressure: at most 1,024 messages wait for the broker; beyond that `in` waits. A broken
/// connection is connected again after a second, and logged. At end of stream the process ends
/// once the broker has acknowledged every message (QoS 1 and 2) or every message was written
/// (QoS 0). Brackets are not published. Failing to connect at start ends the process with an
/// error naming the broker.
#[derive(Default)]
pub struct Publish;

impl NativeComponent for Publish {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("mqtt/Publish", "Publishes each packet to an MQTT topic")
            .icon("paper-plane-o")
            .inport(PortSpec::new("in", "all", "Payloads to publish"))
            .inport(url_port())
            .inport(PortSpec::new("topic", "string", "The topic to publish on").required())
            .inport(qos_port())
            .inport(PortSpec::new(
                "retain",
                "boolean",
                "Whether the broker keeps the last message for new subscribers (default false)",
            ))
    }
}

impl Component for Publish {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let url = read_text(ctx, "url")?.unwrap_or_else(|| DEFAULT_URL.to_string());
        let Some(topic) = read_text(ctx, "topic")? else {
            return Err(ProcessError::failed("inport 'topic': no topic given"));
        };
        let qos = read_qos(ctx)?;
        let retain = match read_text(ctx, "retain")?.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ProcessError::failed(format!(
                    "inport 'retain': invalid value '{other}': expected true or false"
                )));
            }
        };
        let input = ctx.inport("in")?;
        let runtime = io_runtime()?;
        let (address, node) = (url.clone(), ctx.node().to_string());
        let (client, mut events) = wait_for(ctx, async move { connect(&address, &node).await })??;
        // Acknowledged (or, at QoS 0, written) messages, counted by the event loop's task.
        let done = Arc::new(AtomicU64::new(0));
        let counted = done.clone();
        let label = format!("mqtt/Publish '{}' ({url})", ctx.node());
        let polling = runtime.spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                        counted.fetch_add(1, Ordering::Release);
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(0))) if qos == QoS::AtMostOnce => {
                        counted.fetch_add(1, Ordering::Release);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!("{label}: {error}; connecting again");
                        tokio::time::sleep(RECONNECT_AFTER).await;
                    }
                }
            }
        });
        let _polling = AbortOnDrop(polling);
        let (to_task, mut from_process) = bridge::to_task::<Bytes>(IN_FLIGHT);
        let (finished, wait) = crossbeam_channel::bounded::<Result<u64, String>>(1);
        let publisher = runtime.spawn(async move {
            let mut batch = Vec::with_capacity(64);
            let mut sent = 0;
            while from_process.recv_many(&mut batch, 64).await > 0 {
                for payload in batch.drain(..) {
                    if let Err(error) = client.publish(topic.clone(), qos, retain, payload).await {
                        let _ = finished.send(Err(format!("cannot publish to {url}: {error}")));
                        return;
                    }
                    sent += 1;
                }
            }
            let _ = finished.send(Ok(sent));
        });
        let _publisher = AbortOnDrop(publisher);
        bridge::forward_from_port(ctx, input, &to_task)?;
        drop(to_task);
        let sent = match ctx.recv_any_or(&[], &wait)? {
            ReceivedOr::Channel(Some(Ok(sent))) => sent,
            ReceivedOr::Channel(Some(Err(reason))) => return Err(ProcessError::Failed(reason)),
            _ => return Ok(()),
        };
        // Every message handed over; wait (a stop ends the wait) until the broker has them.
        while done.load(Ordering::Acquire) < sent {
            ctx.sleep(Duration::from_millis(5))?;
        }
        Ok(())
    }
}

/// Sends the payload of each message on the topic filter set on `topic` (wildcards `+` and
/// `#`) from the MQTT broker at `url` to `out`, until the network stops, subscribing with the
/// QoS on `qos` (default 1).
///
/// Backpressure: up to 1,024 messages wait here; beyond that this client stops reading from
/// the broker, which then queues for it within its own limits (mosquitto: 1,000 messages by
/// default, then it drops QoS 0 messages) before dropping. After a broken connection it
/// connects and subscribes again, and logs it.
#[derive(Default)]
pub struct Subscribe;

impl NativeComponent for Subscribe {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("mqtt/Subscribe", "Sends the messages of an MQTT topic")
            .icon("rss-square")
            .inport(url_port())
            .inport(
                PortSpec::new(
                    "topic",
                    "string",
                    "The topic filter to subscribe to (wildcards + and # allowed)",
                )
                .required(),
            )
            .inport(qos_port())
            .outport(PortSpec::new("out", "all", "The payloads of the messages"))
    }
}

impl Component for Subscribe {
    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let url = read_text(ctx, "url")?.unwrap_or_else(|| DEFAULT_URL.to_string());
        let Some(topic) = read_text(ctx, "topic")? else {
            return Err(ProcessError::failed("inport 'topic': no topic given"));
        };
        let qos = read_qos(ctx)?;
        let output = ctx.outport("out")?;
        let runtime = io_runtime()?;
        let (address, node) = (url.clone(), ctx.node().to_string());
        let (client, mut events) = wait_for(ctx, async move { connect(&address, &node).await })??;
        let (to_process, from_task) = bridge::channel::<Bytes>(IN_FLIGHT);
        let label = format!("mqtt/Subscribe '{}' ({url})", ctx.node());
        let subscribing = runtime.spawn(async move {
            if client.subscribe(topic.clone(), qos).await.is_err() {
                return;
            }
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(message))) => {
                        if to_process.send(message.payload).await.is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                        // A new session after a reconnection: the subscription is gone.
                        tracing::info!("{label}: connected again; subscribing again");
                        let _ = client.try_subscribe(topic.clone(), qos);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!("{label}: {error}; connecting again");
                        tokio::time::sleep(RECONNECT_AFTER).await;
                    }
                }
            }
        });
        let _subscribing = AbortOnDrop(subscribing);
        bridge::forward_to_port(ctx, &from_task, output)
    }
}

fn url_port() -> PortSpec {
    PortSpec::new(
        "url",
        "string",
        "The MQTT broker (default mqtt://127.0.0.1:1883)",
    )
}

fn qos_port() -> PortSpec {
    PortSpec::new(
        "qos",
        "int",
        "The quality of service: 0, 1 or 2 (default 1)",
    )
}

/// The trimmed text set on `name`, if any.
fn read_text(ctx: &mut ProcessContext, name: &'static str) -> Result<Option<String>, ProcessError> {
    Ok(match ctx.read_config(name)? {
        Some(value) => Some(setting::text(name, value)?.trim().to_string()),
        None => None,
    })
}

fn read_qos(ctx: &mut ProcessContext) -> Result<QoS, ProcessError> {
    match read_text(ctx, "qos")?.as_deref() {
        None | Some("1") => Ok(QoS::AtLeastOnce),
        Some("0") => Ok(QoS::AtMostOnce),
        Some("2") => Ok(QoS::ExactlyOnce),
        Some(other) => Err(ProcessError::failed(format!(
            "inport 'qos': invalid value '{other}': expected 0, 1 or 2"
        ))),
    }
}

/// The broker's options from `url`: `mqtt://[user:password@]host[:port]` (`tcp://` too, or no
/// scheme at all).
fn options(url: &str, node: &str) -> Result<MqttOptions, String> {
    let rest = ["mqtt://", "tcp://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .unwrap_or(url);
    if rest.contains("://") {
        return Err(format!(
            "unsupported URL '{url}': expected mqtt://host:port (TLS is not supported yet)"
        ));
    }
    let rest = rest.trim_end_matches('/');
    let (login, address) = match rest.rsplit_once('@') {
        Some((login, address)) => (Some(login), address),
        None => (None, rest),
    };
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("invalid port in '{url}'"))?,
        ),
        None => (address, 1883),
    };
    if host.is_empty() {
        return Err(format!("no host in '{url}'"));
    }
    let client_id = format!("flowd-{node}-{}", uuid::Uuid::new_v4().simple());
    let mut options = MqttOptions::new(client_id, host.trim_matches(['[', ']']), port);
    options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(login) = login {
        let (user, password) = login.split_once(':').unwrap_or((login, ""));
        options.set_credentials(user, password);
    }
    Ok(options)
}

/// A client connected to the broker at `url`: its first connection is made here, so that a
/// broker that is not there is an error at start naming it.
async fn connect(url: &str, node: &str) -> Result<(AsyncClient, EventLoop), ProcessError> {
    let cannot =
        |why: String| ProcessError::failed(format!("cannot connect to MQTT at {url}: {why}"));
    let options =
        options(url, node).map_err(|why| ProcessError::failed(format!("inport 'url': {why}")))?;
    let (client, mut events) = AsyncClient::new(options, IN_FLIGHT);
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
    })
    .await;
    match connected {
        Ok(Ok(())) => Ok((client, events)),
        Ok(Err(why)) => Err(cannot(why)),
        Err(_) => Err(cannot(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}
