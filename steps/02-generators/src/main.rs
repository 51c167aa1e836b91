// ANCHOR: head
//! Step 2 demo: a generator resumed by hand; three tasks interleaved by a round-robin scheduler,
//! first as hand-written generators, then as `async fn`s; and the size of what each keeps while it
//! is paused.

use step2_generators::{
    Countdown, Event, Generator, GeneratorState, Launch, PollLoop, Scheduler, countdown, launch,
};
// ANCHOR_END: head

// ANCHOR: say
/// `println!`, for output that someone may stop reading (`just run 2 | head -1`). Rust ignores
/// SIGPIPE, so a write to a closed pipe fails with `BrokenPipe`, and `println!` would panic:
/// this ends the program quietly instead, as the signal would end a C program.
macro_rules! say {
    ($($line:tt)*) => {{
        use std::io::Write as _;
        match writeln!(std::io::stdout().lock(), $($line)*) {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            written => written.expect("stdout takes the line"),
        }
    }};
}

// ANCHOR_END: say

// ANCHOR: demo
fn main() {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        say!(
            "usage: {}  (no options: it runs the demo)",
            env!("CARGO_PKG_NAME")
        );
        return;
    }
    say!("1. A generator, resumed by hand until it completes");
    let mut generator = Countdown::new(3);
    loop {
        let paused_at = format!("{generator:?}");
        let state = generator.resume();
        say!("   {paused_at:<27} resume() -> {state:?}");
        if let GeneratorState::Complete(_) = state {
            break;
        }
    }
    say!("   {generator:?}");

    say!("\n2. A round-robin scheduler interleaves three generators");
    let mut scheduler = Scheduler::default();
    scheduler.spawn("a", Countdown::new(3));
    scheduler.spawn("b", Launch::new(2));
    scheduler.spawn("c", Countdown::new(1));
    let by_hand = scheduler.run();
    print_events(&by_hand);

    say!("\n3. The same tasks as async fns, driven by a poll loop");
    let mut poll_loop = PollLoop::default();
    poll_loop.spawn("a", countdown(3));
    poll_loop.spawn("b", launch(2));
    poll_loop.spawn("c", countdown(1));
    let by_compiler = poll_loop.run();
    print_events(&by_compiler);
    say!(
        "   same events as the scheduler: {}",
        by_compiler == by_hand
    );

    say!("\n4. What a paused task keeps");
    say!(
        "   Countdown, by hand: {} bytes    countdown(3), by the compiler: {} bytes",
        size_of::<Countdown>(),
        size_of_val(&countdown(3))
    );
    say!(
        "   Launch, by hand:    {} bytes    launch(2), by the compiler:    {} bytes",
        size_of::<Launch>(),
        size_of_val(&launch(2))
    );
    say!(
        "   Both hold the same things: which state the function is paused in, and the locals alive"
    );
    say!(
        "   across the pause. The compiler's also hold the future being awaited and the arguments."
    );
}

/// Prints one line per turn, in the order the turns were taken.
fn print_events(events: &[Event]) {
    for (task, state) in events {
        say!("   {task}: {state:?}");
    }
}
// ANCHOR_END: demo
