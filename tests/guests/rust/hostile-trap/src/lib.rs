//! `hostile/Trap`: executes the WebAssembly `unreachable` instruction as soon as it runs,
//! without a panic message. Its `in` port is declared for wiring only and never read.

use flowd_guest::{Component, Context, Port, Result, Spec};

struct Trap;

impl Component for Trap {
    fn describe() -> Spec {
        Spec::new("hostile/Trap", "Executes the unreachable instruction")
            .icon("ban")
            .inport(Port::new("in", "all", "Ignored"))
    }

    fn run(_ctx: &mut Context) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        std::process::abort();
    }
}

flowd_guest::export!(Trap);
