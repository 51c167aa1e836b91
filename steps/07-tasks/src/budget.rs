//! Two speed rules of tokio's, not asyncio's: what keeps one busy task from holding the loop,
//! and the loop from asking the OS for nothing. "How fast is it?" tells their story; skip them on
//! a first reading.

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use crate::task::AnyTask;
use crate::{EventLoop, Ready, get_running_loop};

/// At most how many iterations in a row skip the selector while work is ready (tokio's 61).
const IO_INTERVAL: u32 = 61;

impl EventLoop {
    /// Whether this iteration asks the selector. asyncio's loop always does; tokio's rule is to
    /// skip it while nothing but task steps is ready, up to `IO_INTERVAL` iterations in a row.
    /// A task woken by a socket steps in the iteration after; asking the OS in between finds
    /// nothing new, or that socket, not yet read.
    pub(crate) fn selector_is_due(&self) -> bool {
        let ready = self.inner.ready.borrow().len();
        let only_tasks = ready > 0 && ready == self.inner.steps_queued.get();
        let only_tasks = only_tasks && !self.inner.stopping.get();
        let skipped = self.inner.io_skipped.get();
        if only_tasks && skipped < IO_INTERVAL {
            self.inner.io_skipped.set(skipped + 1);
            return false;
        }
        self.inner.io_skipped.set(0);
        true
    }

    /// `call_soon` for `task`'s next step, counted among the steps in the ready queue until it
    /// runs.
    pub(crate) fn call_soon_step(&self, task: Rc<dyn AnyTask>) {
        self.check_closed();
        let steps = &self.inner.steps_queued;
        steps.set(steps.get() + 1);
        self.inner.ready.borrow_mut().push_back(Ready::Step(task));
    }

    /// Takes the oldest entry off the ready queue, and out of the count if it is a step.
    pub(crate) fn pop_ready(&self) -> Option<Ready> {
        let ready = self.inner.ready.borrow_mut().pop_front()?;
        if let Ready::Step(_) = ready {
            let steps = &self.inner.steps_queued;
            steps.set(steps.get() - 1);
        }
        Some(ready)
    }

    /// Makes the next iteration ask the selector, even if only task steps are ready then: a
    /// task that spent its budget yields so that the others' sockets are heard, which they
    /// would not be if the loop went on skipping the selector (tokio defers such a task until
    /// its I/O driver has been polled, to the same end).
    pub(crate) fn ask_selector_next(&self) {
        self.inner.io_skipped.set(IO_INTERVAL);
    }
}

/// Lets the other ready tasks step, and the selector be asked, before this task steps again
/// (tokio's `yield_now`). `sleep(Duration::ZERO)` also lets the others step, but the loop may
/// skip the selector then, while only task steps are ready; after `yield_now` it never does, so
/// a task that yields in a loop lets every socket be heard at each turn, at the price of one
/// system call per yield.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            return Poll::Ready(());
        }
        if let Ok(event_loop) = get_running_loop() {
            event_loop.ask_selector_next();
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// How many socket operations one step of a task may make (tokio's number).
const STEP_BUDGET: u32 = 128;

/// Takes one operation from the budget of the task being stepped; `false` when none is left.
///
/// A task whose sockets are always ready (a relay between two fast peers) would otherwise
/// never return `Pending`, and the whole loop would wait for it: every other client, every
/// timer. With a budget, such a task yields after a bounded amount of work, as tokio's do;
/// asyncio has no budget, and its streams yield at each read instead. Outside a task there is
/// no budget.
pub(crate) fn consume_budget() -> bool {
    BUDGET.with(|budget| match budget.get() {
        Some(0) => false,
        Some(left) => {
            budget.set(Some(left - 1));
            true
        }
        None => true,
    })
}

/// Gives back the unit that an operation which found nothing to do took: a budget counts work
/// done, as tokio's does (`RestoreOnPending`).
pub(crate) fn refund_budget() {
    BUDGET.with(|budget| {
        if let Some(left) = budget.get() {
            budget.set(Some(left + 1));
        }
    });
}

/// Runs `step` with a fresh budget: one step of a task.
pub(crate) fn with_budget<R>(step: impl FnOnce() -> R) -> R {
    let outer = BUDGET.replace(Some(STEP_BUDGET));
    let result = step();
    BUDGET.set(outer);
    result
}

thread_local! {
    /// What is left of the budget of the task being stepped, if any.
    static BUDGET: Cell<Option<u32>> = const { Cell::new(None) };
}
