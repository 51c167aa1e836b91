//! What every step's program says when asked for help or given nonsense, as a learner runs it.

use std::process::{Command, Output};

use workshop_tests::{PACKAGES, Started, step_program, workspace_root};

fn run(package: &str, args: &[&str]) -> Output {
    step_program(package)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{package} can be started: {error}"))
}

#[test]
fn help_prints_the_usage_and_succeeds_on_every_step() {
    for package in PACKAGES {
        let output = run(package, &["--help"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{package} --help failed");
        assert!(
            stdout.starts_with(&format!("usage: {package}")),
            "{package}: {stdout}"
        );
    }
}

#[test]
fn compare_with_no_client_says_why_instead_of_a_ratio() {
    let output = run("step7-tasks", &["compare", "0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains("compare needs at least one client"),
        "{stderr}"
    );
}

#[test]
fn the_justfile_refuses_a_step_that_does_not_exist() {
    let just = |args: &[&str]| {
        Command::new("just")
            .current_dir(workspace_root())
            .args(args)
            .output()
    };
    if just(&["--version"]).is_err() {
        eprintln!("skipped: just is not installed");
        return;
    }
    for (args, range) in [
        (["run", "8"], "1 to 7"),
        (["diff", "1"], "2 to 7"),
        (["exercise", "2"], "3 to 7"),
    ] {
        let output = just(&args).unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "just {args:?} succeeded");
        assert!(
            stderr.contains(&format!(
                "is not a step number here: choose one from {range}"
            )),
            "just {args:?}: {stderr}"
        );
    }
}

#[test]
fn a_proxy_on_every_address_suggests_one_a_client_can_use() {
    let lines = workshop_tests::within_hang("the proxy's first lines", || {
        let mut proxy = Started::start(step_program("step7-tasks").args(["--listen", "0.0.0.0:0"]));
        [proxy.line(), proxy.line()]
    });
    let port = lines[0]
        .strip_prefix("proxy listening on http://0.0.0.0:")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("the first line: {}", lines[0]));
    assert_eq!(
        lines[1],
        format!("try: curl -x http://127.0.0.1:{port} http://example.com/")
    );
}

#[test]
fn the_proxy_takes_its_limits_before_or_after_listen_and_names_what_it_refuses() {
    let first = workshop_tests::within_hang("the proxy's first line", || {
        Started::start(step_program("step7-tasks").args([
            "--listen",
            "127.0.0.1:0",
            "--send-timeout",
            "5",
        ]))
        .line()
    });
    assert!(
        first.starts_with("proxy listening on http://127.0.0.1:"),
        "{first}"
    );
    let refused = run("step7-tasks", &["--listen", "127.0.0.1:0", "--bogus"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("`--bogus` is not understood here"),
        "{stderr}"
    );
}
