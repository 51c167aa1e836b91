//! Tasks: what drives an `async fn` on the loop, one step at a time.
//!
//! A task holds a Rust future (what an `async fn` returns: the state machine of step 2) and
//! steps it: each step polls it once. A pending future has handed the task's [`Waker`] to
//! whatever it waits for (a [`Future`] it awaits, a socket's reader); waking it asks the loop
//! to `call_soon` the next step. Here is how the pieces map onto asyncio:
//!
//! | asyncio                    | here                                          |
//! | -------------------------- | --------------------------------------------- |
//! | `loop.create_task(coro)`   | [`EventLoop::create_task`]                    |
//! | `Task.__step`              | `TaskCore::step`: poll the future once        |
//! | `Task.__wakeup`            | `AnyTask::wakeup`: `call_soon` the next step  |
//! | `await future` (`__await__`) | [`Wait`]: one per awaiter, holding its waker |
//! | `task._fut_waiter`         | `TaskCore::awaiting`: cancelled with the task |
//! | `loop.call_soon_threadsafe`| the waker's [`Inbox`], and the self-pipe      |
//! | `asyncio.run(coro)`        | [`run`]                                       |
//!
//! Who wakes whom: a [`Future`] that gets its outcome wakes the wakers of its awaiters; a
//! socket's readiness calls the reader callback that holds the waker; a waker puts the task's
//! number in the [`Inbox`]; each iteration of the loop schedules a step of every task in the
//! inbox; a step polls the async fn, which registers the task's waker again wherever it waits.

use std::any::{Any, type_name};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::IntoFuture;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker, ready};
use std::thread::{self, ThreadId};

use crate::{Error, EventLoop, Future, Name, Running};

impl EventLoop {
    /// Wraps `future` (any Rust future, such as an `async fn`'s) in a [`Task`] and schedules its
    /// first step. The task runs on its own; the returned handle awaits or cancels it.
    pub fn create_task<F: IntoFuture<IntoFuture: 'static, Output: 'static>>(
        &self,
        future: F,
    ) -> Task<F::Output> {
        self.check_closed();
        let id = self.inner.task_count.get();
        self.inner.task_count.set(id + 1);
        let inbox = self.inner.inbox.get_or_init(|| Inbox::new(self)).clone();
        let name = type_name::<F::IntoFuture>();
        self.trace(format_args!("create_task Task-{id} {}", Name(name)));
        let core = Rc::new(TaskCore {
            id,
            name,
            event_loop: self.clone(),
            coroutine: RefCell::new(Some(Box::pin(future.into_future()))),
            output: RefCell::new(None),
            panic: RefCell::new(None),
            done: self.create_future(),
            waker: Waker::from(Arc::new(TaskWaker { task: id, inbox })),
            scheduled: Cell::new(false),
            cancelling: Cell::new(false),
            awaiting: RefCell::new(Vec::new()),
        });
        self.inner.tasks.borrow_mut().insert(id, core.clone());
        core.clone().wakeup();
        Task { core }
    }

    /// Schedules the next step of every task whose waker was called since the last iteration.
    pub(crate) fn schedule_woken_tasks(&self) {
        let Some(inbox) = self.inner.inbox.get() else {
            return;
        };
        let woken = std::mem::take(&mut *lock(&inbox.woken));
        for id in woken {
            let task = self.inner.tasks.borrow().get(&id).cloned();
            if let Some(task) = task {
                task.wakeup();
            }
        }
    }

    /// Cancels every task still pending and runs the loop until all of them are done.
    pub(crate) fn cancel_all_tasks(&self) {
        let _running = Running::start(self);
        let tasks: Vec<_> = self.inner.tasks.borrow().values().cloned().collect();
        for task in tasks {
            task.cancel();
        }
        while !self.inner.tasks.borrow().is_empty() {
            self.run_once();
        }
    }
}

/// `future.await` makes a [`Wait`], as Python's `await future` calls `future.__await__()`: one
/// per awaiter, so any number of tasks can await the same future, each woken with the outcome.
impl<T: Clone + 'static> IntoFuture for Future<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Wait<T>;

    fn into_future(self) -> Wait<T> {
        Wait {
            future: self,
            awaiter: None,
        }
    }
}

/// `(&future).await`: the same, for a future that the awaiter keeps.
impl<T: Clone + 'static> IntoFuture for &Future<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Wait<T>;

    fn into_future(self) -> Wait<T> {
        self.clone().into_future()
    }
}

