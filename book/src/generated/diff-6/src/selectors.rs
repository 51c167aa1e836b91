//! Selectors: one small interface in front of the operating system's ways to wait for many
//! descriptors at once, after Python's `selectors` module, which asyncio's loop is built on.
//!
//! A [`Selector`] keeps a set of registered descriptors, each with the [`Events`] it is
//! watched for, and [`Selector::select`] waits until some are ready or a timeout passes. The
//! backends differ in how much each wait costs:
//!
//! - [`SelectSelector`], `select(2)`: the kernel is handed two bit sets on every call and scans
//!   them, so a wait costs O(highest descriptor), and no descriptor may be 1024 or more.
//! - [`PollSelector`], `poll(2)`: an array of the registered descriptors on every call: O(n),
//!   with no limit on their numbers. Every Unix has it.
//! - `EpollSelector` (Linux) and `KqueueSelector` (macOS, the BSDs): the kernel keeps the
//!   interest list between calls and hands back only the descriptors that are ready, so a wait
//!   costs O(ready), whatever the number of idle ones.
//!
//! [`DefaultSelector`] is the best one the system has, as in Python. All of them are
//! level-triggered: a descriptor is reported as long as it is ready, not once per change.

use std::collections::BTreeMap;
use std::io;
use std::ops::BitOr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::{TimeVal, TimeValLike};

/// What a descriptor is watched for, or ready for: reading, writing, or both (Python's
/// `EVENT_READ` and `EVENT_WRITE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// A read would not block: bytes have arrived, a connection is waiting, or the peer closed.
    pub read: bool,
    /// A write would not block: there is room to send, or a connection attempt is over.
    pub write: bool,
}

impl Events {
    /// Reading only.
    pub const READ: Events = Events {
        read: true,
        write: false,
    };
    /// Writing only.
    pub const WRITE: Events = Events {
        read: false,
        write: true,
    };

    /// Neither: nothing left to watch for.
    pub fn is_empty(self) -> bool {
        !self.read && !self.write
    }
}

impl BitOr for Events {
    type Output = Events;

    fn bitor(self, other: Events) -> Events {
        Events {
            read: self.read || other.read,
            write: self.write || other.write,
        }
    }
}

/// Waits for any of many descriptors to become ready (Python's `BaseSelector`).
///
/// A selector keeps each registered source open until it is unregistered, so that its
/// descriptor cannot be closed, and its number reused, while the kernel watches it.
pub trait Selector {
    /// Starts watching `source`'s descriptor for `events`; an error if it is registered already.
    fn register(&mut self, source: Rc<dyn AsFd>, events: Events) -> io::Result<()>;
    /// Changes what a registered descriptor is watched for.
    fn modify(&mut self, fd: RawFd, events: Events) -> io::Result<()>;
    /// Stops watching `fd`, and hands its source back.
    fn unregister(&mut self, fd: RawFd) -> io::Result<Rc<dyn AsFd>>;
    /// Waits until a registered descriptor is ready, or `timeout` has passed (`None`: no
    /// limit), and returns the ready ones with what they are ready for. A signal may end the
    /// wait early, with nothing ready.
    fn select(&mut self, timeout: Option<Duration>) -> io::Result<Vec<(RawFd, Events)>>;
    /// The backend's name: `select`, `poll`, `epoll` or `kqueue`.
    fn name(&self) -> &'static str;
}

/// The best selector this system has: epoll on Linux, kqueue on macOS and the BSDs, poll
/// elsewhere (Python's `DefaultSelector`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub type DefaultSelector = EpollSelector;
/// The best selector this system has: epoll on Linux, kqueue on macOS and the BSDs, poll
/// elsewhere (Python's `DefaultSelector`).
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
pub type DefaultSelector = KqueueSelector;
/// The best selector this system has: epoll on Linux, kqueue on macOS and the BSDs, poll
/// elsewhere (Python's `DefaultSelector`).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
pub type DefaultSelector = PollSelector;

