//! The rules of `add_reader`, `add_writer` and their `remove_*`, checked on every step that has
//! them. Readiness is made by the test itself (a byte written, a peer closed), so nothing
//! depends on timing.

macro_rules! select_tests {
    ($step:ident, $name:ident, $selector:ident) => {
        mod $name {
            use std::cell::RefCell;
            use std::io::{ErrorKind, Read, Write};
            use std::net::TcpListener;
            use std::os::unix::net::UnixStream;
            use std::rc::Rc;
            use std::time::Duration;

            use ::$step::{EventLoop, connect_nonblocking};
            use nix::fcntl::{FcntlArg, FdFlag, fcntl};

            type Log = Rc<RefCell<Vec<String>>>;

            /// A loop on the selector under test.
            fn new_loop() -> EventLoop {
                let selector = ::$step::selectors::$selector::new().unwrap();
                EventLoop::with_selector(Box::new(selector))
            }

            fn pair() -> (Rc<UnixStream>, UnixStream) {
                let (ours, theirs) = UnixStream::pair().unwrap();
                ours.set_nonblocking(true).unwrap();
                (Rc::new(ours), theirs)
            }

            #[test]
            fn a_reader_runs_each_time_the_descriptor_is_ready_until_removed() {
                let event_loop = new_loop();
                let (ours, mut theirs) = pair();
                theirs.write_all(b"abc").unwrap();
                let got = Rc::new(RefCell::new(Vec::new()));
                let (lp, s, g) = (event_loop.clone(), ours.clone(), got.clone());
                event_loop
                    .add_reader(ours.clone(), move || {
                        let mut byte = [0];
                        (&*s).read_exact(&mut byte).unwrap();
                        g.borrow_mut().push(byte[0]);
                        if g.borrow().len() == 3 {
                            assert!(lp.remove_reader(&s));
                            lp.stop();
                        }
                    })
                    .unwrap();
                event_loop.run_forever();
                assert_eq!(*got.borrow(), b"abc");
                assert!(!event_loop.remove_reader(&ours), "already removed");
            }

            #[test]
            fn remove_reports_whether_something_was_registered() {
                let event_loop = new_loop();
                let (ours, _theirs) = pair();
                assert!(!event_loop.remove_reader(&ours));
                assert!(!event_loop.remove_writer(&ours));
                event_loop.add_reader(ours.clone(), || {}).unwrap();
                assert!(!event_loop.remove_writer(&ours), "reading and writing are separate");
                assert!(event_loop.remove_reader(&ours));
                assert!(!event_loop.remove_reader(&ours));
            }

            #[test]
            fn adding_again_replaces_the_callback() {
                let event_loop = new_loop();
                let (ours, _theirs) = pair();
                let log = Log::default();
                let l = log.clone();
                event_loop.add_writer(ours.clone(), move || l.borrow_mut().push("old".into())).unwrap();
                let (lp, l, s) = (event_loop.clone(), log.clone(), ours.clone());
                event_loop
                    .add_writer(ours.clone(), move || {
                        l.borrow_mut().push("new".into());
                        lp.remove_writer(&s);
                        lp.stop();
                    })
                    .unwrap();
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["new"]);
            }

            #[test]
            fn a_reader_and_a_writer_of_one_descriptor_both_run_the_reader_first() {
                let log = workshop_tests::within_hang("a reader and a writer of one descriptor", || {
                    let event_loop = new_loop();
                    let (ours, mut theirs) = pair();
                    theirs.write_all(b"x").unwrap();
                    let log = Log::default();
                    let (lp, s, l) = (event_loop.clone(), ours.clone(), log.clone());
                    event_loop
                        .add_reader(ours.clone(), move || {
                            (&*s).read_exact(&mut [0]).unwrap();
                            l.borrow_mut().push("read".into());
                            lp.remove_reader(&s);
                        })
                        .unwrap();
                    let (lp, s, l) = (event_loop.clone(), ours.clone(), log.clone());
                    event_loop
                        .add_writer(ours.clone(), move || {
                            l.borrow_mut().push("write".into());
                            lp.remove_writer(&s);
                            lp.stop();
                        })
                        .unwrap();
                    event_loop.run_forever();
                    log.take()
                });
                assert_eq!(log, ["read", "write"]);
            }

            #[test]
            fn a_peer_that_closes_makes_the_reader_see_the_end() {
                let event_loop = new_loop();
                let (ours, theirs) = pair();
                drop(theirs);
                let seen = Rc::new(RefCell::new(None));
                let (lp, s, seen2) = (event_loop.clone(), ours.clone(), seen.clone());
                event_loop
                    .add_reader(ours.clone(), move || {
                        *seen2.borrow_mut() = Some((&*s).read(&mut [0; 16]).unwrap());
                        lp.remove_reader(&s);
                        lp.stop();
                    })
                    .unwrap();
                event_loop.run_forever();
                assert_eq!(*seen.borrow(), Some(0), "a read of 0 bytes means the peer closed");
            }

            #[test]
            fn spurious_readiness_is_harmless() {
                let event_loop = new_loop();
                let (ours, mut theirs) = pair();
                // The reader runs, but another callback drained the socket first.
                theirs.write_all(b"x").unwrap();
                let log = Log::default();
                let (lp, s, l) = (event_loop.clone(), ours.clone(), log.clone());
                event_loop
                    .add_reader(ours.clone(), move || {
                        let outcome = (&*s).read(&mut [0; 16]);
                        let would_block = matches!(&outcome, Err(e) if e.kind() == ErrorKind::WouldBlock);
                        l.borrow_mut().push(format!("would block: {would_block}"));
                        lp.remove_reader(&s);
                        lp.stop();
                    })
                    .unwrap();
                let s = ours.clone();
                let drain = move || {
                    (&*s).read_exact(&mut [0]).unwrap();
                };
                // Scheduled before the wait, so it runs before the reader in the same iteration.
                event_loop.call_soon(drain);
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["would block: true"]);
            }

            #[test]
            fn a_timer_and_a_socket_ready_together_run_in_the_same_iteration() {
                let event_loop = new_loop();
                let (ours, mut theirs) = pair();
                theirs.write_all(b"x").unwrap();
                let log = Log::default();
                let (lp, s, l) = (event_loop.clone(), ours.clone(), log.clone());
                event_loop
                    .add_reader(ours.clone(), move || {
                        l.borrow_mut().push("socket".into());
                        lp.remove_reader(&s);
                    })
                    .unwrap();
                let (lp, l) = (event_loop.clone(), log.clone());
                event_loop.call_at(event_loop.time() - Duration::from_millis(1), move || {
                    l.borrow_mut().push("timer".into());
                    // Stopping ends this iteration: anything not run by now waits.
                    lp.stop();
                });
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["socket", "timer"]);
            }

            #[test]
            fn the_loop_keeps_a_watched_source_open_until_it_is_removed() {
                let event_loop = new_loop();
                let (ours, _theirs) = pair();
                event_loop.add_reader(ours.clone(), || {}).unwrap();
                assert_eq!(Rc::strong_count(&ours), 2);
                event_loop.remove_reader(&ours);
                assert_eq!(Rc::strong_count(&ours), 1);
            }

            #[test]
            fn a_nonblocking_connect_becomes_writable_then_reports_its_outcome() {
                let event_loop = new_loop();
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let open = Rc::new(connect_nonblocking(listener.local_addr().unwrap()).unwrap());
                let refused_addr = {
                    let gone = TcpListener::bind("127.0.0.1:0").unwrap();
                    gone.local_addr().unwrap()
                };
                let refused = Rc::new(connect_nonblocking(refused_addr).unwrap());
                let outcomes = Rc::new(RefCell::new(Vec::new()));
                for (name, stream) in [("open", open.clone()), ("refused", refused.clone())] {
                    let (lp, s, o) = (event_loop.clone(), stream.clone(), outcomes.clone());
                    event_loop
                        .add_writer(stream, move || {
                            let error = s.take_error().unwrap().map(|e| e.kind());
                            o.borrow_mut().push((name, error));
                            lp.remove_writer(&s);
                            if o.borrow().len() == 2 {
                                lp.stop();
                            }
                        })
                        .unwrap();
                }
                event_loop.run_forever();
                let mut outcomes = outcomes.borrow().clone();
                outcomes.sort();
                assert_eq!(outcomes, [("open", None), ("refused", Some(ErrorKind::ConnectionRefused))]);
            }

            #[test]
            fn a_removed_reader_does_not_run_even_when_already_queued() {
                let event_loop = new_loop();
                let (ours, mut theirs) = pair();
                theirs.write_all(b"x").unwrap();
                let log = Log::default();
                // Queued before select answers, so it runs first in the iteration that queues
                // the reader's call.
                let (lp, s, l) = (event_loop.clone(), ours.clone(), log.clone());
                event_loop.call_soon(move || {
                    l.borrow_mut().push("remove".into());
                    lp.remove_reader(&s);
                    lp.stop();
                });
                let l = log.clone();
                event_loop.add_reader(ours.clone(), move || l.borrow_mut().push("read".into())).unwrap();
                event_loop.run_forever();
                assert_eq!(*log.borrow(), ["remove"]);
            }

            #[test]
            fn a_replaced_reader_does_not_run_even_when_already_queued() {
                let event_loop = new_loop();
                let (ours, mut theirs) = pair();
                theirs.write_all(b"x").unwrap();
                let log = Log::default();
                let (lp, s, l) = (event_loop.clone(), ours.clone(), log.clone());
                event_loop.call_soon(move || {
                    let l = l.clone();
                    lp.add_reader(s.clone(), move || l.borrow_mut().push("new".into())).unwrap();
                    lp.stop();
                });
                let l = log.clone();
                event_loop.add_reader(ours.clone(), move || l.borrow_mut().push("old".into())).unwrap();
                event_loop.run_forever();
                assert!(log.borrow().is_empty(), "{:?}", log.borrow());
            }

            /// Removes a reader of the loop when dropped, as step 7's sockets do.
            struct Unregister(EventLoop, Rc<UnixStream>);

            impl Drop for Unregister {
                fn drop(&mut self) {
                    self.0.remove_reader(&self.1);
                    self.0.remove_writer(&self.1);
                }
            }

            /// A loop watching two sockets for reading, the first one's callback holding an
            /// `Unregister` of the second; and the first socket.
            fn callback_that_unregisters_when_dropped() -> (EventLoop, Rc<UnixStream>, Rc<UnixStream>) {
                let event_loop = new_loop();
                let ((first, _), (second, _)) = (pair(), pair());
                let guard = Unregister(event_loop.clone(), second.clone());
                event_loop.add_reader(second.clone(), || {}).unwrap();
                event_loop.add_reader(first.clone(), move || { let _ = &guard; }).unwrap();
                (event_loop, first, second)
            }

            #[test]
            fn a_removed_callback_may_use_the_loop_as_it_is_dropped() {
                let (event_loop, first, second) = callback_that_unregisters_when_dropped();
                assert!(event_loop.remove_reader(&first));
                assert!(!event_loop.remove_reader(&second), "the guard removed it");
            }

            #[test]
            fn a_replaced_callback_may_use_the_loop_as_it_is_dropped() {
                let (event_loop, first, second) = callback_that_unregisters_when_dropped();
                event_loop.add_reader(first.clone(), || {}).unwrap();
                assert!(!event_loop.remove_reader(&second), "the guard removed it");
            }

            #[test]
            fn close_drops_the_watches_and_closes_the_sources() {
                let (event_loop, first, second) = callback_that_unregisters_when_dropped();
                event_loop.add_writer(first.clone(), || {}).unwrap();
                event_loop.close();
                assert_eq!((Rc::strong_count(&first), Rc::strong_count(&second)), (1, 1));
                assert!(format!("{event_loop:?}").contains(" readers=0 writers=0"));
            }

            #[test]
            fn the_loop_s_sockets_are_not_inherited_by_child_processes() {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let stream = connect_nonblocking(listener.local_addr().unwrap()).unwrap();
                let flags = fcntl(&stream, FcntlArg::F_GETFD).unwrap();
                assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
            }
        }
    };
}

/// Every rule, on every selector this system has.
macro_rules! on_every_selector {
    ($step:ident) => {
        mod $step {
            select_tests!($step, select, SelectSelector);
            select_tests!($step, poll, PollSelector);
            #[cfg(any(target_os = "linux", target_os = "android"))]
            select_tests!($step, epoll, EpollSelector);
            #[cfg(any(
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "openbsd",
                target_os = "dragonfly"
            ))]
            select_tests!($step, kqueue, KqueueSelector);
        }
    };
}

on_every_selector!(step6_select);
on_every_selector!(step7_tasks);
