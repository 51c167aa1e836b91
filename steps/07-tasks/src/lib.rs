//! # Step 7: tasks
//!
//! Step 6's callbacks work, but a request's logic is cut into pieces. An `async fn` keeps it in
//! one piece: the compiler turns it into a state machine (step 2) that returns `Pending` where
//! it would wait. A [`Task`] drives one on our loop: each *step* polls it once; when it is
//! pending, whatever it waits for holds the task's `Waker`, and waking it schedules the next
//! step with `call_soon`. That is asyncio's `Task.__step` and `Task.__wakeup`, and with it
//! come async TCP ([`net`]) and a real HTTP proxy ([`proxy`]).
//!
//! The names are asyncio's on purpose: Python's `loop.call_soon(foo)` is
//! `event_loop.call_soon(foo)` here (`loop` is a keyword in Rust).

use std::any::type_name_of_val;
use std::cell::{Cell, OnceCell, RefCell, RefMut};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod budget;
mod cancel;
pub mod compare;
mod executor;
mod future;
mod inbox;
mod lifecycle;
pub mod net;
pub mod proxy;
pub mod selectors;
mod sockets;
mod task;
mod timers;
mod trace;
mod wait;

pub use budget::yield_now;
pub use executor::InExecutor;
pub use future::{Error, Future};
use inbox::Inbox;
use lifecycle::Running;
pub use lifecycle::{get_running_loop, run, run_with};
use selectors::{DefaultSelector, Events, Selector};
pub use sockets::{connect_nonblocking, listen};
pub use task::Join;
pub use task::Task;
use task::{AnyTask, TaskId, Tasks};
pub use timers::TimerHandle;
use timers::{FOREVER, TimerHeap};
use trace::{Answer, Direction, Fds, Name, Timeout, Until};
pub use wait::Wait;

/// A handle to one single-threaded event loop.
///
/// Cloning it is cheap, and every clone drives the same loop: a callback captures a clone to
/// schedule more work or to stop the loop.
#[derive(Clone)]
pub struct EventLoop {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Callbacks and task steps ready to run, oldest first (asyncio's `_ready`).
    ready: RefCell<VecDeque<Ready>>,
    /// Timers not yet due, earliest deadline on top (asyncio's `_scheduled`).
    scheduled: RefCell<TimerHeap>,
    /// Descriptors watched for reading, and their callbacks.
    readers: RefCell<BTreeMap<RawFd, Watch>>,
    /// Descriptors watched for writing, and their callbacks.
    writers: RefCell<BTreeMap<RawFd, Watch>>,
    /// What waits for the watched descriptors (asyncio's `_selector`); `None` once closed.
    selector: RefCell<Option<Box<dyn Selector>>>,
    /// Tasks not finished yet: wakers name tasks by id, since they cannot hold them.
    tasks: RefCell<Tasks>,
    /// Where wakers leave the tasks to step; made with the first task.
    inbox: OnceCell<Arc<Inbox>>,
    /// How many iterations in a row did not ask the selector, since work was ready.
    io_skipped: Cell<u32>,
    /// How many of the ready callbacks are task steps: while they are all there is, the
    /// selector may wait (see `budget.rs`).
    steps_queued: Cell<usize>,
    /// The name of the callback running now, if any: the trace says who woke a task.
    current: Cell<Option<&'static str>>,
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
    /// A new loop with nothing to do, on the best selector the system has
    /// ([`DefaultSelector`]). Panics if the system cannot give it one (no descriptor left).
    pub fn new() -> Self {
        match DefaultSelector::new() {
            Ok(selector) => Self::with_selector(Box::new(selector)),
            Err(error) => panic!("the loop's selector cannot be made: {error}"),
        }
    }

    /// A new loop that waits with `selector`: `select(2)`, `poll(2)`, epoll or kqueue, all
    /// behind the same [`Selector`] interface (asyncio's `SelectorEventLoop(selector)`).
    pub fn with_selector(selector: Box<dyn Selector>) -> Self {
        let inner = Inner {
            selector: RefCell::new(Some(selector)),
            ..Inner::default()
        };
        EventLoop {
            inner: Rc::new(inner),
        }
    }

    /// The name of the loop's selector, such as `epoll`.
    pub fn selector_name(&self) -> &'static str {
        self.selector().name()
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
        let ready = Ready::Callback(handle.clone());
        self.inner.ready.borrow_mut().push_back(ready);
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

    /// Calls `callback` each time `source` can be read without blocking, until
    /// [`remove_reader`](Self::remove_reader). Adding the same descriptor again replaces the
    /// callback.
    ///
    /// The loop keeps `source` alive while it watches it. The selector may refuse it: `select`
    /// cannot hold a descriptor numbered `FD_SETSIZE` (1024) or more.
    pub fn add_reader<S: AsFd + 'static>(
        &self,
        source: Rc<S>,
        callback: impl Fn() + 'static,
    ) -> io::Result<()> {
        let name = type_name_of_val(&callback);
        self.watch(source, Events::READ, name, Rc::new(callback))
    }

