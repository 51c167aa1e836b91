//! Helpers shared by the workspace's cross-step tests.
//!
//! The snapshot tests run each demo as a learner does with `cargo run -p <package>`: the
//! steps are built (once per test program, see [`step_program`]) and the program is run, so
//! what is checked is exactly what the book shows and the terminal prints.

pub mod book;
pub mod exercise;
pub mod mutants;
pub mod rules;
pub mod timeline;

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{LazyLock, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::Duration;

use regex::Regex;

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package lives inside the workspace")
        .to_path_buf()
}

/// The step's program, built from the current sources, as a [`Command`] to run.
///
/// `cargo run` per start would build-check the workspace each time, and tests that start
/// programs at once would queue on cargo's lock; so the seven steps are built once, in the
/// profile these tests were built in, and their programs run directly from the target folder.
pub fn step_program(package: &str) -> Command {
    static PROGRAMS: OnceLock<PathBuf> = OnceLock::new();
    let folder = PROGRAMS.get_or_init(|| {
        let packages = PACKAGES.iter().flat_map(|package| ["--package", package]);
        built(&["--bins"].into_iter().chain(packages).collect::<Vec<_>>())
    });
    let mut command = Command::new(folder.join(package));
    command.current_dir(workspace_root());
    command
}

/// Step 7's example `name`, built once as [`step_program`] builds the steps.
pub fn step_example(name: &str) -> Command {
    static EXAMPLES: OnceLock<PathBuf> = OnceLock::new();
    let folder = EXAMPLES.get_or_init(|| built(&["--examples", "--package", "step7-tasks"]));
    let mut command = Command::new(folder.join("examples").join(name));
    command.current_dir(workspace_root());
    command
}

/// Builds what `targets` names, in the profile these tests were built in, and returns the
/// profile's folder, where the programs are.
fn built(targets: &[&str]) -> PathBuf {
    // A test runs from target/<profile>/deps, a program such as book-sync from target/<profile>.
    let exe = std::env::current_exe().expect("a program knows its own path");
    let mut folder = exe.parent().expect("a program lives in a folder");
    if folder.ends_with("deps") {
        folder = folder.parent().expect("deps lives in the profile's folder");
    }
    let profile = match folder.file_name().and_then(OsStr::to_str) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let build = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["build", "--quiet", "--profile", profile])
        .args(targets)
        .output()
        .expect("cargo can be started");
    assert!(
        build.status.success(),
        "the steps do not build:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    folder.to_path_buf()
}

/// The seven steps' packages, in order; each builds a program of the same name.
pub const PACKAGES: [&str; 7] = [
    "step1-blocking",
    "step2-generators",
    "step3-callbacks",
    "step4-timers",
    "step5-futures",
    "step6-select",
    "step7-tasks",
];

/// A server program started for a test, killed when the test ends, however it ends. What it
/// prints is read line by line; its stderr is thrown away.
pub struct Started {
    child: Child,
    output: BufReader<ChildStdout>,
}

impl Started {
    /// Starts `command`, a step's program or example.
    pub fn start(command: &mut Command) -> Started {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("{command:?} can be started: {error}"));
        let output = BufReader::new(child.stdout.take().expect("its stdout is piped"));
        Started { child, output }
    }

    /// The next line it prints, without the line's end.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the step's program with `args` and returns what it printed on stdout.
///
/// Panics with the program's stderr when it fails, so a broken demo names itself.
pub fn run_demo(package: &str, args: &[&str]) -> String {
    Demo::start(package, args).output()
}

/// A step's program started with `args`, still running.
pub struct Demo {
    package: String,
    child: Child,
}

impl Demo {
    /// Starts the demo in the workspace, its output captured.
    pub fn start(package: &str, args: &[&str]) -> Demo {
        let child = step_program(package)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{package} can be started: {error}"));
        Demo {
            package: package.to_string(),
            child,
        }
    }

    /// Waits for the demo to end and returns what it printed on stdout.
    ///
    /// Panics with the program's stderr when it fails, so a broken demo names itself.
    pub fn output(self) -> String {
        let output = self
            .child
            .wait_with_output()
            .expect("the demo can be waited for");
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            panic!("{}", failure(&self.package, output.status, &stderr));
        }
        String::from_utf8(output.stdout).expect("demos print UTF-8")
    }
}

