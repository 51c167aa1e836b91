//! Futures (asyncio's `Future`): a slot for a result that arrives later, and the callbacks
//! that wait for it.

use std::any::type_name_of_val;
use std::cell::{Cell, RefCell, RefMut};
use std::fmt;
use std::io;
use std::rc::Rc;
use std::task::Waker;

use crate::EventLoop;

impl EventLoop {
    /// A new pending future whose done callbacks run on this loop.
    pub fn create_future<T: 'static>(&self) -> Future<T> {
        Future {
            inner: Rc::new(FutureInner {
                event_loop: self.clone(),
                state: RefCell::new(State::Pending),
                callbacks: RefCell::new(Vec::new()),
                cancel_with: RefCell::new(None),
                of_task: Cell::new(false),
            }),
        }
    }
}

/// A result that arrives later (asyncio's `Future`).
///
/// Cloning it is cheap: every clone is the same slot. It goes from pending to finished (with a
/// result or an error) or cancelled once, and then its done callbacks are scheduled on the
/// loop, in the order they were added.
pub struct Future<T> {
    inner: Rc<FutureInner<T>>,
}

struct FutureInner<T> {
    event_loop: EventLoop,
    state: RefCell<State<T>>,
    /// Callbacks and tasks waiting for the outcome; when it comes, they are scheduled and
    /// woken in the order they came, then forgotten.
    callbacks: RefCell<Vec<Waiter<T>>>,
    /// For a future that stands for other work (a gather's children): what `cancel` does
    /// instead of cancelling it, until it is done.
    cancel_with: RefCell<Option<Rc<dyn Fn() -> bool>>>,
    /// Whether this is a task's future (`Future::from(task)`), which only the task finishes.
    of_task: Cell<bool>,
}

/// What waits for a future's outcome: a done callback, or a task that awaits the future.
///
/// asyncio's task adds its `__wakeup` as a done callback of the future it awaits, so the two
/// kinds take turns in the order they came. Here an awaiter ([`Wait`](crate::Wait)) keeps its
/// number and the latest waker it was polled with, in its place in the same list.
pub(crate) enum Waiter<T> {
    Callback(&'static str, DoneCallback<T>),
    Awaiter(u64, Waker),
}

impl<T> Waiter<T> {
    /// The waker of awaiter `id`, if this is it.
    pub(crate) fn waker_of(&mut self, id: u64) -> Option<&mut Waker> {
        match self {
            Waiter::Awaiter(awaiter, waker) if *awaiter == id => Some(waker),
            _ => None,
        }
    }
}

/// What `add_done_callback` keeps: a callback that receives the finished future.
type DoneCallback<T> = Box<dyn FnOnce(&Future<T>)>;

/// Where a future is in its life: pending, then one of the three others for good.
enum State<T> {
    Pending,
    Finished(T),
    Failed(Error),
    Cancelled,
}

impl<T: 'static> Future<T> {
    /// Whether the future has its outcome: a result, an error, or a cancellation.
    pub fn done(&self) -> bool {
        !matches!(*self.inner.state.borrow(), State::Pending)
    }

