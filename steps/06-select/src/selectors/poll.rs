//! `poll(2)`: `select` without its limit on descriptor numbers.

use super::*;

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
