//! What runs in this process: our loop and tokio's current-thread runtime on the same small
//! work, each sample on a fresh loop or runtime, in nanoseconds per operation.

use std::future::poll_fn;
use std::task::Poll;
use std::time::{Duration, Instant};

use step7_tasks::{EventLoop, sleep, yield_now};

use crate::current_thread;

/// Callbacks and tasks are made a thousand at a time, then run to the end, as in asyncio's
/// benchmarks and `loops.py`.
const BATCH: u64 = 1_000;

/// Nanoseconds per operation of `work`, which does `count` of them.
fn per_op(count: u64, work: impl FnOnce()) -> f64 {
    let start = Instant::now();
    work();
    start.elapsed().as_secs_f64() * 1e9 / count as f64
}

/// The talk's benchmark: `run_until_complete` of a task that yields once, `count` times.
pub fn ours_sleep_task(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        for _ in 0..count {
            event_loop.run_until_complete(sleep(Duration::ZERO));
        }
    });
    event_loop.close();
    ns
}

/// The same on tokio: `block_on` of a spawned task that yields once.
pub fn tokio_spawn_yield(count: u64) -> f64 {
    let runtime = current_thread();
    per_op(count, || {
        for _ in 0..count {
            runtime
                .block_on(async { tokio::spawn(tokio::task::yield_now()).await })
                .expect("the task ends");
        }
    })
}

/// `count` callbacks that do nothing, a thousand at a time, then the loop run until a last one
/// stops it (asyncio's way: `call_soon(loop.stop)`).
pub fn ours_call_soon(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        for _ in 0..count / BATCH {
            for _ in 0..BATCH {
                event_loop.call_soon(|| {});
            }
            let stopper = event_loop.clone();
            event_loop.call_soon(move || stopper.stop());
            event_loop.run_forever();
        }
    });
    event_loop.close();
    ns
}

/// The same with timers due at once: `call_later(0, noop)`.
pub fn ours_call_later(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        for _ in 0..count / BATCH {
            for _ in 0..BATCH {
                event_loop.call_later(Duration::ZERO, || {});
            }
            let stopper = event_loop.clone();
            event_loop.call_later(Duration::ZERO, move || stopper.stop());
            event_loop.run_forever();
        }
    });
    event_loop.close();
    ns
}

/// Tasks made a thousand at a time.
pub fn ours_tasks_by_thousands(count: u64) -> f64 {
    ours_create_tasks(count, BATCH)
}

/// Tasks made all at once, then run: the ready queue holds them all.
pub fn ours_tasks_all_at_once(count: u64) -> f64 {
    ours_create_tasks(count, count)
}

/// `count` tasks that end at their first step, `batch` at a time, each batch run until its
/// last task has ended (the ones before it have, then).
fn ours_create_tasks(count: u64, batch: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        for _ in 0..count / batch {
            let mut last = None;
            for _ in 0..batch {
                last = Some(event_loop.create_task(async {}));
            }
            event_loop
                .run_until_complete(last.expect("a batch of one task or more"))
                .expect("the task ends");
        }
    });
    event_loop.close();
    ns
}

/// Tasks spawned a thousand at a time.
pub fn tokio_tasks_by_thousands(count: u64) -> f64 {
    tokio_spawn_tasks(count, BATCH)
}

/// Tasks spawned all at once, then run.
pub fn tokio_tasks_all_at_once(count: u64) -> f64 {
    tokio_spawn_tasks(count, count)
}

/// The same, spawned in `block_on`: a batch per `block_on`, as ours has a batch per
/// `run_until_complete`.
fn tokio_spawn_tasks(count: u64, batch: u64) -> f64 {
    let runtime = current_thread();
    per_op(count, || {
        for _ in 0..count / batch {
            runtime.block_on(async {
                let mut last = None;
                for _ in 0..batch {
                    last = Some(tokio::spawn(async {}));
                }
                last.expect("a batch of one task or more")
                    .await
                    .expect("the task ends");
            })
        }
    })
}

/// A task that yields `count` times with `sleep(0)`: it wakes itself, and while only task steps
/// are ready, our loop skips the selector (61 iterations at most, tokio's `event_interval`).
pub fn ours_sleep_zero_loop(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        event_loop.run_until_complete(async move {
            for _ in 0..count {
                sleep(Duration::ZERO).await;
            }
        })
    });
    event_loop.close();
    ns
}

/// The same on tokio: a task that wakes itself goes to the back of the run queue, and tokio
/// polls its I/O driver once every 61 tasks run (`event_interval`), the rule ours copies.
pub fn tokio_wake_self_loop(count: u64) -> f64 {
    let runtime = current_thread();
    per_op(count, || {
        runtime
            .block_on(runtime.spawn(async move {
                for _ in 0..count {
                    wake_self().await;
                }
            }))
            .expect("the task ends")
    })
}

/// Returns `Pending` once, having woken its task: a yield with no deferral, unlike tokio's
/// `yield_now`.
async fn wake_self() {
    let mut yielded = false;
    poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// A task that yields `count` times with our `yield_now`, which asks the selector before the
/// task steps again: a system call per yield.
pub fn ours_yield_now_loop(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        event_loop.run_until_complete(async move {
            for _ in 0..count {
                yield_now().await;
            }
        })
    });
    event_loop.close();
    ns
}

/// tokio's `yield_now` defers the task until its I/O driver has been polled: one poll per yield.
pub fn tokio_yield_now_loop(count: u64) -> f64 {
    let runtime = current_thread();
    per_op(count, || {
        runtime
            .block_on(runtime.spawn(async move {
                for _ in 0..count {
                    tokio::task::yield_now().await;
                }
            }))
            .expect("the task ends")
    })
}