/// One awaiter of a [`Future`]: ready with the future's outcome once it is done.
///
/// Until then the future keeps this awaiter's waker, the latest one it was polled with
/// (a future may be polled with a new waker, and only the latest must be woken); a `Wait`
/// dropped before the outcome (its task cancelled, a race lost) takes its waker back.
pub struct Wait<T> {
    future: Future<T>,
    /// This awaiter's number among the future's awaiters, once it has waited.
    awaiter: Option<u64>,
}

impl<T: 'static> Wait<T> {
    /// Ready once the future is done; until then its waker is with the future, and the
    /// awaiting task knows to call `cancel` if it is cancelled itself.
    fn poll_done(&mut self, cx: &Context<'_>, cancel: impl FnOnce() + 'static) -> Poll<()> {
        if self.future.done() {
            return Poll::Ready(());
        }
        static AWAITERS: AtomicU64 = AtomicU64::new(0);
        let id = *self
            .awaiter
            .get_or_insert_with(|| AWAITERS.fetch_add(1, Ordering::Relaxed));
        let mut awaiters = self.future.inner.awaiters.borrow_mut();
        match awaiters.iter_mut().find(|(awaiter, _)| *awaiter == id) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => awaiters.push((id, cx.waker().clone())),
        }
        drop(awaiters);
        awaited_by_current_task(cx.waker(), cancel);
        Poll::Pending
    }
}

impl<T: Clone + 'static> std::future::Future for Wait<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let future = this.future.clone();
        ready!(this.poll_done(cx, move || {
            future.cancel();
        }));
        Poll::Ready(this.future.result())
    }
}

impl<T> Drop for Wait<T> {
    fn drop(&mut self) {
        if let Some(id) = self.awaiter {
            let mut awaiters = self.future.inner.awaiters.borrow_mut();
            let gone = awaiters.iter().position(|(awaiter, _)| *awaiter == id);
            // The waker is dropped after the borrow, as any value that may run code when dropped.
            let gone = gone.map(|index| awaiters.swap_remove(index));
            drop(awaiters);
            drop(gone);
        }
    }
}

/// A task: an `async fn` (or any Rust future) that the loop drives (asyncio's `Task`).
///
/// The handle can cancel the task and ask whether it is done; awaiting it (which consumes the
/// handle, as awaiting a thread's join handle does) hands over the async fn's output. Only the
/// task finishes itself: nobody else can give it a result. To await it from several places or
/// pass it to [`gather`](crate::gather), turn it into a [`Future`] (`Future::from(task)`).
pub struct Task<T> {
    core: Rc<TaskCore<T>>,
}

impl<T: 'static> Task<T> {
    /// Asks the task to stop, as asyncio's `Task.cancel`: the future it awaits is cancelled
    /// (cancellation travels down, to a gather and its children, to an awaited task), and its
    /// next step drops the async fn instead of polling it, which runs its cleanup (every `Drop`
    /// in it) as asyncio's `CancelledError` runs `finally` blocks. Only then is the task done,
    /// cancelled. `false` if it was already done.
    pub fn cancel(&self) -> bool {
        self.core.cancel()
    }

    /// Whether the task is over: it returned, panicked, or was cancelled.
    pub fn done(&self) -> bool {
        self.core.done.done()
    }

    /// Whether the task was cancelled.
    pub fn cancelled(&self) -> bool {
        self.core.done.cancelled()
    }

    /// The output of a task that is done, for `run_until_complete`: a panic is resumed, so that
    /// it reaches the caller as asyncio re-raises an exception.
    pub(crate) fn into_output(self) -> T {
        match self.core.done.result() {
            Ok(()) => self.core.take_output(),
            Err(Error::Panicked(message)) => match self.core.panic.take() {
                Some(panic) => resume_unwind(panic),
                None => panic!("{message}"),
            },
            Err(error) => panic!("the task ended without an output: {error}"),
        }
    }
}

/// `task.await`: the task's output, or why there is none ([`Error::Cancelled`],
/// [`Error::Panicked`]).
impl<T: 'static> IntoFuture for Task<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Join<T>;

    fn into_future(self) -> Join<T> {
        Join {
            wait: self.core.done.clone().into_future(),
            core: self.core,
        }
    }
}

/// Awaiting a [`Task`]: waits for it to be done, then takes its output.
pub struct Join<T> {
    core: Rc<TaskCore<T>>,
    wait: Wait<()>,
}

