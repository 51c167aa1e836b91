//! Awaiting a task: `task.await` hands over its output, and `Future::from(task)` shares it.

use std::future::IntoFuture;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::{AnyTask, Task, TaskCore};
use crate::{Error, Future, Wait};
use std::rc::Rc;

/// `task.await`: the task's output, or why there is none ([`Error::Cancelled`],
/// [`Error::Panicked`]).
impl<T: 'static> IntoFuture for Task<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Join<T>;

    fn into_future(self) -> Join<T> {
        Join {
            wait: self.core.done_future().clone().into_future(),
            core: self.core,
        }
    }
}

/// Awaiting a [`Task`]: waits for it to be done, then takes its output.
pub struct Join<T> {
    core: Rc<TaskCore<T>>,
    wait: Wait<()>,
}

impl<T: 'static> std::future::Future for Join<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let task = this.core.clone();
        ready!(this.wait.poll_done(cx, move || {
            task.cancel();
        }));
        Poll::Ready(this.core.result().map(|()| this.core.take_output()))
    }
}

/// A task as a [`Future`] of its output, to share between awaiters or pass to
/// [`gather`](crate::gather). It is done as soon as the task is, as asyncio's task is its own
/// future; cancelling it cancels the task, and only the task can finish it.
impl<T: 'static> From<Task<T>> for Future<T> {
    fn from(task: Task<T>) -> Self {
        let core = task.core;
        let future = core.event_loop.create_future();
        let task = core.clone();
        future.become_task_future(move || task.cancel());
        match core.result() {
            Err(Error::NotReady) => *core.shared.borrow_mut() = Some(future.clone()),
            Ok(()) => future.settle(Ok(core.take_output())),
            Err(error) => future.settle(Err(error)),
        }
        future
    }
}
