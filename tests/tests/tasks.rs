//! Step 7's rules: tasks, wakers, cancellation, panics, `run`, and async TCP on the loop.

use std::cell::{Cell, RefCell};
use std::future::{IntoFuture, poll_fn};
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use futures::future::{Either, select};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use step7_tasks::net::{TcpListener, TcpStream};
use step7_tasks::{Error, EventLoop, Future, gather, get_running_loop, run, sleep};
use workshop_tests::{DropFlag, HANG, drop_flag, panic_message, within_hang};

/// Sleeps for as long as any test may take, holding `guard`: shows when the sleeper is dropped.
async fn sleep_holding(guard: DropFlag) {
    let _guard = guard;
    sleep(HANG).await;
}

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
    assert_eq!(event_loop.run_until_complete(task), Ok(42));
}

#[test]
fn run_until_complete_takes_an_async_fn_and_returns_its_output() {
    let event_loop = EventLoop::new();
    assert_eq!(event_loop.run_until_complete(async { "output" }), "output");
    let future = event_loop.create_future();
    future.set_result(5).unwrap();
    assert_eq!(event_loop.run_until_complete(&future), Ok(5));
}

#[test]
fn run_is_a_new_loop_a_task_and_run_until_complete() {
    assert_eq!(get_running_loop().err(), Some(Error::NoRunningLoop));
    let outcome = run(async {
        get_running_loop().expect("run's loop is running");
        sleep(Duration::from_millis(1)).await;
        "done"
    });
    assert_eq!(outcome, "done");
    assert_eq!(
        get_running_loop().err(),
        Some(Error::NoRunningLoop),
        "restored afterwards"
    );
}

#[test]
fn a_panic_in_run_s_future_reaches_the_caller_after_the_cleanup() {
    let (dropped, guard) = drop_flag();
    let message = panic_message(|| {
        run(async move {
            let event_loop = get_running_loop().unwrap();
            event_loop.create_task(sleep_holding(guard));
            yield_now().await;
            panic!("boom");
        })
    });
    assert_eq!(message, "boom");
    assert!(dropped.get(), "the other task was cancelled first");
    assert!(get_running_loop().is_err());
}

#[test]
fn run_closes_its_loop_and_drops_what_was_left_on_it() {
    let (timer_dropped, timer_guard) = drop_flag();
    let (task_dropped, task_guard) = drop_flag();
    let event_loop = run(async move {
        let event_loop = get_running_loop().unwrap();
        event_loop.call_later(HANG, move || drop(timer_guard));
        event_loop.create_task(sleep_holding(task_guard));
        event_loop
    });
    assert!(event_loop.is_closed());
    assert!(timer_dropped.get() && task_dropped.get());
    assert_eq!(
        format!("{event_loop:?}"),
        "<EventLoop running=false closed=true ready=0 timers=0 readers=0 writers=0 tasks=0>"
    );
}

