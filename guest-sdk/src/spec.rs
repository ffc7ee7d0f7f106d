//! [`Spec`] and [`Port`]: what [`Component::describe`](crate::Component::describe) returns.

use crate::raw::flowd::component::types::{ComponentInfo, PortInfo};

/// What a component is: its name, description, icon and ports. Built with chained calls.
///
/// ```
/// use flowd_guest::{Port, Spec};
/// let spec = Spec::new("text/Uppercase", "Upper-cases text")
///     .icon("font")
///     .inport(Port::new("in", "string", "Text to convert"))
///     .outport(Port::new("out", "string", "Upper-cased text"));
/// assert_eq!(spec.name(), "text/Uppercase");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    name: String,
    description: String,
    icon: String,
    inports: Vec<Port>,
    outports: Vec<Port>,
}

impl Spec {
    /// A spec with a name and a one-sentence description, and no ports yet.
    ///
    /// Give the name a library prefix, as in `text/Uppercase`: without a `/`, flowd files the
    /// component under `wasm/`.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Spec {
            name: name.into(),
            description: description.into(),
            icon: String::new(),
            inports: Vec::new(),
            outports: Vec::new(),
        }
    }

    /// Sets the Font Awesome icon name shown by noflo-ui (`font`, `filter`, `cog`).
    pub fn icon(mut self, icon: impl Into<String>) -> Self {
        self.icon = icon.into();
        self
    }

    /// Adds an inport.
    pub fn inport(mut self, port: Port) -> Self {
        self.inports.push(port);
        self
    }

    /// Adds an outport.
    pub fn outport(mut self, port: Port) -> Self {
        self.outports.push(port);
        self
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component's description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The icon name, empty if none was set.
    pub fn icon_name(&self) -> &str {
        &self.icon
    }

    /// The declared inports.
    pub fn inports(&self) -> &[Port] {
        &self.inports
    }

    /// The declared outports.
    pub fn outports(&self) -> &[Port] {
        &self.outports
    }

    pub(crate) fn into_raw(self) -> ComponentInfo {
        ComponentInfo {
            name: self.name,
            description: self.description,
            icon: self.icon,
            inports: self.inports.into_iter().map(Port::into_raw).collect(),
            outports: self.outports.into_iter().map(Port::into_raw).collect(),
        }
    }
}

/// A declared port: name, data type, description, and whether it is an array port or required.
///
/// ```
/// use flowd_guest::Port;
/// let out = Port::new("out", "all", "One connection per pattern").array();
/// let pattern = Port::new("patterns", "array", "Patterns to match").required();
/// assert!(out.is_array() && pattern.is_required());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    name: String,
    data_type: String,
    description: String,
    is_array: bool,
    required: bool,
}

impl Port {
    /// A plain, optional port.
    ///
    /// * `name`: lower-case by convention (`in`, `out`, `pattern`);
    /// * `data_type`: in noflo's words: `all`, `string`, `number`, `int`, `boolean`, `object`,
    ///   `array`, `bang`;
    /// * `description`: what the port is for, shown in editors.
    pub fn new(
        name: impl Into<String>,
        data_type: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Port {
            name: name.into(),
            data_type: data_type.into(),
            description: description.into(),
            is_array: false,
            required: false,
        }
    }

    /// Makes this an array port: one connection per index (`out[0]`, `out[1]`, ...).
    pub fn array(mut self) -> Self {
        self.is_array = true;
        self
    }

    /// Makes the port required: the graph must connect it (an edge or an IIP) for the process
    /// to start.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port's data type.
    pub fn data_type(&self) -> &str {
        &self.data_type
    }

    /// The port's description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether this is an array port.
    pub fn is_array(&self) -> bool {
        self.is_array
    }

    /// Whether the port is required.
    pub fn is_required(&self) -> bool {
        self.required
    }

    fn into_raw(self) -> PortInfo {
        PortInfo {
            name: self.name,
            data_type: self.data_type,
            description: self.description,
            is_array: self.is_array,
            required: self.required,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_the_wit_record() {
        let raw = Spec::new("a/B", "does b")
            .icon("cog")
            .inport(Port::new("in", "string", "input").required())
            .outport(Port::new("out", "all", "outputs").array())
            .into_raw();
        assert_eq!(raw.name, "a/B");
        assert_eq!(raw.icon, "cog");
        assert!(raw.inports[0].required && !raw.inports[0].is_array);
        assert!(raw.outports[0].is_array && !raw.outports[0].required);
        assert_eq!(raw.outports[0].data_type, "all");
    }
}
