//! Random requests straight into the runtime: whatever a client sends, flowd answers and keeps
//! going. Frames are made from valid requests with fields dropped, retyped or replaced, so most
//! get past the envelope and reach the handlers.

use std::sync::Arc;

use flowd::Registry;
use flowd::runtime::{Outbound, Runtime, RuntimeConfig};
use serde_json::{Value, json};

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn templates() -> Vec<Value> {
    let port = |node: &str, port: &str| json!({"node": node, "port": port});
    vec![
        json!({"protocol": "runtime", "command": "getruntime", "payload": {}}),
        json!({"protocol": "runtime", "command": "packet", "payload": {"graph": "g", "port": "in", "event": "data", "payload": 1}}),
        json!({"protocol": "graph", "command": "clear", "payload": {"id": "g", "main": true}}),
        json!({"protocol": "graph", "command": "addnode", "payload": {"graph": "g", "id": "a", "component": "core/Repeat", "metadata": {"x": 1}}}),
        json!({"protocol": "graph", "command": "addnode", "payload": {"graph": "g", "id": "b", "component": "core/Drop"}}),
        json!({"protocol": "graph", "command": "removenode", "payload": {"graph": "g", "id": "a"}}),
        json!({"protocol": "graph", "command": "renamenode", "payload": {"graph": "g", "from": "a", "to": "c"}}),
        json!({"protocol": "graph", "command": "changenode", "payload": {"graph": "g", "id": "a", "metadata": {"y": null}}}),
        json!({"protocol": "graph", "command": "addedge", "payload": {"graph": "g", "src": port("a", "out"), "tgt": port("b", "in"), "metadata": {"capacity": 4}}}),
        json!({"protocol": "graph", "command": "removeedge", "payload": {"graph": "g", "src": port("a", "out"), "tgt": port("b", "in")}}),
        json!({"protocol": "graph", "command": "changeedge", "payload": {"graph": "g", "src": port("a", "out"), "tgt": port("b", "in"), "metadata": {"route": 2}}}),
        json!({"protocol": "graph", "command": "addinitial", "payload": {"graph": "g", "src": {"data": "x"}, "tgt": port("a", "in")}}),
        json!({"protocol": "graph", "command": "removeinitial", "payload": {"graph": "g", "tgt": port("a", "in")}}),
        json!({"protocol": "graph", "command": "addinport", "payload": {"graph": "g", "public": "in", "node": "a", "port": "in"}}),
        json!({"protocol": "graph", "command": "renameinport", "payload": {"graph": "g", "from": "in", "to": "IN"}}),
        json!({"protocol": "graph", "command": "addoutport", "payload": {"graph": "g", "public": "out", "node": "a", "port": "out"}}),
        json!({"protocol": "graph", "command": "addgroup", "payload": {"graph": "g", "name": "n", "nodes": ["a", "b"]}}),
        json!({"protocol": "graph", "command": "changegroup", "payload": {"graph": "g", "name": "n", "metadata": {}}}),
        json!({"protocol": "network", "command": "start", "payload": {"graph": "g"}}),
        json!({"protocol": "network", "command": "stop", "payload": {"graph": "g"}}),
        json!({"protocol": "network", "command": "getstatus", "payload": {"graph": "g"}}),
        json!({"protocol": "network", "command": "edges", "payload": {"graph": "g", "edges": [{"src": port("a", "out"), "tgt": port("b", "in")}]}}),
        json!({"protocol": "network", "command": "debug", "payload": {"graph": "g", "enable": true}}),
        json!({"protocol": "component", "command": "list", "payload": {}}),
        json!({"protocol": "component", "command": "getsource", "payload": {"name": "g"}}),
        json!({"protocol": "component", "command": "source", "payload": {"name": "S", "language": "fbp", "code": "INPORT=a.IN:IN\nOUTPORT=a.OUT:OUT\na(core/Repeat)"}}),
        json!({"protocol": "trace", "command": "start", "payload": {"graph": "g", "buffersize": 1000}}),
        json!({"protocol": "trace", "command": "dump", "payload": {"graph": "g", "type": "flowtrace.json"}}),
    ]
}

/// Replacement values of every JSON type, including hostile ones.
fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(1e300),
        json!(18446744073709551615u64),
        json!(""),
        json!("a/b/c"),
        json!("\u{0}\u{ffff}"),
        json!([]),
        json!([1, "x", null]),
        json!({}),
        json!({"node": "a"}),
        json!({"node": "a", "port": "in", "index": "7"}),
        json!({"data": {"deep": [1, 2, 3]}}),
        json!("a".repeat(10_000)),
    ]
}

/// Changes one field somewhere in `frame`.
fn mutate(rng: &mut Rng, frame: &mut Value, odd: &[Value]) {
    let target = if rng.below(4) == 0 {
        &mut *frame
    } else {
        match frame.get_mut("payload") {
            Some(payload) if payload.is_object() => payload,
            _ => &mut *frame,
        }
    };
    let Some(map) = target.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    match rng.below(3) {
        0 if !keys.is_empty() => {
            map.remove(rng.pick(&keys));
        }
        1 if !keys.is_empty() => {
            let key = rng.pick(&keys).clone();
            map.insert(key, rng.pick(odd).clone());
        }
        _ => {
            let key = rng.pick(&[
                "graph",
                "id",
                "src",
                "tgt",
                "metadata",
                "secret",
                "requestId",
            ]);
            map.insert(key.to_string(), rng.pick(odd).clone());
        }
    }
}

#[test]
fn random_requests_get_answers_and_leave_the_runtime_working() {
    let runtime = Runtime::new(RuntimeConfig::default(), Arc::new(Registry::with_core()));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Outbound>(1 << 20);
    let client = Runtime::lock(&runtime)
        .connect(tx, flowd::runtime::QueueLimits::default())
        .id;
    let templates = templates();
    let odd = odd_values();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..5_000 {
        let mut frame = rng.pick(&templates).clone();
        for _ in 0..rng.below(3) {
            mutate(&mut rng, &mut frame, &odd);
        }
        let text = if rng.below(20) == 0 {
            // Truncated text: not JSON at all.
            let full = frame.to_string();
            let mut end = rng.below(full.len());
            while !full.is_char_boundary(end) {
                end -= 1;
            }
            full[..end].to_string()
        } else {
            frame.to_string()
        };
        Runtime::lock(&runtime).handle_frame(client, &text);
        // Every frame sent back is JSON with a protocol and a command.
        while let Ok(Outbound::Frame(answer, _)) = rx.try_recv() {
            let answer: Value = serde_json::from_str(&answer)
                .unwrap_or_else(|e| panic!("round {round}: answer is not JSON ({e}): {answer}"));
            assert!(answer["protocol"].is_string(), "round {round}: {answer}");
            assert!(answer["command"].is_string(), "round {round}: {answer}");
            assert!(answer.get("secret").is_none(), "round {round}: {answer}");
        }
    }
    let mut rt = Runtime::lock(&runtime);
    rt.handle_frame(
        client,
        r#"{"protocol":"runtime","command":"getruntime","payload":{}}"#,
    );
    rt.shutdown();
    drop(rt);
    let mut answered = false;
    while let Ok(Outbound::Frame(answer, _)) = rx.try_recv() {
        answered |= answer.contains(r#""command":"runtime""#);
    }
    assert!(answered, "the runtime still answers getruntime");
}
