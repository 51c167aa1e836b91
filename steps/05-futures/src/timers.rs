//! The timer heap (asyncio's `_scheduled`): timers not yet due, the earliest deadline first.
//!
//! A heap ordered by deadline alone would run two timers due at the same instant in any
//! order, so each timer also carries the order it was scheduled in. And a cancelled timer
//! stays in the heap until its turn comes, so the heap counts them, and drops them all once
//! they are more than half of it.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::Handle;

/// The furthest a delay reaches: about 30 years, as tokio caps it. `Instant` panics when a
/// sum overflows it, so without a cap `sleep(Duration::MAX)` would panic; a timer 30 years away
/// waits for ever all the same.
pub(crate) const FOREVER: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// The fewest timers in the heap for a purge of the cancelled ones (asyncio's number).
const MIN_TIMERS_TO_PURGE: usize = 100;

/// The loop's timers, earliest deadline on top.
#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Timer>,
    /// How many timers were ever scheduled: the tie-breaker between equal deadlines.
    sequence: u64,
    /// How many timers in the heap are cancelled, shared with every `TimerHandle`.
    cancelled: Rc<Cell<usize>>,
}

impl TimerHeap {
    /// Schedules `handle` to become ready at `when`, after every timer already due then.
    pub(crate) fn push(&mut self, when: Instant, handle: Handle) -> TimerHandle {
        let timer = TimerHandle {
            inner: Rc::new(TimerInner {
                handle,
                when,
                sequence: self.sequence,
                in_heap: Cell::new(true),
                cancelled_timers: Rc::clone(&self.cancelled),
            }),
        };
        self.sequence += 1;
        self.heap.push(Timer(timer.clone()));
        timer
    }

    /// The earliest deadline of a timer still to run, if any. A cancelled timer on top would
    /// wake the loop for nothing: it is dropped now.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while self.heap.peek()?.0.cancelled() {
            self.pop();
        }
        Some(self.heap.peek()?.0.when())
    }

    /// Takes the earliest timer off the heap if its deadline has come.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Handle> {
        if self.heap.peek()?.0.when() > now {
            return None;
        }
        self.pop().map(|timer| timer.inner.handle.clone())
    }

    /// Drops every cancelled timer from the heap once they are more than half of it, as
    /// asyncio does. A cancelled timer is skipped when its turn comes, but until then it takes
    /// memory: a server that starts a 30 s timeout per request and cancels it when the answer
    /// is sent would otherwise keep every request's timer for 30 s.
    pub(crate) fn purge_cancelled(&mut self) {
        let cancelled = self.cancelled.get();
        if self.heap.len() <= MIN_TIMERS_TO_PURGE || cancelled * 2 <= self.heap.len() {
            return;
        }
        // Dropping a cancelled timer here is safe: `cancel` dropped its callback already.
        self.heap.retain(|Timer(timer)| {
            timer.inner.in_heap.set(!timer.cancelled());
            !timer.cancelled()
        });
        self.cancelled.set(0);
    }

    /// How many timers are in the heap, cancelled ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Takes the earliest timer off the heap, and out of the count if it was cancelled.
    fn pop(&mut self) -> Option<TimerHandle> {
        let Timer(timer) = self.heap.pop()?;
        timer.inner.in_heap.set(false);
        if timer.cancelled() {
            self.cancelled.set(self.cancelled.get() - 1);
        }
        Some(timer)
    }
}

/// A callback scheduled for a deadline (asyncio's `TimerHandle`); keep it to cancel the call.
#[derive(Clone)]
pub struct TimerHandle {
    inner: Rc<TimerInner>,
}

struct TimerInner {
    handle: Handle,
    when: Instant,
    /// The order of scheduling: the tie-breaker between equal deadlines.
    sequence: u64,
    /// Whether the timer is still in the loop's heap (asyncio's `_scheduled`).
    in_heap: Cell<bool>,
    /// The loop's count of cancelled timers in its heap.
    cancelled_timers: Rc<Cell<usize>>,
}

impl TimerHandle {
    /// The instant the callback is due.
    pub fn when(&self) -> Instant {
        self.inner.when
    }

    /// Makes sure the callback never runs, and drops it now. The timer stays in the heap,
    /// skipped when its turn comes, unless the loop purges it first; the loop counts the
    /// cancelled timers in its heap to know when to purge.
    pub fn cancel(&self) {
        if !self.cancelled() && self.inner.in_heap.get() {
            let count = &self.inner.cancelled_timers;
            count.set(count.get() + 1);
        }
        self.inner.handle.cancel();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.inner.handle.cancelled()
    }
}

/// An entry of the timer heap, ordered by deadline, then by the order of scheduling, so that
/// equal deadlines run first come, first served. `BinaryHeap` keeps its *largest* entry on top,
/// so the comparison is reversed: the earliest deadline is the largest.
struct Timer(TimerHandle);

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        let (mine, theirs) = (&self.0.inner, &other.0.inner);
        (theirs.when, theirs.sequence).cmp(&(mine.when, mine.sequence))
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Timer {}
