//! Every event-loop step's demo, run as the learner runs it (`cargo run -p …`), compared with
//! its snapshot. Durations and ports vary from run to run, so `normalize` masks them; the
//! words and the order of the lines are checked exactly.

use insta::assert_snapshot;
use workshop_tests::{normalize, run_demo};

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
