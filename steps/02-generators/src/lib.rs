//! Step 2: generators, the hidden foundation of async.
//!
//! A Python generator is a function that can pause. `yield` hands a value to whoever called
//! `next()`, and the function's frame, the line it stopped at and its local variables, waits intact
//! until it is resumed. Hold several paused frames, resume each in turn, and you have tasks taking
//! turns on one thread: the heart of an event loop, before any I/O enters the picture.
//!
//! Stable Rust has no `yield`, so this step writes the frame by hand: an enum with one variant per
//! place the function can pause, each variant holding the locals alive there ([`Countdown`],
//! [`Launch`]), and a round-robin [`Scheduler`] that interleaves them. Then it writes the same
//! functions as `async fn`s ([`countdown`], [`launch`]) and lets the compiler build the enum.
//! Python's coroutines grew out of generators the same way: `yield from` became `await`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// What one [`Generator::resume`] produced: a value handed out at a `yield`, or the value the
/// function returned.
///
/// In Python, `Yielded(v)` is `next(gen)` returning `v`, and `Complete(r)` is `next(gen)` raising
/// `StopIteration(r)`. The names are those of the unstable `std::ops::CoroutineState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorState<Y, R> {
    /// The generator paused at a `yield`, handing out this value.
    Yielded(Y),
    /// The generator ran to its `return`, with this value.
    Complete(R),
}

/// A computation that can pause: Python's generator protocol as a trait.
///
/// It mirrors the unstable `std::ops::Coroutine` (called `Generator` until 2023). `resume` is
/// Python's `next(gen)`: run until the next `yield` or the `return`. Python's `gen.send(value)` and
/// the std trait also pass a value in at each resume; ours never need one, so `resume` takes none.
///
/// Resuming a generator that has completed panics, as the compiler's `async fn`s do. Python raises
/// `StopIteration` again instead, but in Rust the return value has already been moved out.
pub trait Generator {
    /// The type of the values handed out at each `yield`.
    type Yield;
    /// The type of the value the generator returns, Python's `StopIteration.value`.
    type Return;
    /// Runs the generator from where it paused to its next `yield`, or to its `return`.
    fn resume(&mut self) -> GeneratorState<Self::Yield, Self::Return>;
}

/// Counts down from `n`, and returns how many values it yielded. The Python it stands for:
///
/// ```python
/// def countdown(n):
///     start = n
///     while n > 0:
///         yield n
///         n -= 1
///     return start
/// ```
///
/// Each variant is a place the function can be paused at, holding the locals alive there.
#[derive(Debug)]
pub enum Countdown {
    /// Created but not started: only the argument exists, as for a Python generator before its
    /// first `next()`.
    Start {
        /// The argument.
        n: u32,
    },
    /// Paused at `yield n`.
    Paused {
        /// The value just yielded.
        n: u32,
        /// Where the count began, kept for the `return`.
        start: u32,
    },
    /// Returned: nothing is left to keep.
    Done,
}

impl Countdown {
    /// A countdown from `n`. Like calling a Python generator function, this runs none of its body
    /// yet.
    pub fn new(n: u32) -> Self {
        Countdown::Start { n }
    }
}

impl Generator for Countdown {
    type Yield = u32;
    type Return = u32;

    fn resume(&mut self) -> GeneratorState<u32, u32> {
        // Run the code that follows the pause point: `start = n` at the beginning, `n -= 1` after
        // the `yield`.
        let (n, start) = match *self {
            Countdown::Start { n } => (n, n),
            Countdown::Paused { n, start } => (n - 1, start),
            Countdown::Done => panic!("generator resumed after completion"),
        };
        // Then the loop's test decides between pausing at the `yield` again and returning.
        if n > 0 {
            *self = Countdown::Paused { n, start };
            GeneratorState::Yielded(n)
        } else {
            *self = Countdown::Done;
            GeneratorState::Complete(start)
        }
    }
}

/// Delegates to a [`Countdown`], then yields 0 for liftoff: Python's `yield from`, the ancestor of
/// `await`.
///
/// ```python
/// def launch(n):
///     counted = yield from countdown(n)
///     yield 0
///     return counted + 1
/// ```
///
/// While the countdown runs, each resume is passed on to it and each value it yields is passed out
/// unchanged, so whoever drives `launch` cannot tell the two apart. When the countdown completes,
/// its return value becomes `counted` and `launch` carries on from there.
#[derive(Debug)]
pub enum Launch {
    /// Paused inside `yield from countdown(n)`: the sub-generator is the one live local.
    Delegating {
        /// The generator being delegated to, itself paused somewhere.
        countdown: Countdown,
    },
    /// Paused at `yield 0`.
    Liftoff {
        /// What the countdown returned.
        counted: u32,
    },
    /// Returned: nothing is left to keep.
    Done,
}

impl Launch {
    /// A launch counting down from `n`. The countdown is created, not started, just as nothing of
    /// `launch` has run.
    pub fn new(n: u32) -> Self {
        Launch::Delegating {
            countdown: Countdown::new(n),
        }
    }
}

impl Generator for Launch {
    type Yield = u32;
    type Return = u32;