/// What a program that failed said, first what matters: where it panicked, and the message, with
/// neither blank lines nor a backtrace; or, if it did not panic, its stderr.
pub fn failure(package: &str, status: ExitStatus, stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let panic = lines.iter().position(|line| line.contains(" panicked at "));
    let Some(at) = panic else {
        return format!("`{package}` failed with {status}:\n{}", lines.join("\n"));
    };
    let location = lines[at].split(" panicked at ").nth(1).unwrap_or_default();
    let message = lines[at + 1..]
        .iter()
        .take_while(|line| !line.starts_with("note: ") && !line.starts_with("stack backtrace:"));
    let message: Vec<&str> = message.copied().collect();
    format!("`{package}` panicked at {location}\n{}", message.join("\n"))
}

/// The demo runs that one test file checks, each as `(test, package, args)`: the test's name as
/// libtest prints it, and the program to run.
pub type DemoRuns = &'static [(&'static str, &'static str, &'static [&'static str])];

/// A file's demo runs, started together by the first test that asks for one.
///
/// The demos mostly sleep (their origins' delays), so the file takes as long as the slowest
/// demo rather than the sum. Only the runs of tests that this invocation will run are started
/// (`cargo test step3_` starts none of step 7's), so a filtered run leaves no demo behind;
/// a run that was not started beforehand is started when its test asks.
pub struct Demos {
    runs: DemoRuns,
    started: OnceLock<Vec<Mutex<Option<Demo>>>>,
}

impl Demos {
    /// The runs, none started yet: a `static` of the test file.
    pub const fn new(runs: DemoRuns) -> Demos {
        Demos {
            runs,
            started: OnceLock::new(),
        }
    }

    /// What the run listed for `package` and `args` printed, as [`run_demo`] would return it.
    pub fn output(&self, package: &str, args: &[&str]) -> String {
        let started = self.started.get_or_init(|| {
            let selected = Selection::from_args();
            let runs = self.runs.iter();
            runs.map(|(test, package, args)| {
                Mutex::new(selected.runs(test).then(|| Demo::start(package, args)))
            })
            .collect()
        });
        let index = self
            .runs
            .iter()
            .position(|(_, listed, listed_args)| (*listed, *listed_args) == (package, args))
            .unwrap_or_else(|| panic!("list `{package} {args:?}` among the file's demo runs"));
        let demo = started[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        demo.unwrap_or_else(|| Demo::start(package, args)).output()
    }
}

/// Which tests libtest runs, read from this test program's arguments: those whose name holds
/// one of the filters (or equals it, with `--exact`), or all when there is none, less those
/// that hold a `--skip`.
struct Selection {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
}

impl Selection {
    fn from_args() -> Selection {
        let mut selection = Selection {
            filters: Vec::new(),
            skips: Vec::new(),
            exact: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--exact" => selection.exact = true,
                "--skip" => selection.skips.extend(args.next()),
                // The options that take their value as the next argument.
                "--test-threads" | "--format" | "--color" | "--logfile" | "--shuffle-seed"
                | "-Z" => {
                    args.next();
                }
                option if option.starts_with('-') => {}
                filter => selection.filters.push(filter.to_string()),
            }
        }
        selection
    }

    fn runs(&self, test: &str) -> bool {
        let hits = |pattern: &String| match self.exact {
            true => test == pattern,
            false => test.contains(pattern.as_str()),
        };
        (self.filters.is_empty() || self.filters.iter().any(hits)) && !self.skips.iter().any(hits)
    }
}

/// Masks what changes from run to run (durations, rates, ratios, ports), leaving the words and their order.
///
/// Durations are printed as `0.20 s` or `201 ms`, rates as `250 req/s`, ratios as `5.0x`, and addresses as
/// `127.0.0.1:PORT`; each becomes a placeholder.
pub fn normalize(output: &str) -> String {
    static PATTERNS: LazyLock<[(Regex, &str); 4]> = LazyLock::new(|| {
        [
            (Regex::new(r"127\.0\.0\.1:\d+").unwrap(), "127.0.0.1:[port]"),
            (Regex::new(r"\b\d+(\.\d+)? ?(ms|s|µs)\b").unwrap(), "[time]"),
            (
                Regex::new(r"\b\d+(\.\d+)? req/s\b").unwrap(),
                "[rate] req/s",
            ),
            (Regex::new(r"\b\d+(\.\d+)?x\b").unwrap(), "[ratio]x"),
        ]
    });
    let mut text = output.to_string();
    for (pattern, replacement) in PATTERNS.iter() {
        text = pattern.replace_all(&text, *replacement).into_owned();
    }
    text
}

/// Long enough for any honest wait on a loaded machine; only a hang reaches it.
pub const HANG: Duration = Duration::from_secs(60);

/// Runs `test` on a thread of its own and waits for it [`HANG`] at most, so that a test of
/// something that could hang fails with a message naming `what` instead of hanging the suite.
/// A panic in `test` is the test's failure, passed on as it is.
pub fn within_hang<T: Send + 'static>(what: &str, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (done_tx, done_rx) = mpsc::channel();
    let runner = thread::spawn(move || drop(done_tx.send(test())));
    match done_rx.recv_timeout(HANG) {
        Ok(outcome) => outcome,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: not done after {HANG:?}, it hangs"),
        Err(RecvTimeoutError::Disconnected) => match runner.join() {
            Err(panic) => resume_unwind(panic),
            Ok(()) => unreachable!("a runner that returns has sent its outcome"),
        },
    }
}

