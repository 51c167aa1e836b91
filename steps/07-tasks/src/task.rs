//! Tasks: what drives an `async fn` on the loop, one step at a time.
//!
//! A task holds a Rust future (what an `async fn` returns: the state machine of step 2) and
//! steps it: each step polls it once. A pending future has handed the task's [`Waker`] to
//! whatever it waits for (a [`Future`]'s done callback, a socket's reader); waking it asks
//! the loop to `call_soon` the next step. Here is how the pieces map onto asyncio:
//!
//! | asyncio                    | here                                          |
//! | -------------------------- | --------------------------------------------- |
//! | `loop.create_task(coro)`   | [`EventLoop::create_task`]                    |
//! | `Task.__step`              | `TaskCore::step`: poll the future once        |
//! | `Task.__wakeup`            | `AnyTask::wakeup`: `call_soon` the next step  |
//! | `future.add_done_callback(task.__wakeup)` | awaiting a [`Future`] keeps the task's waker |
//! | `loop.call_soon_threadsafe`| the waker's [`Inbox`], and the self-pipe      |
//! | `asyncio.run(coro)`        | [`run`]                                       |

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ops::Deref;
use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::{pipe, read, write};

use crate::{Error, EventLoop, Future};

impl EventLoop {
    /// Wraps `future` (any Rust future, such as an `async fn`'s) in a [`Task`] and schedules its
    /// first step. The task runs on its own; the returned handle awaits or cancels it.
    pub fn create_task<F>(&self, future: F) -> Task<F::Output>
    where
        F: std::future::Future + 'static,
    {
        let id = self.inner.task_count.get();
        self.inner.task_count.set(id + 1);
        let inbox = self.inner.inbox.get_or_init(|| Inbox::new(self)).clone();
        let waker = Waker::from(Arc::new(TaskWaker { task: id, inbox }));
        let result = self.create_future();
        // A task whose future is cancelled (say, by `gather`) is woken, so that its next step
        // drops its async fn.
        let wake_on_cancel = waker.clone();
        result.add_done_callback(move |result| {
            if result.cancelled() {
                wake_on_cancel.wake();
            }
        });
        let task = Rc::new(TaskCore {
            id,
            event_loop: self.clone(),
            coroutine: RefCell::new(Some(Box::pin(future))),
            result: result.clone(),
            waker,
            scheduled: Cell::new(false),
            cancelling: Cell::new(false),
        });
        self.inner.tasks.borrow_mut().insert(id, task.clone());
        task.clone().wakeup();
        Task {
            future: result,
            core: task,
        }
    }

    /// Schedules the next step of every task whose waker was called since the last iteration.
    pub(crate) fn schedule_woken_tasks(&self) {
        let Some(inbox) = self.inner.inbox.get() else {
            return;
        };
        let woken =
            std::mem::take(&mut *inbox.woken.lock().unwrap_or_else(PoisonError::into_inner));
        for id in woken {
            let task = self.inner.tasks.borrow().get(&id).cloned();
            if let Some(task) = task {
                task.wakeup();
            }
        }
    }

    /// Cancels every task still pending and runs the loop until all of them are dropped.
    fn cancel_all_tasks(&self) {
        let _running = Running::enter(self);
        let tasks: Vec<_> = self.inner.tasks.borrow().values().cloned().collect();
        for task in tasks {
            task.cancel();
        }
        while !self.inner.tasks.borrow().is_empty() {
            self.run_once();
        }
    }
}

/// Awaiting a future waits for its outcome: the awaiting task's waker is kept, and a done
/// callback wakes it (asyncio's `Future.__await__`, with `Task.__wakeup` as the callback).
impl<T: Clone + 'static> std::future::Future for Future<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done() {
            return Poll::Ready(self.result());
        }
        let first_wait = self
            .inner
            .waiter
            .replace(Some(cx.waker().clone()))
            .is_none();
        if first_wait {
            self.add_done_callback(|future| {
                if let Some(waker) = future.inner.waiter.take() {
                    waker.wake();
                }
            });
        }
        Poll::Pending
    }
}

/// A future that drives an `async fn` (or any Rust future) on the loop (asyncio's `Task`).
///
/// As in asyncio, a task *is* a future, the one that gets the async fn's output: it derefs to
/// [`Future`] for `done` and `result`, and can be awaited.
pub struct Task<T> {
    future: Future<T>,
    core: Rc<dyn AnyTask>,
}

impl<T> Task<T> {
    /// Asks the task to stop: its next step drops the async fn instead of polling it, which
    /// runs its cleanup (every `Drop` in it) as asyncio's `CancelledError` runs `finally`
    /// blocks; then the task is done, cancelled. `false` if it was already done.
    pub fn cancel(&self) -> bool {
        self.core.cancel()
    }
}

impl<T> Deref for Task<T> {
    type Target = Future<T>;

    fn deref(&self) -> &Future<T> {
        &self.future
    }
}

/// The task's result, to pass where a [`Future`] is expected (as to [`gather`](crate::gather)).
impl<T> From<Task<T>> for Future<T> {
    fn from(task: Task<T>) -> Self {
        task.future
    }
}

impl<T: Clone + 'static> std::future::Future for Task<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.get_mut().future).poll(cx)
    }
}

/// The loop's side of a task: the async fn being driven, and where its output goes.
struct TaskCore<T> {
    id: u64,
    event_loop: EventLoop,
    /// The async fn's state machine; `None` while it is being polled, and once it is over.
    coroutine: RefCell<Option<Pin<Box<dyn std::future::Future<Output = T>>>>>,
    result: Future<T>,
    waker: Waker,
    /// Whether a step is already scheduled: a task woken twice before it runs steps once.
    scheduled: Cell<bool>,
    /// Whether `cancel` was called: the next step drops the coroutine.
    cancelling: Cell<bool>,
}