    fn resume(&mut self) -> GeneratorState<u32, u32> {
        match self {
            Launch::Delegating { countdown } => match countdown.resume() {
                GeneratorState::Yielded(n) => GeneratorState::Yielded(n),
                GeneratorState::Complete(counted) => {
                    *self = Launch::Liftoff { counted };
                    GeneratorState::Yielded(0)
                }
            },
            Launch::Liftoff { counted } => {
                let total = *counted + 1;
                *self = Launch::Done;
                GeneratorState::Complete(total)
            }
            Launch::Done => panic!("generator resumed after completion"),
        }
    }
}

/// One turn of a task: its name, and what resuming (or polling) it produced.
pub type Event = (&'static str, GeneratorState<u32, u32>);

/// A task the [`Scheduler`] can hold: any generator of numbers, boxed so that different kinds share
/// one queue.
type Task = Box<dyn Generator<Yield = u32, Return = u32>>;

/// Round-robin scheduling of generators, the smallest event loop there is:
///
/// ```python
/// def run(tasks):
///     queue = deque(tasks)
///     while queue:
///         name, gen = queue.popleft()
///         try:
///             print(name, next(gen))
///             queue.append((name, gen))
///         except StopIteration as stop:
///             print(name, "returned", stop.value)
/// ```
///
/// Each turn resumes the task at the front once and sends it to the back, unless it completed: no
/// task runs twice before every other has run once, and each leaves the queue when it returns.
#[derive(Default)]
pub struct Scheduler {
    tasks: VecDeque<(&'static str, Task)>,
}

impl Scheduler {
    /// Queues a generator as a task named `name`. Nothing runs until [`run`](Self::run).
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Generator<Yield = u32, Return = u32> + 'static,
    ) {
        self.tasks.push_back((name, Box::new(task)));
    }

    /// Resumes the tasks in turn until every one has completed, and returns each turn's [`Event`]
    /// in order.
    pub fn run(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some((name, mut task)) = self.tasks.pop_front() {
            let state = task.resume();
            if let GeneratorState::Yielded(_) = state {
                self.tasks.push_back((name, task));
            }
            events.push((name, state));
        }
        events
    }
}

thread_local! {
    /// The value the task being polled handed out at its `yield_now`; the poll loop takes it after
    /// each poll.
    static YIELDED: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Pauses the calling `async fn` once, handing `value` to the poll loop: Python's `yield value`,
/// spelled `yield_now(value).await`. asyncio's `await asyncio.sleep(0)` comes down to the same
/// thing, a bare `yield`.
pub fn yield_now(value: u32) -> YieldNow {
    YieldNow { value: Some(value) }
}

/// The future behind [`yield_now`]: `Pending` the first time it is polled, `Ready` the next.
///
/// A future that returns `Pending` normally arranges for the waker to be called when it can go on.
/// This one need not, because the [`PollLoop`] polls every task in turn anyway; real wakers come in
/// later steps.
pub struct YieldNow {
    value: Option<u32>,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        match self.value.take() {
            Some(value) => {
                YIELDED.set(Some(value));
                Poll::Pending
            }
            None => Poll::Ready(()),
        }
    }
}

/// [`Countdown`] as an `async fn`: the Python above, with `yield n` spelled `yield_now(n).await`.
///
/// The compiler turns it into an enum much like [`Countdown`]. Its variants are `Unresumed`,
/// `Suspend0` (paused at the `.await`, holding `n`, `start` and the `YieldNow` being awaited),
/// `Returned` and `Panicked`, and beside them it keeps the argument; a nightly compiler shows the
/// layout with `-Zprint-type-sizes`.
pub async fn countdown(mut n: u32) -> u32 {
    let start = n;
    while n > 0 {
        yield_now(n).await;
        n -= 1;
    }
    start
}

/// [`Launch`] as an `async fn`: `yield from countdown(n)` is now `countdown(n).await`.
pub async fn launch(n: u32) -> u32 {
    let counted = countdown(n).await;
    yield_now(0).await;
    counted + 1
}

/// A task the [`PollLoop`] can hold: the state machine of an `async fn`, Python's coroutine, boxed
/// and pinned.
type Coroutine = Pin<Box<dyn Future<Output = u32>>>;

/// The [`Scheduler`] again, for futures: `poll` plays `resume`, `Pending` plays `Yielded`, `Ready`
/// plays `Complete`.
///
/// The futures are pinned because the compiler's state machines may borrow their own locals across
/// an `.await`, so once polled they must not move. The hand-written enums borrow nothing, which is
/// why `resume` takes `&mut self`.
#[derive(Default)]
pub struct PollLoop {
    tasks: VecDeque<(&'static str, Coroutine)>,
}

impl PollLoop {
    /// Queues a future as a task named `name`. Nothing runs until [`run`](Self::run).
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = u32> + 'static) {
        self.tasks.push_back((name, Box::pin(task)));
    }

    /// Polls the tasks in turn until every one is ready, and returns each turn's [`Event`] in
    /// order.
    pub fn run(&mut self) -> Vec<Event> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut events = Vec::new();
        while let Some((name, mut task)) = self.tasks.pop_front() {
            match task.as_mut().poll(&mut cx) {
                Poll::Pending => {
                    let value = YIELDED.take().expect("tasks pause only at yield_now");
                    events.push((name, GeneratorState::Yielded(value)));
                    self.tasks.push_back((name, task));
                }
                Poll::Ready(value) => events.push((name, GeneratorState::Complete(value))),
            }
        }
        events
    }
}
