//! Checking a graph against the components it uses, before it may run.

use std::collections::HashSet;

use super::edit::Direction;
use super::error::{Error, ValidationError};
use super::model::{Graph, PortRef};
use crate::component::{ComponentSpec, PortSpec};

/// Where validation finds component specs: the [`crate::component::Registry`], or a test's map.
pub trait SpecLookup {
    /// The spec of the named component, if there is one.
    fn spec(&self, component: &str) -> Option<ComponentSpec>;

    /// Every component name (used to suggest a name for an unknown one).
    fn names(&self) -> Vec<String>;
}

impl Graph {
    /// Checks that every process names a known component, that every edge, IIP and exported port
    /// names an existing process and port, that indexes are only given to array ports, and that
    /// ids are unique.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] with every problem found, each naming the node, port or edge.
    pub fn validate(&self, lookup: &dyn SpecLookup) -> Result<(), Error> {
        let mut errors = Vec::new();
        let mut seen = HashSet::new();
        let mut specs = std::collections::HashMap::new();
        for node in &self.nodes {
            if !seen.insert(node.id.as_str()) {
                errors.push(ValidationError::DuplicateNode(node.id.clone()));
                continue;
            }
            match lookup.spec(&node.component) {
                Some(spec) => {
                    specs.insert(node.id.as_str(), spec);
                }
                None => errors.push(ValidationError::UnknownComponent {
                    node: node.id.clone(),
                    component: node.component.clone(),
                    suggestions: closest_names(&node.component, &lookup.names()),
                }),
            }
        }
        let known: HashSet<&str> = self.nodes.iter().map(|n| n.id.as_str()).collect();
        let mut check = |context: String, port: &PortRef, direction: Direction| {
            if !known.contains(port.process.as_str()) {
                errors.push(ValidationError::MissingNode {
                    context,
                    node: port.process.clone(),
                });
                return;
            }
            // A node with an unknown component was reported already.
            let Some(spec) = specs.get(port.process.as_str()) else {
                return;
            };
            if let Some(problem) = port_problem(context, port, direction, spec) {
                errors.push(problem);
            }
        };
        let mut capacities = Vec::new();
        for edge in self.edges() {
            check(format!("edge {edge}"), &edge.src, Direction::Out);
            check(format!("edge {edge}"), &edge.tgt, Direction::In);
            if let Some(problem) = edge.capacity_problem() {
                capacities.push(ValidationError::BadCapacity {
                    edge: edge.to_string(),
                    problem,
                });
            }
        }
        for iip in self.iips() {
            check(
                format!("IIP {} -> {}", iip.data, iip.tgt),
                &iip.tgt,
                Direction::In,
            );
        }
        let mut duplicates = Vec::new();
        for (ports, direction) in [
            (&self.inports, Direction::In),
            (&self.outports, Direction::Out),
        ] {
            let mut names = HashSet::new();
            for export in ports {
                if !names.insert(export.name.as_str()) {
                    duplicates.push(ValidationError::DuplicateExport {
                        direction: direction.label(),
                        name: export.name.clone(),
                    });
                }
                let context = format!("exported {} '{}'", direction.label(), export.name);
                check(context, &export.target(), direction);
            }
        }
        errors.extend(duplicates);
        errors.extend(capacities);
        for node in &self.nodes {
            let Some(spec) = specs.get(node.id.as_str()) else {
                continue;
            };
            // A bang port is a button in noflo-ui, not a wire: it may stay unconnected.
            for port in spec.inports.iter().filter(|p| p.required && !p.is_bang()) {
                let feeds = |target: &PortRef| {
                    target.process == node.id && target.port.eq_ignore_ascii_case(&port.name)
                };
                let fed = self.edges().any(|e| feeds(&e.tgt))
                    || self.iips().any(|i| feeds(&i.tgt))
                    || self.inports.iter().any(|p| feeds(&p.target()));
                if !fed {
                    errors.push(ValidationError::RequiredPortUnconnected {
                        node: node.id.clone(),
                        component: spec.name.clone(),
                        port: port.name.clone(),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(errors))
        }
    }
}

impl Graph {
    /// Checks that `component` is registered, for a process `node` about to be added; returns
    /// its spec.
    ///
    /// # Errors
    ///
    /// [`ValidationError::UnknownComponent`], with close names as suggestions.
    pub fn check_component(
        node: &str,
        component: &str,
        lookup: &dyn SpecLookup,
    ) -> Result<ComponentSpec, Box<ValidationError>> {
        lookup.spec(component).ok_or_else(|| {
            Box::new(ValidationError::UnknownComponent {
                node: node.into(),
                component: component.into(),
                suggestions: closest_names(component, &lookup.names()),
            })
        })
    }

    /// Checks one port reference against this graph's processes and their components, as an
    /// edit that adds an edge, IIP or export needs; `context` names what is being added.
    ///
    /// # Errors
    ///
    /// [`ValidationError::MissingNode`], [`ValidationError::UnknownPort`] or
    /// [`ValidationError::IndexOnPlainPort`].
    pub fn check_port(
        &self,
        context: &str,
        port: &PortRef,
        direction: Direction,
        lookup: &dyn SpecLookup,
    ) -> Result<(), Box<ValidationError>> {
        let Some(node) = self.node(&port.process) else {
            return Err(Box::new(ValidationError::MissingNode {
                context: context.into(),
                node: port.process.clone(),
            }));
        };
        let spec = Graph::check_component(&node.id, &node.component, lookup)?;
        match port_problem(context.into(), port, direction, &spec) {
            Some(problem) => Err(Box::new(problem)),
            None => Ok(()),
        }
    }
}

/// What is wrong with `port` on a process of component `spec`, if anything.
fn port_problem(
    context: String,
    port: &PortRef,
    direction: Direction,
    spec: &ComponentSpec,
) -> Option<ValidationError> {
    let (found, all): (Option<&PortSpec>, &[PortSpec]) = match direction {
        Direction::In => (spec.find_inport(&port.port), &spec.inports),
        Direction::Out => (spec.find_outport(&port.port), &spec.outports),
    };
    match found {
        None => Some(ValidationError::UnknownPort {
            context,
            node: port.process.clone(),
            component: spec.name.clone(),
            direction: direction.label(),
            port: port.port.clone(),
            available: all.iter().map(|p| p.name.clone()).collect(),
        }),
        Some(found) if !found.array => port.index.map(|index| ValidationError::IndexOnPlainPort {
            context,
            node: port.process.clone(),
            port: port.port.clone(),
            index,
        }),
        Some(_) => None,
    }
}

/// Up to three names close to `wanted`: same name ignoring case, same last segment, or a small
/// edit distance.
fn closest_names(wanted: &str, names: &[String]) -> Vec<String> {
    let wanted_lower = wanted.to_lowercase();
    let wanted_tail = wanted_lower.rsplit('/').next().unwrap_or(&wanted_lower);
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .filter_map(|name| {
            let lower = name.to_lowercase();
            let tail = lower.rsplit('/').next().unwrap_or(&lower);
            let distance = if lower == wanted_lower || tail == wanted_tail {
                0
            } else {
                edit_distance(&lower, &wanted_lower).min(edit_distance(tail, wanted_tail))
            };
            (distance <= 2.max(wanted_tail.len() / 3)).then_some((distance, name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n.clone()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_near_names() {
        let names = vec!["core/Repeat".to_string(), "core/Drop".to_string()];
        assert_eq!(closest_names("core/Repaet", &names), vec!["core/Repeat"]);
        assert_eq!(closest_names("Repeat", &names), vec!["core/Repeat"]);
        assert!(closest_names("something/Else", &names).is_empty());
    }
}