    /// Whether the future was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(*self.inner.state.borrow(), State::Cancelled)
    }

    /// Gives the future its result and schedules its done callbacks. A future that is
    /// already done keeps its outcome, and the caller gets [`Error::AlreadyDone`].
    ///
    /// A task's future refuses ([`Error::OfTask`]): only the task gives it an outcome, as
    /// asyncio's `Task` refuses `set_result`.
    pub fn set_result(&self, value: T) -> Result<(), Error> {
        self.refuse_if_of_task()?;
        self.finish(State::Finished(value))
    }

    /// Finishes the future with an error instead of a result (asyncio's `set_exception`).
    pub fn set_exception(&self, error: Error) -> Result<(), Error> {
        self.refuse_if_of_task()?;
        self.finish(State::Failed(error))
    }

    fn refuse_if_of_task(&self) -> Result<(), Error> {
        match self.inner.of_task.get() {
            true => Err(Error::OfTask),
            false => Ok(()),
        }
    }

    /// Makes this a task's future: from now on only [`settle`](Self::settle) finishes it, and
    /// `cancel` calls `cancel` (the task's).
    pub(crate) fn become_task_future(&self, cancel: impl Fn() -> bool + 'static) {
        self.inner.of_task.set(true);
        self.cancel_with(cancel);
    }

    /// Finishes a task's future with the task's outcome: `Err(Error::Cancelled)` cancels it.
    pub(crate) fn settle(&self, outcome: Result<T, Error>) {
        let outcome = match outcome {
            Ok(value) => State::Finished(value),
            Err(Error::Cancelled) => State::Cancelled,
            Err(error) => State::Failed(error),
        };
        drop(self.finish(outcome));
    }

    /// Cancels the future and schedules its done callbacks. Returns `false`, changing
    /// nothing, when the future is already done.
    ///
    /// A future that stands for other work, such as [`gather`](crate::gather)'s, cancels that
    /// work instead, and gets its outcome from it, as asyncio's `_GatheringFuture.cancel` does:
    /// `false` when none of it could be cancelled.
    pub fn cancel(&self) -> bool {
        let instead = self.inner.cancel_with.borrow().clone();
        match instead {
            Some(cancel) if !self.done() => cancel(),
            _ => self.finish(State::Cancelled).is_ok(),
        }
    }

    /// Makes `cancel` call `cancel` instead, for a future that stands for other work.
    pub(crate) fn cancel_with(&self, cancel: impl Fn() -> bool + 'static) {
        *self.inner.cancel_with.borrow_mut() = Some(Rc::new(cancel));
    }

    /// Schedules `callback` with `call_soon` once the future is done; right away if it
    /// already is. The callback receives the future, as asyncio's do.
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + 'static) {
        let name = type_name_of_val(&callback);
        if self.done() {
            self.schedule(name, Box::new(callback));
        } else {
            self.inner
                .callbacks
                .borrow_mut()
                .push(Waiter::Callback(name, Box::new(callback)));
        }
    }

    fn finish(&self, outcome: State<T>) -> Result<(), Error> {
        if self.done() {
            return Err(Error::AlreadyDone);
        }
        *self.inner.state.borrow_mut() = outcome;
        // The work it stood for is over: whatever `cancel_with` held goes now.
        let cancel_with = self.inner.cancel_with.take();
        drop(cancel_with);
        for waiter in self.inner.callbacks.take() {
            match waiter {
                Waiter::Callback(name, callback) => self.schedule(name, callback),
                // Waking a task schedules its next step, in its turn among the callbacks.
                Waiter::Awaiter(_, waker) => waker.wake(),
            }
        }
        Ok(())
    }

    /// Done callbacks never run inline: the code that sets a result keeps going first.
    fn schedule(&self, name: &'static str, callback: DoneCallback<T>) {
        let future = self.clone();
        let event_loop = &self.inner.event_loop;
        event_loop.call_soon_named(name, move || callback(&future));
    }
}

impl<T: Clone> Future<T> {
    /// The result, or why there is none: [`Error::NotReady`] while pending,
    /// [`Error::Cancelled`] after a cancellation.
    pub fn result(&self) -> Result<T, Error> {
        match &*self.inner.state.borrow() {
            State::Pending => Err(Error::NotReady),
            State::Finished(value) => Ok(value.clone()),
            State::Failed(error) => Err(error.clone()),
            State::Cancelled => Err(Error::Cancelled),
        }
    }
}

impl<T> Future<T> {
    /// What waits for the future: each [`Wait`](crate::Wait) keeps its place and waker there.
    pub(crate) fn waiters(&self) -> RefMut<'_, Vec<Waiter<T>>> {
        self.inner.callbacks.borrow_mut()
    }
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner.state.borrow() {
            State::Pending => write!(f, "<Future pending>"),
            State::Finished(value) => write!(f, "<Future finished result={value:?}>"),
            State::Failed(error) => write!(f, "<Future finished exception={error}>"),
            State::Cancelled => write!(f, "<Future cancelled>"),
        }
    }
}

/// Why a future has no result to give, or cannot take one (asyncio raises
/// `InvalidStateError` or `CancelledError` for these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The future is still pending.
    NotReady,
    /// The future was cancelled.
    Cancelled,
    /// The future is already done: its outcome is set once.
    AlreadyDone,
    /// The task panicked, with this message; the loop and the other tasks go on.
    Panicked(String),
    /// `get_running_loop` was called where no loop is running.
    NoRunningLoop,
    /// `set_result` or `set_exception` on a task's future, which only the task finishes.
    OfTask,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NotReady => "the result is not ready yet",
            Error::Cancelled => "the future was cancelled",
            Error::AlreadyDone => "the future is already done",
            Error::Panicked(message) => return write!(f, "the task panicked: {message}"),
            Error::NoRunningLoop => "no running event loop",
            Error::OfTask => "a task's future gets its outcome from the task alone",
        })
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        io::Error::other(error)
    }
}
