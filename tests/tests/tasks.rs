//! Step 7's rules: tasks, wakers, cancellation, panics, `run`, and async TCP on the loop.

use std::cell::{Cell, RefCell};
use std::future::{IntoFuture, poll_fn};
use std::io::{ErrorKind, IoSlice};
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
use step7_tasks::{
    Error, EventLoop, Future, Task, gather, get_running_loop, run, run_with, selectors, sleep,
};
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
        Some(true),
        "the task's future is the task: cancelled once its async fn is dropped"
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
    assert_eq!(
        gathered.result(),
        Err(Error::Cancelled),
        "failed by its cancelled children, as asyncio's"
    );
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
fn a_vectored_write_sends_every_buffer_in_one_call() {
    // As hyper writes an answer's head and body: without `writev`, only the first buffer goes.
    let (written, received) = run(async {
        let (server, mut client) = connected().await;
        let parts = [IoSlice::new(b"head "), IoSlice::new(b"and body")];
        let written = (&server).write_vectored(&parts).await.unwrap();
        let mut received = vec![0; written];
        std::io::Read::read_exact(&mut client, &mut received).unwrap();
        (written, received)
    });
    assert_eq!((written, &received[..]), (13, &b"head and body"[..]));
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

/// A value whose `Drop` panics: cleanup code that fails.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("cleanup failed");
    }
}

/// Awaits a future that nobody finishes, holding `held`: a task that waits until cancelled.
async fn wait_holding<T>(held: T) {
    let _held = held;
    std::future::pending::<()>().await;
}

#[test]
fn a_task_waiting_on_many_idle_sockets_reads_the_one_that_gets_data() {
    // Every socket that finds nothing gives its unit of budget back; otherwise the first 128
    // idle sockets spend the budget at every step, and the 200th is never read.
    let polls = within_hang("a read among 200 idle sockets", || {
        run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let mut clients = Vec::new();
            let mut accepted = Vec::new();
            for _ in 0..200 {
                clients.push(std::net::TcpStream::connect(address).unwrap());
                accepted.push(listener.accept().await.unwrap());
            }
            let (_, last_peer) = accepted.last().unwrap();
            let writer = clients
                .iter()
                .find(|c| c.local_addr().unwrap() == *last_peer);
            std::io::Write::write_all(&mut writer.unwrap(), b"x").unwrap();
            let reads = accepted.iter().map(|(stream, _)| {
                Box::pin(async move {
                    let mut byte = [0; 1];
                    let mut stream = stream;
                    stream.read(&mut byte).await
                })
            });
            let mut reads = futures::future::select_all(reads);
            let mut polls = 0;
            let read = poll_fn(|cx| {
                polls += 1;
                assert!(polls < 1000, "the task spins: polled {polls} times");
                std::future::Future::poll(std::pin::Pin::new(&mut reads), cx)
            })
            .await;
            let (outcome, index, _) = read;
            assert_eq!(outcome.unwrap(), 1);
            assert_eq!(index, 199, "the socket that got the byte");
            polls
        })
    });
    assert!(polls <= 3, "polled {polls} times: once, then once woken");
}

#[test]
fn a_panic_in_a_cancelled_task_s_cleanup_ends_that_task_with_the_panic() {
    let outcome = within_hang("awaiting a task whose cleanup panics", || {
        run(async {
            let event_loop = get_running_loop().unwrap();
            let task = event_loop.create_task(wait_holding(PanicOnDrop));
            sleep(Duration::ZERO).await;
            assert!(task.cancel());
            let outcome = task.await;
            let after = event_loop.create_task(async { "the loop goes on" }).await;
            (outcome, after)
        })
    });
    assert_eq!(
        outcome,
        (
            Err(Error::Panicked("cleanup failed".into())),
            Ok("the loop goes on")
        )
    );
}

#[test]
fn run_closes_its_loop_when_a_task_it_cancels_panics_in_its_cleanup() {
    let (dropped, guard) = drop_flag();
    let outcome = run(async move {
        let event_loop = get_running_loop().unwrap();
        event_loop.create_task(wait_holding(PanicOnDrop));
        event_loop.create_task(wait_holding(guard));
        sleep(Duration::ZERO).await;
        "main is done"
    });
    assert_eq!(
        outcome, "main is done",
        "the cleanup's panic stays in its task"
    );
    assert!(
        dropped.get(),
        "the other task was cancelled and dropped too"
    );
}

/// When dropped, starts a task on `event_loop` that sleeps far longer than any test, holding
/// `flag`: cleanup code that starts work.
struct StartsATaskWhenDropped {
    event_loop: EventLoop,
    flag: Option<DropFlag>,
}

