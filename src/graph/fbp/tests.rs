//! Unit tests of the `.fbp` reader and writer. `tests/graph_fbp.rs` checks the same against
//! the `fbp` package itself.

use serde_json::{Value, json};

use super::super::error::Error;
use super::super::model::{Connection, Graph, Node, PortRef};
use super::value::{js_number, js_parse_float};

fn read(text: &str) -> Graph {
    Graph::from_fbp(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn error(text: &str) -> (usize, usize, String) {
    match Graph::from_fbp(text) {
        Err(Error::Fbp {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("{text:?}: expected an .fbp error, got {other:?}"),
    }
}

fn assert_error(text: &str, at: (usize, usize), words: &[&str]) {
    let (line, column, message) = error(text);
    assert_eq!((line, column), at, "{text:?}: {message}");
    for word in words {
        assert!(
            message.contains(word),
            "{text:?}: {message:?} lacks {word:?}"
        );
    }
}

fn iip_data(text: &str) -> Vec<Value> {
    read(text).iips().map(|i| i.data.clone()).collect()
}

fn edges(text: &str) -> Vec<String> {
    read(text).edges().map(ToString::to_string).collect()
}

#[test]
fn empty_text_and_comments_are_an_empty_graph() {
    for text in ["", "\n\n", "# just a comment\n", "   \n# x"] {
        let graph = read(text);
        assert_eq!(graph.case_sensitive, Some(false));
        assert!(
            graph.nodes.is_empty() && graph.connections.is_empty(),
            "{text:?}"
        );
        assert!(graph.properties.is_empty());
    }
}

#[test]
fn the_module_example_reads() {
    let graph = read(
        "# @name Hello\n# @runtime flowd\nINPORT=Say.IN:GREETING\nOUTPORT=Show.OUT:OUT\n\n\
         'hello' -> IN Say(core/Repeat)             # an IIP\n\
         Say OUT -> IN Show(core/Output:x=100,y=50) # an edge\n\
         Split(core/Split) OUT[0] -> IN[1] Merge(core/Merge), Merge OUT -> IN Show\n\
         (core/Kick) OUT -> IN Say                  # an anonymous node\n",
    );
    let ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["Say", "Show", "Split", "Merge", "_core_Kick_1"]);
    assert_eq!(graph.connections.len(), 5);
    assert_eq!(graph.name(), Some("Hello"));
}

#[test]
fn an_iip_and_a_chain() {
    let graph = read("'hello' -> IN Say(core/Repeat) OUT -> IN Show(core/Output)");
    assert_eq!(graph.nodes.len(), 2);
    assert_eq!(
        graph.node("Say").map(|n| n.component.as_str()),
        Some("core/Repeat")
    );
    let iip = graph.iips().next().unwrap();
    assert_eq!(iip.data, json!("hello"));
    assert_eq!(iip.tgt, PortRef::new("Say", "in"));
    assert_eq!(
        edges("A(X) OUT -> IN B(Y) OUT -> IN C(Z)"),
        ["A.out -> B.in", "B.out -> C.in"]
    );
}

#[test]
fn single_quoted_iips_only_unescape_quotes() {
    assert_eq!(iip_data(r"'it\'s' -> IN A(X)"), [json!("it's")]);
    assert_eq!(iip_data(r"'a\nb\\c' -> IN A(X)"), [json!(r"a\nb\\c")]);
    assert_eq!(iip_data("'two\nlines' -> IN A(X)"), [json!("two\nlines")]);
    assert_eq!(iip_data("'# -> , ' -> IN A(X)"), [json!("# -> , ")]);
    assert_eq!(iip_data("'' -> IN A(X)"), [json!("")]);
}

#[test]
fn json_iips_are_json_values_as_javascript_sees_them() {
    let data = iip_data(
        "{\"b\": 1, \"10\": 2, \"2\": 3, \"b\": 4, \"__proto__\": {}} -> IN A(X)\n\
         [1, 2.5, -0, 1e3, 1e400, 12345678901234567890] -> IN A\n\
         \"\\u00e9\\ud83d\\ude00\\ud800\" -> IN A\n\
         {\n  \"multi\": \"line\"\n}\n-> IN A\n\
         \ttrue -> IN A",
    );
    assert_eq!(data[0], json!({"2": 3, "10": 2, "b": 4}));
    let keys: Vec<&String> = data[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["2", "10", "b"], "JavaScript key order");
    assert_eq!(
        data[1],
        json!([1, 2.5, 0, 1000, null, 12345678901234567000u64])
    );
    assert_eq!(data[2], json!("é😀\u{fffd}"));
    assert_eq!(data[3], json!({"multi": "line"}));
    assert_eq!(data[4], json!(true));
}

#[test]
fn javascript_numbers() {
    assert_eq!(js_number(5.0), json!(5));
    assert_eq!(js_number(-5.0), json!(-5));
    assert_eq!(js_number(-0.0), json!(0));
    assert_eq!(js_number(0.5), json!(0.5));
    assert_eq!(js_number(f64::NAN), Value::Null);
    assert_eq!(
        js_number(1e20),
        serde_json::from_str::<Value>("100000000000000000000").unwrap()
    );
    assert_eq!(js_number(1e21), json!(1e21));
    assert_eq!(js_parse_float("12abc"), 12.0);
    assert_eq!(js_parse_float("1e3x"), 1000.0);
    assert_eq!(js_parse_float("1e"), 1.0);
    assert_eq!(js_parse_float("Infinity"), f64::INFINITY);
    assert!(js_parse_float("abc").is_nan() && js_parse_float("").is_nan());
}

#[test]
fn statements_end_at_commas_newlines_and_comments() {
    let text = "A(X) OUT -> IN B(Y), B OUT -> IN C(Z) # a comment, -> not an edge\r\n\
                \n  C OUT -> IN A ,\n";
    assert_eq!(
        edges(text),
        ["A.out -> B.in", "B.out -> C.in", "C.out -> A.in"]
    );
}

#[test]
fn annotations_become_properties() {
    let graph = read("# @runtime noflo-nodejs\n# @name Count Lines\n# @version 1.0\nA(X)\n");
    assert_eq!(
        Value::Object(graph.properties),
        json!({"environment": {"type": "noflo-nodejs"}, "name": "Count Lines", "version": "1.0"})
    );
    // Not annotations: not ending a line, indented, without the space after '#'.
    for text in ["# @name X", "  # @name X\n", "#@name X\n", "# @name X!\n"] {
        assert!(read(text).properties.is_empty(), "{text:?}");
    }
}

#[test]
fn components_are_declared_once_and_named_elsewhere() {
    let graph = read("A(X) OUT -> IN B(Y)\nB OUT -> IN A\nA() OUT -> IN B\nC(Z)");
    let components: Vec<(&str, &str)> = graph
        .nodes
        .iter()
        .map(|n: &Node| (n.id.as_str(), n.component.as_str()))
        .collect();
    assert_eq!(components, [("A", "X"), ("B", "Y"), ("C", "Z")]);
    assert_eq!(graph.connections.len(), 3);
}

#[test]
fn node_metadata() {
    let graph = read("A(X:x=10,y=2abc,label=Hi,red,k=) -> B(Y:x=,y=1e2)\nA(X) -> B");
    assert_eq!(
        graph.nodes[0].metadata.clone().map(Value::Object),
        Some(json!({"x": 10, "y": 2, "label": "Hi", "routes": "red", "k": ""}))
    );
    assert_eq!(
        graph.nodes[1].metadata.clone().map(Value::Object),
        Some(json!({"x": null, "y": 100}))
    );
    let replaced = read("A(X:x=1) -> B(Y)\nA(X:y=2) -> B");
    assert_eq!(
        replaced.nodes[0].metadata.clone().map(Value::Object),
        Some(json!({"y": 2}))
    );
}

#[test]
fn array_ports_ports_with_dots_and_case() {
    let graph = read("Node(X) OUT[0] -> IN[12] other(Y)\n'x' -> In.Sub[3] Node");
    let edge = graph.edges().next().unwrap();
    assert_eq!(edge.src, PortRef::new("Node", "out").with_index(0));
    assert_eq!(edge.tgt, PortRef::new("other", "in").with_index(12));
    let iip = graph.iips().next().unwrap();
    assert_eq!(iip.tgt, PortRef::new("Node", "in.sub").with_index(3));
}

#[test]
fn exported_ports() {
    let graph = read(
        "INPORT=Read.IN:FileName\nOUTPORT=Show.OUT:OUT\nINPORT=Read.Opts:FILENAME\n\
         Read(R) OUT -> IN Show(S)",
    );
    assert_eq!(graph.inports.len(), 1, "the last of a name wins");
    let inport = &graph.inports[0];
    assert_eq!(
        (inport.name.as_str(), inport.process.as_str()),
        ("filename", "Read")
    );
    assert_eq!(inport.port, "opts");
    assert_eq!(graph.outports[0].target(), PortRef::new("Show", "out"));
}

#[test]
fn default_ports_and_omitted_ports() {
    assert_eq!(edges("A(X) -> B(Y)"), ["A.out -> B.in"]);
    assert_eq!(
        edges("DEFAULT_INPORT=Data\nDEFAULT_OUTPORT=Res\nA(X) -> B(Y)"),
        ["A.res -> B.data"]
    );
}

#[test]
fn anonymous_nodes() {
    let graph = read("'x' -> (core/Repeat) -> (core/Repeat) -> (a/b/c)");
    let ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["_core_Repeat_1", "_core_Repeat_2", "_a_b/c_1"]);
    assert_eq!(graph.connections.len(), 3);
}

#[test]
fn fbp_quirks_are_kept() {
    // A leading port before the first node is ignored; words after a statement start another.
    assert_eq!(edges("IN A(X) OUT -> IN B(Y) stray"), ["A.out -> B.in"]);
    // `true` at a line start is a node name; after a tab it is JSON.
    assert_error("true -> IN A(X)", (1, 1), &["'true'"]);
}

#[test]
fn syntax_errors_name_what_was_expected_where() {
    assert_error(
        "A(X) -> ",
        (1, 9),
        &["expected a port name", "after '->'", "end of input"],
    );
    assert_error("A(X) OUT -> IN B(Y", (1, 19), &["')'"]);
    assert_error("A(X Y) -> B(Z)", (1, 4), &["':' or ')'", "found ' '"]);
    assert_error(
        "A(X) OUT -> IN B(Y)\nA(X) = B(Y)",
        (2, 6),
        &["'->'", "a statement", "'='"],
    );
    assert_error("INPORT=A.IN\nA(X)", (1, 12), &["':'", "end of line"]);
    assert_error("\tA(X)", (1, 2), &["not tabs"]);
    assert_error("A(X:) -> B(Y)", (1, 5), &["metadata"]);
    assert_error("é(X)", (1, 1), &["a statement", "'é'"]);
}

#[test]
fn unterminated_strings_are_errors() {
    assert_error(
        "'abc -> IN A(X)\n",
        (2, 1),
        &["closing '", "line 1, column 1"],
    );
    assert_error(r"'abc\' -> IN A(X)", (1, 18), &["closing '"]);
    assert_error("\"abc -> IN A(X)", (1, 16), &["closing '\"'"]);
}

#[test]
fn bad_json_is_an_error() {
    assert_error("{\"a\": 1,} -> IN A(X)", (1, 9), &["a JSON string"]);
    assert_error("[1, 2 -> IN A(X)", (1, 7), &["','", "']'"]);
    assert_error("\"\\x\" -> IN A(X)", (1, 3), &["escape"]);
    let deep = format!("{}1{} -> IN A(X)", "[".repeat(5000), "]".repeat(5000));
    assert_error(&deep, (1, 129), &["nested more than 128 levels"]);
}

#[test]
fn nodes_without_components_are_errors() {
    assert_error("A(X) -> B", (1, 9), &["'B'", "B(Component)"]);
    assert_error("A OUT -> IN B(Y)", (1, 1), &["'A'"]);
    assert_error("A(X)\n'x' -> IN B", (2, 1), &["IIP", "'B'"]);
    assert_error("A() -> B(Y)", (1, 1), &["node 'A' has no component"]);
    assert_error(
        "A(X)\nOUTPORT=Missing.OUT:X",
        (2, 9),
        &["OUTPORT", "'Missing'"],
    );
}

#[test]
fn a_node_with_two_components_is_an_error() {
    assert_error(
        "A(X) OUT -> IN B(Y)\nB OUT -> IN A(Z)",
        (2, 15),
        &["'A'", "component 'X' (line 1, column 3)", "'Z'"],
    );
}

#[test]
fn a_huge_port_index_is_an_error() {
    assert_error(
        "A(X) OUT[99999999999999999999999] -> IN B(Y)",
        (1, 10),
        &["too large"],
    );
}

#[test]
fn long_chains_do_not_overflow_the_stack() {
    let text = format!("A(X){} -> B(Y)", " -> IN A OUT".repeat(20_000));
    assert_eq!(read(&text).connections.len(), 20_001);
}

/// Random texts over the grammar's characters: never a panic, and what reads writes back.
#[test]
fn garbage_never_panics() {
    let pieces = [
        "A", "b", "(", ")", "X", ":", "x=1", ",", "'", "\\", "\"", "-", ">", "->", " ", "\n", "#",
        "@", "[", "]", "0", "{", "}", ".", "IN", "OUT", "INPORT=", "=", "\t", "é", "true", "\r",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut ok = 0;
    for _ in 0..20_000 {
        let mut text = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        for _ in 0..(seed % 24) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        if let Ok(graph) = Graph::from_fbp(&text) {
            ok += 1;
            let written = graph.to_fbp();
            let again = Graph::from_fbp(&written).unwrap_or_else(|e| panic!("{written:?}: {e}"));
            if !written.contains("left out") {
                assert_eq!(again, graph, "{text:?} written as {written:?}");
            }
        }
    }
    assert!(ok > 100, "only {ok} random texts parsed");
}

#[test]
fn to_fbp_writes_what_from_fbp_reads_back() {
    let text = "# @name Demo\n# @runtime flowd\nINPORT=Say.IN:GREETING\n\
                'hi' -> IN Say(core/Repeat:x=10,y=20,label=Greeter) OUT[1] -> IN[0] Show(core/Output)\n\
                Idle(core/Drop)\n";
    let graph = read(text);
    let written = graph.to_fbp();
    assert_eq!(
        written,
        "# @name Demo\n# @runtime flowd\n\nINPORT=Say.IN:GREETING\n\n\
         'hi' -> IN Say(core/Repeat:x=10,y=20,label=Greeter)\n\
         Say OUT[1] -> IN[0] Show(core/Output)\n\nIdle(core/Drop)\n"
    );
    assert_eq!(read(&written), graph);
}

#[test]
fn to_fbp_keeps_the_node_order() {
    // B is declared before A though A is mentioned first: B gets a declaration of its own.
    let graph = read("B(Y)\nA(X) OUT -> IN B\nC(Z) OUT -> IN A");
    let written = graph.to_fbp();
    assert!(
        written.starts_with("B(Y)\n\nA(X) OUT -> IN B\n"),
        "{written}"
    );
    assert_eq!(read(&written), graph);
}

#[test]
fn to_fbp_writes_awkward_iips_as_json() {
    let mut graph = Graph::new("g");
    graph.properties.clear();
    graph.case_sensitive = Some(false);
    graph.add_node("A", "X");
    for data in [
        json!("ends in \\"),
        json!("control\u{1}char"),
        json!("it's"),
        json!(true),
        json!(false),
        json!(null),
        json!({"k": [1, "v"]}),
        json!(-2.5),
    ] {
        graph.add_iip(data, PortRef::new("A", "in"));
    }
    let written = graph.to_fbp();
    assert!(written.contains("\"ends in \\\\\" -> IN A"), "{written}");
    assert!(written.contains("'it\\'s' -> IN A"), "{written}");
    assert!(written.contains("\ttrue -> IN A"), "{written}");
    assert_eq!(read(&written), graph, "{written}");
}

#[test]
fn to_fbp_lists_what_it_leaves_out() {
    let json = r#"{
      "properties": {"name": "has a !", "environment": {"type": "noflo"}},
      "groups": [{"name": "g", "nodes": ["a"]}],
      "processes": {
        "a": {"component": "core/Repeat", "metadata": {"x": 1.5, "label": "A node", "y": 3}},
        "b c": {"component": "core/Output"}
      },
      "connections": [
        {"src": {"process": "a", "port": "out"}, "tgt": {"process": "a", "port": "in"},
         "metadata": {"route": 1}},
        {"data": "x", "tgt": {"process": "b c", "port": "in"}}
      ],
      "inports": {"in": {"process": "a", "port": "in", "index": 2}}
    }"#;
    let graph = Graph::from_json(json).unwrap();
    let written = graph.to_fbp();
    for omitted in [
        "property 'name'",
        "group 'g'",
        "metadata 'x' of node 'a'",
        "metadata 'label' of node 'a'",
        "node 'b c'",
        "INPORT 'in'",
        "metadata of the edge a.out -> a.in",
        "IIP to b c.in",
    ] {
        assert!(written.contains(omitted), "{omitted:?} not in\n{written}");
    }
    let again = read(&written);
    assert_eq!(again.nodes.len(), 1);
    assert_eq!(
        again.nodes[0].metadata.clone().map(Value::Object),
        Some(json!({"y": 3}))
    );
    assert_eq!(
        again.properties.get("environment"),
        Some(&json!({"type": "noflo"}))
    );
    assert!(matches!(again.connections[..], [Connection::Edge(_)]));
}
