//! Cancellation's bookkeeping: what the task being stepped now awaits, so that cancelling the
//! task cancels that too (asyncio's `_fut_waiter`).

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Waker;

use crate::task::AnyTask;

/// Runs `step` with `task` as the current task: one step of it.
pub(crate) fn as_current_task<R>(task: Rc<dyn AnyTask>, step: impl FnOnce() -> R) -> R {
    let outer = CURRENT_TASK.replace(Some(task));
    let result = step();
    CURRENT_TASK.set(outer);
    result
}

/// Tells the task being stepped, if `waker` is its own, that it now awaits something that
/// `cancel` cancels. A future polled by some other waker (inside another executor, or a
/// combinator that wraps wakers) has no task to tell: cancelling drops it all the same.
pub(crate) fn awaited_by_current_task(waker: &Waker, cancel: impl FnOnce() + 'static) {
    CURRENT_TASK.with_borrow(|task| {
        if let Some(task) = task.as_ref().filter(|task| task.waker().will_wake(waker)) {
            task.awaits(Box::new(cancel));
        }
    });
}

thread_local! {
    /// The task being stepped on this thread, if any (asyncio's `current_task()`).
    static CURRENT_TASK: RefCell<Option<Rc<dyn AnyTask>>> = const { RefCell::new(None) };
}
