//! Reading a graph costs memory in proportion to its text: a huge IIP is held about twice (the
//! text, then the value), never once per character as wide as a `char`.
//!
//! The peak is measured with a counting allocator, so the check is exact and independent of
//! the machine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        // SAFETY: the caller's contract for `layout` is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let now = IN_USE.fetch_add(new_size, Ordering::SeqCst) + new_size;
        PEAK.fetch_max(now, Ordering::SeqCst);
        // SAFETY: as for `alloc` and `dealloc`.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const IIP_BYTES: usize = 32 * 1024 * 1024;

/// The peak of memory in use while `read` runs, beyond what was in use before.
fn peak_while(read: impl FnOnce()) -> usize {
    let before = IN_USE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    read();
    PEAK.load(Ordering::SeqCst) - before
}

fn check_proportional(file_name: &str, text: String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name);
    std::fs::write(&path, &text).unwrap();
    drop(text);
    let peak = peak_while(|| {
        let graph = flowd::graph::load(&path).unwrap();
        assert_eq!(graph.connections.len(), 1);
    });
    let ratio = peak as f64 / IIP_BYTES as f64;
    assert!(
        ratio < 2.5,
        "reading a {IIP_BYTES}-byte IIP from {file_name} took {peak} bytes at its peak \
         ({ratio:.1} times its size)"
    );
}

// One test per binary: the counters are global, and tests run on several threads.
#[test]
fn a_huge_iip_costs_about_twice_its_size_in_either_format() {
    let iip = "x".repeat(IIP_BYTES);
    check_proportional("big.fbp", format!("'{iip}' -> IN r(core/Repeat)\n"));
    check_proportional(
        "big_json_value.fbp",
        format!("\"{iip}\" -> IN r(core/Repeat)\n"),
    );
    let json = serde_json::json!({
        "processes": {"r": {"component": "core/Repeat"}},
        "connections": [{"data": iip, "tgt": {"process": "r", "port": "in"}}],
    });
    check_proportional("big.json", json.to_string());
}
