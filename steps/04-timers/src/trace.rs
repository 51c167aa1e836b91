//! The loop's trace: what `set_debug(true)` prints, one line per event, and how the loop and
//! its names look in it. Nothing here changes what the loop does; skip it on a first reading.

use std::fmt;
use std::time::{Duration, Instant};

use crate::EventLoop;

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
            "<EventLoop running={} closed={} ready={} timers={}>",
            self.is_running(),
            self.is_closed(),
            self.inner.ready.borrow().len(),
            self.inner.scheduled.borrow().len(),
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
