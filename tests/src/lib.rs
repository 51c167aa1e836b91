//! Helpers shared by the workspace's cross-step tests.
//!
//! The snapshot tests run each demo the way a learner does, with `cargo run -p <package>`,
//! so what is checked is exactly what the book shows and the terminal prints.

pub mod book;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
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
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["run", "--quiet", "--package", package, "--"])
        .args(args)
        .output()
        .expect("cargo can be started");
    assert!(
        output.status.success(),
        "`cargo run -p {package}` failed with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("demos print UTF-8")
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
