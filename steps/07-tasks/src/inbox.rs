//! The inbox: where wakers leave the tasks to step, from any thread.
//!
//! A `Waker` must be `Send` and `Sync`: Rust lets any thread wake a task (a thread pool that
//! finished a blocking job, a timer thread), and our tasks and loop are `Rc`, tied to one
//! thread. So a task's waker holds only the task's number and this inbox, behind a mutex; the
//! loop takes the numbers out at the start of each iteration. A waker called from another
//! thread also wakes a loop asleep in its selector, with the self-pipe trick. asyncio's
//! `call_soon_threadsafe` does the same, and the same way.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};
use std::thread::{self, ThreadId};

use crate::lifecycle::with_running_loop;
use crate::{EventLoop, Name};

/// Where wakers leave the numbers of the tasks to step; the loop drains it at the start of
/// each iteration and schedules each task's step with `call_soon` (asyncio's
/// `call_soon_threadsafe`). A waker called from another thread also writes a byte to a socket
/// that the loop reads, so that a loop asleep in `select` wakes up: the self-pipe trick (a
/// socket pair, as asyncio's).
pub(crate) struct Inbox {
    woken: Mutex<Vec<u64>>,
    /// The self-pipe's write end; `None` once the loop is closed.
    wake_up: Mutex<Option<UnixStream>>,
    loop_thread: ThreadId,
}

impl Inbox {
    pub(crate) fn new(event_loop: &EventLoop) -> Arc<Self> {
        let (read_end, write_end) = UnixStream::pair().expect("a socket pair to wake the loop");
        for end in [&read_end, &write_end] {
            end.set_nonblocking(true)
                .expect("a non-blocking socket pair");
        }
        let read_end = Rc::new(read_end);
        let drain = read_end.clone();
        event_loop
            .add_reader(read_end, move || {
                while matches!((&*drain).read(&mut [0; 64]), Ok(1..)) {}
            })
            .expect("the loop's first descriptors fit in select");
        Arc::new(Inbox {
            woken: Mutex::new(Vec::new()),
            wake_up: Mutex::new(Some(write_end)),
            loop_thread: thread::current().id(),
        })
    }

    fn push(&self, task: u64) {
        lock(&self.woken).push(task);
        if thread::current().id() != self.loop_thread {
            if let Some(mut wake_up) = lock(&self.wake_up).as_ref() {
                // A full socket already holds a wake-up; nothing is lost when this write fails.
                let _ = wake_up.write(&[1]);
            }
        }
    }

    /// A waker for the task numbered `task`.
    pub(crate) fn waker(self: &Arc<Self>, task: u64) -> Waker {
        Waker::from(Arc::new(TaskWaker {
            task,
            inbox: Arc::clone(self),
        }))
    }

    /// The numbers of the tasks woken since the last call.
    pub(crate) fn take_woken(&self) -> Vec<u64> {
        std::mem::take(&mut *lock(&self.woken))
    }

    /// Closes the write end; the loop's `close` closes the read end with the other readers.
    pub(crate) fn close(&self) {
        let write_end = lock(&self.wake_up).take();
        drop(write_end);
    }
}

/// Locks a mutex that a panicking waker may have poisoned; a list of numbers is never left
/// half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a task's `Waker` holds. A `Waker` must be `Send` and `Sync`, so it cannot hold the
/// task or the loop (both `Rc`); it holds the task's number and the loop's [`Inbox`].
struct TaskWaker {
    task: u64,
    inbox: Arc<Inbox>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        with_running_loop(|event_loop| {
            let task = self.task;
            match event_loop.inner.current.get() {
                Some(by) => event_loop.trace(format_args!("wake Task-{task} by {}", Name(by))),
                None => event_loop.trace(format_args!("wake Task-{task}")),
            }
        });
        self.inbox.push(self.task);
    }
}
