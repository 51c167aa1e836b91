//! The loop's trace: what `set_debug(true)` prints, one line per event, and how the loop and
//! its names look in it. Nothing here changes what the loop does; skip it on a first reading.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::selectors::Events;
use crate::{EventLoop, TaskId, Watch};

/// `println!`, for output that someone may stop reading (`just run 3 | head -1`). Rust ignores
/// SIGPIPE, so a write to a closed pipe fails with `BrokenPipe`, and `println!` would panic:
/// this ends the program quietly instead, as the signal would end a C program.
#[macro_export]
macro_rules! say {
    ($($line:tt)*) => {{
        use std::io::Write as _;
        match writeln!(std::io::stdout().lock(), $($line)*) {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            written => written.expect("stdout takes the line"),
        }
    }};
}

impl EventLoop {
    /// Turns debug mode on or off (asyncio's `set_debug`). On, the loop prints a trace, one
    /// line per event: the time since debug mode was turned on, the iteration, and what
    /// happened. asyncio's debug mode logs only what is slow; ours shows everything, to watch
    /// the loop work.
    pub fn set_debug(&self, enabled: bool) {
        self.inner.debug.set(enabled.then(Instant::now));
    }

    /// Prints one line of the trace in debug mode; otherwise it costs one check.
    pub(crate) fn trace(&self, event: impl fmt::Display) {
        if let Some(start) = self.inner.debug.get() {
            let time = start.elapsed().as_secs_f64();
            say!("{time:5.2}s #{:<2} {event}", self.inner.iteration.get());
        }
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<EventLoop running={} closed={} ready={} timers={} readers={} writers={} tasks={}>",
            self.is_running(),
            self.is_closed(),
            self.inner.ready.borrow().len(),
            self.inner.scheduled.borrow().len(),
            self.inner.readers.borrow().len(),
            self.inner.writers.borrow().len(),
            self.inner.tasks.borrow().len(),
        )
    }
}

/// A type name as the trace shows it, short: without this crate's prefix, which the demo's
/// functions share, nor type arguments (`gather::{{closure}}` for
/// `step5_futures::gather<i32>::{{closure}}`).
pub(crate) struct Name(pub(crate) &'static str);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0.replace(concat!(env!("CARGO_CRATE_NAME"), "::"), "");
        let mut short = String::new();
        let mut depth = 0;
        for c in name.chars() {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                c if depth == 0 => short.push(c),
                _ => {}
            }
        }
        // A trait's impl (`<impl … for …>`, `<… as …>`) leaves an empty segment in its place.
        write!(
            f,
            "{}",
            short.replace("::::", "::").trim_start_matches("::")
        )
    }
}

/// How long until an instant, as the trace shows it.
pub(crate) struct Until(pub(crate) Instant);

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left = self.0.saturating_duration_since(Instant::now());
        write!(f, "{:.2}s", left.as_secs_f64())
    }
}

/// How long the loop may wait, as the trace shows it: `None` is forever.
pub(crate) struct Timeout(pub(crate) Option<Duration>);

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(timeout) => write!(f, "{:.2}s", timeout.as_secs_f64()),
            None => f.write_str("forever"),
        }
    }
}

/// The descriptors of a map of watches, as the trace shows them: `[3,5]`.
pub(crate) struct Fds<'a>(pub(crate) &'a RefCell<BTreeMap<RawFd, Watch>>);

impl fmt::Display for Fds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fds: Vec<String> = self.0.borrow().keys().map(RawFd::to_string).collect();
        write!(f, "[{}]", fds.join(","))
    }
}

/// What the selector answered, as the trace shows it: `read=[5] write=[]`, or `timeout`.
pub(crate) struct Answer<'a>(pub(crate) &'a [(RawFd, Events)]);

impl fmt::Display for Answer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("timeout");
        }
        let fds = |read: bool| {
            let ready = self
                .0
                .iter()
                .filter(|(_, events)| if read { events.read } else { events.write });
            ready
                .map(|(fd, _)| fd.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "read=[{}] write=[{}]", fds(true), fds(false))
    }
}

/// A direction as the trace shows it, in asyncio's names: `reader` or `writer`.
pub(crate) struct Direction(pub(crate) Events);

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.read { "reader" } else { "writer" })
    }
}

/// What a pending task awaits, as the trace shows it: the futures its step left it awaiting.
/// A socket leaves no mark here; the trace shows its `add_reader`, and the wake that follows.
pub(crate) struct Awaiting(pub(crate) usize);

impl fmt::Display for Awaiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => f.write_str(" on a future"),
            n => write!(f, " on {n} futures"),
        }
    }
}

/// Reports on stderr that task `id`, running the async fn `name`, panicked, and returns the
/// panic's message. Not with `eprintln!`, which panics when stderr is gone (a closed pipe):
/// that panic would escape the step, and leave the task forever half-stepped.
pub(crate) fn report_panic(id: TaskId, name: &str, panic: &dyn Any) -> String {
    let message = panic_message(panic);
    let function = name.trim_end_matches("::{{closure}}");
    let function = function.rsplit("::").next().unwrap_or(function);
    let report = format!("Task-{id} ({function}) panicked: {message}\n");
    let _ = io::stderr().write_all(report.as_bytes());
    message
}

/// What a panic said: the text it was given, if any.
pub(crate) fn panic_message(panic: &dyn Any) -> String {
    let text = panic.downcast_ref::<&str>().copied();
    let text = text.or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    text.unwrap_or("(no message)").to_string()
}
