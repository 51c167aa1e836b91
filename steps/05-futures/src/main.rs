//! The talk's futures: a result set by a timer, a done callback, then `sleep` and `gather`.
//!
//! `cargo run -p step5-futures` prints the future before and after it gets its result, the
//! done callback's line, and then three sleeps gathered: they finish together, in the time of
//! the longest, not the sum. Add `-- --trace` to see the loop's trace.

use std::time::{Duration, Instant};

use step5_futures::{EventLoop, Future, gather, say, sleep};

fn on_future_done(future: &Future<i32>) {
    say!("Future is done! Result: {}", future.result().unwrap());
}

fn main() {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        say!("usage: {} [--trace]", env!("CARGO_PKG_NAME"));
        return;
    }
    let event_loop = EventLoop::new();
    event_loop.set_debug(std::env::args().any(|arg| arg == "--trace"));

    let future = event_loop.create_future();
    say!("{future:?}");
    future.set_result(42).unwrap();
    say!("{future:?}");

    let future = event_loop.create_future();
    future.add_done_callback(on_future_done);
    let setter = future.clone();
    event_loop.call_later(Duration::from_millis(500), move || {
        setter.set_result(42).unwrap();
    });
    event_loop.run_until_complete(&future).unwrap();

    let delays = [300, 100, 200].map(Duration::from_millis);
    let start = Instant::now();
    let sleeps = (1..).zip(delays).map(|(number, delay)| {
        let done = sleep(&event_loop, delay);
        let seconds = delay.as_secs_f64();
        done.add_done_callback(move |_| say!("sleep #{number} ({seconds:.2} s) is done"));
        done
    });
    let gathered = gather(&event_loop, sleeps.collect());
    event_loop.run_until_complete(&gathered).unwrap();
    let sum: Duration = delays.iter().sum();
    say!(
        "gather: 3 sleeps finished after {:.2} s, not their sum of {:.2} s",
        start.elapsed().as_secs_f64(),
        sum.as_secs_f64()
    );
}
