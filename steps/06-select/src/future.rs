//! Futures (asyncio's `Future`): a slot for a result that arrives later, and the callbacks
//! that wait for it.

use std::any::type_name_of_val;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

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
    /// Callbacks waiting for the outcome; they are scheduled, then forgotten, when it comes.
    callbacks: RefCell<Vec<(&'static str, DoneCallback<T>)>>,
    /// For a future that stands for other work (a gather's children): what `cancel` does
    /// instead of cancelling it, until it is done.
    cancel_with: RefCell<Option<Rc<dyn Fn() -> bool>>>,
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
    pub fn set_result(&self, value: T) -> Result<(), Error> {
        self.finish(State::Finished(value))
    }

    /// Finishes the future with an error instead of a result (asyncio's `set_exception`).
    pub fn set_exception(&self, error: Error) -> Result<(), Error> {
        self.finish(State::Failed(error))
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
                .push((name, Box::new(callback)));
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
        for (name, callback) in self.inner.callbacks.take() {
            self.schedule(name, callback);
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NotReady => "the result is not ready yet",
            Error::Cancelled => "the future was cancelled",
            Error::AlreadyDone => "the future is already done",
        })
    }
}

impl std::error::Error for Error {}
