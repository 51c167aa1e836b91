//! Cancellation's bookkeeping: what a task awaits now, so that cancelling the task cancels
//! that too (asyncio's `_fut_waiter`).
//!
//! asyncio's task awaits one future at a time. A Rust task may await several at once (a
//! `select`, a `join_all`), so it keeps one entry per awaiter ([`Wait`](crate::Wait)) that went
//! pending while it stepped, whatever waker it was polled with, and for as long as that awaiter
//! lives: an awaiter dropped (a race lost and left behind) is no longer awaited, and cancelling
//! the task leaves its future alone.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use crate::task::AnyTask;

/// Something a task awaits: how to cancel it, while the awaiter that holds `alive` lives.
pub(crate) struct Awaited {
    alive: Weak<()>,
    cancel: Box<dyn FnOnce()>,
}

impl Awaited {
    /// Whether its awaiter still lives, so that the task still awaits it.
    pub(crate) fn is_awaited(&self) -> bool {
        self.alive.strong_count() > 0
    }

    /// Cancels what is awaited, if it still is.
    pub(crate) fn cancel(self) {
        if self.is_awaited() {
            (self.cancel)();
        }
    }
}

/// Runs `step` with `task` as the current task: one step of it.
pub(crate) fn as_current_task<R>(task: Rc<dyn AnyTask>, step: impl FnOnce() -> R) -> R {
    let outer = CURRENT_TASK.replace(Some(task));
    let result = step();
    CURRENT_TASK.set(outer);
    result
}

/// Tells the task being stepped, if any, that it now awaits something that `cancel` cancels,
/// for as long as `alive` lives. Outside a task, nobody is told: nothing would cancel it.
pub(crate) fn awaited_by_current_task(alive: &Rc<()>, cancel: impl FnOnce() + 'static) {
    CURRENT_TASK.with_borrow(|task| {
        if let Some(task) = task {
            task.awaits(Awaited {
                alive: Rc::downgrade(alive),
                cancel: Box::new(cancel),
            });
        }
    });
}

thread_local! {
    /// The task being stepped on this thread, if any (asyncio's `current_task()`).
    static CURRENT_TASK: RefCell<Option<Rc<dyn AnyTask>>> = const { RefCell::new(None) };
}
