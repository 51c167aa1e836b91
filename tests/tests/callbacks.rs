//! The rules of `call_soon`, `run_forever`, `stop` and `Handle`, checked on every step that has
//! them, so a later step can never silently break an earlier step's semantics.

macro_rules! callback_tests {
    ($step:ident) => {
        mod $step {
            use std::cell::RefCell;
            use std::rc::Rc;

            use ::$step::EventLoop;
            use workshop_tests::{drop_flag, panic_message, within_hang};

            use super::EMPTY_REST;

            /// A shared list that callbacks append to, and the loop's order is read from.
            fn log() -> Rc<RefCell<Vec<String>>> {
                Rc::default()
            }

            fn push(
                log: &Rc<RefCell<Vec<String>>>,
                entry: impl Into<String>,
            ) -> impl FnOnce() + 'static {
                let log = log.clone();
                let entry = entry.into();
                move || log.borrow_mut().push(entry)
            }

            fn stop(event_loop: &EventLoop) -> impl FnOnce() + 'static {
                let event_loop = event_loop.clone();
                move || event_loop.stop()
            }

            #[test]
            fn callbacks_run_in_the_order_they_were_scheduled() {
                let event_loop = EventLoop::new();
                let order = Rc::new(RefCell::new(Vec::new()));
                for i in 0..10_000 {
                    let order = order.clone();
                    event_loop.call_soon(move || order.borrow_mut().push(i));
                }
                event_loop.call_soon(stop(&event_loop));
                event_loop.run_forever();
                assert_eq!(*order.borrow(), (0..10_000).collect::<Vec<_>>());
            }

            #[test]
            fn a_callback_scheduled_during_an_iteration_runs_in_the_next_one() {
                let event_loop = EventLoop::new();
                let log = log();
                let (lp, l) = (event_loop.clone(), log.clone());
                event_loop.call_soon(move || {
                    l.borrow_mut().push("first".into());
                    lp.call_soon(push(&l, "scheduled by first"));
                    // Stopping ends this iteration, not the one the new callback waits for.
                    lp.stop();
                });
                event_loop.call_soon(push(&log, "second"));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["first", "second"]);

                event_loop.call_soon(stop(&event_loop));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["first", "second", "scheduled by first"]);
            }

            #[test]
            fn stop_lets_the_current_iteration_finish_and_the_loop_runs_again() {
                let event_loop = EventLoop::new();
                let log = log();
                event_loop.call_soon(push(&log, "a"));
                event_loop.call_soon(stop(&event_loop));
                event_loop.call_soon(push(&log, "b"));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["a", "b"]);

                event_loop.call_soon(push(&log, "c"));
                event_loop.call_soon(stop(&event_loop));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["a", "b", "c"]);
            }

            #[test]
            fn stop_before_run_forever_runs_one_iteration() {
                let ran = within_hang("run_forever after stop", || {
                    let event_loop = EventLoop::new();
                    let log = log();
                    event_loop.call_soon(push(&log, "ran"));
                    event_loop.stop();
                    event_loop.run_forever();
                    // With nothing to do, the one iteration does not wait either.
                    event_loop.stop();
                    event_loop.run_forever();
                    log.take()
                });
                assert_eq!(ran, ["ran"]);
            }

            #[test]
            fn a_cancelled_handle_never_runs_and_drops_its_callback() {
                let event_loop = EventLoop::new();
                let log = log();
                let captured = Rc::new(());
                let keep = captured.clone();
                let handle = event_loop.call_soon(move || drop(keep));
                assert!(!handle.cancelled());
                handle.cancel();
                assert!(handle.cancelled());
                assert_eq!(Rc::strong_count(&captured), 1, "cancel drops the callback");
                event_loop.call_soon(push(&log, "other"));
                event_loop.call_soon(stop(&event_loop));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["other"]);
            }

            #[test]
            fn a_callback_can_cancel_one_scheduled_after_it() {
                let event_loop = EventLoop::new();
                let log = log();
                let victim = Rc::new(RefCell::new(None::<::$step::Handle>));
                let v = victim.clone();
                event_loop.call_soon(move || v.borrow().as_ref().unwrap().cancel());
                *victim.borrow_mut() = Some(event_loop.call_soon(push(&log, "victim")));
                event_loop.call_soon(push(&log, "bystander"));
                event_loop.call_soon(stop(&event_loop));
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["bystander"]);
                assert!(victim.borrow().as_ref().unwrap().cancelled());
            }

            #[test]
            fn a_callback_can_cancel_its_own_handle_while_it_runs() {
                let event_loop = EventLoop::new();
                let own = Rc::new(RefCell::new(None::<::$step::Handle>));
                let o = own.clone();
                let handle = event_loop.call_soon(move || o.borrow().as_ref().unwrap().cancel());
                *own.borrow_mut() = Some(handle.clone());
                event_loop.call_soon(stop(&event_loop));
                event_loop.run_forever();
                assert!(handle.cancelled());
            }

            #[test]
            fn a_handle_names_its_callback() {
                fn named_callback() {}
                let event_loop = EventLoop::new();
                let handle = event_loop.call_soon(named_callback);
                assert!(
                    format!("{handle:?}").contains("named_callback"),
                    "{handle:?}"
                );
                handle.cancel();
                assert!(format!("{handle:?}").contains("cancelled"), "{handle:?}");
            }

            #[test]
            fn a_loop_run_inside_itself_is_refused_with_asyncio_s_message() {
                within_hang("run_forever inside run_forever", || {
                    let event_loop = EventLoop::new();
                    let inner = event_loop.clone();
                    event_loop.call_soon(move || inner.run_forever());
                    let message = panic_message(|| event_loop.run_forever());
                    assert_eq!(message, "This event loop is already running");
                    assert!(!event_loop.is_running(), "a panic leaves it stopped");
                    event_loop.call_soon(stop(&event_loop));
                    event_loop.run_forever();
                });
            }

            #[test]
            fn close_drops_the_queued_callbacks_and_the_loop_refuses_more_work() {
                let event_loop = EventLoop::new();
                let (dropped, guard) = drop_flag();
                event_loop.call_soon(move || drop(guard));
                event_loop.close();
                assert!(dropped.get(), "the queued callback's captures are dropped");
                assert!(event_loop.is_closed());
                assert_eq!(
                    format!("{event_loop:?}"),
                    format!(
                        "<EventLoop running=false closed=true ready=0{}>",
                        EMPTY_REST
                    )
                );
                event_loop.close();
                assert_eq!(
                    panic_message(|| drop(event_loop.call_soon(|| {}))),
                    "Event loop is closed"
                );
                assert_eq!(
                    panic_message(|| event_loop.run_forever()),
                    "Event loop is closed"
                );
            }

            #[test]
            fn a_running_loop_cannot_be_closed() {
                let event_loop = EventLoop::new();
                let closer = event_loop.clone();
                event_loop.call_soon(move || closer.close());
                let message = panic_message(|| event_loop.run_forever());
                assert_eq!(message, "Cannot close a running event loop");
                assert!(!event_loop.is_closed());
            }
        }
    };
}

/// What a new loop's `Debug` shows after `ready=0`, step by step: each step that adds a queue
/// or a map to the loop shows how full it is.
mod step3 {
    pub const EMPTY_REST: &str = "";
    callback_tests!(step3_callbacks);
}
mod step4 {
    pub const EMPTY_REST: &str = " timers=0";
    callback_tests!(step4_timers);
}
mod step5 {
    pub const EMPTY_REST: &str = " timers=0";
    callback_tests!(step5_futures);
}
mod step6 {
    pub const EMPTY_REST: &str = " timers=0 readers=0 writers=0";
    callback_tests!(step6_select);
}
mod step7 {
    pub const EMPTY_REST: &str = " timers=0 readers=0 writers=0 tasks=0";
    callback_tests!(step7_tasks);
}
