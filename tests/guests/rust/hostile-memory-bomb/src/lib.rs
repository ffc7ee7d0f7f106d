//! `hostile/MemoryBomb`: as soon as it runs, allocates 1 MiB chunks forever with a plain `Vec`
//! push, until the memory limit makes an allocation fail and Rust aborts (a trap,
//! `unreachable`, with `memory allocation of 1048576 bytes failed` on stderr). Its `in` port is
//! declared for wiring only and never read.

use flowd_guest::{Component, Context, Port, Result, Spec};

const CHUNK: usize = 1 << 20;

struct MemoryBomb;

impl Component for MemoryBomb {
    fn describe() -> Spec {
        Spec::new(
            "hostile/MemoryBomb",
            "Allocates 1 MiB chunks until the memory limit aborts it",
        )
        .icon("bomb")
        .inport(Port::new("in", "all", "Ignored"))
    }

    fn run(_ctx: &mut Context) -> Result<()> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            // Filled, so the pages are touched; black_box, so nothing is optimised away.
            chunks.push(vec![0xA5; CHUNK]);
            std::hint::black_box(&mut chunks);
        }
    }
}

flowd_guest::export!(MemoryBomb);