/// The names of the selectors this system has, the default one first.
pub fn available() -> Vec<&'static str> {
    let mut names = vec![DefaultSelector::NAME];
    for name in [PollSelector::NAME, SelectSelector::NAME] {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// A new selector of the kind named, for a `--selector` option.
pub fn by_name(name: &str) -> io::Result<Box<dyn Selector>> {
    Ok(match name {
        "select" => Box::new(SelectSelector::new()?),
        "poll" => Box::new(PollSelector::new()?),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        "epoll" => Box::new(EpollSelector::new()?),
        #[cfg(any(
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "dragonfly"
        ))]
        "kqueue" => Box::new(KqueueSelector::new()?),
        _ => {
            let known = ["select", "poll", "epoll", "kqueue"].contains(&name);
            let why = if known {
                "is not on this system"
            } else {
                "is unknown"
            };
            let here = available().join(", ");
            return Err(invalid(format!(
                "the selector {name:?} {why}; here: {here}"
            )));
        }
    })
}

/// What every backend keeps about each registered descriptor: its source and its events
/// (Python's `_fd_to_key`). The checks, and their errors, are the same for all of them.
#[derive(Default)]
struct Keys(BTreeMap<RawFd, (Rc<dyn AsFd>, Events)>);

impl Keys {
    fn register(&mut self, source: Rc<dyn AsFd>, events: Events) -> io::Result<RawFd> {
        let fd = source.as_fd().as_raw_fd();
        if events.is_empty() {
            return Err(invalid(format!("descriptor {fd}: no events to watch for")));
        }
        if self.0.contains_key(&fd) {
            return Err(invalid(format!("descriptor {fd} is already registered")));
        }
        self.0.insert(fd, (source, events));
        Ok(fd)
    }

    fn modify(&mut self, fd: RawFd, events: Events) -> io::Result<&Rc<dyn AsFd>> {
        if events.is_empty() {
            return Err(invalid(format!("descriptor {fd}: no events to watch for")));
        }
        let (source, watched) = self.0.get_mut(&fd).ok_or_else(|| not_registered(fd))?;
        *watched = events;
        Ok(source)
    }

    fn unregister(&mut self, fd: RawFd) -> io::Result<Rc<dyn AsFd>> {
        let (source, _) = self.0.remove(&fd).ok_or_else(|| not_registered(fd))?;
        Ok(source)
    }

    /// What `fd` is ready for, of what it is watched for: asyncio's rule that an error or a
    /// hang-up counts as both, so that whoever waits finds out with their next read or write.
    fn ready(&self, fd: RawFd, readable: bool, writable: bool) -> Option<(RawFd, Events)> {
        let (_, watched) = self.0.get(&fd)?;
        let ready = Events {
            read: readable && watched.read,
            write: writable && watched.write,
        };
        (!ready.is_empty()).then_some((fd, ready))
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn not_registered(fd: RawFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("descriptor {fd} is not registered"),
    )
}

/// The most events epoll and kqueue hand back from one wait (tokio's number). More may be
/// ready: level-triggered, they are handed back by the next wait.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
const MAX_EVENTS: usize = 1024;

/// Like asyncio, never wait more than a day at once: some systems refuse longer timeouts.
fn capped(timeout: Duration) -> Duration {
    timeout.min(Duration::from_secs(86_400))
}

/// A timeout in whole milliseconds, rounded up so that the loop never wakes just before a
/// deadline (poll and epoll count in milliseconds).
fn milliseconds(timeout: Option<Duration>) -> PollTimeout {
    timeout.map_or(PollTimeout::NONE, |timeout| {
        let millis = capped(timeout).as_nanos().div_ceil(1_000_000);
        PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
    })
}

/// `select(2)`, the talk's: two bit sets of descriptors, handed to the kernel on every call.
///
/// Simple and everywhere, but an `fd_set` has room for `FD_SETSIZE` descriptors (1024), and
/// setting a higher one is undefined behaviour in C; such a descriptor is refused when it is
/// registered. Every call costs a scan of the sets up to the highest descriptor, so the
/// highest one is passed (`nfds`): the kernel stops there.
#[derive(Default)]
pub struct SelectSelector {
    keys: Keys,
}

impl SelectSelector {
    /// The name `--selector` knows it by.
    pub const NAME: &'static str = "select";

