//! Protocol frames into a runtime: each line of the input is one frame from one client. Nothing
//! a client sends may panic, hang or abort the runtime, and afterwards it still answers.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let registry = Arc::new(flowd::Registry::with_core());
    // Graph sources on, so that component:source is fuzzed too.
    let config = flowd::runtime::RuntimeConfig {
        graph_sources: true,
        ..Default::default()
    };
    let shared = flowd::runtime::Runtime::new(config, registry);
    let (tx, mut rx) = tokio::sync::mpsc::channel(1 << 16);
    let client = flowd::runtime::Runtime::lock(&shared)
        .connect(tx, flowd::runtime::QueueLimits::default())
        .id;
    // Bounded: a frame that starts a network costs threads, and a run must stay short.
    for frame in text.lines().take(64) {
        flowd::runtime::Runtime::lock(&shared).handle_frame(client, frame);
        while rx.try_recv().is_ok() {}
    }
    let probe = r#"{"protocol":"runtime","command":"getruntime","payload":{}}"#;
    flowd::runtime::Runtime::lock(&shared).handle_frame(client, probe);
    let mut answered = false;
    while let Ok(outbound) = rx.try_recv() {
        if let flowd::runtime::Outbound::Frame(frame, _) = outbound {
            answered |= frame.as_str().contains(r#""command":"runtime""#);
        }
    }
    assert!(answered, "the runtime no longer answers runtime:getruntime");
    flowd::runtime::Runtime::lock(&shared).shutdown();
});