#[test]
fn close_cancels_the_tasks_still_pending() {
    let event_loop = EventLoop::new();
    let (dropped, guard) = drop_flag();
    let task = event_loop.create_task(sleep_holding(guard));
    event_loop.run_until_complete(yield_now());
    event_loop.close();
    assert!(dropped.get());
    assert!(task.done() && task.cancelled());
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
    for task in tasks {
        event_loop.run_until_complete(task).unwrap();
    }
    assert_eq!(*log.borrow(), ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[test]
fn a_task_woken_twice_before_it_runs_is_stepped_once() {
    let polls = Rc::new(Cell::new(0));
    let counted = polls.clone();
    let event_loop = EventLoop::new();
    // It never ends, so that a second step scheduled by the second wake would poll it again.
    let _task = event_loop.create_task(poll_fn(move |cx| {
        counted.set(counted.get() + 1);
        if counted.get() == 1 {
            cx.waker().wake_by_ref();
            cx.waker().wake_by_ref();
        }
        Poll::<()>::Pending
    }));
    event_loop.run_until_complete(async {
        for _ in 0..10 {
            yield_now().await;
        }
    });
    assert_eq!(
        polls.get(),
        2,
        "its first step, then one step for both wakes"
    );
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
    event_loop.run_until_complete(async {
        for _ in 0..10 {
            yield_now().await;
        }
    });
    assert_eq!(polls.get(), 1, "nobody woke it, so it was polled once");
    assert!(!forgotten.done());
}

#[test]
fn a_wake_from_another_thread_reaches_a_loop_asleep_in_select() {
    let outcome = within_hang("a wake from another thread", || {
        let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
        // The thread that will wake the task: it waits for the waker, then calls it.
        thread::spawn(move || waker_rx.recv().map(Waker::wake));
        let mut sent = Some(waker_tx);
        run(poll_fn(move |cx| match sent.take() {
            Some(tx) => {
                tx.send(cx.waker().clone()).unwrap();
                // Nothing else to do: the loop waits in select with no timeout.
                Poll::Pending
            }
            None => Poll::Ready("woken"),
        }))
    });
    assert_eq!(outcome, "woken");
}

#[test]
fn any_number_of_tasks_can_await_one_future() {
    let results = within_hang("three tasks awaiting one future", || {
        run(async {
            let event_loop = get_running_loop().unwrap();
            let shared = event_loop.create_future::<u32>();
            let awaiters: Vec<_> = (0..3)
                .map(|_| event_loop.create_task(shared.clone()))
                .collect();
            yield_now().await;
            shared.set_result(7).unwrap();
            gather(&event_loop, awaiters).await
        })
    });
    assert_eq!(results, Ok(vec![Ok(7), Ok(7), Ok(7)]));
}

/// Counts its wakes: shows which wakers a future keeps.
struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A waker, and the count of its wakes.
fn counted_waker() -> (Arc<CountWakes>, Waker) {
    let count = Arc::new(CountWakes(AtomicUsize::new(0)));
    (count.clone(), Waker::from(count))
}

fn wakes(count: &CountWakes) -> usize {
    count.0.load(Ordering::Relaxed)
}

/// Polls `future` once with `waker`, as a task or a `select` polls it; the future is not done.
fn poll_pending<F: std::future::Future>(future: Pin<&mut F>, waker: &Waker) {
    let polled = std::future::Future::poll(future, &mut Context::from_waker(waker));
    assert!(polled.is_pending(), "the future is not done yet");
}

#[test]
fn a_wait_polled_again_replaces_its_own_waker_and_no_other() {
    let future = EventLoop::new().create_future::<u8>();
    let ((old, old_waker), (new, new_waker)) = (counted_waker(), counted_waker());
    let (other, other_waker) = counted_waker();
    let mut first = pin!(future.clone().into_future());
    let mut second = pin!(future.clone().into_future());
    poll_pending(first.as_mut(), &old_waker);
    poll_pending(second.as_mut(), &other_waker);
    // Polled again with a new waker, as a select or a timeout race polls what it waits on at
    // each wake: the first awaiter's waker is replaced, and the list of awaiters does not grow.
    for _ in 0..3 {
        poll_pending(first.as_mut(), &new_waker);
    }
    future.set_result(7).unwrap();
    assert_eq!(
        [wakes(&old), wakes(&new), wakes(&other)],
        [0, 1, 1],
        "the wakes of the first awaiter's old waker, of its new one, and of the second awaiter's"
    );
}

#[test]
fn a_dropped_wait_takes_its_waker_back() {
    let future = EventLoop::new().create_future::<u8>();
    let (gone, gone_waker) = counted_waker();
    {
        // A select polls what it races at each wake, and drops it when the other side wins.
        let mut racing = pin!(future.clone().into_future());
        for _ in 0..3 {
            poll_pending(racing.as_mut(), &gone_waker);
        }
    }
    future.set_result(7).unwrap();
    assert_eq!(
        wakes(&gone),
        0,
        "the wakes of a waker whose Wait was dropped"
    );
}

#[test]
fn a_task_shared_as_a_future_wakes_every_awaiter() {
    let results = within_hang("two tasks awaiting one task", || {
        run(async {
            let event_loop = get_running_loop().unwrap();
            let shared = Future::from(event_loop.create_task(async {
                sleep(Duration::from_millis(1)).await;
                "shared"
            }));
            let first = event_loop.create_task(shared.clone());
            let second = event_loop.create_task(shared);
            (first.await, second.await)
        })
    });
    assert_eq!(results, (Ok(Ok("shared")), Ok(Ok("shared"))));
}

#[test]
fn an_awaiting_task_steps_in_the_iteration_after_the_result_is_set() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let event_loop = EventLoop::new();
    let future = event_loop.create_future::<()>();
    let (l, f) = (log.clone(), future.clone());
    let awaiter = event_loop.create_task(async move {
        f.await.unwrap();
        l.borrow_mut().push("awaiter");
    });
    let (lp, l) = (event_loop.clone(), log.clone());
    event_loop.call_soon(move || {
        future.set_result(()).unwrap();
        let (lp2, l) = (lp.clone(), l.clone());
        lp.call_soon(move || {
            l.borrow_mut().push("next iteration");
            lp2.call_soon(move || l.borrow_mut().push("the one after"));
        });
    });
    event_loop.run_until_complete(awaiter).unwrap();
    event_loop.run_until_complete(yield_now());
    let log = log.borrow();
    let at = |entry| log.iter().position(|e| *e == entry).unwrap();
    assert!(at("awaiter") < at("the one after"), "{log:?}");
}

#[test]
fn a_task_s_output_is_handed_over_without_clone() {
    #[derive(Debug, PartialEq)]
    struct NotClone(u8);
    let output = run(async {
        let task = get_running_loop()
            .unwrap()
            .create_task(async { NotClone(3) });
        task.await
    });
    assert_eq!(output, Ok(NotClone(3)));
}

#[test]
fn a_task_cancelled_before_its_first_step_never_runs() {
    let ran = Rc::new(Cell::new(false));
    let (dropped, guard) = drop_flag();
    let r = ran.clone();
    let event_loop = EventLoop::new();
    let task = event_loop.create_task(async move {
        let _guard = guard;
        r.set(true);
    });
    assert!(task.cancel());
    assert!(!task.done(), "cancel asks; the next step does it");
    assert_eq!(event_loop.run_until_complete(task), Err(Error::Cancelled));
    assert!(!ran.get());
    assert!(
        dropped.get(),
        "the future is dropped at what would have been its first step"
    );
}

#[test]
fn a_cancelled_task_is_done_only_once_its_async_fn_is_dropped() {
    let event_loop = EventLoop::new();
    let (dropped, guard) = drop_flag();
    let task = event_loop.create_task(sleep_holding(guard));
    event_loop.run_until_complete(yield_now());
    let seen = Rc::new(Cell::new(None));
    let (d, s) = (dropped.clone(), seen.clone());
    let shared = Future::from(task);
    shared.add_done_callback(move |_| s.set(Some(d.get())));
    assert!(
        shared.cancel(),
        "cancelling the task's future cancels the task"
    );
    event_loop.run_until_complete(yield_now());
    event_loop.run_until_complete(yield_now());
    assert!(dropped.get());
    assert_eq!(
        seen.get(),
        Some(false),
        "the future itself is cancelled at once"
    );
    assert_eq!(shared.result(), Err(Error::Cancelled));
}

#[test]
fn cancelling_a_task_cancels_the_future_it_awaits() {
    let event_loop = EventLoop::new();
    let awaited = event_loop.create_future::<u8>();
    let task = event_loop.create_task(awaited.clone());
    event_loop.run_until_complete(yield_now());
    assert!(task.cancel());
    assert!(
        awaited.cancelled(),
        "asyncio's Task.cancel cancels _fut_waiter"
    );
    assert_eq!(event_loop.run_until_complete(task), Err(Error::Cancelled));
}

#[test]
fn cancelling_a_task_that_awaits_a_gather_cancels_the_gather_and_its_children() {
    let event_loop = EventLoop::new();
    let (flags, guards): (Vec<_>, Vec<_>) = (0..2).map(|_| drop_flag()).unzip();
    let children: Vec<Future<()>> = guards
        .into_iter()
        .map(|guard| Future::from(event_loop.create_task(sleep_holding(guard))))
        .collect();
    let gathered = gather(&event_loop, children.clone());
    let outer = event_loop.create_task(gathered.clone());
    event_loop.run_until_complete(yield_now());
    assert!(outer.cancel());
    assert_eq!(event_loop.run_until_complete(outer), Err(Error::Cancelled));
    event_loop.run_until_complete(sleep(Duration::ZERO));
    assert!(gathered.cancelled());
    assert!(children.iter().all(Future::cancelled));
    assert!(
        flags.iter().all(|flag| flag.get()),
        "the children's async fns are dropped"
    );
}

#[test]
fn cancelling_a_task_that_awaits_a_task_cancels_that_task() {
    let event_loop = EventLoop::new();
    let (dropped, guard) = drop_flag();
    let inner = event_loop.create_task(sleep_holding(guard));
    let outer = event_loop.create_task(inner);
    event_loop.run_until_complete(yield_now());
    assert!(outer.cancel());
    assert_eq!(event_loop.run_until_complete(outer), Err(Error::Cancelled));
    event_loop.run_until_complete(yield_now());
    assert!(dropped.get());
}

#[test]
fn a_task_cancelled_while_awaiting_io_drops_its_future_and_its_interest() {
    let (dropped, guard) = drop_flag();
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
    assert_eq!(outcome, (Err(Error::Cancelled), false));
    assert!(dropped.get());
}

#[test]
fn an_abandoned_read_does_not_make_the_loop_spin() {
    let polls = run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        // The read loses the race and is dropped; the socket lives on, then becomes readable.
        let mut buffer = [0; 16];
        let mut reader = &server;
        let read = pin!(reader.read(&mut buffer));
        assert!(matches!(
            select(read, pin!(yield_now())).await,
            Either::Right(_)
        ));
        (&client).write_all(b"unread").await.unwrap();
        let polls = Rc::new(Cell::new(0));
        let counted = polls.clone();
        let mut nap = pin!(sleep(Duration::from_millis(50)));
        poll_fn(|cx| {
            counted.set(counted.get() + 1);
            nap.as_mut().poll(cx)
        })
        .await;
        polls.get()
    });
    assert!(
        polls <= 3,
        "the task was polled {polls} times while it slept"
    );
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
        .into_iter()
        .map(|task| event_loop.run_until_complete(task))
        .collect();
    assert_eq!(results, [Ok(0), Ok(1), Ok(2)]);
    assert_eq!(
        event_loop.run_until_complete(panicking),
        Err::<(), _>(Error::Panicked("boom".into()))
    );
    assert_eq!(
        event_loop.run_until_complete(async { "still running" }),
        "still running"
    );
}

