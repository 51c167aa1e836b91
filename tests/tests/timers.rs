//! The rules of `call_at`, `call_later` and `TimerHandle`, checked on every step that has them.
//! Deadlines are set relative to one reading of the loop's clock, so the order of events is
//! deterministic however slow the machine is; no test asserts how long anything took.

use std::thread;
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// CPU time spent by the calling thread so far.
fn thread_cpu_time() -> Duration {
    Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("a thread CPU clock"))
}

/// Runs `wait` on a thread of its own and returns the share of its wall time it spent on a
/// CPU: near 1 for a loop that spins, near 0 for one that sleeps.
fn cpu_share(wait: impl FnOnce() + Send + 'static) -> f64 {
    thread::spawn(move || {
        let cpu = thread_cpu_time();
        let wall = std::time::Instant::now();
        wait();
        (thread_cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64()
    })
    .join()
    .expect("the waiting thread does not panic")
}

macro_rules! timer_tests {
    ($step:ident) => {
        mod $step {
            use std::cell::RefCell;
            use std::rc::Rc;
            use std::time::Duration;

            use ::$step::EventLoop;

            type Log = Rc<RefCell<Vec<u32>>>;

            fn push(log: &Log, entry: u32) -> impl FnOnce() + 'static {
                let log = log.clone();
                move || log.borrow_mut().push(entry)
            }

            fn stop(event_loop: &EventLoop) -> impl FnOnce() + 'static {
                let event_loop = event_loop.clone();
                move || event_loop.stop()
            }

            #[test]
            fn timers_run_in_deadline_order() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let now = event_loop.time();
                for (i, ms) in [(3, 30), (1, 10), (2, 20)] {
                    event_loop.call_at(now + Duration::from_millis(ms), push(&log, i));
                }
                event_loop.call_at(now + Duration::from_millis(40), stop(&event_loop));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), [1, 2, 3]);
            }

            #[test]
            fn equal_deadlines_run_in_scheduling_order() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let when = event_loop.time() + Duration::from_millis(5);
                for i in 0..1000 {
                    event_loop.call_at(when, push(&log, i));
                }
                event_loop.call_at(when, stop(&event_loop));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), (0..1000).collect::<Vec<_>>());
            }

            #[test]
            fn thousands_of_shuffled_timers_run_sorted_by_deadline_then_sequence() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                // Every deadline is already in the past, so they are all due at once.
                let base = event_loop.time();
                let mut seed = 12345_u32;
                let mut expected = Vec::new();
                for i in 0..5000 {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let ago = u64::from(seed >> 16) % 100;
                    event_loop.call_at(base - Duration::from_micros(ago), push(&log, i));
                    expected.push((100 - ago, i));
                }
                expected.sort();
                event_loop.call_at(base, stop(&event_loop));
                event_loop.run_forever();
                let expected: Vec<u32> = expected.into_iter().map(|(_, i)| i).collect();
                assert_eq!(*log.borrow(), expected);
            }

            #[test]
            fn a_timer_in_the_past_runs_in_the_next_iteration_after_ready_callbacks() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let past = event_loop.time() - Duration::from_secs(1);
                event_loop.call_at(past, push(&log, 2));
                event_loop.call_soon(push(&log, 1));
                event_loop.call_at(past, stop(&event_loop));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), [1, 2]);
            }

            #[test]
            fn timers_due_together_run_in_one_iteration_before_what_they_schedule() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let past = event_loop.time() - Duration::from_millis(1);
                let (lp, l) = (event_loop.clone(), log.clone());
                event_loop.call_at(past, move || {
                    l.borrow_mut().push(1);
                    let (lp2, l) = (lp.clone(), l.clone());
                    lp.call_soon(move || {
                        l.borrow_mut().push(3);
                        lp2.stop();
                    });
                });
                event_loop.call_at(past, push(&log, 2));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), [1, 2, 3]);
            }

            #[test]
            fn call_later_is_call_at_from_now() {
                let event_loop = EventLoop::new();
                let before = event_loop.time();
                let timer = event_loop.call_later(Duration::from_secs(60), || {});
                let after = event_loop.time();
                assert!(timer.when() >= before + Duration::from_secs(60));
                assert!(timer.when() <= after + Duration::from_secs(60));
            }

            #[test]
            fn a_cancelled_timer_never_runs() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let now = event_loop.time();
                let early = event_loop.call_at(now, push(&log, 1));
                let later = event_loop.call_at(now + Duration::from_millis(10), push(&log, 3));
                early.cancel();
                assert!(early.cancelled());
                // Cancelled from inside another timer, before its turn comes.
                let canceller = later.clone();
                event_loop.call_at(now + Duration::from_millis(5), move || canceller.cancel());
                event_loop.call_at(now + Duration::from_millis(5), push(&log, 2));
                event_loop.call_at(now + Duration::from_millis(20), stop(&event_loop));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), [2]);
                assert!(later.cancelled());
            }

            #[test]
            fn a_callback_can_schedule_timers_and_stop_from_one() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let (lp, l) = (event_loop.clone(), log.clone());
                event_loop.call_soon(move || {
                    lp.call_later(Duration::from_millis(2), push(&l, 2));
                    lp.call_later(Duration::ZERO, push(&l, 1));
                    lp.call_later(Duration::from_millis(4), stop(&lp));
                    lp.call_later(Duration::from_secs(3600), push(&l, 99));
                });
                event_loop.run_forever();
                assert_eq!(*log.borrow(), [1, 2]);
            }

            #[test]
            fn waiting_for_a_timer_sleeps_instead_of_spinning() {
                let share = super::cpu_share(|| {
                    let event_loop = EventLoop::new();
                    // A spinning loop would use a whole CPU: 100 ms tells the two apart.
                    event_loop.call_later(Duration::from_millis(100), stop(&event_loop));
                    event_loop.run_forever();
                });
                assert!(
                    share < 0.2,
                    "the loop used {:.0}% of a CPU while waiting",
                    share * 100.0
                );
            }

            /// How many timers the loop's heap holds, as its `Debug` shows.
            fn timers_in_heap(event_loop: &EventLoop) -> usize {
                let shown = format!("{event_loop:?}");
                let count = shown
                    .split(" timers=")
                    .nth(1)
                    .expect("Debug shows the timers");
                count.split(['>', ' ']).next().unwrap().parse().unwrap()
            }

            fn one_iteration(event_loop: &EventLoop) {
                event_loop.call_soon(stop(event_loop));
                event_loop.run_forever();
            }

            #[test]
            fn cancelled_timers_are_purged_once_they_are_most_of_the_heap() {
                let event_loop = EventLoop::new();
                let hour = Duration::from_secs(3600);
                let timers: Vec<_> = (0..1000)
                    .map(|_| event_loop.call_later(hour, || {}))
                    .collect();
                for timer in &timers[..600] {
                    timer.cancel();
                    timer.cancel();
                }
                one_iteration(&event_loop);
                assert_eq!(
                    timers_in_heap(&event_loop),
                    400,
                    "600 of 1000 were cancelled"
                );
                for timer in &timers[600..750] {
                    timer.cancel();
                }
                one_iteration(&event_loop);
                assert_eq!(timers_in_heap(&event_loop), 400, "150 of 400: not yet half");
                for timer in &timers[750..] {
                    timer.cancel();
                }
                one_iteration(&event_loop);
                assert_eq!(timers_in_heap(&event_loop), 0);
            }

            #[test]
            fn cancelling_a_timer_that_already_ran_does_not_count_towards_a_purge() {
                let event_loop = EventLoop::new();
                let fired: Vec<_> = (0..300)
                    .map(|_| event_loop.call_later(Duration::ZERO, || {}))
                    .collect();
                one_iteration(&event_loop);
                for timer in &fired {
                    timer.cancel();
                }
                let hour = Duration::from_secs(3600);
                let pending: Vec<_> = (0..150)
                    .map(|_| event_loop.call_later(hour, || {}))
                    .collect();
                for timer in &pending[..50] {
                    timer.cancel();
                }
                one_iteration(&event_loop);
                assert_eq!(timers_in_heap(&event_loop), 150, "50 of 150: no purge");
            }

            #[test]
            fn a_delay_beyond_what_the_clock_counts_is_a_timer_that_never_comes() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let never = event_loop.call_later(Duration::MAX, push(&log, 1));
                event_loop.call_later(Duration::from_millis(1), stop(&event_loop));
                event_loop.run_forever();
                assert!(log.borrow().is_empty());
                never.cancel();
            }

            #[test]
            fn close_drops_the_scheduled_timers_and_the_loop_refuses_more() {
                let event_loop = EventLoop::new();
                let (dropped, guard) = workshop_tests::drop_flag();
                event_loop.call_later(Duration::from_secs(3600), move || drop(guard));
                event_loop.close();
                assert!(dropped.get());
                assert_eq!(timers_in_heap(&event_loop), 0);
                let more = || drop(event_loop.call_later(Duration::ZERO, || {}));
                assert_eq!(workshop_tests::panic_message(more), "Event loop is closed");
            }
        }
    };
}

timer_tests!(step4_timers);
timer_tests!(step5_futures);
timer_tests!(step6_select);
timer_tests!(step7_tasks);
