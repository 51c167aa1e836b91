//! The rules of `Future`, `run_until_complete`, `sleep` and `gather`, checked on every step
//! that has them.

macro_rules! future_tests {
    ($step:ident) => {
        mod $step {
            use std::cell::RefCell;
            use std::rc::Rc;
            use std::time::Duration;

            use ::$step::{Error, EventLoop, Future, gather};
            use workshop_tests::{panic_message, within_hang};

            type Log = Rc<RefCell<Vec<String>>>;

            /// Runs the loop until the callbacks that are ready now have run.
            fn one_more_round(event_loop: &EventLoop) {
                let round = event_loop.create_future();
                let done = round.clone();
                event_loop.call_soon(move || done.set_result(()).unwrap());
                event_loop.run_until_complete(&round).unwrap();
            }

            fn record<T: std::fmt::Debug + Clone + 'static>(
                log: &Log,
                name: &'static str,
            ) -> impl FnOnce(&Future<T>) + 'static {
                let log = log.clone();
                move |future: &Future<T>| {
                    log.borrow_mut()
                        .push(format!("{name}: {:?}", future.result()))
                }
            }

            #[test]
            fn a_future_goes_from_pending_to_finished_once() {
                let event_loop = EventLoop::new();
                let future = event_loop.create_future::<i32>();
                assert!(!future.done());
                assert_eq!(future.result(), Err(Error::NotReady));
                assert_eq!(format!("{future:?}"), "<Future pending>");
                future.set_result(42).unwrap();
                assert!(future.done() && !future.cancelled());
                assert_eq!(future.result(), Ok(42));
                assert_eq!(format!("{future:?}"), "<Future finished result=42>");
                assert_eq!(future.set_result(7), Err(Error::AlreadyDone));
                assert!(!future.cancel(), "a finished future cannot be cancelled");
                assert_eq!(future.result(), Ok(42), "the first result stays");
            }

            #[test]
            fn a_cancelled_future_takes_no_result() {
                let event_loop = EventLoop::new();
                let future = event_loop.create_future::<i32>();
                assert!(future.cancel());
                assert!(future.done() && future.cancelled());
                assert!(!future.cancel(), "cancelling twice changes nothing");
                assert_eq!(future.set_result(1), Err(Error::AlreadyDone));
                assert_eq!(future.result(), Err(Error::Cancelled));
                assert_eq!(format!("{future:?}"), "<Future cancelled>");
            }

            #[test]
            fn done_callbacks_are_scheduled_in_order_never_called_inline() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let future = event_loop.create_future::<i32>();
                future.add_done_callback(record(&log, "first"));
                future.add_done_callback(record(&log, "second"));
                future.set_result(5).unwrap();
                assert!(
                    log.borrow().is_empty(),
                    "set_result does not run callbacks itself"
                );
                let marker = log.clone();
                event_loop.call_soon(move || marker.borrow_mut().push("scheduled after".into()));
                event_loop.run_until_complete(&future).unwrap();
                // run_until_complete returns as soon as the future is done: run one more round.
                one_more_round(&event_loop);
                assert_eq!(
                    *log.borrow(),
                    ["first: Ok(5)", "second: Ok(5)", "scheduled after"]
                );
            }

            #[test]
            fn a_callback_added_to_a_done_future_is_scheduled_too() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let future = event_loop.create_future::<&str>();
                future.set_result("done").unwrap();
                future.add_done_callback(record(&log, "late"));
                assert!(log.borrow().is_empty(), "not called inline either");
                one_more_round(&event_loop);
                assert_eq!(*log.borrow(), ["late: Ok(\"done\")"]);
            }

            #[test]
            fn cancelling_schedules_the_done_callbacks() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let future = event_loop.create_future::<i32>();
                future.add_done_callback(record(&log, "cb"));
                let canceller = future.clone();
                event_loop.call_soon(move || {
                    canceller.cancel();
                });
                assert_eq!(
                    event_loop.run_until_complete(&future),
                    Err(Error::Cancelled)
                );
                one_more_round(&event_loop);
                assert_eq!(*log.borrow(), ["cb: Err(Cancelled)"]);
            }

            #[test]
            fn run_until_complete_returns_the_result_set_by_a_timer() {
                let event_loop = EventLoop::new();
                let future = event_loop.create_future();
                let setter = future.clone();
                event_loop.call_later(Duration::from_millis(10), move || {
                    setter.set_result(42).unwrap()
                });
                assert_eq!(event_loop.run_until_complete(&future), Ok(42));
            }

            #[test]
            fn gather_gives_results_in_input_order_whatever_order_they_finish_in() {
                let event_loop = EventLoop::new();
                let futures: Vec<Future<usize>> =
                    (0..100).map(|_| event_loop.create_future()).collect();
                // Finish them in a shuffled order, one callback each.
                let mut order: Vec<usize> = (0..100).collect();
                let mut seed = 7_usize;
                for i in (1..order.len()).rev() {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    order.swap(i, (seed >> 33) % (i + 1));
                }
                for i in order {
                    let future = futures[i].clone();
                    event_loop.call_soon(move || future.set_result(i * 10).unwrap());
                }
                let results = event_loop
                    .run_until_complete(&gather(&event_loop, futures))
                    .unwrap();
                assert_eq!(results, (0..100).map(|i| i * 10).collect::<Vec<_>>());
            }

            #[test]
            fn gather_of_nothing_is_done_at_once() {
                let event_loop = EventLoop::new();
                let gathered = gather(&event_loop, Vec::<Future<i32>>::new());
                assert_eq!(gathered.result(), Ok(Vec::new()));
            }

            #[test]
            fn cancelling_the_gathered_future_cancels_the_pending_children() {
                let event_loop = EventLoop::new();
                let finished = event_loop.create_future();
                let pending = event_loop.create_future();
                let gathered = gather(&event_loop, vec![finished.clone(), pending.clone()]);
                finished.set_result(1).unwrap();
                assert!(gathered.cancel());
                assert_eq!(
                    event_loop.run_until_complete(&pending),
                    Err(Error::Cancelled)
                );
                assert_eq!(
                    finished.result(),
                    Ok(1),
                    "a finished child keeps its result"
                );
                assert_eq!(gathered.result(), Err(Error::Cancelled));
            }

            #[test]
            fn cancelling_a_gather_whose_children_are_done_changes_nothing() {
                let event_loop = EventLoop::new();
                let children: Vec<Future<i32>> =
                    (0..2).map(|_| event_loop.create_future()).collect();
                let gathered = gather(&event_loop, children.clone());
                children[0].set_result(1).unwrap();
                children[1].set_result(2).unwrap();
                // Their done callbacks have not run yet: the gathered future is still pending.
                assert!(!gathered.cancel(), "no child could be cancelled");
                assert_eq!(event_loop.run_until_complete(&gathered), Ok(vec![1, 2]));
            }

            #[test]
            fn a_cancelled_gather_waits_for_its_children_to_fail_it() {
                let event_loop = EventLoop::new();
                let child = event_loop.create_future::<i32>();
                let gathered = gather(&event_loop, vec![child.clone()]);
                assert!(gathered.cancel());
                assert!(child.cancelled());
                assert!(
                    !gathered.done(),
                    "asyncio's gather is failed by its children"
                );
                assert_eq!(
                    event_loop.run_until_complete(&gathered),
                    Err(Error::Cancelled)
                );
            }

            #[test]
            fn run_until_complete_returns_after_the_done_callbacks_added_before_it() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let future = event_loop.create_future::<i32>();
                future.add_done_callback(record(&log, "added before"));
                let setter = future.clone();
                event_loop.call_soon(move || setter.set_result(42).unwrap());
                assert_eq!(event_loop.run_until_complete(&future), Ok(42));
                assert_eq!(
                    *log.borrow(),
                    ["added before: Ok(42)"],
                    "asyncio adds its own stop callback last"
                );
            }

            #[test]
            fn a_cancelled_child_fails_the_gathered_future_and_the_others_go_on() {
                let event_loop = EventLoop::new();
                let children: Vec<Future<i32>> =
                    (0..3).map(|_| event_loop.create_future()).collect();
                let gathered = gather(&event_loop, children.clone());
                children[0].set_result(1).unwrap();
                let child = children[1].clone();
                event_loop.call_soon(move || {
                    child.cancel();
                });
                assert_eq!(
                    event_loop.run_until_complete(&gathered),
                    Err(Error::Cancelled)
                );
                assert!(!gathered.cancelled(), "failed with Cancelled, as asyncio's");
                one_more_round(&event_loop);
                assert!(!children[2].done(), "the other children go on");
            }

            #[test]
            fn the_first_child_to_fail_fails_the_gathered_future() {
                let event_loop = EventLoop::new();
                let children: Vec<Future<i32>> =
                    (0..3).map(|_| event_loop.create_future()).collect();
                let gathered = gather(&event_loop, children.clone());
                children[2].set_exception(Error::NotReady).unwrap();
                children[0].set_exception(Error::AlreadyDone).unwrap();
                children[1].set_result(1).unwrap();
                assert_eq!(
                    event_loop.run_until_complete(&gathered),
                    Err(Error::NotReady)
                );
            }

            #[test]
            fn a_future_can_fail_with_an_error_instead_of_a_result() {
                let event_loop = EventLoop::new();
                let future = event_loop.create_future::<i32>();
                future.set_exception(Error::Cancelled).unwrap();
                assert!(future.done() && !future.cancelled());
                assert_eq!(future.result(), Err(Error::Cancelled));
                assert_eq!(future.set_result(1), Err(Error::AlreadyDone));
                assert_eq!(
                    format!("{future:?}"),
                    "<Future finished exception=the future was cancelled>"
                );
            }

            #[test]
            fn stop_before_the_future_is_done_ends_run_until_complete_with_asyncio_message() {
                let message = within_hang("stop in run_until_complete", || {
                    let event_loop = EventLoop::new();
                    let never = event_loop.create_future::<i32>();
                    let stopper = event_loop.clone();
                    event_loop.call_soon(move || stopper.stop());
                    panic_message(|| drop(event_loop.run_until_complete(&never)))
                });
                assert_eq!(message, "Event loop stopped before Future completed.");
            }

            #[test]
            fn run_until_complete_inside_a_running_loop_is_refused() {
                let message = within_hang("run_until_complete inside run_forever", || {
                    let event_loop = EventLoop::new();
                    let inner = event_loop.clone();
                    event_loop.call_soon(move || {
                        let future = inner.create_future::<i32>();
                        let _ = inner.run_until_complete(&future);
                    });
                    panic_message(|| event_loop.run_forever())
                });
                assert_eq!(message, "This event loop is already running");
            }
        }
    };
}