impl<T: 'static> std::future::Future for Join<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let task = this.core.clone();
        ready!(this.wait.poll_done(cx, move || {
            task.cancel();
        }));
        Poll::Ready(this.core.done.result().map(|()| this.core.take_output()))
    }
}

/// A task as a [`Future`] of its output, to share between awaiters or pass to
/// [`gather`](crate::gather). Cancelling that future cancels the task.
impl<T: 'static> From<Task<T>> for Future<T> {
    fn from(task: Task<T>) -> Self {
        let future = task.core.event_loop.create_future();
        let copy = future.clone();
        let core = task.core.clone();
        task.core.done.add_done_callback(move |done| {
            // `copy` may be cancelled already, and the task with it: then nothing is lost.
            match done.result() {
                Ok(()) => drop(copy.set_result(core.take_output())),
                Err(Error::Cancelled) => {
                    copy.cancel();
                }
                Err(error) => drop(copy.set_exception(error)),
            }
        });
        future.add_done_callback(move |future| {
            if future.cancelled() {
                task.cancel();
            }
        });
        future
    }
}

/// The loop's side of a task: the async fn being driven, and where its output goes.
struct TaskCore<T> {
    id: u64,
    /// The async fn's type name, such as `main::answer_slowly::{{closure}}`: what the task runs.
    name: &'static str,
    event_loop: EventLoop,
    /// The async fn's state machine; `None` while it is being polled, and once it is over.
    coroutine: RefCell<Option<Pin<Box<dyn std::future::Future<Output = T>>>>>,
    /// The async fn's output, until it is handed over.
    output: RefCell<Option<T>>,
    /// What the async fn panicked with, to resume the panic in `run_until_complete`.
    panic: RefCell<Option<Box<dyn Any + Send>>>,
    /// Finished when the task is over: `Ok(())` with its output in `output`, an error if it
    /// panicked, cancelled if it was. It tells awaiters, as asyncio's task-as-future does.
    done: Future<()>,
    waker: Waker,
    /// Whether a step is already scheduled: a task woken twice before it runs steps once.
    scheduled: Cell<bool>,
    /// Whether `cancel` was called: the next step drops the coroutine.
    cancelling: Cell<bool>,
    /// How to cancel what the last step left the task awaiting (asyncio's `_fut_waiter`).
    awaiting: RefCell<Vec<Box<dyn FnOnce()>>>,
}

/// A task as the loop stores it, whatever its output type.
pub(crate) trait AnyTask {
    /// Schedules the task's next step, unless one is already scheduled
    /// (asyncio's `Task.__wakeup`).
    fn wakeup(self: Rc<Self>);
    /// Asks the task to stop; its next step drops its future.
    fn cancel(&self) -> bool;
    /// Drops the async fn now, and marks the task cancelled: for a loop that closes.
    fn close(&self);
    /// The task's waker, to recognise it in a future's `poll`.
    fn waker(&self) -> &Waker;
    /// Remembers how to cancel something the task now awaits.
    fn awaits(&self, cancel: Box<dyn FnOnce()>);
}

impl<T: 'static> AnyTask for TaskCore<T> {
    fn wakeup(self: Rc<Self>) {
        if !self.scheduled.replace(true) {
            let event_loop = self.event_loop.clone();
            event_loop.call_soon_named(self.name, move || self.step());
        }
    }

    fn cancel(&self) -> bool {
        if self.done.done() {
            return false;
        }
        self.cancelling.set(true);
        let awaiting = self.awaiting.take();
        for cancel in awaiting {
            cancel();
        }
        self.waker.wake_by_ref();
        true
    }

    fn close(&self) {
        let coroutine = self.coroutine.take();
        drop(coroutine);
        self.done.cancel();
    }

    fn waker(&self) -> &Waker {
        &self.waker
    }

    fn awaits(&self, cancel: Box<dyn FnOnce()>) {
        self.awaiting.borrow_mut().push(cancel);
    }
}

