//! Many descriptors at once, and the one `select` cannot hold. These open hundreds of
//! descriptors, so they live in a test binary of their own: other tests in the same process
//! could otherwise be pushed past `FD_SETSIZE` by them. Within this binary they take turns,
//! for the same reason.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::io::AsyncReadExt;

use ::step7_tasks::net::TcpListener;
use ::step7_tasks::{EventLoop, selectors, yield_now};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::select::FD_SETSIZE;

/// Held by each test while it runs, so that only one at a time opens descriptors.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Files that take every descriptor number below `FD_SETSIZE`, so that the next one opened is
/// numbered `FD_SETSIZE` or more (the system hands out the lowest free number), after the soft
/// limit on open files is raised if it would not allow it.
fn files_below_fd_setsize() -> Vec<File> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let wanted = (FD_SETSIZE as u64 + 64).min(hard);
    if soft < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).unwrap();
    }
    let mut below = Vec::new();
    while below
        .last()
        .is_none_or(|file: &File| (file.as_raw_fd() as usize) < FD_SETSIZE - 1)
    {
        below.push(File::open("/dev/null").unwrap());
    }
    below
}

/// A socket pair whose descriptors are numbered `FD_SETSIZE` or more, and the other end.
fn pair_beyond_fd_setsize() -> (UnixStream, UnixStream) {
    let _below = files_below_fd_setsize();
    let (ours, theirs) = UnixStream::pair().unwrap();
    assert!(ours.as_raw_fd() as usize >= FD_SETSIZE);
    ours.set_nonblocking(true).unwrap();
    (ours, theirs)
}

macro_rules! descriptor_tests {
    ($step:ident) => {
        mod $step {
            use std::cell::{Cell, RefCell};
            use std::io::{ErrorKind, Read, Write};
            use std::os::unix::net::UnixStream;
            use std::rc::Rc;

            use ::$step::{EventLoop, selectors};

            /// A loop on the selector named `name`.
            fn new_loop(name: &str) -> EventLoop {
                EventLoop::with_selector(::$step::selectors::by_name(name).unwrap())
            }

            #[test]
            fn select_refuses_a_descriptor_beyond_fd_setsize_and_says_what_to_use() {
                let _turn = super::one_at_a_time();
                let (beyond, _theirs) = super::pair_beyond_fd_setsize();
                let event_loop = new_loop("select");
                let beyond = Rc::new(beyond);
                let error = event_loop.add_reader(beyond.clone(), || {}).unwrap_err();
                assert_eq!(error.kind(), ErrorKind::InvalidInput);
                let message = error.to_string();
                assert!(
                    message.contains("1024") && message.contains("poll"),
                    "{message}"
                );
                assert!(event_loop.add_writer(beyond.clone(), || {}).is_err());
                assert!(!event_loop.remove_reader(&beyond), "nothing was registered");
                // The loop still works.
                let stopper = event_loop.clone();
                event_loop.call_soon(move || stopper.stop());
                event_loop.run_forever();
            }

            #[test]
            fn the_other_selectors_serve_a_descriptor_beyond_fd_setsize() {
                let _turn = super::one_at_a_time();
                let others = selectors::available()
                    .into_iter()
                    .filter(|name| *name != "select");
                for name in others {
                    let (beyond, mut theirs) = super::pair_beyond_fd_setsize();
                    let event_loop = new_loop(name);
                    theirs.write_all(b"x").unwrap();
                    let stopper = event_loop.clone();
                    event_loop
                        .add_reader(Rc::new(beyond), move || stopper.stop())
                        .unwrap();
                    event_loop.run_forever();
                }
            }

            /// Hundreds of socket pairs echo through one loop: every client writes its
            /// message when its socket is writable, an echo reader on the other end sends each
            /// chunk back, and the client reads until it has the whole message back.
            #[test]
            fn hundreds_of_socket_pairs_echo_every_byte_through_one_loop() {
                let _turn = super::one_at_a_time();
                for name in selectors::available() {
                    echo_through(new_loop(name));
                }
            }

            fn echo_through(event_loop: EventLoop) {
                const PAIRS: usize = 200;
                let finished = Rc::new(Cell::new(0));
                let received = Rc::new(RefCell::new(vec![Vec::new(); PAIRS]));
                let mut expected = Vec::new();
                for i in 0..PAIRS {
                    let (client, server) = UnixStream::pair().unwrap();
                    client.set_nonblocking(true).unwrap();
                    server.set_nonblocking(true).unwrap();
                    let (client, server) = (Rc::new(client), Rc::new(server));
                    let message = format!("message {i} ").repeat(200 + i).into_bytes();
                    expected.push(message.clone());

                    let (lp, s) = (event_loop.clone(), server.clone());
                    event_loop
                        .add_reader(server.clone(), move || {
                            let mut chunk = [0; 1024];
                            match (&*s).read(&mut chunk) {
                                Ok(0) => {
                                    lp.remove_reader(&s);
                                }
                                Ok(n) => (&*s).write_all(&chunk[..n]).unwrap(),
                                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                                Err(e) => panic!("echo read failed: {e}"),
                            }
                        })
                        .unwrap();

                    let unsent = RefCell::new(message);
                    let (lp, c) = (event_loop.clone(), client.clone());
                    event_loop
                        .add_writer(client.clone(), move || {
                            let mut unsent = unsent.borrow_mut();
                            match (&*c).write(&unsent) {
                                Ok(n) => drop(unsent.drain(..n)),
                                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                                Err(e) => panic!("client write failed: {e}"),
                            }
                            if unsent.is_empty() {
                                lp.remove_writer(&c);
                            }
                        })
                        .unwrap();

                    let want = expected[i].len();
                    let (lp, c, got, done) = (
                        event_loop.clone(),
                        client.clone(),
                        received.clone(),
                        finished.clone(),
                    );
                    event_loop
                        .add_reader(client.clone(), move || {
                            let mut chunk = [0; 4096];
                            match (&*c).read(&mut chunk) {
                                Ok(n) => got.borrow_mut()[i].extend_from_slice(&chunk[..n]),
                                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                                Err(e) => panic!("client read failed: {e}"),
                            }
                            if got.borrow()[i].len() >= want {
                                lp.remove_reader(&c);
                                done.set(done.get() + 1);
                                if done.get() == PAIRS {
                                    lp.stop();
                                }
                            }
                        })
                        .unwrap();
                }
                event_loop.run_forever();
                assert_eq!(*received.borrow(), expected);
            }
        }
    };
}

