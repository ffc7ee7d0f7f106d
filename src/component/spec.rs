//! Component specs: what a component is, as data (name, ports, documentation).
//!
//! A spec is what `flowd components`, the graph validator and the protocol's `component:list`
//! show. It is kept apart from behaviour: the same spec type describes native, WebAssembly and
//! shared-object components.

use serde::Serialize;

/// The description of a component: its name, documentation and ports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentSpec {
    /// The full name with its library prefix, e.g. `core/Repeat`.
    pub name: String,
    /// One sentence saying what the component does.
    pub description: String,
    /// A Font Awesome icon name, as noflo-ui shows it (e.g. `forward`).
    pub icon: String,
    /// Whether the component is a graph used as a component.
    pub subgraph: bool,
    /// The inports, in declaration order.
    pub inports: Vec<PortSpec>,
    /// The outports, in declaration order.
    pub outports: Vec<PortSpec>,
}

/// The description of one port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortSpec {
    /// The port name, lower-case by convention (`in`, `out`).
    pub name: String,
    /// The data type, in noflo's vocabulary: `all`, `string`, `number`, `int`, `boolean`,
    /// `object`, `array`, `bang`, ...
    #[serde(rename = "type")]
    pub datatype: String,
    /// What the port is for.
    pub description: String,
    /// Whether this is an array port (one connection per index).
    #[serde(rename = "addressable")]
    pub array: bool,
    /// Whether the component needs this port connected to do anything useful.
    pub required: bool,
}

impl ComponentSpec {
    /// A spec with the given name and description, the `cog` icon and no ports.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> ComponentSpec {
        ComponentSpec {
            name: name.into(),
            description: description.into(),
            icon: "cog".into(),
            subgraph: false,
            inports: Vec::new(),
            outports: Vec::new(),
        }
    }

    /// Sets the icon.
    pub fn icon(mut self, icon: impl Into<String>) -> Self {
        self.icon = icon.into();
        self
    }

    /// Adds an inport.
    pub fn inport(mut self, port: PortSpec) -> Self {
        self.inports.push(port);
        self
    }

    /// Adds an outport.
    pub fn outport(mut self, port: PortSpec) -> Self {
        self.outports.push(port);
        self
    }

    /// Checks that every port has a name and no name is declared twice in one direction
    /// (ignoring case, as port lookups do).
    ///
    /// # Errors
    ///
    /// A message naming the first port at fault.
    pub fn check_ports(&self) -> Result<(), String> {
        for (ports, direction) in [(&self.inports, "inport"), (&self.outports, "outport")] {
            let mut seen = std::collections::HashSet::new();
            for port in ports {
                if port.name.is_empty() {
                    return Err(format!("an {direction} has an empty name"));
                }
                if !seen.insert(port.name.to_lowercase()) {
                    return Err(format!("{direction} '{}' is declared twice", port.name));
                }
            }
        }
        Ok(())
    }

    /// The inport called `name` (exact match first, then ignoring case).
    pub fn find_inport(&self, name: &str) -> Option<&PortSpec> {
        find_port(&self.inports, name)
    }

    /// The outport called `name` (exact match first, then ignoring case).
    pub fn find_outport(&self, name: &str) -> Option<&PortSpec> {
        find_port(&self.outports, name)
    }
}

fn find_port<'a>(ports: &'a [PortSpec], name: &str) -> Option<&'a PortSpec> {
    ports
        .iter()
        .find(|p| p.name == name)
        .or_else(|| ports.iter().find(|p| p.name.eq_ignore_ascii_case(name)))
}

impl PortSpec {
    /// A plain port of the given name and type.
    pub fn new(
        name: impl Into<String>,
        datatype: impl Into<String>,
        description: impl Into<String>,
    ) -> PortSpec {
        PortSpec {
            name: name.into(),
            datatype: datatype.into(),
            description: description.into(),
            array: false,
            required: false,
        }
    }

    /// Makes this an array port.
    pub fn array(mut self) -> Self {
        self.array = true;
        self
    }

    /// Marks the port as required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Whether this is a bang port (datatype `bang`): a trigger, which noflo-ui offers as a
    /// button rather than a wire. Such a port is never required to be connected.
    pub fn is_bang(&self) -> bool {
        self.datatype.eq_ignore_ascii_case("bang")
    }
}
