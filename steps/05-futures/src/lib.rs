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

    /// A new pending future whose done callbacks run on this loop.
    pub fn create_future<T: 'static>(&self) -> Future<T> {
        Future {
            inner: Rc::new(FutureInner {
                event_loop: self.clone(),
                state: RefCell::new(State::Pending),
                callbacks: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Runs iterations until `future` is done, then returns its outcome.
    ///
    /// A `stop` before then is a bug in the caller (the future may never be done): as in
    /// asyncio, it ends the run with a panic rather than a silent return.
    pub fn run_until_complete<T: Clone + 'static>(&self, future: &Future<T>) -> Result<T, Error> {
        let _running = Running::start(self);
        while !future.done() {
            self.run_once();
            if self.inner.stopping.replace(false) && !future.done() {
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

/// A result that arrives later (asyncio's `Future`).
///
/// Cloning it is cheap: every clone is the same slot. It goes from pending to finished or
/// cancelled once, and then its done callbacks are scheduled on the loop, in the order they
/// were added.
pub struct Future<T> {
    inner: Rc<FutureInner<T>>,
}

struct FutureInner<T> {
    event_loop: EventLoop,
    state: RefCell<State<T>>,
    /// Callbacks waiting for the outcome; they are scheduled, then forgotten, when it comes.
    callbacks: RefCell<Vec<(&'static str, DoneCallback<T>)>>,
}

/// What `add_done_callback` keeps: a callback that receives the finished future.
type DoneCallback<T> = Box<dyn FnOnce(&Future<T>)>;

/// Where a future is in its life: pending, then one of the two others for good.
enum State<T> {
    Pending,
    Finished(T),
    Failed(Error),
    Cancelled,
}

impl<T: 'static> Future<T> {
    /// Whether the future has its outcome: a result, or a cancellation.
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
    pub fn cancel(&self) -> bool {
        self.finish(State::Cancelled).is_ok()
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
/// the gathered future cancels the children that are still pending.
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
    gathered.add_done_callback(move |gathered| {
        if gathered.cancelled() {
            for child in children.iter() {
                child.cancel();
            }
        }
    });
    gathered
}
