// ANCHOR: header
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
//! | `await future` (`__await__`) | [`Wait`](crate::Wait): one per awaiter, with its waker |
//! | `task._fut_waiter`         | `TaskCore::awaiting`: cancelled with the task |
//! | `loop.call_soon_threadsafe`| the waker's [`Inbox`], and the self-pipe      |
//! | `asyncio.run(coro)`        | [`run`](crate::run)                           |
//!
//! Who wakes whom: a [`Future`] that gets its outcome wakes its awaiters in turn with its done
//! callbacks; a socket's readiness calls the reader callback that holds the waker; a waker
//! called on the loop's thread schedules the task's step at once, and one called from another
//! thread leaves the task's id in the [`Inbox`], which the next iteration empties; a step
//! polls the async fn, which registers the task's waker again wherever it waits.

use std::any::{Any, type_name};
use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::future::IntoFuture;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::thread;

use crate::budget::with_budget;
use crate::cancel::{Awaited, as_current_task};
use crate::trace::{Awaiting, report_panic};
use crate::{Error, EventLoop, Future, Inbox, Name};

mod join;
mod table;

pub use join::Join;
pub(crate) use table::{TaskId, Tasks};
// ANCHOR_END: header

// ANCHOR: create_task
impl EventLoop {
    /// Wraps `future` (any Rust future, such as an `async fn`'s) in a [`Task`] and schedules its
    /// first step. The task runs on its own; the returned handle awaits or cancels it.
    pub fn create_task<F: IntoFuture<IntoFuture: 'static, Output: 'static>>(
        &self,
        future: F,
    ) -> Task<F::Output> {
        self.check_closed();
        let id = self.inner.tasks.borrow_mut().new_id();
        let inbox = self.inner.inbox.get_or_init(|| Inbox::new(self));
        let name = type_name::<F::IntoFuture>();
        self.trace(format_args!("create_task Task-{id} {}", Name(name)));
        let core = Rc::new(TaskCore {
            id,
            name,
            event_loop: self.clone(),
            coroutine: RefCell::new(Some(Box::pin(future.into_future()))),
            output: RefCell::new(None),
            panic: RefCell::new(None),
            outcome: RefCell::new(None),
            done_future: OnceCell::new(),
            waker: inbox.waker(id),
            scheduled: Cell::new(false),
            cancelling: Cell::new(false),
            awaiting: RefCell::new(Vec::new()),
            shared: RefCell::new(None),
        });
        self.inner.tasks.borrow_mut().insert(id, core.clone());
        core.clone().wakeup();
        Task { core }
    }
    // ANCHOR_END: create_task

    // ANCHOR: schedule_woken_tasks
    /// Schedules the next step of every task whose waker was called since the last iteration.
    pub(crate) fn schedule_woken_tasks(&self) {
        let Some(inbox) = self.inner.inbox.get() else {
            return;
        };
        let woken = inbox.take_woken();
        for id in woken {
            self.wake_task(id);
        }
    }

    /// Schedules the next step of task `id`, unless it is over.
    pub(crate) fn wake_task(&self, id: TaskId) {
        let task = self.inner.tasks.borrow().get(id).cloned();
        if let Some(task) = task {
            task.wakeup();
        }
    }
}
// ANCHOR_END: schedule_woken_tasks

// ANCHOR: task
/// A task: an `async fn` (or any Rust future) that the loop drives (asyncio's `Task`).
///
/// The handle can cancel the task and ask whether it is done; awaiting it (which consumes the
/// handle, as awaiting a thread's join handle does) hands over the async fn's output. Only the
/// task finishes itself: nobody else can give it a result. To await it from several places or
/// pass it to [`gather`](crate::gather), turn it into a [`Future`] (`Future::from(task)`).
pub struct Task<T> {
    core: Rc<TaskCore<T>>,
}
// ANCHOR_END: task

// ANCHOR: task_handle
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
        self.core.done()
    }

    /// Whether the task was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(self.core.result(), Err(Error::Cancelled))
    }

    /// Schedules `callback` once the task is done (asyncio's `add_done_callback`), for
    /// `run_until_complete`.
    pub(crate) fn add_done_callback(&self, callback: impl FnOnce(&Future<()>) + 'static) {
        self.core.done_future().add_done_callback(callback);
    }

    /// The output of a task that is done, for `run_until_complete`: a panic is resumed, so that
    /// it reaches the caller as asyncio re-raises an exception.
    pub(crate) fn into_output(self) -> T {
        match self.core.result() {
            Ok(()) => self.core.take_output(),
            Err(Error::Panicked(message)) => match self.core.panic.take() {
                Some(panic) => resume_unwind(panic),
                None => panic!("{message}"),
            },
            Err(error) => panic!("the task ended without an output: {error}"),
        }
    }
}
// ANCHOR_END: task_handle

