//! Step 7's rules: tasks, wakers, cancellation, panics, `run`, and async TCP on the loop.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use step7_tasks::net::{TcpListener, TcpStream};
use step7_tasks::{Error, EventLoop, gather, get_running_loop, run, sleep};

/// Long enough for any honest wait on a loaded machine; only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

/// A future that is pending once, then ready: one trip through the loop.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

#[test]
fn a_task_drives_an_async_fn_to_its_output() {
    let event_loop = EventLoop::new();
    let task = event_loop.create_task(async { 6 * 7 });
    assert!(
        !task.done(),
        "creating a task only schedules its first step"
    );
    assert_eq!(event_loop.run_until_complete(&task), Ok(42));
    assert_eq!(task.result(), Ok(42));
}

#[test]
fn run_is_a_new_loop_a_task_and_run_until_complete() {
    assert_eq!(get_running_loop().err(), Some(Error::NoRunningLoop));
    let outcome = run(async {
        get_running_loop().expect("run's loop is running");
        sleep(Duration::from_millis(1)).await.unwrap();
        "done"
    });
    assert_eq!(outcome, Ok("done"));
    assert_eq!(
        get_running_loop().err(),
        Some(Error::NoRunningLoop),
        "restored afterwards"
    );
}

#[test]
fn tasks_interleave_at_their_awaits() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let event_loop = EventLoop::new();
    let tasks: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let log = log.clone();
            event_loop.create_task(async move {
                for i in 0..3 {
                    log.borrow_mut().push(format!("{name}{i}"));
                    yield_now().await;
                }
            })
        })
        .collect();
    for task in &tasks {
        event_loop.run_until_complete(task).unwrap();
    }
    assert_eq!(*log.borrow(), ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[test]
fn a_task_woken_twice_before_it_runs_is_stepped_once() {
    let polls = Rc::new(Cell::new(0));
    let counted = polls.clone();
    let event_loop = EventLoop::new();
    let task = event_loop.create_task(poll_fn(move |cx| {
        counted.set(counted.get() + 1);
        if counted.get() > 1 {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        cx.waker().wake_by_ref();
        Poll::Pending
    }));
    event_loop.run_until_complete(&task).unwrap();
    assert_eq!(polls.get(), 2);
}

#[test]
fn a_task_pending_with_no_waker_registered_simply_waits() {
    let polls = Rc::new(Cell::new(0));
    let counted = polls.clone();
    let event_loop = EventLoop::new();
    let forgotten = event_loop.create_task(poll_fn(move |_| {
        counted.set(counted.get() + 1);
        Poll::<()>::Pending
    }));
    let busy = event_loop.create_task(async {
        for _ in 0..10 {
            yield_now().await;
        }
    });
    event_loop.run_until_complete(&busy).unwrap();
    assert_eq!(polls.get(), 1, "nobody woke it, so it was polled once");
    assert!(!forgotten.done());
}

#[test]
fn a_wake_from_another_thread_reaches_a_loop_asleep_in_select() {
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
        // The thread that will wake the task: it waits for the waker, then calls it.
        thread::spawn(move || waker_rx.recv().map(Waker::wake));
        let mut sent = Some(waker_tx);
        let outcome = run(poll_fn(move |cx| match sent.take() {
            Some(tx) => {
                tx.send(cx.waker().clone()).unwrap();
                // Nothing else to do: the loop waits in select with no timeout.
                Poll::Pending
            }
            None => Poll::Ready("woken"),
        }));
        done_tx.send(outcome).unwrap();
    });
    assert_eq!(done_rx.recv_timeout(HANG), Ok(Ok("woken")));
}

/// Sets its flag when dropped: shows that a cancelled task's future is dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_task_cancelled_before_its_first_step_never_runs() {
    let ran = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    let (r, guard) = (ran.clone(), DropFlag(dropped.clone()));
    let event_loop = EventLoop::new();
    let task = event_loop.create_task(async move {
        let _guard = guard;
        r.set(true);
    });
    assert!(task.cancel());
    assert_eq!(event_loop.run_until_complete(&task), Err(Error::Cancelled));
    let after = event_loop.create_task(async { yield_now().await });
    event_loop.run_until_complete(&after).unwrap();
    assert!(!ran.get());
    assert!(
        dropped.get(),
        "the future is dropped at what would have been its first step"
    );
}

#[test]
fn a_task_cancelled_while_awaiting_io_drops_its_future_and_its_interest() {
    let dropped = Rc::new(Cell::new(false));
    let guard = DropFlag(dropped.clone());
    let outcome = run(async move {
        let event_loop = get_running_loop().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let fd = server.as_raw_fd();
        let reader = event_loop.create_task(async move {
            let _guard = guard;
            let mut server = server;
            // The client never writes: this read waits until the task is cancelled.
            let _ = server.read(&mut [0; 16]).await;
        });
        yield_now().await;
        yield_now().await;
        assert!(reader.cancel());
        let outcome = reader.await;
        yield_now().await;
        (outcome, event_loop.remove_reader(&fd))
    });
    assert_eq!(outcome, Ok((Err(Error::Cancelled), false)));
    assert!(dropped.get());
}

