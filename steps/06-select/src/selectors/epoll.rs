//! epoll, Linux's selector: the kernel keeps the list of what is watched.

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