// ANCHOR: task_core
/// The loop's side of a task: the async fn being driven, and where its output goes.
struct TaskCore<T> {
    /// Its number, as the trace shows it, and its slot in the loop's table of tasks.
    id: TaskId,
    /// The async fn's type name, such as `main::answer_slowly::{{closure}}`: what the task runs.
    name: &'static str,
    event_loop: EventLoop,
    /// The async fn's state machine; `None` while it is being polled, and once it is over.
    coroutine: RefCell<Option<Pin<Box<dyn std::future::Future<Output = T>>>>>,
    /// The async fn's output, until it is handed over.
    output: RefCell<Option<T>>,
    /// What the async fn panicked with, to resume the panic in `run_until_complete`.
    panic: RefCell<Option<Box<dyn Any + Send>>>,
    /// How the task ended, once it has: `Ok(())` with its output in `output`, an error if it
    /// panicked, `Err(Error::Cancelled)` if it was.
    outcome: RefCell<Option<Result<(), Error>>>,
    /// A future finished with the outcome, that tells awaiters, as asyncio's task-as-future
    /// does; made for the first awaiter, since most tasks have none (see `done_future`).
    done_future: OnceCell<Future<()>>,
    waker: Waker,
    /// Whether a step is already scheduled: a task woken twice before it runs steps once.
    scheduled: Cell<bool>,
    /// Whether `cancel` was called: the next step drops the coroutine.
    cancelling: Cell<bool>,
    /// What the task awaits now, and how to cancel it (asyncio's `_fut_waiter`).
    awaiting: RefCell<Vec<Awaited>>,
    /// The task as a [`Future`] of its output, once `Future::from(task)` asked for one: the
    /// task finishes it as it ends, as asyncio's task is its own future.
    shared: RefCell<Option<Future<T>>>,
}
// ANCHOR_END: task_core

// ANCHOR: wakeup
/// A task as the loop stores it, whatever its output type.
pub(crate) trait AnyTask {
    /// Schedules the task's next step, unless one is already scheduled
    /// (asyncio's `Task.__wakeup`).
    fn wakeup(self: Rc<Self>);
    /// Polls the async fn once (asyncio's `Task.__step`).
    fn step(self: Rc<Self>);
    /// The async fn's type name: what the trace shows.
    fn name(&self) -> &'static str;
    /// Asks the task to stop; its next step drops its future.
    fn cancel(&self) -> bool;
    /// Drops the async fn now, and marks the task cancelled: for a loop that closes.
    fn close(&self);
    /// Remembers how to cancel something the task now awaits.
    fn awaits(&self, awaited: Awaited);
    /// Whether the task is over.
    fn done(&self) -> bool;
}

impl<T: 'static> AnyTask for TaskCore<T> {
    fn wakeup(self: Rc<Self>) {
        if !self.scheduled.replace(true) {
            let event_loop = self.event_loop.clone();
            event_loop.call_soon_step(self);
        }
    }
    // ANCHOR_END: wakeup

    // ANCHOR: cancel
    fn cancel(&self) -> bool {
        if self.done() {
            return false;
        }
        self.cancelling.set(true);
        let awaiting = self.awaiting.take();
        for awaited in awaiting {
            awaited.cancel();
        }
        self.waker.wake_by_ref();
        true
    }

    fn close(&self) {
        let coroutine = self.coroutine.take();
        self.end_cancelled(coroutine, "closed");
    }

    fn awaits(&self, awaited: Awaited) {
        let mut awaiting = self.awaiting.borrow_mut();
        let mut gone = Vec::new();
        if awaiting.len() == awaiting.capacity() {
            // Before the list grows, what awaiters now gone awaited is forgotten, and room is
            // made for as many again: the list stays as long as what is awaited now, at a cost
            // spread over the pushes. It is dropped after the borrow, as code may run then.
            let (mut kept, dropped): (Vec<_>, Vec<_>) = std::mem::take(&mut *awaiting)
                .into_iter()
                .partition(Awaited::is_awaited);
            kept.reserve(kept.len().max(4));
            (*awaiting, gone) = (kept, dropped);
        }
        awaiting.push(awaited);
        drop(awaiting);
        drop(gone);
    }

    fn done(&self) -> bool {
        self.outcome.borrow().is_some()
    }

    fn name(&self) -> &'static str {
        self.name
    }
    // ANCHOR_END: cancel

    // ANCHOR: step
    /// asyncio's `Task.__step`: take the async fn out, poll it once, put it back while it is
    /// pending, or end the task. While it is pending, whatever it waits for holds `self.waker`.
    fn step(self: Rc<Self>) {
        self.scheduled.set(false);
        let Some(mut coroutine) = self.coroutine.take() else {
            return;
        };
        if self.cancelling.get() {
            return self.end_cancelled(coroutine, "cancelled");
        }
        match self.poll(coroutine.as_mut()) {
            Ok(Poll::Pending) => {
                *self.coroutine.borrow_mut() = Some(coroutine);
                let awaiting = self.awaiting.borrow();
                let awaiting = Awaiting(awaiting.iter().filter(|a| a.is_awaited()).count());
                self.trace_step(format_args!("Pending{awaiting}"));
            }
            // Cancelled as it returned: asyncio's cancellation wins, and so does ours.
            Ok(Poll::Ready(output)) if self.cancelling.get() => {
                self.end_cancelled(output, "Ready, but cancelled")
            }
            Ok(Poll::Ready(output)) => self.end(output),
            Err(panic) => self.end_panicked(panic),
        }
    }
}
// ANCHOR_END: step

