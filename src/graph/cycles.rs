//! Cycles that nothing feeds: processes that can only wait for each other.
//!
//! A process is fed when it receives an IIP, is the target of an exported inport, has no
//! incoming edge at all (it sees end of stream on its inports, or has none, and runs), or
//! receives an edge from a fed process. A cycle of processes none of which is fed has no IP to
//! start with; unless one of its components sends without being asked, its network deadlocks
//! (the engine detects that at run time). `flowd check` warns about such cycles.

use std::collections::{HashMap, HashSet};

use super::model::Graph;

impl Graph {
    /// The cycles of processes that nothing outside them can feed: each strongly connected
    /// set of processes (or a process with an edge to itself) that no IIP, exported inport
    /// or fed process reaches. Each cycle lists its process ids in graph order; cycles come in
    /// the order of their first process.
    pub fn unfed_cycles(&self) -> Vec<Vec<String>> {
        let index: HashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| (node.id.as_str(), i))
            .collect();
        let count = self.nodes.len();
        let mut next = vec![Vec::new(); count];
        let mut previous = vec![Vec::new(); count];
        let mut self_loop = vec![false; count];
        for edge in self.edges() {
            let (Some(&src), Some(&tgt)) = (
                index.get(edge.src.process.as_str()),
                index.get(edge.tgt.process.as_str()),
            ) else {
                continue;
            };
            next[src].push(tgt);
            previous[tgt].push(src);
            self_loop[src] |= src == tgt;
        }

        let fed_from_outside = self
            .iips()
            .map(|iip| iip.tgt.process.as_str())
            .chain(self.inports.iter().map(|export| export.process.as_str()))
            .filter_map(|id| index.get(id).copied());
        let mut fed = vec![false; count];
        let mut reach: Vec<usize> = fed_from_outside
            .chain((0..count).filter(|&i| previous[i].is_empty()))
            .collect();
        while let Some(node) = reach.pop() {
            if !std::mem::replace(&mut fed[node], true) {
                reach.extend(next[node].iter().copied().filter(|&n| !fed[n]));
            }
        }

        let unfed: HashSet<usize> = (0..count).filter(|&i| !fed[i]).collect();
        strongly_connected(&unfed, &next, &previous)
            .into_iter()
            .filter(|set| set.len() > 1 || self_loop[set[0]])
            .map(|set| set.into_iter().map(|i| self.nodes[i].id.clone()).collect())
            .collect()
    }
}

/// The strongly connected sets of the subgraph of `nodes` (Kosaraju, without recursion so that
/// a long chain cannot overflow the stack): each sorted, the sets sorted by first member.
fn strongly_connected(
    nodes: &HashSet<usize>,
    next: &[Vec<usize>],
    previous: &[Vec<usize>],
) -> Vec<Vec<usize>> {
    let mut starts: Vec<usize> = nodes.iter().copied().collect();
    starts.sort_unstable();
    // Every node, in the order its depth-first search over `next` finished.
    let mut finished = Vec::with_capacity(nodes.len());
    let mut visited = HashSet::new();
    for &start in &starts {
        if !visited.insert(start) {
            continue;
        }
        let mut stack = vec![(start, 0)];
        while let Some((node, child)) = stack.last_mut() {
            let node = *node;
            match next[node].get(*child) {
                Some(&to) => {
                    *child += 1;
                    if nodes.contains(&to) && visited.insert(to) {
                        stack.push((to, 0));
                    }
                }
                None => {
                    finished.push(node);
                    stack.pop();
                }
            }
        }
    }
    // In reverse finishing order, what reaches each node against the edges is its set.
    let mut assigned = HashSet::new();
    let mut sets = Vec::new();
    for &root in finished.iter().rev() {
        if !assigned.insert(root) {
            continue;
        }
        let mut set = vec![root];
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            for &from in &previous[node] {
                if nodes.contains(&from) && assigned.insert(from) {
                    set.push(from);
                    stack.push(from);
                }
            }
        }
        set.sort_unstable();
        sets.push(set);
    }
    sets.sort_unstable();
    sets
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::graph::PortRef;

    fn chain(graph: &mut Graph, ids: &[&str]) {
        for pair in ids.windows(2) {
            graph.add_edge(PortRef::new(pair[0], "out"), PortRef::new(pair[1], "in"));
        }
    }

    fn graph(ids: &[&str]) -> Graph {
        let mut graph = Graph::new("g");
        for id in ids {
            graph.add_node(*id, "core/Repeat");
        }
        graph
    }

    #[test]
    fn a_self_loop_and_a_cycle_that_nothing_feeds_are_found() {
        let mut g = graph(&["s", "a", "b", "c"]);
        chain(&mut g, &["s", "s"]);
        chain(&mut g, &["a", "b", "c", "a"]);
        assert_eq!(g.unfed_cycles(), vec![vec!["s"], vec!["a", "b", "c"]]);
    }

    #[test]
    fn a_cycle_fed_by_an_iip_an_export_or_a_source_process_is_not() {
        let mut by_iip = graph(&["a", "b"]);
        chain(&mut by_iip, &["a", "b", "a"]);
        by_iip.add_iip(json!("go"), PortRef::new("b", "in"));
        assert!(by_iip.unfed_cycles().is_empty());

        let mut by_export = graph(&["a", "b"]);
        chain(&mut by_export, &["a", "b", "a"]);
        by_export.add_inport("IN", "a", "in");
        assert!(by_export.unfed_cycles().is_empty());

        let mut by_source = graph(&["src", "x", "a", "b"]);
        chain(&mut by_source, &["src", "x", "a", "b", "a"]);
        assert!(by_source.unfed_cycles().is_empty());
    }

    #[test]
    fn only_the_cycles_are_named_not_what_hangs_below_them() {
        let mut g = graph(&["a", "b", "below", "fed"]);
        chain(&mut g, &["a", "b", "a"]);
        chain(&mut g, &["b", "below"]);
        chain(&mut g, &["fed", "below"]);
        assert_eq!(g.unfed_cycles(), vec![vec!["a", "b"]]);
    }

    #[test]
    fn a_long_chain_into_a_cycle_does_not_overflow_the_stack() {
        let ids: Vec<String> = (0..200_000).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut g = graph(&refs);
        chain(&mut g, &refs);
        chain(&mut g, &[refs[refs.len() - 1], refs[0]]);
        assert_eq!(g.unfed_cycles(), vec![ids]);
    }
}
