//! kqueue, the selector of macOS and the BSDs: the kernel keeps the list of what is watched.

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
