//! The talk's first loop: two callbacks, run in the order they were scheduled.
//!
//! `cargo run -p step3-callbacks` prints `foo` then `bar`; add `-- --trace` to see the
//! loop's trace: each callback it runs, with the time and the iteration.

use step3_callbacks::{EventLoop, say};

fn foo() {
    say!("foo");
}

fn bar() {
    say!("bar");
}

fn main() {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        say!("usage: {} [--trace]", env!("CARGO_PKG_NAME"));
        return;
    }
    let event_loop = EventLoop::new();
    event_loop.set_debug(std::env::args().any(|arg| arg == "--trace"));

    event_loop.call_soon(foo);
    event_loop.call_soon(bar);
    // Without this the loop would spin forever on an empty queue, as the talk's loop does.
    let stopper = event_loop.clone();
    event_loop.call_soon(move || stopper.stop());

    event_loop.run_forever();
}
