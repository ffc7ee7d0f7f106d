//! Capabilities: what a client may send and receive, as the protocol's capability table has it.

use std::fmt;
use std::str::FromStr;

/// One capability of the FBP Network Protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `protocol:runtime`: send packets to exported inports, receive exported outports.
    ProtocolRuntime,
    /// `protocol:graph`: edit graphs.
    ProtocolGraph,
    /// `graph:readonly`: follow graph edits without making any.
    GraphReadonly,
    /// `protocol:component`: list components.
    ProtocolComponent,
    /// `component:getsource`: read a component's source (graphs as FBP JSON).
    ComponentGetsource,
    /// `component:setsource`: create components from source (graphs as subgraphs).
    ComponentSetsource,
    /// `protocol:network`: the deprecated umbrella of network control, status and data.
    ProtocolNetwork,
    /// `network:control`: start and stop networks.
    NetworkControl,
    /// `network:status`: ask whether networks run.
    NetworkStatus,
    /// `network:data`: watch packets and process errors.
    NetworkData,
    /// `network:persist`: save graphs to their files.
    NetworkPersist,
    /// `protocol:trace`: record and dump flowtraces.
    ProtocolTrace,
}

impl Capability {
    /// Every capability, in the order `runtime:runtime` lists them.
    pub const ALL: [Capability; 12] = [
        Capability::ProtocolRuntime,
        Capability::ProtocolGraph,
        Capability::GraphReadonly,
        Capability::ProtocolComponent,
        Capability::ComponentGetsource,
        Capability::ComponentSetsource,
        Capability::ProtocolNetwork,
        Capability::NetworkControl,
        Capability::NetworkStatus,
        Capability::NetworkData,
        Capability::NetworkPersist,
        Capability::ProtocolTrace,
    ];

    /// The capability's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ProtocolRuntime => "protocol:runtime",
            Capability::ProtocolGraph => "protocol:graph",
            Capability::GraphReadonly => "graph:readonly",
            Capability::ProtocolComponent => "protocol:component",
            Capability::ComponentGetsource => "component:getsource",
            Capability::ComponentSetsource => "component:setsource",
            Capability::ProtocolNetwork => "protocol:network",
            Capability::NetworkControl => "network:control",
            Capability::NetworkStatus => "network:status",
            Capability::NetworkData => "network:data",
            Capability::NetworkPersist => "network:persist",
            Capability::ProtocolTrace => "protocol:trace",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(name: &str) -> Result<Capability, String> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
                format!("unknown capability '{name}' (known: {})", known.join(", "))
            })
    }
}

/// The 20 commands of the graph subprotocol.
pub(crate) const GRAPH_COMMANDS: [&str; 20] = [
    "clear",
    "addnode",
    "removenode",
    "renamenode",
    "changenode",
    "addedge",
    "removeedge",
    "changeedge",
    "addinitial",
    "removeinitial",
    "addinport",
    "removeinport",
    "renameinport",
    "addoutport",
    "removeoutport",
    "renameoutport",
    "addgroup",
    "removegroup",
    "renamegroup",
    "changegroup",
];

/// A set of capabilities: what one client was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(u16);

impl Capabilities {
    /// No capability: the client may only ask for `runtime:getruntime`.
    pub const NONE: Capabilities = Capabilities(0);

    /// Every capability.
    pub fn all() -> Capabilities {
        Capability::ALL.into_iter().collect()
    }

    /// What a read-only observer gets: follow graphs and network status, list components and
    /// read their sources; change nothing and see no packets.
    pub fn read_only() -> Capabilities {
        [
            Capability::GraphReadonly,
            Capability::NetworkStatus,
            Capability::ProtocolComponent,
            Capability::ComponentGetsource,
        ]
        .into_iter()
        .collect()
    }

    /// The set without `capability`.
    pub fn without(self, capability: Capability) -> Capabilities {
        Capabilities(self.0 & !capability.bit())
    }

