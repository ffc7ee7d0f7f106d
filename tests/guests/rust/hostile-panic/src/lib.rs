//! `hostile/Panic`: panics on the first IP it receives on `in` (a trap, as guests build with
//! `panic = "abort"`; the message goes to stderr). Ends normally if `in` ends without an IP.
//!
//! Given the IP `traceback`, it fails as a JavaScript guest does instead: the cause on one
//! line of stderr, a stack trace of several lines under it, then an abort.

use flowd_guest::{Component, Context, Port, Result, Spec};

struct Panic;

impl Component for Panic {
    fn describe() -> Spec {
        Spec::new("hostile/Panic", "Panics on its first IP")
            .icon("exclamation")
            .inport(Port::new("in", "all", "Any IP triggers the panic"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        if let Some(ip) = ctx.inport("in")?.recv()? {
            if ip.payload() == b"traceback" {
                eprintln!("Error: hostile/Panic: the real cause, above its stack trace");
                for frame in 0..6 {
                    eprintln!("    at frame{frame} (guest.js:{}:{})", 10 + frame, frame);
                }
                std::process::abort();
            }
            panic!(
                "hostile/Panic: panicking on purpose at the first IP ({} bytes)",
                ip.payload().len()
            );
        }
        Ok(())
    }
}

flowd_guest::export!(Panic);