impl Drop for StartsATaskWhenDropped {
    fn drop(&mut self) {
        let flag = self.flag.take();
        self.event_loop.create_task(async move {
            let _flag = flag;
            sleep(HANG * 60).await;
        });
    }
}

#[test]
fn run_waits_only_for_the_tasks_it_cancelled_and_close_drops_the_ones_they_started() {
    let dropped = within_hang("run, while cleanup starts a task that sleeps", || {
        let (dropped, guard) = drop_flag();
        run(async move {
            let event_loop = get_running_loop().unwrap();
            let starter = StartsATaskWhenDropped {
                event_loop: event_loop.clone(),
                flag: Some(guard),
            };
            event_loop.create_task(wait_holding(starter));
            sleep(Duration::ZERO).await;
        });
        dropped.get()
    });
    assert!(
        dropped,
        "the task that cleanup started is dropped by close, not left alive with the loop"
    );
}

#[test]
fn close_drops_the_tasks_that_the_cleanup_of_closed_tasks_starts() {
    let event_loop = EventLoop::new();
    let (dropped, guard) = drop_flag();
    let starter = StartsATaskWhenDropped {
        event_loop: event_loop.clone(),
        flag: Some(guard),
    };
    event_loop.create_task(wait_holding(starter));
    event_loop.run_until_complete(yield_now());
    event_loop.close();
    assert!(dropped.get(), "the task started during close is closed too");
    assert!(
        format!("{event_loop:?}").contains("tasks=0"),
        "{event_loop:?}"
    );
}

#[test]
fn cancelling_a_task_leaves_alone_what_it_raced_and_gave_up_on() {
    let event_loop = EventLoop::new();
    let shared = event_loop.create_future::<u8>();
    let background = Future::from(event_loop.create_task(sleep(HANG)));
    let (s, b) = (shared.clone(), background.clone());
    let racer = event_loop.create_task(async move {
        // Each race is lost to the timer; the loser is dropped, and the task moves on.
        drop(select(pin!(s.into_future()), pin!(sleep(Duration::from_millis(1)))).await);
        drop(select(pin!(b.into_future()), pin!(sleep(Duration::from_millis(1)))).await);
        std::future::pending::<()>().await;
    });
    let other = event_loop.create_task(shared.clone());
    event_loop.run_until_complete(sleep(Duration::from_millis(20)));
    assert!(racer.cancel());
    assert_eq!(event_loop.run_until_complete(racer), Err(Error::Cancelled));
    assert!(
        !shared.cancelled(),
        "the shared future it gave up on is not cancelled"
    );
    assert!(
        !background.done(),
        "the background task it gave up on runs on"
    );
    shared.set_result(7).unwrap();
    assert_eq!(event_loop.run_until_complete(other), Ok(Ok(7)));
}

#[test]
fn cancelling_a_task_cancels_every_task_it_joins_however_the_combinator_wakes() {
    // join_all wraps the wakers of more than 30 futures in its own: cancelling must not care.
    for count in [30, 31, 100] {
        let event_loop = EventLoop::new();
        let (flags, guards): (Vec<_>, Vec<_>) = (0..count).map(|_| drop_flag()).unzip();
        let children: Vec<_> = guards
            .into_iter()
            .map(|guard| event_loop.create_task(sleep_holding(guard)).into_future())
            .collect();
        let parent = event_loop.create_task(futures::future::join_all(children));
        event_loop.run_until_complete(yield_now());
        assert!(parent.cancel());
        assert_eq!(event_loop.run_until_complete(parent), Err(Error::Cancelled));
        event_loop.run_until_complete(yield_now());
        let dropped = flags.iter().filter(|flag| flag.get()).count();
        assert_eq!(
            dropped, count,
            "children cancelled with their parent, of {count}"
        );
    }
}

#[test]
fn two_tasks_reading_one_stream_are_both_woken() {
    let reads = within_hang("two tasks reading one stream", || {
        run(async {
            let event_loop = get_running_loop().unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let stream = Rc::new(stream);
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let stream = stream.clone();
                    event_loop.create_task(async move {
                        let mut byte = [0; 1];
                        (&*stream).read(&mut byte).await.map(|_| byte[0])
                    })
                })
                .collect();
            // Both read and wait; then one byte for each, one at a time.
            sleep(Duration::ZERO).await;
            sleep(Duration::ZERO).await;
            let mut bytes = Vec::new();
            let readers = readers.into_iter().map(Task::into_future);
            let mut pending: Vec<_> = readers.map(Box::pin).collect();
            for byte in [b'a', b'b'] {
                std::io::Write::write_all(&mut client, &[byte]).unwrap();
                let (read, _, rest) = futures::future::select_all(pending).await;
                bytes.push(read.unwrap().unwrap());
                pending = rest;
            }
            bytes
        })
    });
    assert_eq!(reads, [b'a', b'b']);
}

