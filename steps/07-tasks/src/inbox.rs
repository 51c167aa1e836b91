//! The inbox: where wakers leave the tasks to step, from any thread.
//!
//! A `Waker` must be `Send` and `Sync`: Rust lets any thread wake a task (a thread pool that
//! finished a blocking job, a timer thread), and our tasks and loop are `Rc`, tied to one
//! thread. So a task's waker holds only the task's id and this inbox. Called on the loop's
//! thread, it finds the loop in a table of that thread's loops and schedules the task's step
//! at once, in order with the callbacks scheduled around it, as asyncio's `Task.__wakeup` is
//! one of them. Called from another thread, it leaves the id in the inbox, behind a mutex,
//! and wakes a loop asleep in its selector with the self-pipe trick; the loop takes the ids
//! out at the start of each iteration. asyncio's `call_soon_threadsafe` does the same, and the
//! same way.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};

use crate::{EventLoop, Inner, Name, TaskId};

/// Where wakers leave the ids of the tasks to step; the loop drains it at the start of
/// each iteration and schedules each task's step with `call_soon` (asyncio's
/// `call_soon_threadsafe`). A waker called from another thread also writes a byte to a socket
/// that the loop reads, so that a loop asleep in `select` wakes up: the self-pipe trick (a
/// socket pair, as asyncio's).
pub(crate) struct Inbox {
    woken: Mutex<Vec<TaskId>>,
    /// Whether `woken` may hold ids: the loop looks at it every iteration, and takes the lock
    /// only when it is set, since wakes from other threads are rare.
    pushed: AtomicBool,
    /// The self-pipe's write end; `None` once the loop is closed.
    wake_up: Mutex<Option<UnixStream>>,
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
        let inbox = Arc::new(Inbox {
            woken: Mutex::new(Vec::new()),
            pushed: AtomicBool::new(false),
            wake_up: Mutex::new(Some(write_end)),
        });
        LOOPS.with_borrow_mut(|loops| {
            loops.retain(|(_, event_loop)| event_loop.strong_count() > 0);
            loops.push((inbox.address(), Rc::downgrade(&event_loop.inner)));
        });
        inbox
    }

    /// Identifies the inbox in this thread's table of loops.
    fn address(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    /// The inbox's loop, if it runs on this thread and is not closed.
    fn event_loop(self: &Arc<Self>) -> Option<EventLoop> {
        let address = self.address();
        LOOPS.with_borrow(|loops| {
            let (_, event_loop) = loops.iter().find(|(inbox, _)| *inbox == address)?;
            event_loop.upgrade().map(|inner| EventLoop { inner })
        })
    }

    /// Leaves `task` for the loop, from another thread, and wakes the loop.
    fn push(&self, task: TaskId) {
        let mut woken = lock(&self.woken);
        woken.push(task);
        self.pushed.store(true, Ordering::Release);
        drop(woken);
        if let Some(mut wake_up) = lock(&self.wake_up).as_ref() {
            // A full socket already holds a wake-up; nothing is lost when this write fails.
            let _ = wake_up.write(&[1]);
        }
    }

    /// A waker for the task `task`.
    pub(crate) fn waker(self: &Arc<Self>, task: TaskId) -> Waker {
        Waker::from(Arc::new(TaskWaker {
            task,
            inbox: Arc::clone(self),
        }))
    }

    /// The ids of the tasks woken from other threads since the last call.
    pub(crate) fn take_woken(&self) -> Vec<TaskId> {
        if !self.pushed.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *lock(&self.woken))
    }

    /// Closes the write end (the loop's `close` closes the read end with the other readers),
    /// and takes the loop out of its thread's table: wakers of a closed loop's tasks do nothing.
    pub(crate) fn close(self: &Arc<Self>) {
        let write_end = lock(&self.wake_up).take();
        drop(write_end);
        let address = self.address();
        LOOPS.with_borrow_mut(|loops| loops.retain(|(inbox, _)| *inbox != address));
    }
}

thread_local! {
    /// This thread's loops that have an inbox, by the inbox's address: how a waker called on
    /// its loop's thread finds the loop.
    static LOOPS: RefCell<Vec<(usize, Weak<Inner>)>> = const { RefCell::new(Vec::new()) };
}

/// Locks a mutex that a panicking waker may have poisoned; a list of ids is never left
/// half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a task's `Waker` holds. A `Waker` must be `Send` and `Sync`, so it cannot hold the
/// task or the loop (both `Rc`); it holds the task's id and the loop's [`Inbox`].
struct TaskWaker {
    task: TaskId,
    inbox: Arc<Inbox>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let Some(event_loop) = self.inbox.event_loop() else {
            return self.inbox.push(self.task);
        };
        let task = self.task;
        match event_loop.inner.current.get() {
            Some(by) => event_loop.trace(format_args!("wake Task-{task} by {}", Name(by))),
            None => event_loop.trace(format_args!("wake Task-{task}")),
        }
        event_loop.wake_task(task);
    }
}