// ANCHOR: poll
impl<T: 'static> TaskCore<T> {
    /// Polls the async fn as the current task, with a fresh budget; a panic is caught, so that
    /// it ends this task and not the loop.
    fn poll(
        self: &Rc<Self>,
        coroutine: Pin<&mut dyn std::future::Future<Output = T>>,
    ) -> thread::Result<Poll<T>> {
        let mut cx = Context::from_waker(&self.waker);
        let current = self.clone() as Rc<dyn AnyTask>;
        as_current_task(current, || {
            with_budget(|| catch_unwind(AssertUnwindSafe(|| coroutine.poll(&mut cx))))
        })
    }
    // ANCHOR_END: poll

    // ANCHOR: end
    /// The task returned: its output waits for whoever awaits the task.
    fn end(&self, output: T) {
        let shared = self.shared.take();
        match shared {
            Some(shared) => shared.settle(Ok(output)),
            None => *self.output.borrow_mut() = Some(output),
        }
        self.finish(Ok(()));
        self.trace_step(format_args!("Ready"));
        self.forget();
    }

    /// Drops `cleanup` (the async fn, which runs every `Drop` in it, as asyncio's
    /// `CancelledError` runs `finally` blocks), then the task is cancelled. A panic in the
    /// cleanup ends it with that panic instead, as asyncio ends a task whose `finally` raised;
    /// it never reaches the loop.
    fn end_cancelled<D>(&self, cleanup: D, how: &str) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| drop(cleanup))) {
            return self.end_panicked(panic);
        }
        if let Some(shared) = self.shared.take() {
            shared.settle(Err(Error::Cancelled));
        }
        self.finish(Err(Error::Cancelled));
        self.trace_step(format_args!("{how}"));
        self.forget();
    }
    // ANCHOR_END: end

    // ANCHOR: end_panicked
    /// The task panicked: the panic is reported, and kept to be resumed by whoever runs the
    /// task to completion; awaiters get [`Error::Panicked`].
    fn end_panicked(&self, panic: Box<dyn Any + Send>) {
        let message = report_panic(self.id, self.name, &*panic);
        *self.panic.borrow_mut() = Some(panic);
        if let Some(shared) = self.shared.take() {
            shared.settle(Err(Error::Panicked(message.clone())));
        }
        self.finish(Err(Error::Panicked(message)));
        self.trace_step(format_args!("panicked"));
        self.forget();
    }

    /// Keeps how the task ended, and tells its awaiters, if it has any.
    fn finish(&self, outcome: Result<(), Error>) {
        *self.outcome.borrow_mut() = Some(outcome.clone());
        if let Some(done) = self.done_future.get() {
            done.settle(outcome);
        }
    }

    /// The future that tells awaiters the task is over, made on first use: finished already
    /// if the task is.
    fn done_future(&self) -> &Future<()> {
        self.done_future.get_or_init(|| {
            let done = self.event_loop.create_future();
            if let Some(outcome) = self.outcome.borrow().clone() {
                done.settle(outcome);
            }
            done
        })
    }

    /// How the task ended, as a future's `result`: [`Error::NotReady`] while it runs.
    fn result(&self) -> Result<(), Error> {
        self.outcome
            .borrow()
            .clone()
            .unwrap_or(Err(Error::NotReady))
    }

    /// The loop forgets a task that is over.
    fn forget(&self) {
        let finished = self.event_loop.inner.tasks.borrow_mut().remove(self.id);
        drop(finished);
    }

    /// Traces how a step ended: `Task-1 main -> Pending`.
    fn trace_step(&self, outcome: fmt::Arguments<'_>) {
        let (id, name) = (self.id, Name(self.name));
        self.event_loop
            .trace(format_args!("Task-{id} {name} -> {outcome}"));
    }

    fn take_output(&self) -> T {
        let output = self.output.borrow_mut().take();
        output.expect("a task's output is handed over once")
    }
}
// ANCHOR_END: end_panicked