#[test]
fn a_panicking_task_fails_alone() {
    let event_loop = EventLoop::new();
    let healthy: Vec<_> = (0..3)
        .map(|i| {
            event_loop.create_task(async move {
                yield_now().await;
                i
            })
        })
        .collect();
    let panicking = event_loop.create_task(async {
        yield_now().await;
        panic!("boom");
    });
    let results: Vec<_> = healthy
        .iter()
        .map(|task| event_loop.run_until_complete(task))
        .collect();
    assert_eq!(results, [Ok(0), Ok(1), Ok(2)]);
    assert_eq!(
        event_loop.run_until_complete(&panicking),
        Err(Error::Panicked("boom".into()))
    );
    let after = event_loop.create_task(async { "still running" });
    assert_eq!(event_loop.run_until_complete(&after), Ok("still running"));
}

#[test]
fn gather_over_tasks_gives_results_in_input_order() {
    let outcome = run(async {
        let event_loop = get_running_loop().unwrap();
        let tasks: Vec<_> = [30_u64, 10, 20]
            .into_iter()
            .map(|ms| {
                event_loop.create_task(async move {
                    sleep(Duration::from_millis(ms)).await.unwrap();
                    ms
                })
            })
            .collect();
        gather(&event_loop, tasks).await
    });
    assert_eq!(outcome, Ok(Ok(vec![30, 10, 20])));
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let outcome = run(async move { TcpStream::connect(closed).await.err().map(|e| e.kind()) });
    assert_eq!(outcome, Ok(Some(ErrorKind::ConnectionRefused)));
}

#[test]
fn futures_io_copy_moves_every_byte_through_our_sockets() {
    let data: Vec<u8> = (0..4_000_000_u32).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let received = run(async move {
        let event_loop = get_running_loop().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = event_loop.create_task(async move {
            let (stream, _) = listener.accept().await.unwrap();
            futures::io::copy(&stream, &mut &stream).await.unwrap()
        });
        let client = TcpStream::connect(addr).await.unwrap();
        let writer = event_loop.create_task({
            let client = Rc::new(client);
            let reader = client.clone();
            let sender = async move {
                (&*client).write_all(&data).await.unwrap();
                (&*client).close().await.unwrap();
            };
            let receiver = async move {
                let mut received = Vec::new();
                (&*reader).read_to_end(&mut received).await.unwrap();
                received
            };
            async move { futures::join!(sender, receiver).1 }
        });
        let received = writer.await.unwrap();
        assert_eq!(echo.await.unwrap(), received.len() as u64);
        received
    });
    assert!(received == Ok(expected), "the echo came back different");
}

#[test]
fn no_descriptor_stays_registered_after_many_connections_open_and_close() {
    let outcome = run(async {
        let event_loop = get_running_loop().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fds = Rc::new(RefCell::new(Vec::new()));
        let server_fds = fds.clone();
        let server = event_loop.create_task(async move {
            let lp = get_running_loop().unwrap();
            let mut echoes = Vec::new();
            for _ in 0..100 {
                let (stream, _) = listener.accept().await.unwrap();
                server_fds.borrow_mut().push(stream.as_raw_fd());
                echoes.push(
                    (*lp.create_task(async move {
                        let mut line = [0; 5];
                        (&stream).read_exact(&mut line).await.unwrap();
                        (&stream).write_all(&line).await.unwrap();
                    }))
                    .clone(),
                );
            }
            gather(&lp, echoes).await.unwrap();
        });
        let clients: Vec<_> = (0..100)
            .map(|_| {
                let fds = fds.clone();
                event_loop.create_task(async move {
                    let stream = TcpStream::connect(addr).await.unwrap();
                    fds.borrow_mut().push(stream.as_raw_fd());
                    (&stream).write_all(b"hello").await.unwrap();
                    let mut echo = [0; 5];
                    (&stream).read_exact(&mut echo).await.unwrap();
                    echo
                })
            })
            .collect();
        let echoes = gather(&event_loop, clients).await.unwrap();
        server.await.unwrap();
        let still_watched: Vec<RawFd> = fds
            .borrow()
            .iter()
            .copied()
            .filter(|fd| event_loop.remove_reader(fd) | event_loop.remove_writer(fd))
            .collect();
        (echoes.iter().all(|echo| echo == b"hello"), still_watched)
    });
    assert_eq!(outcome, Ok((true, Vec::new())));
}

#[test]
fn sleeping_tasks_wake_in_deadline_order() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let event_loop = EventLoop::new();
    let tasks: Vec<_> = [30_u64, 10, 20]
        .into_iter()
        .map(|ms| {
            let log = log.clone();
            event_loop.create_task(async move {
                sleep(Duration::from_millis(ms)).await.unwrap();
                log.borrow_mut().push(ms);
            })
        })
        .collect();
    event_loop
        .run_until_complete(&gather(&event_loop, tasks))
        .unwrap();
    assert_eq!(*log.borrow(), [10, 20, 30]);
}

#[test]
fn sleep_outside_a_running_loop_says_so() {
    let outcome = futures::executor::block_on(sleep(Duration::ZERO));
    assert_eq!(outcome, Err(Error::NoRunningLoop));
}
