//! The default executor (asyncio's `loop.run_in_executor(None, func)`): a small pool of threads
//! for the blocking calls that the loop must never make itself.
//!
//! The loop runs every task on one thread, so a call that blocks it stops every task and every
//! timer with it: a name lookup that waits for a DNS server would freeze every client of the
//! proxy. Such a call goes to a thread of the pool instead, and its result comes back through
//! the waker of the task that awaits it. That is why a `Waker` must be `Send`: it is called
//! from the pool's thread, and reaches the loop through the inbox and its self-pipe.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;

use crate::trace::panic_message;
use crate::{Error, EventLoop};

impl EventLoop {
    /// Runs `call` on a thread of the default executor, and returns what awaits its result
    /// (asyncio's `run_in_executor(None, call)`). A panic in `call` reaches the awaiter as
    /// [`Error::Panicked`].
    ///
    /// The call runs to its end even if nobody awaits it any more: a thread cannot be
    /// cancelled, in Rust as in Python.
    pub fn run_in_executor<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> InExecutor<T> {
        self.check_closed();
        let slot = Arc::new(Mutex::new(Slot {
            outcome: None,
            waker: None,
        }));
        let done = Arc::clone(&slot);
        pool().submit(Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(call))
                .map_err(|panic| Error::Panicked(panic_message(&*panic)));
            let mut slot = lock(&done);
            slot.outcome = Some(outcome);
            let waker = slot.waker.take();
            drop(slot);
            if let Some(waker) = waker {
                waker.wake();
            }
        }));
        InExecutor { slot }
    }
}

/// The result of a call on the default executor, to await: see
/// [`EventLoop::run_in_executor`].
pub struct InExecutor<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

/// Where the pool's thread leaves the call's outcome, and the waker to call then.
struct Slot<T> {
    outcome: Option<Result<T, Error>>,
    waker: Option<Waker>,
}

impl<T> std::future::Future for InExecutor<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, Error>> {
        // Both sides hold the lock: the outcome cannot arrive between the look and the waker.
        let mut slot = lock(&self.slot);
        if let Some(outcome) = slot.outcome.take() {
            return Poll::Ready(outcome);
        }
        match &mut slot.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            none => *none = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// At most how many threads the pool starts. asyncio's default is `min(32, cpus + 4)`, sized
/// for work; ours mostly waits (a lookup for a DNS server that may not answer), and a thread
/// that waits costs little, so it allows more. A call that never returns holds its thread for
/// good; calls beyond the limit wait for a free thread.
const MAX_THREADS: usize = 64;

/// A call for the pool to run.
type Job = Box<dyn FnOnce() + Send>;

/// The threads, started as calls come, and the calls waiting for one. Threads that have
/// nothing to do wait for the next call; the process's end ends them.
struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

/// The one pool of the process, shared by its loops, made on first use.
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            queue: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        work: Condvar::new(),
    })
}

impl Pool {
    /// Queues `job`, and starts a thread for it when more calls wait than threads are idle: a
    /// call must not wait behind one that blocks, while the pool may still grow.
    fn submit(&'static self, job: Job) {
        let mut state = lock(&self.state);
        state.queue.push_back(job);
        if state.queue.len() > state.idle && state.threads < MAX_THREADS {
            state.threads += 1;
            let started = thread::Builder::new()
                .name("executor".into())
                .spawn(move || self.work());
            if started.is_err() {
                // No thread to be had: the calls wait for the threads there are.
                state.threads -= 1;
            }
        }
        drop(state);
        self.work.notify_one();
    }

    /// What each thread of the pool does: run the calls, one after another, for good.
    fn work(&self) {
        let mut state = lock(&self.state);
        loop {
            match state.queue.pop_front() {
                Some(job) => {
                    drop(state);
                    job();
                    state = lock(&self.state);
                }
                None => {
                    state.idle += 1;
                    state = self
                        .work
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                    state.idle -= 1;
                }
            }
        }
    }
}

/// Locks a mutex that a panic elsewhere may have poisoned: what it guards is never left
/// half-written (a call's panic is caught before its outcome is stored).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