/// The message `code` panics with; panics itself when `code` returns instead.
pub fn panic_message(code: impl FnOnce()) -> String {
    let panic = catch_unwind(AssertUnwindSafe(code)).expect_err("it panics");
    let text = panic.downcast_ref::<&str>().map(|text| text.to_string());
    text.or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Sets its flag when dropped: shows when a callback's or a task's captures are dropped.
pub struct DropFlag(pub Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A flag, and a [`DropFlag`] that sets it.
pub fn drop_flag() -> (Rc<Cell<bool>>, DropFlag) {
    let flag = Rc::new(Cell::new(false));
    (flag.clone(), DropFlag(flag))
}

/// What the test origins serve: every byte value, over and over, 300 000 bytes in all.
pub fn known_body() -> Vec<u8> {
    (0..=255u8).cycle().take(300_000).collect()
}

/// Runs curl with `args` and `stdin`, ignoring any proxy settings of the environment and any
/// `~/.curlrc`, and returns what it wrote on stdout. Panics with curl's stderr when it fails.
pub fn curl(args: &[impl AsRef<OsStr>], stdin: &[u8]) -> Vec<u8> {
    let mut command = Command::new("curl");
    command
        .args(["-q", "--silent", "--show-error", "--max-time", "60"])
        .args(args);
    for proxy in ["http_proxy", "https_proxy", "all_proxy", "no_proxy"] {
        command
            .env_remove(proxy)
            .env_remove(proxy.to_ascii_uppercase());
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl can be started");
    let mut input = child.stdin.take().expect("curl's stdin is piped");
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || input.write_all(&stdin));
    let output = child.wait_with_output().expect("curl runs");
    writer
        .join()
        .expect("the writer does not panic")
        .expect("curl reads its stdin");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Sends `request` to `proxy` and returns everything it answers, up to its closing the
/// connection; reads give up after [`HANG`].
pub fn exchange(proxy: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).expect("the proxy accepts");
    stream.set_read_timeout(Some(HANG)).expect("a read timeout");
    stream
        .write_all(request)
        .expect("the proxy reads the request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("the proxy answers");
    String::from_utf8_lossy(&answer).into_owned()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn a_demo_s_failure_shows_where_it_panicked_and_why_first() {
        let stderr = "\nthread 'main' (8922) panicked at steps/03-callbacks/src/lib.rs:58:9:\n\
                      not yet implemented: call_soon\n\
                      note: run with `RUST_BACKTRACE=1` environment variable\n";
        assert_eq!(
            failure("step3-callbacks", ExitStatus::from_raw(101 << 8), stderr),
            "`step3-callbacks` panicked at steps/03-callbacks/src/lib.rs:58:9:\n\
             not yet implemented: call_soon"
        );
        assert_eq!(
            failure(
                "step7-tasks",
                ExitStatus::from_raw(1 << 8),
                "\nstep7-tasks: refused\n"
            ),
            "`step7-tasks` failed with exit status: 1:\nstep7-tasks: refused"
        );
    }
}