impl<T: 'static> TaskCore<T> {
    /// Polls the async fn once (asyncio's `Task.__step`). While it is pending, whatever it
    /// waits for holds `self.waker`; when it is over, its output (or its panic) is stored, the
    /// `done` future tells the awaiters, and the loop forgets the task.
    fn step(self: Rc<Self>) {
        self.scheduled.set(false);
        let awaited_before = self.awaiting.take();
        drop(awaited_before);
        let Some(mut coroutine) = self.coroutine.take() else {
            return;
        };
        let outcome = |outcome| {
            let (id, name) = (self.id, Name(self.name));
            self.event_loop
                .trace(format_args!("Task-{id} {name} -> {outcome}"));
        };
        if self.cancelling.get() {
            // Dropping the async fn runs its cleanup; only then is the task done.
            drop(coroutine);
            self.done.cancel();
            outcome(format_args!("cancelled"));
        } else {
            let mut cx = Context::from_waker(&self.waker);
            let outer = CURRENT_TASK.replace(Some(self.clone() as Rc<dyn AnyTask>));
            let budget = BUDGET.replace(Some(STEP_BUDGET));
            let polled = catch_unwind(AssertUnwindSafe(|| coroutine.as_mut().poll(&mut cx)));
            BUDGET.set(budget);
            CURRENT_TASK.set(outer);
            match polled {
                Ok(Poll::Pending) => {
                    *self.coroutine.borrow_mut() = Some(coroutine);
                    outcome(format_args!(
                        "Pending{}",
                        Awaiting(self.awaiting.borrow().len())
                    ));
                    return;
                }
                // Cancelled as it returned: asyncio's cancellation wins, and so does ours.
                Ok(Poll::Ready(_)) if self.cancelling.get() => {
                    self.done.cancel();
                    outcome(format_args!("Ready, but cancelled"));
                }
                Ok(Poll::Ready(output)) => {
                    *self.output.borrow_mut() = Some(output);
                    drop(self.done.set_result(()));
                    outcome(format_args!("Ready"));
                }
                Err(panic) => {
                    let message = panic_message(&*panic);
                    let function = self.name.trim_end_matches("::{{closure}}");
                    let function = function.rsplit("::").next().unwrap_or(function);
                    // Not `eprintln!`, which panics when stderr is gone (a closed pipe): that
                    // panic would escape the step, and leave the task forever half-stepped.
                    let report = format!("Task-{} ({function}) panicked: {message}\n", self.id);
                    let _ = io::stderr().write_all(report.as_bytes());
                    *self.panic.borrow_mut() = Some(panic);
                    drop(self.done.set_exception(Error::Panicked(message)));
                    outcome(format_args!("panicked"));
                }
            }
        }
        let finished = self.event_loop.inner.tasks.borrow_mut().remove(&self.id);
        drop(finished);
    }

    fn take_output(&self) -> T {
        let output = self.output.borrow_mut().take();
        output.expect("a task's output is handed over once")
    }
}

fn panic_message(panic: &dyn Any) -> String {
    let text = panic.downcast_ref::<&str>().copied();
    let text = text.or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    text.unwrap_or("(no message)").to_string()
}

/// Tells the task being stepped, if `waker` is its own, that it now awaits something that
/// `cancel` cancels. A future polled by some other waker (inside another executor, or a
/// combinator that wraps wakers) has no task to tell: cancelling drops it all the same.
fn awaited_by_current_task(waker: &Waker, cancel: impl FnOnce() + 'static) {
    CURRENT_TASK.with_borrow(|task| {
        if let Some(task) = task.as_ref().filter(|task| task.waker().will_wake(waker)) {
            task.awaits(Box::new(cancel));
        }
    });
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
        RUNNING_LOOP.with_borrow(|running| {
            if let Some(event_loop) = running {
                let task = self.task;
                match event_loop.inner.current.get() {
                    Some(by) => event_loop.trace(format_args!("wake Task-{task} by {}", Name(by))),
                    None => event_loop.trace(format_args!("wake Task-{task}")),
                }
            }
        });
        self.inbox.push(self.task);
    }
}

/// What a pending task awaits, as the trace shows it: the futures its step left it awaiting.
/// A socket leaves no mark here; the trace shows its `add_reader`, and the wake that follows.
struct Awaiting(usize);

impl fmt::Display for Awaiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => f.write_str(" on a future"),
            n => write!(f, " on {n} futures"),
        }
    }
}

/// Where wakers leave the numbers of the tasks to step; the loop drains it at the start of
/// each iteration and schedules each task's step with `call_soon` (asyncio's
/// `call_soon_threadsafe`). A waker called from another thread also writes a byte to a socket
/// that the loop reads, so that a loop asleep in `select` wakes up: the self-pipe trick (a
/// socket pair, as asyncio's).
pub(crate) struct Inbox {
    woken: Mutex<Vec<u64>>,
    /// The self-pipe's write end; `None` once the loop is closed.
    wake_up: Mutex<Option<UnixStream>>,
    loop_thread: ThreadId,
}