#[test]
fn gather_over_a_task_that_panicked_fails_with_the_panic() {
    let outcome = run(async {
        let event_loop = get_running_loop().unwrap();
        let panicking = event_loop.create_task(async {
            yield_now().await;
            panic!("boom");
        });
        let sleeping = event_loop.create_task(async {
            sleep(Duration::from_millis(5)).await;
        });
        gather(&event_loop, [panicking, sleeping]).await
    });
    assert_eq!(outcome, Err(Error::Panicked("boom".into())));
}

#[test]
fn a_loop_cannot_run_inside_a_task() {
    let messages = within_hang("a loop run inside a task", || {
        run(async {
            let event_loop = get_running_loop().unwrap();
            let nested_run = event_loop.create_task(async { run(async {}) });
            let same_loop = event_loop.clone();
            let nested_same = event_loop.create_task(async move {
                same_loop.run_until_complete(async {});
            });
            let nested_other = event_loop.create_task(async {
                let other = EventLoop::new();
                let stopper = other.clone();
                other.call_soon(move || stopper.stop());
                other.run_forever();
            });
            [nested_run.await, nested_same.await, nested_other.await]
        })
    });
    let message = |outcome: &Result<(), Error>| match outcome {
        Err(Error::Panicked(message)) => message.clone(),
        other => format!("{other:?}"),
    };
    assert_eq!(
        messages.iter().map(message).collect::<Vec<_>>(),
        [
            "run() cannot be called from a running event loop",
            "This event loop is already running",
            "Cannot run the event loop while another loop is running",
        ]
    );
}

