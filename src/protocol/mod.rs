//! The FBP Network Protocol: messages, capabilities, and the handlers that turn a client's
//! request into changes of the [`Runtime`] and answers.
//!
//! One module per subprotocol (`runtime`, `graph`, `network`, `component`, `trace`). Each
//! handler parses its payload leniently, checks everything before it changes anything, and
//! either applies the change and answers, or answers `<protocol>:error` and changes nothing.
//! The texts the official test suite and noflo-ui depend on (`No graph specified`, `Requested
//! graph not found`, `<protocol>:<command> is not permitted`, `... not supported`) are kept
//! exactly.

mod capability;
mod component;
mod fields;
mod graph;
mod message;
pub(crate) mod network;
mod runtime;
mod trace;

pub use capability::{Capabilities, Capability};
pub(crate) use component::component_message;
pub(crate) use fields::port_json;
pub use message::{FrameError, Message, Request, known_protocol, protocol_name};

use serde_json::{Map, Value};

use crate::runtime::{ClientId, Runtime};

/// The protocol version flowd speaks (0.8 was never tagged; clients accept up to 0.9).
pub const VERSION: &str = "0.7";

/// Where the answers to one request go: the requesting client, with the request's
/// `requestId` as `responseTo`.
pub(crate) struct Reply {
    client: ClientId,
    response_to: Option<Value>,
    protocol: &'static str,
}

impl Reply {
    /// Sends a message to the requester only.
    pub(crate) fn send(&self, runtime: &mut Runtime, message: Message) {
        runtime
            .clients
            .send(self.client, &message, self.response_to.as_ref());
    }

    /// Sends a message to the requester (as its answer) and to every other client allowed to
    /// receive it.
    pub(crate) fn broadcast(&self, runtime: &mut Runtime, message: Message) {
        runtime
            .clients
            .broadcast(&message, Some((self.client, self.response_to.as_ref())));
    }

    /// As [`Reply::broadcast`] for a network event of graph `graph` (recorded in its trace).
    pub(crate) fn report(&self, runtime: &mut Runtime, graph: &str, message: Message) {
        runtime.report_to(
            graph,
            &message,
            Some((self.client, self.response_to.as_ref())),
        );
    }

    /// Answers with `<protocol>:error`.
    pub(crate) fn error(&self, runtime: &mut Runtime, message: impl Into<String>) {
        self.send(runtime, Message::error(self.protocol, message));
    }

    /// What the requesting client may do.
    pub(crate) fn capabilities(&self, runtime: &Runtime) -> Capabilities {
        runtime.clients.capabilities(self.client)
    }
}

/// What a handler returns: `Err` is answered as `<protocol>:error` with its text.
pub(crate) type Handled = Result<(), String>;

/// Parses one frame from `client` and runs its command.
pub(crate) fn dispatch(runtime: &mut Runtime, client: ClientId, text: &str) {
    let request = match Request::parse(text) {
        Ok(request) => request,
        Err(error) => {
            runtime.send(client, &Message::error(&error.protocol, error.message));
            return;
        }
    };
    let capabilities = runtime.capabilities_for(request.secret.as_deref());
    runtime.clients.set_capabilities(client, capabilities);
    let Some(protocol) = protocol_name(&request.protocol) else {
        let message = format!(
            "unknown protocol '{}' (flowd speaks runtime, graph, network, component and trace)",
            request.protocol
        );
        runtime.send(client, &Message::error("runtime", message));
        return;
    };
    let reply = Reply {
        client,
        response_to: request.request_id.clone(),
        protocol,
    };
    let command = request.command.as_str();
    if !capabilities.may_send(protocol, command) {
        // Granted to this client but not offered by this runtime: say why.
        let granted = runtime
            .granted_to(request.secret.as_deref())
            .may_send(protocol, command);
        let unoffered = Capability::ALL.into_iter().find_map(|capability| {
            let needed = !Capabilities::all()
                .without(capability)
                .may_send(protocol, command);
            runtime
                .why_not_offered(capability)
                .filter(|_| granted && needed)
        });
        let message = match unoffered {
            Some(why) => format!("{protocol}:{command} is not offered: {why}"),
            None => format!("{protocol}:{command} is not permitted"),
        };
        reply.error(runtime, message);
        return;
    }
    let payload = request.payload;
    // A bug in a handler must cost one request, not the client's connection or the runtime.
    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match protocol {
        "runtime" => runtime::handle(runtime, &reply, command, &payload),
        "graph" => graph::handle(runtime, &reply, command, &payload),
        "network" => network::handle(runtime, &reply, command, &payload),
        "component" => component::handle(runtime, &reply, command, &payload),
        _ => trace::handle(runtime, &reply, command, &payload),
    }))
    .unwrap_or_else(|panic| {
        let cause = crate::engine::panic_message(&*panic);
        tracing::error!("{protocol}:{command} panicked: {cause}");
        Err(format!(
            "flowd failed inside {protocol}:{command} ({cause}); it may have been partly \
             applied. This is a bug in flowd: please report it"
        ))
    });
    if let Err(message) = handled {
        reply.error(runtime, message);
    }
}

/// The answer to a command the protocol does not have.
pub(crate) fn unsupported(protocol: &str, command: &str) -> Handled {
    Err(format!("{protocol}:{command} not supported"))
}

/// The payload of a request.
pub(crate) type Payload = Map<String, Value>;
