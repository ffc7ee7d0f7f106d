//! How IPs flow: IIPs first, brackets, fan-in, fan-out, array ports, exported ports, events.

mod common;

use std::time::Duration;

use common::{port, start, test_registry, texts};
use flowd::engine::{EdgeId, Event};
use flowd::{Graph, Ip};
use serde_json::json;

#[test]
fn brackets_pass_through_repeat_in_order() {
    let registry = test_registry();
    let mut graph = Graph::new("brackets");
    graph.add_node("r", "core/Repeat");
    graph.add_inport("IN", "r", "in");
    graph.add_outport("OUT", "r", "out");
    let mut network = start(&graph, &registry);
    let mut input = network.take_inport("IN").unwrap();
    let mut output = network.take_outport("OUT").unwrap();
    let sent = vec![
        Ip::open("group"),
        Ip::data("a"),
        Ip::open(""),
        Ip::data("b"),
        Ip::close(""),
        Ip::close("group"),
    ];
    input.send_batch(sent.clone()).unwrap();
    drop(input);
    let mut received = Vec::new();
    while let Some(ip) = output.recv() {
        received.push(ip);
    }
    assert_eq!(received, sent);
    assert!(network.wait().errors.is_empty());
}

#[test]
fn iips_arrive_before_edge_data() {
    let registry = test_registry();
    let mut graph = Graph::new("iip-first");
    graph.add_node("gen", "test/Generate");
    graph.add_node("r", "core/Repeat");
    graph.add_node("show", "core/Output");
    graph.add_iip(json!(3), port("gen", "in"));
    graph.add_edge(port("gen", "out"), port("r", "in"));
    graph.add_iip(json!("first"), port("r", "in"));
    graph.add_edge(port("r", "out"), port("show", "in"));
    let outcome = start(&graph, &registry).wait();
    assert_eq!(outcome.output, vec!["first", "0", "1", "2"]);
}

#[test]
fn fan_in_merges_every_upstream_and_ends_after_all() {
    let registry = test_registry();
    let mut graph = Graph::new("fan-in");
    for (name, count) in [("a", 100), ("b", 250), ("c", 7)] {
        graph.add_node(name, "test/Generate");
        graph.add_iip(json!(count), port(name, "in"));
        graph.add_edge(port(name, "out"), port("count", "in"));
    }
    graph.add_node("count", "core/Count");
    graph.add_node("show", "core/Output");
    graph.add_edge(port("count", "out"), port("show", "in"));
    let outcome = start(&graph, &registry).wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.output, vec!["357"]);
}

#[test]
fn fan_out_copies_every_ip_to_every_connection() {
    let registry = test_registry();
    let mut graph = Graph::new("fan-out");
    graph.add_node("gen", "test/Generate");
    graph.add_iip(json!(1000), port("gen", "in"));
    for name in ["c1", "c2", "c3"] {
        graph.add_node(name, "core/Count");
        graph.add_edge(port("gen", "out"), port(name, "in"));
        graph.add_edge(port(name, "out"), port("show", "in"));
    }
    graph.add_node("show", "core/Output");
    let outcome = start(&graph, &registry).wait();
    assert_eq!(outcome.output, vec!["1000", "1000", "1000"]);
}

#[test]
fn split_sends_to_each_index_of_an_array_port() {
    let registry = test_registry();
    let mut graph = Graph::new("array");
    graph.add_node("gen", "test/Generate");
    graph.add_iip(json!(10), port("gen", "in"));
    graph.add_node("split", "core/Split");
    graph.add_edge(port("gen", "out"), port("split", "in"));
    for i in 0..4 {
        let name = format!("count{i}");
        graph.add_node(&name, "core/Count");
        graph.add_edge(port("split", "out").with_index(i), port(&name, "in"));
        graph.add_edge(port(&name, "out"), port("show", "in"));
    }
    graph.add_node("show", "core/Output");
    let outcome = start(&graph, &registry).wait();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.output, vec!["10"; 4]);
}

#[test]
fn exported_ports_carry_ips_in_and_out_from_rust() {
    let registry = test_registry();
    let mut graph = Graph::new("exported");
    graph.add_node("a", "core/Repeat");
    graph.add_node("b", "core/Repeat");
    graph.add_edge(port("a", "out"), port("b", "in"));
    graph.add_inport("in", "a", "in");
    graph.add_outport("out", "b", "out");
    let mut network = start(&graph, &registry);
    let mut input = network.take_inport("in").unwrap();
    let mut output = network.take_outport("out").unwrap();
    assert!(
        network.take_inport("in").is_none(),
        "a handle is taken once"
    );
    for i in 0..5 {
        input.send(Ip::data(format!("ip{i}"))).unwrap();
        let ip = output.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(ip, Ip::data(format!("ip{i}")));
    }
    // Far more than the edges hold: fed from another thread while this one reads.
    let feeder = std::thread::spawn(move || {
        input
            .send_batch((0..10_000).map(|i| Ip::data(i.to_string())))
            .unwrap();
    });
    let mut count = 0;
    while output.recv().is_some() {
        count += 1;
    }
    assert_eq!(count, 10_000);
    feeder.join().unwrap();
    let outcome = network.wait();
    assert!(!outcome.stopped);
}

#[test]
fn watched_edges_report_data_and_unwatched_do_not() {
    let registry = test_registry();
    let mut graph = Graph::new("watch");
    graph.add_node("gen", "test/Generate");
    graph.add_node("r", "core/Repeat");
    graph.add_node("drop", "core/Drop");
    graph.add_edge(port("gen", "out"), port("r", "in"));
    graph.add_edge(port("r", "out"), port("drop", "in"));
    graph.add_inport("count", "gen", "in");
    let mut network = start(&graph, &registry);
    let watched = EdgeId {
        src: port("gen", "out"),
        tgt: port("r", "in"),
    };
    assert!(network.watch(&watched, true));
    assert!(!network.watch(
        &EdgeId {
            src: port("x", "out"),
            tgt: port("r", "in")
        },
        true
    ));
    let mut count = network.take_inport("count").unwrap();
    count.send(Ip::data("3")).unwrap();
    count.close();
    let mut data = Vec::new();
    for event in network.events().iter() {
        match event {
            Event::Data { edge, ip } => data.push((edge, ip)),
            Event::Finished { .. } => break,
            _ => {}
        }
    }
    assert_eq!(data.len(), 3, "{data:?}");
    assert!(data.iter().all(|(edge, _)| *edge == watched));
    assert_eq!(
        texts(&data.into_iter().map(|(_, ip)| ip).collect::<Vec<_>>()),
        ["0", "1", "2"]
    );
}

#[test]
fn events_start_and_finish_a_network() {
    let registry = test_registry();
    let mut graph = Graph::new("events");
    graph.add_node("show", "core/Output");
    graph.add_iip(json!("hi"), port("show", "in"));
    let network = start(&graph, &registry);
    let events: Vec<Event> = network
        .events()
        .iter()
        .take_while(|e| !matches!(e, Event::Finished { .. }))
        .collect();
    assert_eq!(events.first(), Some(&Event::Started));
    assert!(events.contains(&Event::Output {
        node: "show".into(),
        message: "hi".into()
    }));
    assert!(events.contains(&Event::ProcessEnded {
        node: "show".into()
    }));
}

#[test]
fn ports_match_case_insensitively_like_noflo() {
    let registry = test_registry();
    let mut graph = Graph::new("case");
    graph.add_node("show", "core/Output");
    graph.add_iip(json!("upper"), port("show", "IN"));
    let outcome = start(&graph, &registry).wait();
    assert_eq!(outcome.output, vec!["upper"]);
}