descriptor_tests!(step6_select);
descriptor_tests!(step7_tasks);

/// How many descriptors this process has open, as `/dev/fd` lists them (Linux and macOS).
fn open_descriptors() -> usize {
    std::fs::read_dir("/dev/fd").unwrap().count()
}

/// The descriptors a child process inherits from this one, as the child lists them.
fn inherited_descriptors() -> String {
    let listing = std::process::Command::new("sh")
        .args(["-c", "ls /dev/fd"])
        .output()
        .unwrap();
    String::from_utf8(listing.stdout).unwrap()
}

#[test]
fn a_thousand_runs_leave_no_descriptor_open() {
    let _turn = one_at_a_time();
    let before = open_descriptors();
    // A descriptor left by each run would show a thousand times over.
    for i in 0..1_000 {
        let echoed = ::step7_tasks::run(async move {
            let event_loop = ::step7_tasks::get_running_loop().unwrap();
            event_loop.create_task(async move { i }).await
        });
        assert_eq!(echoed, Ok(i));
    }
    assert_eq!(open_descriptors(), before);
}

#[test]
fn the_loop_s_own_descriptors_are_not_inherited_by_child_processes() {
    let _turn = one_at_a_time();
    let before = inherited_descriptors();
    let during = ::step7_tasks::run(async {
        let event_loop = ::step7_tasks::get_running_loop().unwrap();
        let listener = ::step7_tasks::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = ::step7_tasks::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        // A task makes the loop open its self-pipe.
        event_loop.create_task(async {}).await.unwrap();
        inherited_descriptors()
    });
    assert_eq!(during, before);
}

#[test]
fn a_read_whose_watch_was_refused_asks_the_kernel_again() {
    // The refusal leaves nothing to report the socket: the readiness cache must not say "not
    // ready" then, or every later read would fail without looking.
    let _turn = one_at_a_time();
    let selector = || EventLoop::with_selector(selectors::by_name("select").unwrap());
    let outcome = workshop_tests::within_hang("reads of a socket select refuses", move || {
        ::step7_tasks::run_with(selector, async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let below = files_below_fd_setsize();
            let (server, _) = listener.accept().await.unwrap();
            drop(below);
            assert!(server.as_raw_fd() as usize >= FD_SETSIZE);
            let mut buffer = [0; 64];
            let refused = (&server).read(&mut buffer).await.unwrap_err().kind();
            client.write_all(b"x").unwrap();
            loop {
                match (&server).read(&mut buffer).await {
                    // The byte has not arrived yet: the read would wait, and select refuses.
                    Err(error) if error.kind() == ErrorKind::InvalidInput => yield_now().await,
                    read => return (refused, read.map_err(|error| error.kind())),
                }
            }
        })
    });
    assert_eq!(outcome, (ErrorKind::InvalidInput, Ok(1)));
}
