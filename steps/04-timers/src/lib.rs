//! # Step 4: timers
//!
//! Step 3's loop runs callbacks that are ready now. A timer is a callback that becomes ready
//! at a given instant: [`EventLoop::call_at`] and [`EventLoop::call_later`] put it in a heap
//! ordered by deadline, and each iteration moves the timers that are due to the ready queue.
//! When nothing is ready, the loop sleeps until the next deadline instead of spinning.
//!
//! The names are asyncio's on purpose: Python's `loop.call_soon(foo)` is
//! `event_loop.call_soon(foo)` here (`loop` is a keyword in Rust).

use std::any::type_name_of_val;
use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

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
    scheduled: RefCell<BinaryHeap<Timer>>,
    /// How many timers were ever scheduled: the tie-breaker between equal deadlines.
    sequence: Cell<u64>,
    /// How many timers in the heap are cancelled, shared with every `TimerHandle`.
    cancelled_timers: Rc<Cell<usize>>,
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

    /// The loop's clock: monotonic, so timers are not fooled when the wall clock is changed.
    pub fn time(&self) -> Instant {
        Instant::now()
    }

    /// Schedules `callback` to run once `when` has come. Timers due at the same instant run
    /// in the order they were scheduled; a deadline in the past means the next iteration.
    pub fn call_at(&self, when: Instant, callback: impl FnOnce() + 'static) -> TimerHandle {
        self.check_closed();
        let sequence = self.inner.sequence.get();
        self.inner.sequence.set(sequence + 1);
        let timer = TimerHandle {
            inner: Rc::new(TimerInner {
                handle: Handle::new(type_name_of_val(&callback), callback),
                when,
                sequence,
                in_heap: Cell::new(true),
                cancelled_timers: Rc::clone(&self.inner.cancelled_timers),
            }),
        };
        self.inner.scheduled.borrow_mut().push(Timer(timer.clone()));
        let name = Name(timer.inner.handle.inner.name);
        self.trace(format_args!("timer {name} due in {}", Until(when)));
        timer
    }

    /// Schedules `callback` to run after `delay`: [`call_at`](Self::call_at) from now.
    pub fn call_later(&self, delay: Duration, callback: impl FnOnce() + 'static) -> TimerHandle {
        self.call_at(self.time() + delay, callback)
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

    /// Whether the loop is running now.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the loop for good: drops every callback still queued or scheduled, with what it
    /// captured.
    ///
    /// Callbacks capture the loop, so a loop with queued work keeps itself alive until it is
    /// closed. A closed loop refuses to run and to take new work; closing twice does nothing.
    pub fn close(&self) {
        assert!(!self.is_running(), "Cannot close a running event loop");
        // Take the queues out first: dropping a callback may run code that uses the loop.
        let ready = std::mem::take(&mut *self.inner.ready.borrow_mut());
        let scheduled = std::mem::take(&mut *self.inner.scheduled.borrow_mut());
        drop((ready, scheduled));
        self.inner.closed.set(true);
    }

    /// Using a closed loop is a bug in the caller: asyncio raises, we panic.
    fn check_closed(&self) {
        assert!(!self.is_closed(), "Event loop is closed");
    }

    /// One iteration: waits until something is ready, moves the timers that are due to the
    /// ready queue, then runs the callbacks that were ready when it began.
    ///
    /// A callback scheduled meanwhile waits for the next iteration, so a callback that keeps
    /// rescheduling itself cannot starve the others, and `stop` takes effect promptly.
    fn run_once(&self) {
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        self.purge_cancelled_timers();
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
        let mut scheduled = self.inner.scheduled.borrow_mut();
        // A cancelled timer on top would wake us for nothing: drop it now.
        while scheduled
            .peek()
            .is_some_and(|Timer(timer)| timer.cancelled())
        {
            pop_timer(&mut scheduled);
        }
        let Timer(next) = scheduled.peek()?;
        Some(next.when().saturating_duration_since(self.time()))
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
        let mut scheduled = self.inner.scheduled.borrow_mut();
        if scheduled.peek()?.0.when() > now {
            return None;
        }
        pop_timer(&mut scheduled).map(|timer| timer.inner.handle.clone())
    }

    /// Drops every cancelled timer from the heap once they are more than half of it, as
    /// asyncio does. A cancelled timer is skipped when its turn comes, but until then it takes
    /// memory: a server that starts a 30 s timeout per request and cancels it when the answer
    /// is sent would otherwise keep every request's timer for 30 s.
    fn purge_cancelled_timers(&self) {
        let mut scheduled = self.inner.scheduled.borrow_mut();
        let cancelled = self.inner.cancelled_timers.get();
        if scheduled.len() <= MIN_TIMERS_TO_PURGE || cancelled * 2 <= scheduled.len() {
            return;
        }
        // Dropping a cancelled timer here is safe: `cancel` dropped its callback already.
        scheduled.retain(|Timer(timer)| {
            timer.inner.in_heap.set(!timer.cancelled());
            !timer.cancelled()
        });
        self.inner.cancelled_timers.set(0);
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<EventLoop running={} closed={} ready={} timers={}>",
            self.is_running(),
            self.is_closed(),
            self.inner.ready.borrow().len(),
            self.inner.scheduled.borrow().len(),
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

/// How long until an instant, as the trace shows it.
struct Until(Instant);

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left = self.0.saturating_duration_since(Instant::now());
        write!(f, "{:.2}s", left.as_secs_f64())
    }
}