/// A task as the loop stores it, whatever its output type.
pub(crate) trait AnyTask {
    /// Schedules the task's next step, unless one is already scheduled
    /// (asyncio's `Task.__wakeup`).
    fn wakeup(self: Rc<Self>);
    /// Asks the task to stop; its next step drops its future.
    fn cancel(&self) -> bool;
}

impl<T: 'static> AnyTask for TaskCore<T> {
    fn wakeup(self: Rc<Self>) {
        if !self.scheduled.replace(true) {
            let event_loop = self.event_loop.clone();
            event_loop.call_soon(move || self.step());
        }
    }

    fn cancel(&self) -> bool {
        if self.result.done() {
            return false;
        }
        self.cancelling.set(true);
        self.waker.wake_by_ref();
        true
    }
}

impl<T: 'static> TaskCore<T> {
    /// Polls the async fn once (asyncio's `Task.__step`). While it is pending, whatever it
    /// waits for holds `self.waker`; when it is over, its output (or its panic) becomes the
    /// task's result and the loop forgets the task.
    fn step(self: Rc<Self>) {
        self.scheduled.set(false);
        let Some(mut coroutine) = self.coroutine.take() else {
            return;
        };
        if self.cancelling.get() || self.result.cancelled() {
            // Dropping the async fn runs its cleanup; only then is the task done.
            drop(coroutine);
            self.result.cancel();
        } else {
            let mut cx = Context::from_waker(&self.waker);
            match catch_unwind(AssertUnwindSafe(|| coroutine.as_mut().poll(&mut cx))) {
                Ok(Poll::Pending) => {
                    *self.coroutine.borrow_mut() = Some(coroutine);
                    return;
                }
                // Cancelled while it ran: the output has nobody to go to.
                Ok(Poll::Ready(output)) => drop(self.result.set_result(output)),
                Err(panic) => {
                    let message = panic_message(&*panic);
                    eprintln!("Task {} panicked: {message}", self.id);
                    drop(self.result.set_exception(Error::Panicked(message)));
                }
            }
        }
        self.event_loop.inner.tasks.borrow_mut().remove(&self.id);
    }
}

fn panic_message(panic: &dyn Any) -> String {
    let text = panic.downcast_ref::<&str>().copied();
    let text = text.or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    text.unwrap_or("(no message)").to_string()
}

/// What a task's `Waker` holds. A `Waker` must be `Send` and `Sync`, so it cannot hold the
/// task or the loop (both `Rc`); it holds the task's number and the loop's [`Inbox`].
struct TaskWaker {
    task: u64,
    inbox: Arc<Inbox>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.inbox.push(self.task);
    }
}

/// Where wakers leave the numbers of the tasks to step; the loop drains it at the start of
/// each iteration and schedules each task's step with `call_soon` (asyncio's
/// `call_soon_threadsafe`). A waker called from another thread also writes a byte to a pipe
/// that the loop reads, so that a loop asleep in `select` wakes up: the self-pipe trick.
pub(crate) struct Inbox {
    woken: Mutex<Vec<u64>>,
    /// The self-pipe's write end; the loop watches the read end.
    wake_up: OwnedFd,
    loop_thread: ThreadId,
}

impl Inbox {
    fn new(event_loop: &EventLoop) -> Arc<Self> {
        let (read_end, write_end) = pipe().expect("a pipe to wake the loop from other threads");
        for end in [&read_end, &write_end] {
            fcntl(end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("a non-blocking pipe");
        }
        let read_end = Rc::new(read_end);
        let drain = read_end.clone();
        event_loop
            .add_reader(read_end, move || {
                while matches!(read(&*drain, &mut [0; 64]), Ok(1..)) {}
            })
            .expect("the loop's first descriptors fit in select");
        Arc::new(Inbox {
            woken: Mutex::new(Vec::new()),
            wake_up: write_end,
            loop_thread: thread::current().id(),
        })
    }

    fn push(&self, task: u64) {
        self.woken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        if thread::current().id() != self.loop_thread {
            // A full pipe already holds a wake-up; nothing is lost when this write fails.
            let _ = write(&self.wake_up, &[1]);
        }
    }
}

thread_local! {
    /// The loop running on this thread, if any (asyncio's `_running_loop`).
    static RUNNING_LOOP: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

/// The loop running on this thread: how `sleep` and the I/O types find it, as in asyncio.
pub fn get_running_loop() -> Result<EventLoop, Error> {
    RUNNING_LOOP.with_borrow(|running| running.clone().ok_or(Error::NoRunningLoop))
}

/// Marks a loop as this thread's running loop until dropped, then restores the one before.
pub(crate) struct Running(Option<EventLoop>);

impl Running {
    pub(crate) fn enter(event_loop: &EventLoop) -> Self {
        Running(RUNNING_LOOP.replace(Some(event_loop.clone())))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING_LOOP.set(self.0.take());
    }
}

/// Runs `future` to completion on a new loop, then cancels the tasks still pending
/// (asyncio's `run`: a new loop, `create_task`, `run_until_complete`).
///
/// The output is handed over, not copied, so it needs no `Clone` (an `io::Result` has none).
pub fn run<F: std::future::Future + 'static>(future: F) -> Result<F::Output, Error> {
    let event_loop = EventLoop::new();
    let output = Rc::new(RefCell::new(None));
    let slot = output.clone();
    let task = event_loop.create_task(async move { *slot.borrow_mut() = Some(future.await) });
    let outcome = event_loop.run_until_complete(&task);
    event_loop.cancel_all_tasks();
    outcome.map(|()| {
        output
            .take()
            .expect("a finished task has stored its output")
    })
}
