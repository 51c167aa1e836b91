//! Step 2 demo: a generator resumed by hand; three tasks interleaved by a round-robin scheduler,
//! first as hand-written generators, then as `async fn`s; and the size of what each keeps while it
//! is paused.

use step2_generators::{
    Countdown, Event, Generator, GeneratorState, Launch, PollLoop, Scheduler, countdown, launch,
};

fn main() {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        println!(
            "usage: {}  (no options: it runs the demo)",
            env!("CARGO_PKG_NAME")
        );
        return;
    }
    println!("1. A generator, resumed by hand until it completes");
    let mut generator = Countdown::new(3);
    loop {
        let paused_at = format!("{generator:?}");
        let state = generator.resume();
        println!("   {paused_at:<27} resume() -> {state:?}");
        if let GeneratorState::Complete(_) = state {
            break;
        }
    }
    println!("   {generator:?}");

    println!("\n2. A round-robin scheduler interleaves three generators");
    let mut scheduler = Scheduler::default();
    scheduler.spawn("a", Countdown::new(3));
    scheduler.spawn("b", Launch::new(2));
    scheduler.spawn("c", Countdown::new(1));
    let by_hand = scheduler.run();
    print_events(&by_hand);

    println!("\n3. The same tasks as async fns, driven by a poll loop");
    let mut poll_loop = PollLoop::default();
    poll_loop.spawn("a", countdown(3));
    poll_loop.spawn("b", launch(2));
    poll_loop.spawn("c", countdown(1));
    let by_compiler = poll_loop.run();
    print_events(&by_compiler);
    println!(
        "   same events as the scheduler: {}",
        by_compiler == by_hand
    );

    println!("\n4. What a paused task keeps");
    println!(
        "   Countdown, by hand: {} bytes    countdown(3), by the compiler: {} bytes",
        size_of::<Countdown>(),
        size_of_val(&countdown(3))
    );
    println!(
        "   Launch, by hand:    {} bytes    launch(2), by the compiler:    {} bytes",
        size_of::<Launch>(),
        size_of_val(&launch(2))
    );
    println!(
        "   Both hold the same things: which state the function is paused in, and the locals alive"
    );
    println!(
        "   across the pause. The compiler's also hold the future being awaited and the arguments."
    );
}

/// Prints one line per turn, in the order the turns were taken.
fn print_events(events: &[Event]) {
    for (task, state) in events {
        println!("   {task}: {state:?}");
    }
}
