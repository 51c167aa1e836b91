//! The loop's life: running (once at a time), and closed (for good). asyncio's rules, which
//! keep a loop from running inside itself or being used after `close`; skip them on a first
//! reading.

use std::cell::RefCell;
use std::future::IntoFuture;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::{Error, EventLoop};

impl EventLoop {
    /// Whether the loop is running now.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the loop for good: cancels the tasks still pending, drops every callback still
    /// queued, scheduled or watching a descriptor, with what it captured, and closes the
    /// selector, with the descriptors it kept open, the self-pipe among them.
    ///
    /// Callbacks capture the loop, so a loop with queued work keeps itself alive until it is
    /// closed. A closed loop refuses to run and to take new work; closing twice does nothing.
    pub fn close(&self) {
        assert!(!self.is_running(), "Cannot close a running event loop");
        // The tasks still pending are cancelled at once: their async fns are dropped. Their
        // cleanup may start tasks: those go too, or they would keep the loop alive in a cycle.
        loop {
            let tasks = self.inner.tasks.borrow_mut().take_all();
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                task.close();
            }
        }
        if let Some(inbox) = self.inner.inbox.get() {
            inbox.close();
        }
        // Take the queues out first: dropping a callback may run code that uses the loop.
        let ready = std::mem::take(&mut *self.inner.ready.borrow_mut());
        let scheduled = std::mem::take(&mut *self.inner.scheduled.borrow_mut());
        let readers = std::mem::take(&mut *self.inner.readers.borrow_mut());
        let writers = std::mem::take(&mut *self.inner.writers.borrow_mut());
        let selector = self.inner.selector.borrow_mut().take();
        drop((ready, scheduled, readers, writers, selector));
        self.inner.closed.set(true);
    }

    /// Using a closed loop is a bug in the caller: asyncio raises, we panic.
    pub(crate) fn check_closed(&self) {
        assert!(!self.is_closed(), "Event loop is closed");
    }

    /// Cancels every task still pending and runs the loop until all of them are done. Only
    /// those: a task that their cleanup starts is left to `close`, as asyncio's runner gathers
    /// the tasks it cancelled and no others.
    pub(crate) fn cancel_all_tasks(&self) {
        let _running = Running::start(self);
        let mut tasks: Vec<_> = self.inner.tasks.borrow().values().cloned().collect();
        for task in &tasks {
            task.cancel();
        }
        while !tasks.is_empty() {
            self.run_once();
            tasks.retain(|task| !task.done());
        }
    }
}

/// Marks the loop as running until dropped, even by a panic that unwinds through the loop.
pub(crate) struct Running(EventLoop);

impl Running {
    /// Refuses, as asyncio does, to run a closed loop or a loop that is already running: a
    /// callback that ran its own loop again would run the other callbacks inside itself.
    pub(crate) fn start(event_loop: &EventLoop) -> Self {
        event_loop.check_closed();
        assert!(
            !event_loop.is_running(),
            "This event loop is already running"
        );
        enter_running_loop(event_loop);
        event_loop.inner.running.set(true);
        Running(event_loop.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.inner.running.set(false);
        self.0.inner.stopping.set(false);
        leave_running_loop();
    }
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

thread_local! {
    /// The loop running on this thread, if any (asyncio's `_running_loop`).
    static RUNNING_LOOP: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}
