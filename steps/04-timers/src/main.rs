//! The talk's timers: "Hello" now, "World" after a delay.
//!
//! `cargo run -p step4-timers` prints `Hello`, then `World` a second later; add `-- --trace`
//! to see the loop's trace: the timer, the sleep, each callback. While it waits, the loop
//! sleeps: the process uses almost no CPU time.

use std::time::Duration;

use step4_timers::{EventLoop, say};

fn main() {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        say!("usage: {} [--trace]", env!("CARGO_PKG_NAME"));
        return;
    }
    let event_loop = EventLoop::new();
    event_loop.set_debug(std::env::args().any(|arg| arg == "--trace"));

    event_loop.call_soon(|| say!("Hello"));
    let stopper = event_loop.clone();
    event_loop.call_later(Duration::from_secs(1), move || {
        say!("World");
        stopper.stop();
    });

    event_loop.run_forever();
}