/// A connection on the running loop: our end, and the peer's, a blocking socket of `std`.
async fn connected() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().await.unwrap();
    (ours, peer)
}

/// Polls `operation` once, with the task's waker, as the task's step would.
async fn poll_once<F: std::future::Future + Unpin>(operation: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *operation).poll(cx))).await
}

/// Awaits `operation`: its outcome, and whether it was there at the first poll.
async fn at_once<F: std::future::Future + Unpin>(mut operation: F) -> (bool, F::Output) {
    match poll_once(&mut operation).await {
        Poll::Ready(outcome) => (true, outcome),
        Poll::Pending => (false, operation.await),
    }
}

/// Runs `test` on a loop of each selector this system has, within [`HANG`]: by selector,
/// what it returned.
fn on_every_selector<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    what: &'static str,
    test: fn() -> F,
) -> Vec<(&'static str, T)> {
    selectors::available()
        .into_iter()
        .map(|name| {
            let selector = || EventLoop::with_selector(selectors::by_name(name).unwrap());
            (name, within_hang(what, move || run_with(selector, test())))
        })
        .collect()
}

#[test]
fn a_read_after_a_short_read_waits_for_the_selector_instead_of_asking_the_kernel() {
    // The read that got less than it asked for emptied the socket: the next one leaves its
    // waker without a system call, even though bytes came meanwhile; the selector reports them.
    let outcomes = on_every_selector("a read after a short read", || async {
        let (server, mut client) = connected().await;
        let mut buffer = [0; 64];
        std::io::Write::write_all(&mut client, b"first").unwrap();
        let first = (&server).read(&mut buffer).await.unwrap();
        std::io::Write::write_all(&mut client, b"second").unwrap();
        let (read_at_once, second) = at_once((&server).read(&mut buffer)).await;
        (first, read_at_once, buffer[..second.unwrap()].to_vec())
    });
    for (selector, outcome) in outcomes {
        assert_eq!(outcome, (5, false, b"second".to_vec()), "with {selector}");
    }
}

#[test]
fn a_read_after_would_block_waits_for_the_selector_instead_of_asking_the_kernel() {
    let outcomes = on_every_selector("a read after WouldBlock", || async {
        let (server, mut client) = connected().await;
        let (mut buffer, mut reader) = ([0; 64], &server);
        let mut read = reader.read(&mut buffer);
        let nothing_yet = poll_once(&mut read).await.is_pending();
        std::io::Write::write_all(&mut client, b"late").unwrap();
        let (read_at_once, late) = at_once(read).await;
        (nothing_yet, read_at_once, late.unwrap())
    });
    for (selector, outcome) in outcomes {
        assert_eq!(outcome, (true, false, 4), "with {selector}");
    }
}

#[test]
fn a_write_after_a_short_write_waits_for_the_selector_instead_of_asking_the_kernel() {
    let outcomes = on_every_selector("a write after a short write", || async {
        let (server, mut client) = connected().await;
        // More than the kernel's buffers on both ends take: the write is short.
        let flood = vec![7; 64 << 20];
        let (_, written) = at_once((&server).write(&flood)).await;
        let written = written.unwrap();
        // The peer takes it all, which makes room; the next write still waits for the report.
        std::io::Read::read_exact(&mut client, &mut vec![0; written]).unwrap();
        let (wrote_at_once, more) = at_once((&server).write(b"more")).await;
        let mut received = [0; 4];
        std::io::Read::read_exact(&mut client, &mut received).unwrap();
        (
            written < flood.len(),
            wrote_at_once,
            more.unwrap(),
            received,
        )
    });
    for (selector, outcome) in outcomes {
        assert_eq!(outcome, (true, false, 4, *b"more"), "with {selector}");
    }
}

/// How many descriptors `event_loop` watches for reading, as its `Debug` shows.
fn readers(event_loop: &EventLoop) -> usize {
    let shown = format!("{event_loop:?}");
    let count = shown.split("readers=").nth(1).unwrap().split(' ').next();
    count.unwrap().parse().unwrap()
}

#[test]
fn a_read_after_readiness_that_nobody_awaited_asks_the_kernel_at_once() {
    // A short read leaves the socket watched and known not ready; readiness that then finds
    // nobody waiting ends the watch, and with it what the cache knew.
    let outcomes = on_every_selector("a read after readiness nobody awaited", || async {
        let event_loop = get_running_loop().unwrap();
        let (server, mut client) = connected().await;
        let (mut buffer, mut reader) = ([0; 64], &server);
        let mut read = reader.read(&mut buffer);
        let waited = poll_once(&mut read).await.is_pending();
        std::io::Write::write_all(&mut client, b"first").unwrap();
        let first = read.await.unwrap();
        let watched = readers(&event_loop);
        std::io::Write::write_all(&mut client, b"unread").unwrap();
        while readers(&event_loop) == watched {
            step7_tasks::yield_now().await;
        }
        let (read_at_once, unread) = at_once((&server).read(&mut buffer)).await;
        (waited, first, read_at_once, unread.unwrap())
    });
    for (selector, outcome) in outcomes {
        assert_eq!(outcome, (true, 5, true, 6), "with {selector}");
    }
}

