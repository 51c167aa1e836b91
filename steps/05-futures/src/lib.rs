//! # Step 5: futures
//!
//! A [`Future`] is a result that is not there yet: a slot that is pending, then finished with
//! a value (or an error) or cancelled, once. Whoever produces it calls [`Future::set_result`];
//! whoever needs it adds a done callback, which the loop schedules like any other callback.
//! With futures, waiting for a timer ([`sleep`]) or for several things at once ([`gather`])
//! becomes a value that can be passed around and combined.
//!
//! The names are asyncio's on purpose: Python's `loop.call_soon(foo)` is
//! `event_loop.call_soon(foo)` here (`loop` is a keyword in Rust).

use std::any::type_name_of_val;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

mod future;
mod lifecycle;
mod timers;
mod trace;

pub use future::{Error, Future};
use lifecycle::Running;
pub use timers::TimerHandle;
use timers::{FOREVER, TimerHeap};
use trace::{Name, Timeout, Until};

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
    /// Timers not yet due, earliest deadline on top (asyncio's `_scheduled`).
    scheduled: RefCell<TimerHeap>,
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

    /// Schedules `callback` to run on a later iteration of the loop, after every callback
    /// scheduled before it.
    pub fn call_soon(&self, callback: impl FnOnce() + 'static) -> Handle {
        self.call_soon_named(type_name_of_val(&callback), callback)
    }

    /// [`call_soon`](Self::call_soon) for the loop's wrapper of someone's callback: the
    /// handle, and so the trace, bear their function's `name`, not the wrapper's.
    fn call_soon_named(&self, name: &'static str, callback: impl FnOnce() + 'static) -> Handle {
        self.check_closed();
        let handle = Handle::new(name, callback);
        self.inner.ready.borrow_mut().push_back(handle.clone());
        handle
    }

    /// The loop's clock: monotonic, so timers are not fooled when the wall clock is changed.
    pub fn time(&self) -> Instant {
        Instant::now()
    }

    /// Schedules `callback` to run once `when` has come. Timers due at the same instant run
    /// in the order they were scheduled; a deadline in the past means the next iteration.
    pub fn call_at(&self, when: Instant, callback: impl FnOnce() + 'static) -> TimerHandle {
        self.check_closed();
        let handle = Handle::new(type_name_of_val(&callback), callback);
        let name = Name(handle.inner.name);
        let timer = self.inner.scheduled.borrow_mut().push(when, handle);
        self.trace(format_args!("timer {name} due in {}", Until(when)));
        timer
    }

    /// Schedules `callback` to run after `delay`: [`call_at`](Self::call_at) from now. A delay
    /// beyond 30 years is 30 years (`FOREVER`).
    pub fn call_later(&self, delay: Duration, callback: impl FnOnce() + 'static) -> TimerHandle {
        self.call_at(self.time() + delay.min(FOREVER), callback)
    }

    /// Runs iterations until `future` is done, then returns its outcome.
    ///
    /// As asyncio's, it waits with a done callback of its own, added last, and returns when the
    /// iteration that ran it ends: the done callbacks added before it have run by then.
    ///
    /// A `stop` before then is a bug in the caller (the future may never be done): as in
    /// asyncio, it ends the run with a panic rather than a silent return.
    pub fn run_until_complete<T: Clone + 'static>(&self, future: &Future<T>) -> Result<T, Error> {
        let _running = Running::start(self);
        let finished = Rc::new(Cell::new(false));
        let flag = finished.clone();
        future.add_done_callback(move |_| flag.set(true));
        while !finished.get() {
            self.run_once();
            if self.inner.stopping.replace(false) && !finished.get() {
                panic!("Event loop stopped before Future completed.");
            }
        }
        future.result()
    }

    /// Runs iterations until [`stop`](Self::stop) is called, then returns.
    ///
    /// The loop can be run again afterwards. With nothing to do it sleeps until the next
    /// timer is due; with no timer either, nothing can ever happen, and it sleeps for good.
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

    /// One iteration: waits until something is ready, moves the timers that are due to the
    /// ready queue, then runs the callbacks that were ready when it began.
    ///
    /// A callback scheduled meanwhile waits for the next iteration, so a callback that keeps
    /// rescheduling itself cannot starve the others, and `stop` takes effect promptly.
    fn run_once(&self) {
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        self.inner.scheduled.borrow_mut().purge_cancelled();
        self.wait(self.timeout());
        let now = self.time();
        while let Some(handle) = self.pop_due(now) {
            self.trace(format_args!("timer {} is due", Name(handle.inner.name)));
            self.inner.ready.borrow_mut().push_back(handle);
        }

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

    /// How long this iteration may wait: not at all when callbacks are ready or the loop is
    /// stopping, until the next deadline when a timer is pending, forever otherwise (`None`).
    fn timeout(&self) -> Option<Duration> {
        if !self.inner.ready.borrow().is_empty() || self.inner.stopping.get() {
            return Some(Duration::ZERO);
        }
        let next = self.inner.scheduled.borrow_mut().next_deadline()?;
        Some(next.saturating_duration_since(self.time()))
    }

    /// Sleeps for `timeout`. Only a timer can bring new work to this loop, so with no
    /// timeout there is nothing to wait for, ever.
    fn wait(&self, timeout: Option<Duration>) {
        self.trace(format_args!("sleep {}", Timeout(timeout)));
        match timeout {
            Some(timeout) => thread::sleep(timeout),
            None => loop {
                thread::park();
            },
        }
    }

    /// Takes the earliest timer off the heap if its deadline has come.
    fn pop_due(&self, now: Instant) -> Option<Handle> {
        self.inner.scheduled.borrow_mut().pop_due(now)
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

/// A future that finishes after `delay` (the talk's `sleep`, built from `call_later`).
pub fn sleep(event_loop: &EventLoop, delay: Duration) -> Future<()> {
    let future = event_loop.create_future();
    let sleeper = future.clone();
    event_loop.call_later(delay, move || {
        // A sleep cancelled meanwhile keeps its outcome: there is nobody left to wake.
        let _ = sleeper.set_result(());
    });
    future
}

/// A future of every result, in the order the futures were given, whatever order they
/// finish in (the talk's `gather`).
///
/// The first child to fail fails the gathered future with its error, and a cancelled child
/// with [`Error::Cancelled`], as asyncio's `gather` does; the other children go on. Cancelling
/// the gathered future cancels the children that are still pending, which then fail it with
/// [`Error::Cancelled`]; with none pending, it changes nothing and returns `false`.
pub fn gather<T: Clone + 'static>(
    event_loop: &EventLoop,
    futures: Vec<Future<T>>,
) -> Future<Vec<T>> {
    let gathered = event_loop.create_future();
    let children = Rc::new(futures);
    let pending = Rc::new(Cell::new(children.len()));
    if children.is_empty() {
        gathered
            .set_result(Vec::new())
            .expect("a new future is pending");
    }
    for child in children.iter() {
        let (gathered, children, pending) = (gathered.clone(), children.clone(), pending.clone());
        child.add_done_callback(move |child| {
            if gathered.done() {
                return;
            }
            if let Err(error) = child.result() {
                drop(gathered.set_exception(error));
                return;
            }
            pending.set(pending.get() - 1);
            if pending.get() == 0 {
                let results = children.iter().map(|child| child.result());
                let results = results
                    .collect::<Result<_, _>>()
                    .expect("every child succeeded");
                gathered
                    .set_result(results)
                    .expect("gathered is still pending");
            }
        });
    }
    // Every child is asked, even after one said yes.
    gathered.cancel_with(move || children.iter().filter(|child| child.cancel()).count() > 0);
    gathered
}
