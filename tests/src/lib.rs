//! Helpers shared by the workspace's cross-step tests.
//!
//! The snapshot tests run each demo the way a learner does, with `cargo run -p <package>`,
//! so what is checked is exactly what the book shows and the terminal prints.

pub mod book;
pub mod timeline;

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::LazyLock;
use std::sync::mpsc::{self, RecvTimeoutError};
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

/// Runs `cargo run -q -p <package> -- <args>` in the workspace and returns what it printed on stdout.
///
/// Panics with the program's stderr when it fails, so a broken demo names itself.
pub fn run_demo(package: &str, args: &[&str]) -> String {
    Demo::start(package, args).output()
}

/// A demo started with `cargo run -q -p <package> -- <args>`, still running.
///
/// The demos mostly sleep (their origins' delays), so starting several at once and then
/// collecting each [`output`](Demo::output) takes as long as the slowest, not the sum.
pub struct Demo {
    package: String,
    child: Child,
}

impl Demo {
    /// Starts the demo in the workspace, its output captured.
    pub fn start(package: &str, args: &[&str]) -> Demo {
        let child = Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args(["run", "--quiet", "--package", package, "--"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo can be started");
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
            .expect("cargo can be waited for");
        assert!(
            output.status.success(),
            "`cargo run -p {}` failed with {}:\n{}",
            self.package,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("demos print UTF-8")
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