/// How long the loop may wait, as the trace shows it: `None` is forever.
struct Timeout(Option<Duration>);

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(timeout) => write!(f, "{:.2}s", timeout.as_secs_f64()),
            None => f.write_str("forever"),
        }
    }
}

/// The fewest timers in the heap for a purge of the cancelled ones (asyncio's number).
const MIN_TIMERS_TO_PURGE: usize = 100;

/// A callback scheduled for a deadline (asyncio's `TimerHandle`); keep it to cancel the call.
#[derive(Clone)]
pub struct TimerHandle {
    inner: Rc<TimerInner>,
}

struct TimerInner {
    handle: Handle,
    when: Instant,
    /// The order of scheduling: the tie-breaker between equal deadlines.
    sequence: u64,
    /// Whether the timer is still in the loop's heap (asyncio's `_scheduled`).
    in_heap: Cell<bool>,
    /// The loop's count of cancelled timers in its heap.
    cancelled_timers: Rc<Cell<usize>>,
}

impl TimerHandle {
    /// The instant the callback is due.
    pub fn when(&self) -> Instant {
        self.inner.when
    }

    /// Makes sure the callback never runs, and drops it now. The timer stays in the heap,
    /// skipped when its turn comes, unless the loop purges it first; the loop counts the
    /// cancelled timers in its heap to know when to purge.
    pub fn cancel(&self) {
        if !self.cancelled() && self.inner.in_heap.get() {
            let count = &self.inner.cancelled_timers;
            count.set(count.get() + 1);
        }
        self.inner.handle.cancel();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.inner.handle.cancelled()
    }
}

/// Takes the earliest timer off the heap, and out of the count if it was cancelled.
fn pop_timer(heap: &mut BinaryHeap<Timer>) -> Option<TimerHandle> {
    let Timer(timer) = heap.pop()?;
    timer.inner.in_heap.set(false);
    if timer.cancelled() {
        let count = &timer.inner.cancelled_timers;
        count.set(count.get() - 1);
    }
    Some(timer)
}

/// An entry of the timer heap, ordered by deadline, then by the order of scheduling, so that
/// equal deadlines run first come, first served. `BinaryHeap` keeps its *largest* entry on top,
/// so the comparison is reversed: the earliest deadline is the largest.
struct Timer(TimerHandle);

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        let (mine, theirs) = (&self.0.inner, &other.0.inner);
        (theirs.when, theirs.sequence).cmp(&(mine.when, mine.sequence))
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Timer {}
