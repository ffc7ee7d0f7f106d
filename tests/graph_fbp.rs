//! The `.fbp` reader and writer, against fixtures and against the noflo `fbp` package itself.
//!
//! Every `tests/data/fbp/*.fbp` has a `.json` twin, written by the `fbp` package
//! (`node tools/fbp-to-json.js x.fbp > x.json`). The equivalence tests run that package (pinned in
//! `tools/package.json`; install it with `npm ci --prefix tools`): without it they are listed as
//! ignored, unless `CI` is set, where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use flowd::Graph;
use flowd::graph::Error;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.fbp` fixtures, sorted, each with its text.
fn fixtures() -> Vec<(PathBuf, String)> {
    let dir = root().join("tests/data/fbp");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fbp"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 10,
        "expected the .fbp fixtures in {}",
        dir.display()
    );
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn parse(path: &Path, text: &str) -> Graph {
    Graph::from_fbp(text).unwrap_or_else(|e| panic!("{}: {e}", name(path)))
}

#[test]
fn every_fixture_reads_to_the_graph_of_its_json_twin() {
    for (path, text) in fixtures() {
        let json_path = path.with_extension("json");
        let json = std::fs::read_to_string(&json_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (every .fbp fixture needs a .json twin)",
                json_path.display()
            )
        });
        let expected = Graph::from_json(&json).unwrap();
        assert_eq!(parse(&path, &text), expected, "{}", name(&path));
    }
}

#[test]
fn every_fixture_round_trips_through_to_fbp() {
    for (path, text) in fixtures() {
        let graph = parse(&path, &text);
        let written = graph.to_fbp();
        let again = Graph::from_fbp(&written)
            .unwrap_or_else(|e| panic!("{}: {e} in the written text:\n{written}", name(&path)));
        assert_eq!(again, graph, "{}, written as:\n{written}", name(&path));
        assert!(!written.contains("left out"), "{}: {written}", name(&path));
    }
}

/// What the `fbp` package makes of `path`: its JSON, or its error message.
fn fbp_parse(path: &Path) -> Result<Value, String> {
    let output = Command::new("node")
        .arg(root().join("tools/fbp-to-json.js"))
        .arg(path)
        .output()
        .expect("running node");
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).expect("fbp-to-json.js prints JSON"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Asserts that our JSON is fbp's, key order included below the top level (whose order is
/// `Graph::to_json`'s, as fbp-graph writes it). fbp leaves out `properties` when there are
/// none; `Graph::to_json` always writes it.
fn assert_same_json(ours: &Value, fbp: &Value, what: &str) {
    let mut fbp = fbp.clone();
    if let Some(object) = fbp.as_object_mut() {
        object
            .entry("properties")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    assert_eq!(
        ours, &fbp,
        "{what}: flowd's JSON (left) differs from fbp's (right)"
    );
    for (key, value) in fbp.as_object().unwrap() {
        assert_eq!(
            serde_json::to_string(&ours[key]).unwrap(),
            serde_json::to_string(value).unwrap(),
            "{what}: key order in {key:?}"
        );
    }
}

#[test]
#[cfg_attr(
    not(flowd_npm_tools),
    ignore = "needs the fbp package: npm ci --prefix tools"
)]
fn fixtures_read_as_the_fbp_package_reads_them() {
    for (path, text) in fixtures() {
        let fbp =
            fbp_parse(&path).unwrap_or_else(|e| panic!("{}: fbp rejects it: {e}", name(&path)));
        assert_same_json(&parse(&path, &text).to_json(), &fbp, &name(&path));
        let twin: Value =
            serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap())
                .unwrap();
        assert_eq!(
            twin,
            fbp,
            "{}: the .json twin is stale; regenerate it",
            name(&path)
        );
    }
}

#[test]
#[cfg_attr(
    not(flowd_npm_tools),
    ignore = "needs the fbp package: npm ci --prefix tools"
)]
fn written_fbp_reads_the_same_in_the_fbp_package() {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in fixtures() {
        let graph = parse(&path, &text);
        let written = dir.path().join(name(&path));
        std::fs::write(&written, graph.to_fbp()).unwrap();
        let fbp = fbp_parse(&written)
            .unwrap_or_else(|e| panic!("{}: fbp rejects to_fbp's text: {e}", name(&path)));
        assert_same_json(
            &graph.to_json(),
            &fbp,
            &format!("{} written by to_fbp", name(&path)),
        );
    }
}

/// Small texts, tricky ones included, that fbp accepts or rejects: so must we, to the same JSON.
const SNIPPETS: &[&str] = &[
    "",
    "\n\n",
    "# only a comment",
    "# @name Unterminated annotation is a comment",
    "A(X)",
    "A(X)   ",
    "A(X)\n   ",
    "A(X) x y",
    "A(X)OUT -> IN B(Y)",
    "A(X) OUT ->IN B(Y)",
    "A(X) OUT-> IN B(Y)",
    "IN A(X)",
    "A(X) OUT -> IN B(Y) OUT",
    "A(X) OUT -> IN B(Y) C(Z) OUT -> IN D(W)",
    "A(X) OUT -> B(Y) OUT -> IN C(Z)",
    "A(X) -> B(Y) -> C(Z) -> D(W)",
    "(a/b/c) -> (a/b/c) -> (d-e)",
    "(X) -> (X:x=1)",
    "() -> A(X)",
    "A() -> B(Y)",
    "A(X) -> B",
    "A OUT -> IN B(Y)",
    "'a' -> IN B",
    "INPORT=A.IN:X",
    "A(X)\nOUTPORT=A.OUT:X\nOUTPORT=A.ERR:X",
    "INPORT=A(X).IN:Start",
    "INPORT=A.IN:__proto__\nA(X)",
    "A(X:__proto__=1,x=1e5,y=Infinity,z,=q,a=b=c) -> B(Y)",
    "A(X:1=one,b=2,0=zero) -> B(Y)",
    "A(X:x=) -> B(Y)",
    "A(X:) -> B(Y)",
    "# @1 one\n# @name N\n# @runtime  a b\n# @runtime c\n# @environment x\n",
    "# @runtime noflo\n# @environment x\n# @runtime y\n",
    "#  @name  spaced   \nA(X)",
    "# @name Foo!\n",
    "'a\\'b' -> IN A(X)",
    "'a\\\\' -> IN A(X)",
    "'a\\\\'' -> IN A(X)",
    "'unterminated -> IN A(X)",
    "'' -> IN A(X)",
    "true -> IN A(X)",
    "\ttrue -> IN A(X)",
    "\tfalse -> IN A(X)",
    "5 -> IN A(X)",
    "-5.25e2 -> IN A(X)",
    "12345678901234567890 -> IN A(X)",
    "123456789012345678901234 -> IN A(X)",
    "1e400 -> IN A(X)",
    "-0 -> IN A(X)",
    "01 -> IN A(X)",
    "{\"b\":1,\"1\":2,\"b\":3,\"__proto__\":{\"c\":1}} -> IN A(X)",
    "{\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\\ud83d\\ude00\"} -> IN A(X)",
    "{\"a\": 1,} -> IN A(X)",
    "[1, 2 -> IN A(X)",
    "\"control\tchar\" -> IN A(X)",
    "\"bad \\x escape\" -> IN A(X)",
    "[\n1,\n2\n]\n-> IN A(X)",
    "'x' -> IN A(X) OUT -> 'y' -> IN B(Y)",
    "A(X) OUT[0] -> IN[12] B(Y)",
    "A(X) OUT[] -> IN B(Y)",
    "A(X) OUT[x] -> IN B(Y)",
    "A(X) OUT -> in.x B(Y)",
    "A(X) Out.Sub.Port -> IN B(Y)",
    "DEFAULT_INPORT=Foo\nDEFAULT_OUTPORT=Bar\nA(X) -> B(Y)",
    "A(X) -> B(Y)\nDEFAULT_INPORT=Foo\nB -> C(Z)",
    "A(X) OUT -> IN B(Y), C(Z) OUT -> IN D(W),",
    "A(X) OUT -> IN B(Y) , # comment\nC(Z)",
    "A(X) OUT -> IN B(Y) # comment, with -> arrows",
    "A(X) OUT -> IN B(Y)\r\nB OUT -> IN A\r\n",
    "A(X) OUT -> IN B(Y)\rB OUT -> IN A",
    "\u{2028}A(X)\u{2029}",
    "\tA(X)",
    "A(X)\t",
    "A(X) -> ",
    "A(X) OUT -> IN B(Y",
    "A(X OUT -> IN B(Y)",
    "A(X Y) OUT -> IN B(Z)",
    "A(X) = B(Y)",
    "A(X) -> -> B(Y)",
    "-> B(Y)",
    "A(X) OUT -> IN B(Y)\nB OUT -> IN C",
    "INPORT=A.IN\nA(X)",
    "INPORT=A.IN:\nA(X)",
    "OUTPORT=Missing.OUT:X",
    "A(X) OUT -> IN B(Y) -> C(Z)",
    "é(X)",
    "A(é)",
    "\u{feff}A(X)",
    "A(X) OUT -> IN A(X)",
    "A(X) OUT -> IN a(Y)",
    "A-(X) OUT -> IN _(Y)",
    "A(X) OUT[99999999999999999999999] -> IN B(Y)",
    "# @name Hello\nINPORT=Say.IN:GREETING\n'hello' -> IN Say(core/Repeat) OUT -> IN Show(core/Output:x=100,y=50)\n\
     Split(core/Split) OUT[0] -> IN[1] Merge(core/Merge), Merge OUT -> IN Show\n(core/Kick) OUT -> IN Say # c\n",
];

#[test]
#[cfg_attr(
    not(flowd_npm_tools),
    ignore = "needs the fbp package: npm ci --prefix tools"
)]
fn snippets_read_as_the_fbp_package_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in SNIPPETS.iter().enumerate() {
        let path = dir.path().join(format!("snippet{i}.fbp"));
        std::fs::write(&path, text).unwrap();
        let what = format!("snippet {text:?}");
        match (Graph::from_fbp(text), fbp_parse(&path)) {
            (Ok(graph), Ok(fbp)) => {
                assert_same_json(&graph.to_json(), &fbp, &what);
                let written = graph.to_fbp();
                let again = Graph::from_fbp(&written);
                let again = again.unwrap_or_else(|e| panic!("{what} written as {written:?}: {e}"));
                // Names like `_a_b/c_1` (of anonymous nodes) cannot be written back.
                if !written.contains("left out") {
                    assert_eq!(again, graph, "{what} written as {written:?}");
                }
            }
            (Err(e), Err(_)) => assert!(matches!(e, Error::Fbp { .. }), "{what}: {e:?}"),
            (Ok(graph), Err(fbp)) => panic!(
                "{what}: fbp rejects it ({fbp}), flowd reads {:#}",
                graph.to_json()
            ),
            // Deliberate differences: fbp lets a later component replace an earlier one, and
            // takes any port index (flowd's are `usize`).
            (Err(e), Ok(_))
                if e.to_string().contains("already declared as component")
                    || e.to_string().contains("is too large") => {}
            (Err(e), Ok(fbp)) => panic!("{what}: flowd rejects it ({e}), fbp reads {fbp:#}"),
        }
    }
}

#[test]
fn a_node_declared_with_two_components_is_an_error_here() {
    let err = Graph::from_fbp("A(X) OUT -> IN B(Y)\nB OUT -> IN A(Z)").unwrap_err();
    let Error::Fbp {
        line,
        column,
        message,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!((line, column), (2, 15), "{message}");
    assert!(
        message.contains("'A'") && message.contains("'X'") && message.contains("'Z'"),
        "{message}"
    );
}
