//! What every step's program says when asked for help or given nonsense, as a learner runs it.

use std::process::{Command, Output};

use workshop_tests::{PACKAGES, step_program, workspace_root};

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