    /// Stops watching `fd` for reading; `false` if it was not watched. A call of the callback
    /// already queued by this iteration's wait is cancelled too, as asyncio's is.
    pub fn remove_reader(&self, fd: &impl AsRawFd) -> bool {
        self.unwatch(fd.as_raw_fd(), Events::READ)
    }

    /// Calls `callback` each time `source` can be written without blocking, until
    /// [`remove_writer`](Self::remove_writer). Otherwise the same as
    /// [`add_reader`](Self::add_reader).
    pub fn add_writer<S: AsFd + 'static>(
        &self,
        source: Rc<S>,
        callback: impl Fn() + 'static,
    ) -> io::Result<()> {
        let name = type_name_of_val(&callback);
        self.watch(source, Events::WRITE, name, Rc::new(callback))
    }

    /// Stops watching `fd` for writing; `false` if it was not watched. Otherwise the same as
    /// [`remove_reader`](Self::remove_reader).
    pub fn remove_writer(&self, fd: &impl AsRawFd) -> bool {
        self.unwatch(fd.as_raw_fd(), Events::WRITE)
    }

    /// The map of watches for one direction.
    fn watches(&self, direction: Events) -> &RefCell<BTreeMap<RawFd, Watch>> {
        if direction.read {
            &self.inner.readers
        } else {
            &self.inner.writers
        }
    }

    /// What `fd` is watched for now: the selector's registration mirrors the two maps.
    fn watched(&self, fd: RawFd) -> Events {
        Events {
            read: self.inner.readers.borrow().contains_key(&fd),
            write: self.inner.writers.borrow().contains_key(&fd),
        }
    }

    /// The selector, which only a closed loop lacks.
    fn selector(&self) -> RefMut<'_, Box<dyn Selector>> {
        RefMut::map(self.inner.selector.borrow_mut(), |selector| {
            selector.as_mut().expect("the loop is closed")
        })
    }

    /// Adds or replaces the watch on `source` for `direction`: the selector registers a new
    /// descriptor, and is told when a registered one gains a direction (asyncio's
    /// `_add_reader`).
    fn watch(
        &self,
        source: Rc<dyn AsFd>,
        direction: Events,
        name: &'static str,
        callback: Rc<dyn Fn()>,
    ) -> io::Result<()> {
        self.check_closed();
        let fd = source.as_fd().as_raw_fd();
        let watched = self.watched(fd);
        if watched.is_empty() {
            self.selector().register(source, direction)?;
        } else if watched | direction != watched {
            self.selector().modify(fd, watched | direction)?;
        }
        let watch = Watch {
            name,
            callback,
            queued: None,
        };
        // The watch replaced, if any, is dropped at the end of the function, once the map is
        // no longer borrowed: its callback's captures may use the loop (and this map) as they
        // drop.
        let _replaced = self.watches(direction).borrow_mut().insert(fd, watch);
        self.trace(format_args!(
            "add_{} fd {fd} {}",
            Direction(direction),
            Name(name)
        ));
        Ok(())
    }

    /// Removes the watch on `fd` for `direction`, if any, and tells the selector; the watch,
    /// and the source if the selector lets it go, are dropped outside every borrow, as in
    /// [`watch`](Self::watch).
    fn unwatch(&self, fd: RawFd, direction: Events) -> bool {
        let Some(removed) = self.watches(direction).borrow_mut().remove(&fd) else {
            return false;
        };
        self.trace(format_args!("remove_{} fd {fd}", Direction(direction)));
        let left = self.watched(fd);
        let mut selector = self.inner.selector.borrow_mut();
        // A descriptor the loop watches stays open (the selector keeps its source), so the
        // selector cannot refuse: there is nothing to report.
        let source = match selector.as_mut() {
            Some(selector) if left.is_empty() => selector.unregister(fd).ok(),
            Some(selector) => selector.modify(fd, left).ok().and(None),
            None => None,
        };
        drop(selector);
        drop((removed, source));
        true
    }

    /// Runs `future` (an `async fn`'s, a [`Future`], a [`Task`]) in a task of its own until it
    /// is done, then returns its output: asyncio's `run_until_complete` also wraps what it is
    /// given in a task. A panic in that task reaches the caller, as asyncio re-raises.
    ///
    /// As asyncio's, it waits with a done callback of its own, added last, and returns when the
    /// iteration that ran it ends: the done callbacks added before it have run by then.
    ///
    /// A `stop` before then is a bug in the caller (the future may never be done): as in
    /// asyncio, it ends the run with a panic rather than a silent return.
    pub fn run_until_complete<F: IntoFuture<IntoFuture: 'static, Output: 'static>>(
        &self,
        future: F,
    ) -> F::Output {
        let _running = Running::start(self);
        let task = self.create_task(future);
        let finished = Rc::new(Cell::new(false));
        let flag = finished.clone();
        task.add_done_callback(move |_| flag.set(true));
        while !finished.get() {
            self.run_once();
            if self.inner.stopping.replace(false) && !finished.get() {
                panic!("Event loop stopped before Future completed.");
            }
        }
        task.into_output()
    }

    /// Runs iterations until [`stop`](Self::stop) is called, then returns.
    ///
    /// The loop can be run again afterwards. With nothing to do it sleeps until a watched
    /// descriptor is ready or the next timer is due, whichever comes first.
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

    /// One iteration (asyncio's `_run_once`): schedules the steps of the tasks woken since the
    /// last one, waits until something is ready, moves the timers that are due to the ready
    /// queue, then runs the callbacks that were ready when it began.
    ///
    /// A callback scheduled meanwhile waits for the next iteration, so a callback that keeps
    /// rescheduling itself cannot starve the others, and `stop` takes effect promptly.
    fn run_once(&self) {
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        self.schedule_woken_tasks();
        self.inner.scheduled.borrow_mut().purge_cancelled();
        if self.selector_is_due() {
            self.wait(self.timeout());
        }
        // Only timers need the clock: an iteration with none does not pay for reading it.
        if self.inner.scheduled.borrow().len() > 0 {
            let now = self.time();
            while let Some(handle) = self.pop_due(now) {
                self.trace(format_args!("timer {} is due", Name(handle.inner.name)));
                let ready = Ready::Callback(handle);
                self.inner.ready.borrow_mut().push_back(ready);
            }
        }

        let ntodo = self.inner.ready.borrow().len();
        for _ in 0..ntodo {
            let Some(handle) = self.pop_ready() else {
                break;
            };
            if handle.cancelled() {
                continue;
            }
            self.trace(format_args!("run {}", Name(handle.name())));
            self.inner.current.set(Some(handle.name()));
            handle.run();
            self.inner.current.set(None);
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

    /// Waits in the selector until a watched descriptor is ready or `timeout` has passed,
    /// then schedules the callbacks of the ready descriptors: for each, its reader, then its
    /// writer, as asyncio's `_process_events` does.
    fn wait(&self, timeout: Option<Duration>) {
        let (readers, writers) = (Fds(&self.inner.readers), Fds(&self.inner.writers));
        let shown = Timeout(timeout);
        self.trace(format_args!(
            "select read={readers} write={writers} timeout={shown}"
        ));
        let ready = self.selector().select(timeout);
        let ready = ready.unwrap_or_else(|error| {
            panic!("the selector failed on descriptors the loop owns: {error}")
        });
        self.trace(format_args!("select -> {}", Answer(&ready)));
        for (fd, events) in ready {
            if events.read {
                self.schedule_watch(&self.inner.readers, fd);
            }
            if events.write {
                self.schedule_watch(&self.inner.writers, fd);
            }
        }
    }

    /// Queues the callback of the watch on `fd`, and keeps the call's handle in the watch so
    /// that removing the watch before the call runs cancels it.
    fn schedule_watch(&self, map: &RefCell<BTreeMap<RawFd, Watch>>, fd: RawFd) {
        let Some((name, callback)) = map
            .borrow()
            .get(&fd)
            .map(|watch| (watch.name, Rc::clone(&watch.callback)))
        else {
            return;
        };
        let handle = self.call_soon_named(name, move || callback());
        if let Some(watch) = map.borrow_mut().get_mut(&fd) {
            watch.queued = Some(handle);
        }
    }

    /// Takes the earliest timer off the heap if its deadline has come.
    fn pop_due(&self, now: Instant) -> Option<Handle> {
        self.inner.scheduled.borrow_mut().pop_due(now)
    }
}

impl Default for EventLoop {
    fn default() -> Self {
        Self::new()
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

/// What waits in the ready queue: a callback, or a task's next step. asyncio queues a step as
/// any callback, `call_soon(task.__step)`; ours queues the task itself, as tokio's run queue
/// does, so that a step costs no `Handle` and no boxed closure.
enum Ready {
    Callback(Handle),
    Step(Rc<dyn AnyTask>),
}

impl Ready {
    /// The callback's name, or the task's async fn's: what the trace shows.
    fn name(&self) -> &'static str {
        match self {
            Ready::Callback(handle) => handle.inner.name,
            Ready::Step(task) => task.name(),
        }
    }

    /// Whether the callback was cancelled; a cancelled task still steps, to end.
    fn cancelled(&self) -> bool {
        match self {
            Ready::Callback(handle) => handle.cancelled(),
            Ready::Step(_) => false,
        }
    }

    /// Runs the callback, or steps the task.
    fn run(self) {
        match self {
            Ready::Callback(handle) => handle.run(),
            Ready::Step(task) => task.step(),
        }
    }
}

/// A callback for a watched descriptor's readiness (the selector keeps the descriptor open).
struct Watch {
    /// The callback's type name, for the trace.
    name: &'static str,
    callback: Rc<dyn Fn()>,
    /// The call of `callback` that the last wait queued, if any.
    queued: Option<Handle>,
}

impl Drop for Watch {
    /// A watch removed before its queued call has run takes the call with it.
    fn drop(&mut self) {
        if let Some(queued) = &self.queued {
            queued.cancel();
        }
    }
}

/// Waits `delay` without blocking the loop (asyncio's `sleep`): a future finished by a
/// `call_later` timer, as before, but on the running loop, so nobody passes the loop in.
///
/// `sleep(Duration::ZERO)` is asyncio's `sleep(0)`: a bare yield, with no future and no timer;
/// the task steps again in the next iteration, after the others had their turn. A longer sleep
/// panics outside a running loop, where nothing could ever wake it.
pub async fn sleep(delay: Duration) {
    if delay.is_zero() {
        let mut yielded = false;
        return std::future::poll_fn(|cx| {
            if std::mem::replace(&mut yielded, true) {
                return std::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await;
    }
    let Ok(event_loop) = get_running_loop() else {
        panic!("sleep() needs a running event loop: await it in a task, or in run()");
    };
    let future = event_loop.create_future();
    let sleeper = future.clone();
    let timer = event_loop.call_later(delay, move || {
        // A sleep cancelled meanwhile keeps its outcome: its task is being cancelled.
        let _ = sleeper.set_result(());
    });
    // A sleep dropped before its time (its task cancelled, say) takes its timer with it.
    let _timer = CancelOnDrop(timer);
    // Cancelled only with the task that awaits it, which then stops at its next step.
    let _ = future.await;
}

/// Cancels a timer when dropped: the cleanup that asyncio writes in a `finally` block.
struct CancelOnDrop(TimerHandle);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
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
    futures: impl IntoIterator<Item = impl Into<Future<T>>>,
) -> Future<Vec<T>> {
    let gathered = event_loop.create_future();
    let children: Rc<Vec<Future<T>>> = Rc::new(futures.into_iter().map(Into::into).collect());
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