#[test]
fn gather_over_tasks_gives_results_in_input_order() {
    let outcome = run(async {
        let event_loop = get_running_loop().unwrap();
        let tasks: Vec<_> = [30_u64, 10, 20]
            .into_iter()
            .map(|ms| {
                event_loop.create_task(async move {
                    sleep(Duration::from_millis(ms)).await;
                    ms
                })
            })
            .collect();
        gather(&event_loop, tasks).await
    });
    assert_eq!(outcome, Ok(vec![30, 10, 20]));
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let outcome = run(async move { TcpStream::connect(closed).await.err().map(|e| e.kind()) });
    assert_eq!(outcome, Some(ErrorKind::ConnectionRefused));
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
    assert!(received == expected, "the echo came back different");
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
                echoes.push(lp.create_task(async move {
                    let mut line = [0; 5];
                    (&stream).read_exact(&mut line).await.unwrap();
                    (&stream).write_all(&line).await.unwrap();
                }));
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
    assert_eq!(outcome, (true, Vec::new()));
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
                sleep(Duration::from_millis(ms)).await;
                log.borrow_mut().push(ms);
            })
        })
        .collect();
    event_loop
        .run_until_complete(gather(&event_loop, tasks))
        .unwrap();
    assert_eq!(*log.borrow(), [10, 20, 30]);
}

#[test]
fn sleep_outside_a_running_loop_says_so() {
    let message = panic_message(|| futures::executor::block_on(sleep(Duration::from_millis(1))));
    assert!(
        message.starts_with("sleep() needs a running event loop"),
        "{message}"
    );
}

#[test]
fn a_task_whose_socket_is_always_ready_yields_to_the_others() {
    let ticks = run(async {
        let event_loop = get_running_loop().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (_server, _) = listener.accept().await.unwrap();
        let (ticks, done) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(false)));
        let (t, d) = (ticks.clone(), done.clone());
        event_loop.create_task(async move {
            while !d.get() {
                t.set(t.get() + 1);
                yield_now().await;
            }
        });
        // The socket's buffer takes every byte at once: not one of these writes would block.
        for _ in 0..10_000 {
            (&client).write_all(b"x").await.unwrap();
        }
        done.set(true);
        ticks.get()
    });
    assert!(
        ticks >= 50,
        "the other task ran {ticks} times during 10,000 writes that never blocked"
    );
}