    /// A selector with nothing registered; it opens no descriptor of its own, and cannot fail
    /// (a `Result` all the same, as every selector's `new`).
    pub fn new() -> io::Result<Self> {
        Ok(Self::default())
    }
}

impl Selector for SelectSelector {
    fn register(&mut self, source: Rc<dyn AsFd>, events: Events) -> io::Result<()> {
        let fd = source.as_fd().as_raw_fd();
        if usize::try_from(fd).map_or(true, |fd| fd >= FD_SETSIZE) {
            return Err(invalid(format!(
                "descriptor {fd} is out of select's range (below {FD_SETSIZE}): \
                 use another selector, such as poll or the default one"
            )));
        }
        self.keys.register(source, events).map(drop)
    }

    fn modify(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        self.keys.modify(fd, events).map(drop)
    }

    fn unregister(&mut self, fd: RawFd) -> io::Result<Rc<dyn AsFd>> {
        self.keys.unregister(fd)
    }

    fn select(&mut self, timeout: Option<Duration>) -> io::Result<Vec<(RawFd, Events)>> {
        let (mut readable, mut writable) = (FdSet::new(), FdSet::new());
        for (source, events) in self.keys.0.values() {
            if events.read {
                readable.insert(source.as_fd());
            }
            if events.write {
                writable.insert(source.as_fd());
            }
        }
        let nfds = self
            .keys
            .0
            .keys()
            .next_back()
            .map_or(0, |highest| highest + 1);
        let mut timeout = timeout.map(|timeout| {
            let micros = capped(timeout).as_nanos().div_ceil(1000);
            TimeVal::microseconds(micros as i64)
        });
        match select(nfds, &mut readable, &mut writable, None, timeout.as_mut()) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        }
        let ready = self.keys.0.iter().filter_map(|(fd, (source, _))| {
            let fd_ready = |set: &FdSet| set.contains(source.as_fd());
            self.keys
                .ready(*fd, fd_ready(&readable), fd_ready(&writable))
        });
        Ok(ready.collect())
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }
}

/// `poll(2)`: an array of the registered descriptors, each with the events it is watched for,
/// handed to the kernel on every call. No limit on descriptor numbers, and on every Unix; but
/// still O(n): the kernel looks at every entry of the array, ready or not.
#[derive(Default)]
pub struct PollSelector {
    keys: Keys,
}

impl PollSelector {
    /// The name `--selector` knows it by.
    pub const NAME: &'static str = "poll";

    /// A selector with nothing registered; it opens no descriptor of its own, and cannot fail
    /// (a `Result` all the same, as every selector's `new`).
    pub fn new() -> io::Result<Self> {
        Ok(Self::default())
    }
}

impl Selector for PollSelector {
    fn register(&mut self, source: Rc<dyn AsFd>, events: Events) -> io::Result<()> {
        self.keys.register(source, events).map(drop)
    }

    fn modify(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        self.keys.modify(fd, events).map(drop)
    }

    fn unregister(&mut self, fd: RawFd) -> io::Result<Rc<dyn AsFd>> {
        self.keys.unregister(fd)
    }

