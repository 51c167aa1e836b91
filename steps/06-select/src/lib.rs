//! # Step 6: I/O readiness with select
//!
//! Until now only a timer could bring the loop new work. Here the loop also watches file
//! descriptors: [`EventLoop::add_reader`] and [`EventLoop::add_writer`] register a callback
//! for "this socket (or pipe) can be read / written without blocking", and each iteration
//! waits in one call to its [`selector`](selectors) for whichever comes first, a ready
//! descriptor or the next timer: `select(2)`, the talk's, or a faster one. Sockets are
//! non-blocking, so no call can stall the loop: a read that would block fails with
//! `WouldBlock`, and we wait for readiness instead.
//!
//! The names are asyncio's on purpose: Python's `loop.call_soon(foo)` is
//! `event_loop.call_soon(foo)` here (`loop` is a keyword in Rust).

use std::any::type_name_of_val;
use std::cell::{Cell, RefCell, RefMut};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, connect, setsockopt, socket,
    sockopt,
};

pub mod selectors;

use selectors::{DefaultSelector, Events, Selector};

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
    /// Callbacks ready to run, oldest first (asyncio's `_ready`).
    ready: RefCell<VecDeque<Handle>>,
    /// Timers not yet due, earliest deadline on top (asyncio's `_scheduled`).
    scheduled: RefCell<BinaryHeap<Timer>>,
    /// How many timers were ever scheduled: the tie-breaker between equal deadlines.
    sequence: Cell<u64>,
    /// How many timers in the heap are cancelled, shared with every `TimerHandle`.
    cancelled_timers: Rc<Cell<usize>>,
    /// Descriptors watched for reading, and their callbacks.
    readers: RefCell<BTreeMap<RawFd, Watch>>,
    /// Descriptors watched for writing, and their callbacks.
    writers: RefCell<BTreeMap<RawFd, Watch>>,
    /// What waits for the watched descriptors (asyncio's `_selector`); `None` once closed.
    selector: RefCell<Option<Box<dyn Selector>>>,
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

    /// Whether the loop is running now.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the loop for good: drops every callback still queued, scheduled or watching a
    /// descriptor, with what it captured, and closes the selector, with the descriptors it kept
    /// open.
    ///
    /// Callbacks capture the loop, so a loop with queued work keeps itself alive until it is
    /// closed. A closed loop refuses to run and to take new work; closing twice does nothing.
    pub fn close(&self) {
        assert!(!self.is_running(), "Cannot close a running event loop");
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

impl Default for EventLoop {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<EventLoop running={} closed={} ready={} timers={} readers={} writers={}>",
            self.is_running(),
            self.is_closed(),
            self.inner.ready.borrow().len(),
            self.inner.scheduled.borrow().len(),
            self.inner.readers.borrow().len(),
            self.inner.writers.borrow().len(),
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

/// Starts connecting a non-blocking TCP socket to `addr` and returns before the connection
/// is made (`connect` answers `EINPROGRESS`). The socket becomes writable when the attempt is
/// over; then [`TcpStream::take_error`] tells whether it succeeded.
pub fn connect_nonblocking(addr: SocketAddr) -> io::Result<TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let socket = socket(family, SockType::Stream, SockFlag::empty(), None)?;
    // Like std's sockets (and asyncio's), ours are not inherited by child processes.
    fcntl(&socket, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    let stream = TcpStream::from(socket);
    stream.set_nonblocking(true)?;
    match connect(stream.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(stream),
        Err(error) => Err(error.into()),
    }
}

/// Listens on `addr` with room for 1024 connections not yet accepted. std's listeners have
/// room for 128: when more clients connect at once, the others' handshakes are dropped and
/// retried a second later. A busy address says which one it is, and how to get a free one.
pub fn listen(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut error = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    for addr in addr.to_socket_addrs()? {
        match listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(failed) if failed.kind() == io::ErrorKind::AddrInUse => {
                let why = format!("{addr} is already in use (port 0 asks for a free one)");
                error = io::Error::new(failed.kind(), why);
            }
            Err(failed) => error = failed,
        }
    }
    Err(error)
}

fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let socket = socket(family, SockType::Stream, SockFlag::empty(), None)?;
    fcntl(&socket, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    // As std does: a port whose last connections are closing can be listened on again at once.
    setsockopt(&socket, sockopt::ReuseAddr, &true)?;
    bind(socket.as_raw_fd(), &SockaddrStorage::from(addr))?;
    nix::sys::socket::listen(&socket, Backlog::new(1024)?)?;
    Ok(TcpListener::from(socket))
}

/// The descriptors of a map of watches, as the trace shows them: `[3,5]`.
struct Fds<'a>(&'a RefCell<BTreeMap<RawFd, Watch>>);

impl fmt::Display for Fds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fds: Vec<String> = self.0.borrow().keys().map(RawFd::to_string).collect();
        write!(f, "[{}]", fds.join(","))
    }
}

/// What the selector answered, as the trace shows it: `read=[5] write=[]`, or `timeout`.
struct Answer<'a>(&'a [(RawFd, Events)]);

impl fmt::Display for Answer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("timeout");
        }
        let fds = |read: bool| {
            let ready = self
                .0
                .iter()
                .filter(|(_, events)| if read { events.read } else { events.write });
            ready
                .map(|(fd, _)| fd.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "read=[{}] write=[{}]", fds(true), fds(false))
    }
}

/// A direction as the trace shows it, in asyncio's names: `reader` or `writer`.
struct Direction(Events);

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.read { "reader" } else { "writer" })
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