    /// The capabilities in both sets.
    pub fn intersect(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & other.0)
    }

    /// Whether `capability` is in the set.
    pub fn has(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    fn any(self, capabilities: &[Capability]) -> bool {
        capabilities.iter().any(|c| self.has(*c))
    }

    /// The capabilities, in the order of [`Capability::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.has(*c))
    }

    /// The capability names, for `runtime:runtime`.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Capability::as_str).collect()
    }

    /// Whether a client holding this set may send `protocol:command`.
    ///
    /// Commands the protocol does not have are allowed here, whoever asks: they get "not
    /// supported" from their handler, which says more than "not permitted".
    pub fn may_send(self, protocol: &str, command: &str) -> bool {
        use Capability::*;
        match (protocol, command) {
            ("runtime", "getruntime") => true,
            ("runtime", "packet") => self.has(ProtocolRuntime),
            ("graph", command) if GRAPH_COMMANDS.contains(&command) => self.has(ProtocolGraph),
            ("component", "list") => self.has(ProtocolComponent),
            ("component", "getsource") => self.has(ComponentGetsource),
            ("component", "source") => self.has(ComponentSetsource),
            ("network", "start" | "stop" | "debug") => self.any(&[ProtocolNetwork, NetworkControl]),
            ("network", "getstatus") => self.any(&[ProtocolNetwork, NetworkControl, NetworkStatus]),
            ("network", "edges") => self.any(&[ProtocolNetwork, NetworkData]),
            ("network", "persist") => self.has(NetworkPersist),
            ("trace", "start" | "stop" | "clear" | "dump") => self.has(ProtocolTrace),
            _ => true,
        }
    }

    /// Whether a client holding this set may receive `protocol:command` (strict clients
    /// reject anything else, so broadcasts are filtered with this).
    pub fn may_receive(self, protocol: &str, command: &str) -> bool {
        use Capability::*;
        match (protocol, command) {
            ("runtime", "runtime") => true,
            ("runtime", _) => self.has(ProtocolRuntime),
            ("graph", _) => self.any(&[ProtocolGraph, GraphReadonly]),
            ("component", "componentsready") => self.has(ProtocolComponent),
            ("component", "component") => self.any(&[ProtocolComponent, ComponentSetsource]),
            ("component", "source") => self.has(ComponentGetsource),
            ("component", _) => {
                self.any(&[ProtocolComponent, ComponentGetsource, ComponentSetsource])
            }
            ("network", "started" | "stopped" | "status") => {
                self.any(&[ProtocolNetwork, NetworkControl, NetworkStatus])
            }
            ("network", "persist") => self.has(NetworkPersist),
            ("network", "error") => self.any(&[
                ProtocolNetwork,
                NetworkControl,
                NetworkStatus,
                NetworkData,
                NetworkPersist,
            ]),
            ("network", _) => self.any(&[ProtocolNetwork, NetworkData]),
            ("trace", _) => self.has(ProtocolTrace),
            _ => false,
        }
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Capabilities {
        Capabilities(iter.into_iter().fold(0, |bits, c| bits | c.bit()))
    }
}

impl FromStr for Capabilities {
    type Err = String;

    /// Parses `all`, `readonly`, or a comma-separated list of capability names.
    fn from_str(text: &str) -> Result<Capabilities, String> {
        match text.trim() {
            "all" => Ok(Capabilities::all()),
            "readonly" | "read-only" => Ok(Capabilities::read_only()),
            list => list
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(Capability::from_str)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for capability in Capability::ALL {
            assert_eq!(capability.as_str().parse::<Capability>(), Ok(capability));
        }
        assert!("protocol:nope".parse::<Capability>().is_err());
    }

    #[test]
    fn read_only_follows_but_cannot_edit() {
        let caps = Capabilities::read_only();
        assert!(caps.may_receive("graph", "addnode"));
        assert!(!caps.may_send("graph", "addnode"));
        assert!(caps.may_send("network", "getstatus"));
        assert!(!caps.may_send("network", "start"));
        assert!(!caps.may_receive("network", "data"));
        assert!(caps.may_receive("network", "status"));
    }

    #[test]
    fn sets_parse_from_text() {
        assert_eq!("all".parse(), Ok(Capabilities::all()));
        let caps: Capabilities = "protocol:graph, network:status".parse().unwrap();
        assert_eq!(caps.names(), vec!["protocol:graph", "network:status"]);
        assert!("protocol:graph,bogus".parse::<Capabilities>().is_err());
    }
}