    fn select(&mut self, timeout: Option<Duration>) -> io::Result<Vec<(RawFd, Events)>> {
        let mut fds: Vec<PollFd> = self
            .keys
            .0
            .values()
            .map(|(source, events)| {
                let mut flags = PollFlags::empty();
                flags.set(PollFlags::POLLIN, events.read);
                flags.set(PollFlags::POLLOUT, events.write);
                PollFd::new(source.as_fd(), flags)
            })
            .collect();
        match poll(&mut fds, milliseconds(timeout)) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        }
        let ready = fds.iter().filter_map(|pollfd| {
            let revents = pollfd.revents().unwrap_or(PollFlags::empty());
            let trouble = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
            let readable = revents.intersects(PollFlags::POLLIN | trouble);
            let writable = revents.intersects(PollFlags::POLLOUT | trouble);
            let fd = pollfd.as_fd().as_raw_fd();
            self.keys.ready(fd, readable, writable)
        });
        Ok(ready.collect())
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub use epoll::EpollSelector;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll {
    use super::*;
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};

    /// `epoll(7)`, Linux's: the kernel keeps the interest list (`epoll_ctl` changes it), and
    /// `epoll_wait` hands back only the descriptors that are ready. A wait costs O(ready), so
    /// ten thousand idle connections cost nothing while they are idle. Level-triggered, as
    /// Python's (no `EPOLLET`).
    pub struct EpollSelector {
        keys: Keys,
        epoll: Epoll,
        /// Where the kernel writes the ready events, made once: at most [`MAX_EVENTS`] a wait.
        events: Vec<EpollEvent>,
    }

    impl EpollSelector {
        /// The name `--selector` knows it by.
        pub const NAME: &'static str = "epoll";

        /// A new epoll instance: a descriptor of its own, closed on `exec`.
        pub fn new() -> io::Result<Self> {
            Ok(EpollSelector {
                keys: Keys::default(),
                epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
                events: vec![EpollEvent::empty(); MAX_EVENTS],
            })
        }
    }

    /// The kernel's event for `events`; the descriptor comes back with it, as its data.
    fn event(fd: RawFd, events: Events) -> EpollEvent {
        let mut flags = EpollFlags::empty();
        flags.set(EpollFlags::EPOLLIN, events.read);
        flags.set(EpollFlags::EPOLLOUT, events.write);
        EpollEvent::new(flags, fd as u64)
    }

    impl Selector for EpollSelector {
        fn register(&mut self, source: Rc<dyn AsFd>, events: Events) -> io::Result<()> {
            let fd = self.keys.register(source.clone(), events)?;
            let added = self.epoll.add(source.as_fd(), event(fd, events));
            if added.is_err() {
                self.keys.unregister(fd)?;
            }
            Ok(added?)
        }

        fn modify(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
            let source = self.keys.modify(fd, events)?;
            Ok(self.epoll.modify(source.as_fd(), &mut event(fd, events))?)
        }

        fn unregister(&mut self, fd: RawFd) -> io::Result<Rc<dyn AsFd>> {
            let source = self.keys.unregister(fd)?;
            self.epoll.delete(source.as_fd())?;
            Ok(source)
        }

        fn select(&mut self, timeout: Option<Duration>) -> io::Result<Vec<(RawFd, Events)>> {
            let count = match self.epoll.wait(&mut self.events, milliseconds(timeout)) {
                Ok(count) => count,
                Err(Errno::EINTR) => return Ok(Vec::new()),
                Err(error) => return Err(error.into()),
            };
            let ready = self.events[..count].iter().filter_map(|event| {
                let flags = event.events();
                let trouble = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP;
                let readable = flags.intersects(EpollFlags::EPOLLIN | trouble);
                let writable = flags.intersects(EpollFlags::EPOLLOUT | trouble);
                self.keys.ready(event.data() as RawFd, readable, writable)
            });
            Ok(ready.collect())
        }

        fn name(&self) -> &'static str {
            Self::NAME
        }
    }
}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
pub use kqueue::KqueueSelector;

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
mod kqueue {
    use super::*;
    use nix::sys::event::{EvFlags, EventFilter, FilterFlag, KEvent, Kqueue};
    use nix::sys::time::TimeSpec;