/// The callback-style `sleep(&event_loop, delay)` of steps 5 and 6; step 7's is an `async fn`
/// that finds the running loop itself, and its tests are in `tasks.rs`.
macro_rules! sleep_tests {
    ($step:ident) => {
        mod $step {
            use std::cell::RefCell;
            use std::rc::Rc;
            use std::time::Duration;

            use ::$step::{Error, EventLoop, gather, sleep};

            type Log = Rc<RefCell<Vec<String>>>;

            #[test]
            fn sleeps_finish_in_deadline_order() {
                let event_loop = EventLoop::new();
                let log = Log::default();
                let sleeps: Vec<_> = [30, 10, 20]
                    .into_iter()
                    .map(|ms| {
                        let done = sleep(&event_loop, Duration::from_millis(ms));
                        let log = log.clone();
                        done.add_done_callback(move |_| log.borrow_mut().push(ms.to_string()));
                        done
                    })
                    .collect();
                event_loop
                    .run_until_complete(&gather(&event_loop, sleeps))
                    .unwrap();
                assert_eq!(*log.borrow(), ["10", "20", "30"]);
            }

            #[test]
            fn a_cancelled_sleep_stays_cancelled_when_its_timer_fires() {
                let event_loop = EventLoop::new();
                let sleeping = sleep(&event_loop, Duration::from_millis(1));
                assert!(sleeping.cancel());
                event_loop
                    .run_until_complete(&sleep(&event_loop, Duration::from_millis(5)))
                    .unwrap();
                assert_eq!(sleeping.result(), Err(Error::Cancelled));
            }
        }
    };
}

mod sleep {
    sleep_tests!(step5_futures);
    sleep_tests!(step6_select);
}

future_tests!(step5_futures);
future_tests!(step6_select);
future_tests!(step7_tasks);
