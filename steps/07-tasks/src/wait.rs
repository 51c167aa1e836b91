// ANCHOR: await
//! Awaiting a future: `future.await` makes a [`Wait`], one per awaiter.

use std::future::IntoFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use crate::cancel::awaited_by_current_task;
use crate::future::Waiter;
use crate::{Error, Future};

/// `future.await` makes a [`Wait`], as Python's `await future` calls `future.__await__()`: one
/// per awaiter, so any number of tasks can await the same future, each woken with the outcome.
impl<T: Clone + 'static> IntoFuture for Future<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Wait<T>;

    fn into_future(self) -> Wait<T> {
        Wait {
            future: self,
            awaiter: None,
        }
    }
}

/// `(&future).await`: the same, for a future that the awaiter keeps.
impl<T: Clone + 'static> IntoFuture for &Future<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Wait<T>;

    fn into_future(self) -> Wait<T> {
        self.clone().into_future()
    }
}
// ANCHOR_END: await

// ANCHOR: wait
/// One awaiter of a [`Future`]: ready with the future's outcome once it is done.
///
/// Until then the future keeps this awaiter's waker, the latest one it was polled with
/// (a future may be polled with a new waker, and only the latest must be woken); a `Wait`
/// dropped before the outcome (its task cancelled, a race lost) takes its waker back, and its
/// task no longer awaits the future.
pub struct Wait<T> {
    future: Future<T>,
    /// Once it has waited: this awaiter's number among the future's awaiters, and what tells
    /// its task that it still awaits the future (see `cancel.rs`).
    awaiter: Option<(u64, Rc<()>)>,
}

impl<T: 'static> Wait<T> {
    /// Ready once the future is done; until then its waker is with the future, and the
    /// awaiting task knows to call `cancel` if it is cancelled itself.
    pub(crate) fn poll_done(
        &mut self,
        cx: &Context<'_>,
        cancel: impl FnOnce() + 'static,
    ) -> Poll<()> {
        if self.future.done() {
            return Poll::Ready(());
        }
        static AWAITERS: AtomicU64 = AtomicU64::new(0);
        let first_wait = self.awaiter.is_none();
        let (id, alive) = self
            .awaiter
            .get_or_insert_with(|| (AWAITERS.fetch_add(1, Ordering::Relaxed), Rc::new(())));
        let mut waiters = self.future.waiters();
        match waiters.iter_mut().find_map(|waiter| waiter.waker_of(*id)) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => waiters.push(Waiter::Awaiter(*id, cx.waker().clone())),
        }
        drop(waiters);
        if first_wait {
            awaited_by_current_task(alive, cancel);
        }
        Poll::Pending
    }
}
// ANCHOR_END: wait

// ANCHOR: wait_poll
impl<T: Clone + 'static> std::future::Future for Wait<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let future = this.future.clone();
        ready!(this.poll_done(cx, move || {
            future.cancel();
        }));
        Poll::Ready(this.future.result())
    }
}
// ANCHOR_END: wait_poll

// ANCHOR: drop
impl<T> Drop for Wait<T> {
    fn drop(&mut self) {
        if let Some((id, _)) = &self.awaiter {
            let mut waiters = self.future.waiters();
            let gone = waiters
                .iter_mut()
                .position(|waiter| waiter.waker_of(*id).is_some());
            // The waker is dropped after the borrow, as any value that may run code when dropped.
            let gone = gone.map(|index| waiters.remove(index));
            drop(waiters);
            drop(gone);
        }
    }
}
// ANCHOR_END: drop
