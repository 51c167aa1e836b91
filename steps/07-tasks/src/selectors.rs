// ANCHOR: head
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
// ANCHOR_END: head

// ANCHOR: interface
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
// ANCHOR_END: interface

// ANCHOR: rest
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

#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
mod kqueue;
mod poll;
mod select;

#[cfg(any(target_os = "linux", target_os = "android"))]
pub use epoll::EpollSelector;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
pub use kqueue::KqueueSelector;
pub use poll::PollSelector;
pub use select::SelectSelector;

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
// ANCHOR_END: rest
