//! The `Selector` interface of steps 6 and 7, checked on every backend this system has:
//! registration and its errors, readiness, and the timeout.

macro_rules! selector_tests {
    ($step:ident, $name:ident, $selector:ident) => {
        mod $name {
            use std::io::{ErrorKind, Write};
            use std::os::fd::{AsFd, AsRawFd, RawFd};
            use std::os::unix::net::UnixStream;
            use std::rc::Rc;
            use std::time::Duration;

            use ::$step::selectors::{Events, Selector, $selector};
            use workshop_tests::within_hang;

            fn pair() -> (Rc<UnixStream>, UnixStream) {
                let (ours, theirs) = UnixStream::pair().unwrap();
                ours.set_nonblocking(true).unwrap();
                (Rc::new(ours), theirs)
            }

            fn fd(source: &Rc<UnixStream>) -> RawFd {
                source.as_raw_fd()
            }

            /// What is ready now, without waiting.
            fn ready_now(selector: &mut $selector) -> Vec<(RawFd, Events)> {
                selector.select(Some(Duration::ZERO)).unwrap()
            }

            #[test]
            fn registration_errors_are_clear_and_change_nothing() {
                let mut selector = $selector::new().unwrap();
                let (ours, _theirs) = pair();
                let empty = selector.register(ours.clone(), Events::default());
                assert_eq!(empty.unwrap_err().kind(), ErrorKind::InvalidInput);
                selector.register(ours.clone(), Events::READ).unwrap();
                let twice = selector.register(ours.clone(), Events::WRITE).unwrap_err();
                assert_eq!(twice.kind(), ErrorKind::InvalidInput);
                assert!(twice.to_string().contains("already registered"), "{twice}");
                let (other, _) = pair();
                let unknown = selector.modify(fd(&other), Events::READ).unwrap_err();
                assert_eq!(unknown.kind(), ErrorKind::NotFound);
                assert_eq!(
                    selector.unregister(fd(&other)).err().unwrap().kind(),
                    ErrorKind::NotFound
                );
                assert!(selector.unregister(fd(&ours)).is_ok());
                assert_eq!(selector.name(), $selector::NAME);
            }

            #[test]
            fn the_selector_keeps_a_source_open_until_it_is_unregistered() {
                let mut selector = $selector::new().unwrap();
                let (ours, _theirs) = pair();
                selector.register(ours.clone(), Events::READ).unwrap();
                assert_eq!(Rc::strong_count(&ours), 2);
                let source = selector.unregister(fd(&ours)).unwrap();
                assert_eq!(source.as_fd().as_raw_fd(), fd(&ours));
                drop(source);
                assert_eq!(Rc::strong_count(&ours), 1);
            }

            #[test]
            fn readiness_is_reported_for_what_is_watched_only() {
                let mut selector = $selector::new().unwrap();
                let (ours, mut theirs) = pair();
                selector.register(ours.clone(), Events::READ).unwrap();
                assert_eq!(ready_now(&mut selector), [], "nothing to read yet");
                theirs.write_all(b"x").unwrap();
                assert_eq!(ready_now(&mut selector), [(fd(&ours), Events::READ)]);
                assert_eq!(
                    ready_now(&mut selector),
                    [(fd(&ours), Events::READ)],
                    "level-triggered: still ready, since nobody read"
                );
                selector
                    .modify(fd(&ours), Events::READ | Events::WRITE)
                    .unwrap();
                assert_eq!(
                    ready_now(&mut selector),
                    [(fd(&ours), Events::READ | Events::WRITE)]
                );
                selector.modify(fd(&ours), Events::WRITE).unwrap();
                assert_eq!(ready_now(&mut selector), [(fd(&ours), Events::WRITE)]);
            }

            #[test]
            fn a_peer_that_hangs_up_makes_the_descriptor_readable() {
                let mut selector = $selector::new().unwrap();
                let (ours, theirs) = pair();
                selector.register(ours.clone(), Events::READ).unwrap();
                drop(theirs);
                assert_eq!(ready_now(&mut selector), [(fd(&ours), Events::READ)]);
            }

            #[test]
            fn many_descriptors_report_only_the_ready_ones() {
                let mut selector = $selector::new().unwrap();
                let pairs: Vec<_> = (0..50).map(|_| pair()).collect();
                for (ours, _) in &pairs {
                    selector.register(ours.clone(), Events::READ).unwrap();
                }
                for (_, theirs) in pairs.iter().skip(3).step_by(10) {
                    (&*theirs).write_all(b"x").unwrap();
                }
                let mut ready: Vec<RawFd> = ready_now(&mut selector)
                    .into_iter()
                    .map(|(fd, _)| fd)
                    .collect();
                ready.sort();
                let mut expected: Vec<RawFd> = pairs
                    .iter()
                    .skip(3)
                    .step_by(10)
                    .map(|(ours, _)| fd(ours))
                    .collect();
                expected.sort();
                assert_eq!(ready, expected);
            }

            #[test]
            fn a_wait_with_nothing_ready_ends_with_its_timeout() {
                let ready = within_hang("a selector waiting out a timeout", || {
                    let mut selector = $selector::new().unwrap();
                    let (ours, _theirs) = pair();
                    selector.register(ours, Events::READ).unwrap();
                    selector.select(Some(Duration::from_millis(20))).unwrap()
                });
                assert_eq!(ready, []);
            }
        }
    };
}

macro_rules! on_every_selector {
    ($step:ident) => {
        mod $step {
            selector_tests!($step, select, SelectSelector);
            selector_tests!($step, poll, PollSelector);
            #[cfg(any(target_os = "linux", target_os = "android"))]
            selector_tests!($step, epoll, EpollSelector);
            #[cfg(any(
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "openbsd",
                target_os = "dragonfly"
            ))]
            selector_tests!($step, kqueue, KqueueSelector);

            #[test]
            fn the_default_selector_comes_first_and_unknown_names_are_refused() {
                use ::$step::selectors::{DefaultSelector, available, by_name};
                let names = available();
                assert_eq!(names[0], DefaultSelector::NAME);
                assert!(names.contains(&"select") && names.contains(&"poll"));
                for name in &names {
                    assert_eq!(by_name(name).unwrap().name(), *name);
                }
                let error = by_name("fast").err().unwrap();
                assert!(error.to_string().contains("unknown"), "{error}");
            }
        }
    };
}

on_every_selector!(step6_select);
on_every_selector!(step7_tasks);