impl Inbox {
    fn new(event_loop: &EventLoop) -> Arc<Self> {
        let (read_end, write_end) = UnixStream::pair().expect("a socket pair to wake the loop");
        for end in [&read_end, &write_end] {
            end.set_nonblocking(true)
                .expect("a non-blocking socket pair");
        }
        let read_end = Rc::new(read_end);
        let drain = read_end.clone();
        event_loop
            .add_reader(read_end, move || {
                while matches!((&*drain).read(&mut [0; 64]), Ok(1..)) {}
            })
            .expect("the loop's first descriptors fit in select");
        Arc::new(Inbox {
            woken: Mutex::new(Vec::new()),
            wake_up: Mutex::new(Some(write_end)),
            loop_thread: thread::current().id(),
        })
    }

    fn push(&self, task: u64) {
        lock(&self.woken).push(task);
        if thread::current().id() != self.loop_thread {
            if let Some(mut wake_up) = lock(&self.wake_up).as_ref() {
                // A full socket already holds a wake-up; nothing is lost when this write fails.
                let _ = wake_up.write(&[1]);
            }
        }
    }

    /// Closes the write end; the loop's `close` closes the read end with the other readers.
    pub(crate) fn close(&self) {
        let write_end = lock(&self.wake_up).take();
        drop(write_end);
    }
}

/// Locks a mutex that a panicking waker may have poisoned; a list of numbers is never left
/// half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many socket operations one step of a task may make (tokio's number).
const STEP_BUDGET: u32 = 128;

/// Takes one operation from the budget of the task being stepped; `false` when none is left.
///
/// A task whose sockets are always ready (a relay between two fast peers) would otherwise
/// never return `Pending`, and the whole loop would wait for it: every other client, every
/// timer. With a budget, such a task yields after a bounded amount of work, as tokio's do;
/// asyncio has no budget, and its streams yield at each read instead. Outside a task there is
/// no budget.
pub(crate) fn consume_budget() -> bool {
    BUDGET.with(|budget| match budget.get() {
        Some(0) => false,
        Some(left) => {
            budget.set(Some(left - 1));
            true
        }
        None => true,
    })
}

thread_local! {
    /// What is left of the budget of the task being stepped, if any.
    static BUDGET: Cell<Option<u32>> = const { Cell::new(None) };
    /// The loop running on this thread, if any (asyncio's `_running_loop`).
    static RUNNING_LOOP: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
    /// The task being stepped on this thread, if any (asyncio's `current_task()`).
    static CURRENT_TASK: RefCell<Option<Rc<dyn AnyTask>>> = const { RefCell::new(None) };
}

/// The loop running on this thread: how `sleep` and the I/O types find it, as in asyncio.
pub fn get_running_loop() -> Result<EventLoop, Error> {
    RUNNING_LOOP.with_borrow(|running| running.clone().ok_or(Error::NoRunningLoop))
}

/// Makes `event_loop` this thread's running loop; one loop at a time, as in asyncio.
pub(crate) fn enter_running_loop(event_loop: &EventLoop) {
    RUNNING_LOOP.with_borrow_mut(|running| {
        assert!(
            running.is_none(),
            "Cannot run the event loop while another loop is running"
        );
        *running = Some(event_loop.clone());
    });
}

/// This thread has no running loop any more.
pub(crate) fn leave_running_loop() {
    let left = RUNNING_LOOP.take();
    drop(left);
}

/// Runs `future` to completion on a new loop, then cancels the tasks still pending and closes
/// the loop (asyncio's `run`: a new loop, `run_until_complete`, cleanup, `close`).
///
/// Returns the future's output; a panic in it reaches the caller, after the cleanup, as
/// asyncio re-raises an exception. Called where a loop is already running, it panics.
pub fn run<F: IntoFuture<IntoFuture: 'static, Output: 'static>>(future: F) -> F::Output {
    run_with(EventLoop::new, future)
}

/// [`run`] on the loop that `loop_factory` makes, such as one with another selector
/// (asyncio's `run(coro, loop_factory=…)`).
pub fn run_with<F: IntoFuture<IntoFuture: 'static, Output: 'static>>(
    loop_factory: impl FnOnce() -> EventLoop,
    future: F,
) -> F::Output {
    assert!(
        get_running_loop().is_err(),
        "run() cannot be called from a running event loop"
    );
    let event_loop = loop_factory();
    let outcome = catch_unwind(AssertUnwindSafe(|| event_loop.run_until_complete(future)));
    event_loop.cancel_all_tasks();
    event_loop.close();
    outcome.unwrap_or_else(|panic| resume_unwind(panic))
}
