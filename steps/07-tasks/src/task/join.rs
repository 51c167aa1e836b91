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
            wait: self.core.done.clone().into_future(),
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
        Poll::Ready(this.core.done.result().map(|()| this.core.take_output()))
    }
}

/// A task as a [`Future`] of its output, to share between awaiters or pass to
/// [`gather`](crate::gather). Cancelling that future cancels the task.
impl<T: 'static> From<Task<T>> for Future<T> {
    fn from(task: Task<T>) -> Self {
        let future = task.core.event_loop.create_future();
        let copy = future.clone();
        let core = task.core.clone();
        task.core.done.add_done_callback(move |done| {
            // `copy` may be cancelled already, and the task with it: then nothing is lost.
            match done.result() {
                Ok(()) => drop(copy.set_result(core.take_output())),
                Err(Error::Cancelled) => {
                    copy.cancel();
                }
                Err(error) => drop(copy.set_exception(error)),
            }
        });
        future.add_done_callback(move |future| {
            if future.cancelled() {
                task.cancel();
            }
        });
        future
    }
}
