//! Saving is atomic and keeps the previous file as `.bak`.

use flowd::Graph;
use flowd::graph::{self, PortRef};

fn sample(name: &str) -> Graph {
    let mut graph = Graph::new(name);
    graph.add_node("a", "core/Repeat");
    graph.add_iip(serde_json::json!("x"), PortRef::new("a", "in"));
    graph
}

#[test]
fn save_then_load_gives_the_same_graph_and_keeps_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.json");
    graph::save(&sample("first"), &path).unwrap();
    graph::save(&sample("second"), &path).unwrap();
    assert_eq!(graph::load(&path).unwrap(), sample("second"));
    let backup = dir.path().join("g.json.bak");
    assert_eq!(
        graph::load_as(&backup, graph::Format::Json).unwrap(),
        sample("first")
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn an_interrupted_save_leaves_the_old_graph_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.json");
    graph::save(&sample("old"), &path).unwrap();
    // A save interrupted after writing part of its temporary file: the old graph is untouched.
    std::fs::write(
        dir.path().join(".g.json.tmp12345"),
        "{\"processes\": {\"a\": ",
    )
    .unwrap();
    assert_eq!(graph::load(&path).unwrap(), sample("old"));
    // A save that fails before its rename (here: the target became a directory) changes nothing
    // and leaves no temporary file.
    let blocked = dir.path().join("blocked.json");
    std::fs::create_dir(&blocked).unwrap();
    assert!(graph::save(&sample("new"), &blocked).is_err());
    assert_eq!(graph::load(&path).unwrap(), sample("old"));
    let temporaries = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".blocked"))
        .count();
    assert_eq!(temporaries, 0);
}

#[test]
fn fbp_files_save_as_fbp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.fbp");
    graph::save(&sample("text"), &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("core/Repeat"), "{text}");
    let loaded = graph::load(&path).unwrap();
    assert_eq!(loaded.nodes, sample("text").nodes);
}

#[test]
fn loading_a_missing_file_names_it() {
    let err = graph::load(std::path::Path::new("/nonexistent/graph.json")).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/graph.json: "),
        "{err}"
    );
}