    /// `kqueue(2)`, macOS's and the BSDs': the kernel keeps the interest list, one entry per
    /// descriptor and filter (reading, writing), changed and waited on with `kevent`, which
    /// hands back only what is ready: O(ready), as epoll. Level-triggered (no `EV_CLEAR`).
    pub struct KqueueSelector {
        keys: Keys,
        kqueue: Kqueue,
        /// Where the kernel writes the ready events, made once: at most [`MAX_EVENTS`] a wait.
        events: Vec<KEvent>,
    }

    impl KqueueSelector {
        /// The name `--selector` knows it by.
        pub const NAME: &'static str = "kqueue";

        /// A new kqueue: a descriptor of its own, which a child process never inherits.
        pub fn new() -> io::Result<Self> {
            let empty = KEvent::new(
                0,
                EventFilter::EVFILT_READ,
                EvFlags::empty(),
                FilterFlag::empty(),
                0,
                0,
            );
            Ok(KqueueSelector {
                keys: Keys::default(),
                kqueue: Kqueue::new()?,
                events: vec![empty; MAX_EVENTS],
            })
        }

        /// Adds or deletes the filters for `fd` that go from `old` to `new`.
        fn change(&self, fd: RawFd, old: Events, new: Events) -> io::Result<()> {
            let change =
                |filter, flags| KEvent::new(fd as usize, filter, flags, FilterFlag::empty(), 0, 0);
            let mut changes = Vec::new();
            for (filter, was, will) in [
                (EventFilter::EVFILT_READ, old.read, new.read),
                (EventFilter::EVFILT_WRITE, old.write, new.write),
            ] {
                if was != will {
                    let flags = if will {
                        EvFlags::EV_ADD
                    } else {
                        EvFlags::EV_DELETE
                    };
                    changes.push(change(filter, flags));
                }
            }
            self.kqueue.kevent(&changes, &mut [], None)?;
            Ok(())
        }
    }

    impl Selector for KqueueSelector {
        fn register(&mut self, source: Rc<dyn AsFd>, events: Events) -> io::Result<()> {
            let fd = self.keys.register(source, events)?;
            let added = self.change(fd, Events::default(), events);
            if added.is_err() {
                self.keys.unregister(fd)?;
            }
            added
        }

        fn modify(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
            let old = self
                .keys
                .0
                .get(&fd)
                .map(|(_, old)| *old)
                .unwrap_or_default();
            self.keys.modify(fd, events)?;
            self.change(fd, old, events)
        }

        fn unregister(&mut self, fd: RawFd) -> io::Result<Rc<dyn AsFd>> {
            let old = self
                .keys
                .0
                .get(&fd)
                .map(|(_, old)| *old)
                .unwrap_or_default();
            let source = self.keys.unregister(fd)?;
            self.change(fd, old, Events::default())?;
            Ok(source)
        }

        fn select(&mut self, timeout: Option<Duration>) -> io::Result<Vec<(RawFd, Events)>> {
            let timeout = timeout.map(|timeout| *TimeSpec::from(capped(timeout)).as_ref());
            let count = match self.kqueue.kevent(&[], &mut self.events, timeout) {
                Ok(count) => count,
                Err(Errno::EINTR) => return Ok(Vec::new()),
                Err(error) => return Err(error.into()),
            };
            // One event per descriptor and filter: merge a descriptor's two into one answer.
            let mut ready: BTreeMap<RawFd, (bool, bool)> = BTreeMap::new();
            for event in &self.events[..count] {
                let entry = ready.entry(event.ident() as RawFd).or_default();
                match event.filter() {
                    Ok(EventFilter::EVFILT_READ) => entry.0 = true,
                    Ok(EventFilter::EVFILT_WRITE) => entry.1 = true,
                    _ => {}
                }
            }
            let ready = ready
                .into_iter()
                .filter_map(|(fd, (readable, writable))| self.keys.ready(fd, readable, writable));
            Ok(ready.collect())
        }

        fn name(&self) -> &'static str {
            Self::NAME
        }
    }
}
