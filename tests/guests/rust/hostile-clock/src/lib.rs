//! `hostile/Clock`: prints the wall clock it sees, as whole seconds since the Unix epoch
//! (`wall clock: <secs>`), then ends. The sandbox shows it the epoch itself unless the
//! operator grants `wall_clock`.

use std::time::{SystemTime, UNIX_EPOCH};

use flowd_guest::{Component, Context, Result, Spec};

struct Clock;

impl Component for Clock {
    fn describe() -> Spec {
        Spec::new("hostile/Clock", "Prints the wall clock it sees").icon("clock-o")
    }

    fn run(_ctx: &mut Context) -> Result<()> {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        println!("wall clock: {seconds}");
        Ok(())
    }
}

flowd_guest::export!(Clock);
