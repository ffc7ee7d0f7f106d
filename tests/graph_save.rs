//! Graph files: saving is atomic and keeps the previous file as `.bak`; what is left by an
//! interrupted save is cleaned up; reading is bounded and takes what editors write.

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

#[test]
fn a_byte_order_mark_before_a_graph_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "g.json",
            r#"{"processes": {"a": {"component": "core/Repeat"}}, "connections": []}"#,
        ),
        ("g.fbp", "a(core/Repeat) OUT -> IN b(core/Drop)\n"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("\u{feff}{text}")).unwrap();
        let graph = graph::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(graph.nodes[0].id, "a", "{name}");
    }
}

#[test]
fn a_graph_file_over_the_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.json");
    graph::save(&sample("big"), &path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let err = graph::load_limited(&path, graph::Format::Json, size - 1).unwrap_err();
    assert!(matches!(err, graph::Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("larger than"), "{err}");
    assert!(graph::load_limited(&path, graph::Format::Json, size).is_ok());

    // A device never ends: it is read only up to the limit.
    let err = graph::load_limited(
        std::path::Path::new("/dev/zero"),
        graph::Format::Fbp,
        1024 * 1024,
    )
    .unwrap_err();
    assert!(matches!(err, graph::Error::TooLarge { .. }), "{err}");
}

#[test]
fn temporary_files_of_interrupted_saves_are_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.json");
    graph::save(&sample("kept"), &path).unwrap();
    // A process id above any the kernel gives out: its writer is gone.
    let stale = dir.path().join(".g.json.tmp4194305");
    let own = dir
        .path()
        .join(format!(".g.json.tmp{}", std::process::id()));
    let other_graph = dir.path().join(".h.json.tmp4194305");
    for file in [&stale, &own, &other_graph] {
        std::fs::write(file, "{").unwrap();
    }
    assert_eq!(graph::remove_stale_temp_files(&path).unwrap(), 1);
    assert!(!stale.exists());
    assert!(own.exists(), "a save in progress is kept");
    assert!(
        other_graph.exists(),
        "another graph's files are its own business"
    );
    assert_eq!(graph::load(&path).unwrap(), sample("kept"));
}
