//! `select(2)`, the talk's selector: the one to read first.

use super::*;

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
