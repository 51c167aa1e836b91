//! Step 2: generators written by hand, a round-robin scheduler, and the same tasks as `async fn`s.

use step2_generators::{
    Countdown, Event, Generator, GeneratorState, Launch, PollLoop, Scheduler, countdown, launch,
};

use GeneratorState::{Complete, Yielded};

/// Resumes `generator` until it completes, returning what it yielded and what it returned.
fn drain<G: Generator>(generator: &mut G) -> (Vec<G::Yield>, G::Return) {
    let mut yielded = Vec::new();
    loop {
        match generator.resume() {
            Yielded(value) => yielded.push(value),
            Complete(value) => return (yielded, value),
        }
    }
}

#[test]
fn countdown_yields_n_down_to_1_then_returns_how_many() {
    assert_eq!(drain(&mut Countdown::new(3)), (vec![3, 2, 1], 3));
    assert_eq!(drain(&mut Countdown::new(0)), (vec![], 0));
}

#[test]
fn countdown_runs_nothing_until_resumed_and_pauses_in_named_states() {
    let mut generator = Countdown::new(2);
    assert!(matches!(generator, Countdown::Start { n: 2 }));
    assert_eq!(generator.resume(), Yielded(2));
    assert!(matches!(generator, Countdown::Paused { n: 2, start: 2 }));
    assert_eq!(generator.resume(), Yielded(1));
    assert_eq!(generator.resume(), Complete(2));
    assert!(matches!(generator, Countdown::Done));
}

#[test]
#[should_panic(expected = "generator resumed after completion")]
fn resuming_a_completed_countdown_panics() {
    let mut generator = Countdown::new(1);
    drain(&mut generator);
    generator.resume();
}

#[test]
#[should_panic(expected = "generator resumed after completion")]
fn resuming_a_completed_launch_panics() {
    let mut generator = Launch::new(1);
    drain(&mut generator);
    generator.resume();
}

#[test]
fn launch_passes_every_countdown_value_through_then_uses_its_return_value() {
    assert_eq!(drain(&mut Launch::new(3)), (vec![3, 2, 1, 0], 4));
    assert_eq!(drain(&mut Launch::new(0)), (vec![0], 1));
}

#[test]
fn launch_holds_the_paused_countdown_while_delegating() {
    let mut generator = Launch::new(2);
    assert_eq!(generator.resume(), Yielded(2));
    assert!(matches!(
        generator,
        Launch::Delegating {
            countdown: Countdown::Paused { n: 2, start: 2 }
        }
    ));
    assert_eq!(generator.resume(), Yielded(1));
    assert_eq!(generator.resume(), Yielded(0));
    assert!(matches!(generator, Launch::Liftoff { counted: 2 }));
}

/// The turns three tasks of different lengths take, one resume each in strict rotation.
fn expected_interleaving() -> Vec<Event> {
    vec![
        ("a", Yielded(3)),
        ("b", Yielded(2)),
        ("c", Yielded(1)),
        ("a", Yielded(2)),
        ("b", Yielded(1)),
        ("c", Complete(1)),
        ("a", Yielded(1)),
        ("b", Yielded(0)),
        ("a", Complete(3)),
        ("b", Complete(3)),
    ]
}

#[test]
fn scheduler_interleaves_in_strict_round_robin_order() {
    let mut scheduler = Scheduler::default();
    scheduler.spawn("a", Countdown::new(3));
    scheduler.spawn("b", Launch::new(2));
    scheduler.spawn("c", Countdown::new(1));
    assert_eq!(scheduler.run(), expected_interleaving());
    assert_eq!(scheduler.run(), vec![], "every task has left the queue");
}

#[test]
fn async_fns_driven_by_the_poll_loop_take_the_same_turns() {
    let mut poll_loop = PollLoop::default();
    poll_loop.spawn("a", countdown(3));
    poll_loop.spawn("b", launch(2));
    poll_loop.spawn("c", countdown(1));
    assert_eq!(poll_loop.run(), expected_interleaving());
}

#[test]
fn async_fns_yield_and_return_what_the_hand_written_generators_do() {
    for n in 0..5 {
        let mut by_hand = Scheduler::default();
        by_hand.spawn("countdown", Countdown::new(n));
        by_hand.spawn("launch", Launch::new(n));
        let mut by_compiler = PollLoop::default();
        by_compiler.spawn("countdown", countdown(n));
        by_compiler.spawn("launch", launch(n));
        assert_eq!(by_compiler.run(), by_hand.run(), "n = {n}");
    }
}
