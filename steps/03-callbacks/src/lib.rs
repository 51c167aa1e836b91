//! # Step 3: an event loop that runs callbacks
//!
//! An event loop is a queue of work and a loop that takes work off the queue. Here the work
//! is a *callback*: a closure that takes nothing and returns nothing. [`EventLoop::call_soon`]
//! puts one at the back of the queue; [`EventLoop::run_forever`] runs them in the order they
//! arrived, until a callback calls [`EventLoop::stop`].
//!
//! The names are asyncio's on purpose: Python's `loop.call_soon(foo)` is
//! `event_loop.call_soon(foo)` here (`loop` is a keyword in Rust).

use std::any::type_name_of_val;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::Instant;

/// A handle to one single-threaded event loop.
///
/// Cloning it is cheap, and every clone drives the same loop: a callback captures a clone to
/// schedule more work or to stop the loop.
#[derive(Clone, Default)]
pub struct EventLoop {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Callbacks ready to run, oldest first (asyncio's `_ready`).
    ready: RefCell<VecDeque<Handle>>,
    /// Set by `stop`; `run_forever` returns when the current iteration ends.
    stopping: Cell<bool>,
    /// Whether the loop is running: a loop cannot run inside itself.
    running: Cell<bool>,
    /// Set by `close`, for good: a closed loop takes no more work.
    closed: Cell<bool>,
    /// When debug mode was turned on, if it is: the trace's times count from then.
    debug: Cell<Option<Instant>>,
    /// How many iterations have begun: the trace numbers its lines with them.
    iteration: Cell<u64>,
}

impl EventLoop {
    /// A new loop with nothing to do.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns debug mode on or off (asyncio's `set_debug`). On, the loop prints a trace, one
    /// line per event: the time since debug mode was turned on, the iteration, and what
    /// happened. asyncio's debug mode logs only what is slow; ours shows everything, to watch
    /// the loop work.
    pub fn set_debug(&self, enabled: bool) {
        self.inner.debug.set(enabled.then(Instant::now));
    }

    /// Prints one line of the trace in debug mode; otherwise it costs one check.
    fn trace(&self, event: impl fmt::Display) {
        if let Some(start) = self.inner.debug.get() {
            let time = start.elapsed().as_secs_f64();
            println!("{time:5.2}s #{:<2} {event}", self.inner.iteration.get());
        }
    }

    /// Schedules `callback` to run on a later iteration of the loop, after every callback
    /// scheduled before it.
    pub fn call_soon(&self, callback: impl FnOnce() + 'static) -> Handle {
        self.check_closed();
        let handle = Handle::new(type_name_of_val(&callback), callback);
        self.inner.ready.borrow_mut().push_back(handle.clone());
        handle
    }

    /// Runs iterations until [`stop`](Self::stop) is called, then returns.
    ///
    /// The loop can be run again afterwards. With nothing to do it spins, checking an empty
    /// queue over and over: step 4 teaches it to sleep.
    pub fn run_forever(&self) {
        let _running = Running::start(self);
        loop {
            self.run_once();
            if self.inner.stopping.replace(false) {
                break;
            }
        }
    }

    /// Asks [`run_forever`](Self::run_forever) to return once the current iteration is done.
    pub fn stop(&self) {
        self.inner.stopping.set(true);
    }

    /// Whether the loop is running now.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the loop for good: drops every callback still queued, with what it captured.
    ///
    /// Callbacks capture the loop, so a loop with queued work keeps itself alive until it is
    /// closed. A closed loop refuses to run and to take new work; closing twice does nothing.
    pub fn close(&self) {
        assert!(!self.is_running(), "Cannot close a running event loop");
        // Take the queue out first: dropping a callback may run code that uses the loop.
        let ready = std::mem::take(&mut *self.inner.ready.borrow_mut());
        drop(ready);
        self.inner.closed.set(true);
    }

    /// Using a closed loop is a bug in the caller: asyncio raises, we panic.
    fn check_closed(&self) {
        assert!(!self.is_closed(), "Event loop is closed");
    }

    /// One iteration: runs the callbacks that were ready when it began.
    ///
    /// A callback scheduled meanwhile waits for the next iteration, so a callback that keeps
    /// rescheduling itself cannot starve the others, and `stop` takes effect promptly.
    fn run_once(&self) {
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        let ntodo = self.inner.ready.borrow().len();
        for _ in 0..ntodo {
            let Some(handle) = self.inner.ready.borrow_mut().pop_front() else {
                break;
            };
            if handle.cancelled() {
                continue;
            }
            self.trace(format_args!("run {}", Name(handle.inner.name)));
            handle.run();
        }
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<EventLoop running={} closed={} ready={}>",
            self.is_running(),
            self.is_closed(),
            self.inner.ready.borrow().len(),
        )
    }
}

/// Marks the loop as running until dropped, even by a panic that unwinds through the loop.
struct Running(EventLoop);

impl Running {
    /// Refuses, as asyncio does, to run a closed loop or a loop that is already running: a
    /// callback that ran its own loop again would run the other callbacks inside itself.
    fn start(event_loop: &EventLoop) -> Self {
        event_loop.check_closed();
        assert!(
            !event_loop.is_running(),
            "This event loop is already running"
        );
        event_loop.inner.running.set(true);
        Running(event_loop.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.inner.running.set(false);
        self.0.inner.stopping.set(false);
    }
}

/// A callback waiting in the loop's queue (asyncio's `Handle`); keep it to cancel the call.
#[derive(Clone)]
pub struct Handle {
    inner: Rc<HandleInner>,
}

struct HandleInner {
    /// The callback's type name, such as `my_crate::foo`, for the debug trace.
    name: &'static str,
    callback: RefCell<Option<Box<dyn FnOnce()>>>,
    cancelled: Cell<bool>,
}

impl Handle {
    fn new(name: &'static str, callback: impl FnOnce() + 'static) -> Self {
        Self {
            inner: Rc::new(HandleInner {
                name,
                callback: RefCell::new(Some(Box::new(callback))),
                cancelled: Cell::new(false),
            }),
        }
    }

    /// Makes sure the callback never runs, and drops it (with whatever it captured) now.
    pub fn cancel(&self) {
        self.inner.cancelled.set(true);
        self.inner.callback.take();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.inner.cancelled.get()
    }

    /// Runs the callback; it runs once at most. The callback is taken out of its cell first,
    /// so it may cancel or clone this very handle while it runs.
    fn run(&self) {
        let callback = self.inner.callback.take();
        if let Some(callback) = callback {
            callback();
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.cancelled() { " cancelled" } else { "" };
        write!(f, "<Handle {}{state}>", self.inner.name)
    }
}

/// A type name as the trace shows it, short: without this crate's prefix, which the demo's
/// functions share, nor type arguments (`gather::{{closure}}` for
/// `step5_futures::gather<i32>::{{closure}}`).
struct Name(&'static str);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0.replace(concat!(env!("CARGO_CRATE_NAME"), "::"), "");
        let mut short = String::new();
        let mut depth = 0;
        for c in name.chars() {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                c if depth == 0 => short.push(c),
                _ => {}
            }
        }
        // A trait's impl (`<impl … for …>`, `<… as …>`) leaves an empty segment in its place.
        write!(
            f,
            "{}",
            short.replace("::::", "::").trim_start_matches("::")
        )
    }
}