#[test]
fn a_task_s_future_refuses_a_result_from_outside() {
    let event_loop = EventLoop::new();
    let task = event_loop.create_task(async { 42 });
    let shared = Future::from(task);
    assert_eq!(shared.set_result(99), Err(Error::OfTask));
    assert_eq!(shared.set_exception(Error::Cancelled), Err(Error::OfTask));
    assert_eq!(
        event_loop.run_until_complete(&shared),
        Ok(42),
        "the task's own output"
    );
}

#[test]
fn a_task_s_future_is_done_in_the_step_that_ends_the_task() {
    let event_loop = EventLoop::new();
    let shared = Future::from(event_loop.create_task(async { 5 }));
    let seen = Rc::new(RefCell::new(None));
    let (s, f) = (seen.clone(), shared.clone());
    // The task steps first in the next iteration; this callback right after it.
    event_loop.call_soon(move || *s.borrow_mut() = Some(f.result()));
    event_loop.run_until_complete(&shared).unwrap();
    assert_eq!(
        *seen.borrow(),
        Some(Ok(5)),
        "as asyncio's task is its own future"
    );
}

#[test]
fn a_task_is_woken_in_order_with_the_done_callbacks_of_the_future_it_awaits() {
    let event_loop = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let future = event_loop.create_future::<u8>();
    let l = log.clone();
    future.add_done_callback(move |_| l.borrow_mut().push("callback added first"));
    let (l, f) = (log.clone(), future.clone());
    let waiter = event_loop.create_task(async move {
        f.await.unwrap();
        l.borrow_mut().push("the task awaiting it");
    });
    event_loop.run_until_complete(yield_now());
    let l = log.clone();
    future.add_done_callback(move |_| l.borrow_mut().push("callback added last"));
    future.set_result(1).unwrap();
    event_loop.run_until_complete(waiter).unwrap();
    event_loop.run_until_complete(yield_now());
    assert_eq!(
        *log.borrow(),
        [
            "callback added first",
            "the task awaiting it",
            "callback added last"
        ],
        "asyncio's order: the task's wakeup is a done callback like the others"
    );
}

#[test]
fn a_sleep_longer_than_the_clock_can_count_waits_instead_of_panicking() {
    let outcome = run(async {
        let forever = pin!(sleep(Duration::MAX));
        match select(forever, pin!(sleep(Duration::from_millis(1)))).await {
            Either::Left(_) => "the endless sleep ended",
            Either::Right(_) => "the short sleep won",
        }
    });
    assert_eq!(outcome, "the short sleep won");
}

/// How many times a task yields, with `sleep(0)` or with the loop's `yield_now`, before the reader of a
/// socket that is ready already runs.
fn yields_before_a_ready_socket_is_heard(with_yield_now: bool) -> usize {
    within_hang("a task that yields until a reader runs", move || {
        run(async move {
            let (read_end, mut write_end) = std::os::unix::net::UnixStream::pair().unwrap();
            std::io::Write::write_all(&mut write_end, b"x").unwrap();
            let heard = Rc::new(Cell::new(false));
            let hearing = heard.clone();
            let event_loop = get_running_loop().unwrap();
            event_loop
                .add_reader(Rc::new(read_end), move || hearing.set(true))
                .unwrap();
            let mut yields = 0;
            while !heard.get() {
                yields += 1;
                assert!(yields < 1000, "the reader never ran");
                if with_yield_now {
                    step7_tasks::yield_now().await;
                } else {
                    sleep(Duration::ZERO).await;
                }
            }
            yields
        })
    })
}

#[test]
fn after_yield_now_the_selector_is_asked_before_the_task_steps_again() {
    // The reader is queued behind the task's step, so the task yields twice.
    let with_yield_now = yields_before_a_ready_socket_is_heard(true);
    assert_eq!(with_yield_now, 2, "yields before the reader ran");
    // `sleep(0)` lets the loop skip the selector while only task steps are ready.
    let with_sleep = yields_before_a_ready_socket_is_heard(false);
    assert!(
        with_sleep > with_yield_now,
        "yields with sleep(0): {with_sleep}, with yield_now: {with_yield_now}"
    );
}
