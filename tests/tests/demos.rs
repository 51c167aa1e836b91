//! Every event-loop step's demo, run as the learner runs it (`cargo run -p …`), compared with
//! its snapshot. Durations and ports vary from run to run, so `normalize` masks them; the
//! words and the order of the lines are checked exactly.

use std::sync::{LazyLock, Mutex};

use insta::assert_snapshot;
use workshop_tests::{Demo, normalize};

/// Every demo this file checks: its package and arguments.
const DEMOS: &[(&str, &[&str])] = &[
    ("step3-callbacks", &[]),
    ("step4-timers", &[]),
    ("step5-futures", &[]),
    ("step6-select", &[]),
    ("step7-tasks", &["demo"]),
    ("step7-tasks", &["compare", "10", "50"]),
];

/// The demos, all started by the first test that asks: they mostly sleep, so the file takes
/// as long as the slowest demo rather than the sum of them.
static STARTED: LazyLock<Vec<Mutex<Option<Demo>>>> = LazyLock::new(|| {
    DEMOS
        .iter()
        .map(|(package, args)| Mutex::new(Some(Demo::start(package, args))))
        .collect()
});

/// What the demo listed in [`DEMOS`] printed, the same as `run_demo(package, args)`.
fn run_demo(package: &str, args: &[&str]) -> String {
    let index = DEMOS
        .iter()
        .position(|demo| *demo == (package, args))
        .unwrap_or_else(|| panic!("list `{package} {args:?}` in DEMOS"));
    let demo = STARTED[index]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take()
        .expect("each demo is checked by one test");
    demo.output()
}

#[test]
fn step3_callbacks() {
    assert_snapshot!(run_demo("step3-callbacks", &[]));
}

#[test]
fn step4_timers() {
    assert_snapshot!(run_demo("step4-timers", &[]));
}

#[test]
fn step5_futures() {
    assert_snapshot!(normalize(&run_demo("step5-futures", &[])));
}

#[test]
fn step6_select() {
    assert_snapshot!(normalize(&run_demo("step6-select", &[])));
}

#[test]
fn step7_tasks_demo() {
    assert_snapshot!(normalize(&run_demo("step7-tasks", &["demo"])));
}

#[test]
fn step7_tasks_compare() {
    assert_snapshot!(normalize(&run_demo(
        "step7-tasks",
        &["compare", "10", "50"]
    )));
}
