//! Helpers shared by the workspace's cross-step tests.
//!
//! The snapshot tests run each demo the way a learner does, with `cargo run -p <package>`,
//! so what is checked is exactly what the book shows and the terminal prints.

pub mod book;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

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
