//! Every step's demo, run as the learner runs it (`just run N`), compared with its snapshot,
//! and the loop steps' `--trace`. Durations and ports vary from run to run, so `normalize` masks
//! them; the words and the order of the lines are checked exactly.

use std::io::{BufRead, BufReader};

use insta::assert_snapshot;
use workshop_tests::{Demos, normalize};

/// Every demo run this file checks, by the test that checks it. They are started together:
/// the file takes as long as the slowest demo, not the sum.
static DEMOS: Demos = Demos::new(&[
    (
        "step1_demo_prints_what_the_book_shows",
        "step1-blocking",
        &[],
    ),
    (
        "step2_demo_prints_what_the_book_shows",
        "step2-generators",
        &[],
    ),
    (
        "step3_demo_prints_what_the_book_shows",
        "step3-callbacks",
        &[],
    ),
    ("step4_demo_prints_what_the_book_shows", "step4-timers", &[]),
    (
        "step5_demo_prints_what_the_book_shows",
        "step5-futures",
        &[],
    ),
    ("step6_demo_prints_what_the_book_shows", "step6-select", &[]),
    (
        "step7_demo_prints_what_the_book_shows",
        "step7-tasks",
        &["demo"],
    ),
    (
        "step7_compare_prints_what_the_book_shows",
        "step7-tasks",
        &["compare", "10", "50"],
    ),
    (
        "trace::step3_traces_each_callback_by_its_name_in_one_iteration",
        "step3-callbacks",
        &["--trace"],
    ),
    (
        "trace::step4_traces_the_timer_and_the_sleep_until_it_is_due",
        "step4-timers",
        &["--trace"],
    ),
    (
        "trace::step5_names_done_callbacks_by_the_users_function",
        "step5-futures",
        &["--trace"],
    ),
    (
        "trace::step6_traces_what_select_was_asked_and_what_it_answered",
        "step6-select",
        &["--trace"],
    ),
    (
        "trace::step7_traces_each_task_step_its_outcome_and_who_woke_it",
        "step7-tasks",
        &["--trace", "demo"],
    ),
]);

fn run_demo(package: &str, args: &[&str]) -> String {
    DEMOS.output(package, args)
}

#[test]
fn step1_demo_prints_what_the_book_shows() {
    assert_snapshot!(normalize(&run_demo("step1-blocking", &[])));
}

#[test]
fn step2_demo_prints_what_the_book_shows() {
    assert_snapshot!(run_demo("step2-generators", &[]));
}

#[test]
fn step3_demo_prints_what_the_book_shows() {
    assert_snapshot!(run_demo("step3-callbacks", &[]));
}

#[test]
fn step4_demo_prints_what_the_book_shows() {
    assert_snapshot!(run_demo("step4-timers", &[]));
}

#[test]
fn step5_demo_prints_what_the_book_shows() {
    assert_snapshot!(normalize(&run_demo("step5-futures", &[])));
}

#[test]
fn step6_demo_prints_what_the_book_shows() {
    assert_snapshot!(normalize(&run_demo("step6-select", &[])));
}

#[test]
fn step7_demo_prints_what_the_book_shows() {
    assert_snapshot!(normalize(&run_demo("step7-tasks", &["demo"])));
}

#[test]
fn step7_compare_prints_what_the_book_shows() {
    assert_snapshot!(normalize(&run_demo(
        "step7-tasks",
        &["compare", "10", "50"]
    )));
}

/// Runs a demo whose reader goes away after `lines` lines, as `just run N | head` does, and
/// checks that it ends quietly: with success, and nothing on stderr. With no line read, the
/// demo's first print meets the closed pipe; after some, a later one, from a callback, a task or
/// the proxy's log.
fn ends_quietly(package: &str, args: &'static [&'static str], lines: usize) {
    let name = [package]
        .iter()
        .chain(args)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let package = package.to_string();
    let (status, stderr) = workshop_tests::within_hang(&name, move || {
        let mut demo = workshop_tests::step_program(&package)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the demo can be started");
        let mut stdout = BufReader::new(demo.stdout.take().expect("the demo's output"));
        for _ in 0..lines {
            stdout
                .read_line(&mut String::new())
                .expect("a line of the demo");
        }
        drop(stdout);
        let output = demo.wait_with_output().expect("the demo can be waited for");
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    });
    assert!(
        status.success(),
        "{}",
        workshop_tests::failure(&name, status, &stderr)
    );
    assert!(
        stderr.is_empty(),
        "`{name}` succeeded, and said on stderr: {stderr}"
    );
}

#[test]
fn step1_demo_ends_quietly_when_its_reader_goes_away() {
    ends_quietly("step1-blocking", &[], 0);
    ends_quietly("step1-blocking", &[], 2);
}

#[test]
fn step2_demo_ends_quietly_when_its_reader_goes_away() {
    ends_quietly("step2-generators", &[], 0);
}

#[test]
fn step3_demo_ends_quietly_when_its_reader_goes_away() {
    ends_quietly("step3-callbacks", &[], 0);
    ends_quietly("step3-callbacks", &["--trace"], 0);
}

#[test]
fn step4_demo_ends_quietly_when_its_reader_goes_away() {
    ends_quietly("step4-timers", &[], 0);
    ends_quietly("step4-timers", &["--trace"], 1);
}

#[test]
fn step5_demo_ends_quietly_when_its_reader_goes_away() {
    ends_quietly("step5-futures", &[], 1);
    ends_quietly("step5-futures", &["--trace"], 3);
}

#[test]
fn step6_demo_ends_quietly_when_its_reader_goes_away() {
    ends_quietly("step6-select", &[], 1);
    ends_quietly("step6-select", &["--trace"], 3);
}

/// Step 7's demo prints from tasks, and the proxy's lines from a thread of its own.
#[test]
fn step7_demo_ends_quietly_when_its_reader_goes_away() {
    ends_quietly("step7-tasks", &["demo"], 1);
    ends_quietly("step7-tasks", &["demo"], 5);
    ends_quietly("step7-tasks", &["--trace", "demo"], 3);
}

/// `--trace`, each step's debug mode: every loop step's demo prints the events its step adds, in
/// order, each line with a time and an iteration. Times vary, so only orders and counts are
/// checked.
mod trace {
    use super::run_demo;

    /// The trace lines of the listed demo run's output.
    fn trace(package: &str, args: &[&str]) -> Vec<(u64, String)> {
        trace_lines(&run_demo(package, args))
    }

    /// The trace lines of a demo's output, as `(iteration, event)`; the demo's own lines are left
    /// out.
    fn trace_lines(output: &str) -> Vec<(u64, String)> {
        let line = regex::Regex::new(r"^\s*\d+\.\d\ds #(\d+)\s+(.*)$").unwrap();
        output
            .lines()
            .filter_map(|text| line.captures(text))
            .map(|captures| (captures[1].parse().unwrap(), captures[2].to_string()))
            .collect()
    }

    /// The events of `trace` that start with `prefix`.
    fn events<'a>(trace: &'a [(u64, String)], prefix: &str) -> Vec<&'a str> {
        let events = trace.iter().map(|(_, event)| event.as_str());
        events.filter(|event| event.starts_with(prefix)).collect()
    }

    #[test]
    fn step3_traces_each_callback_by_its_name_in_one_iteration() {
        let trace = trace("step3-callbacks", &["--trace"]);
        assert_eq!(
            trace,
            [
                (1, "run foo".to_string()),
                (1, "run bar".to_string()),
                (1, "run main::{{closure}}".to_string()),
            ]
        );
    }

    #[test]
    fn step3_without_trace_prints_no_trace() {
        // Not a listed run: the snapshot's run has the same arguments, and each is taken once.
        let output = workshop_tests::run_demo("step3-callbacks", &[]);
        assert!(trace_lines(&output).is_empty());
    }

    #[test]
    fn step4_traces_the_timer_and_the_sleep_until_it_is_due() {
        let trace = trace("step4-timers", &["--trace"]);
        let events: Vec<&str> = trace.iter().map(|(_, event)| event.as_str()).collect();
        assert_eq!(
            events.len(),
            6,
            "expected the timer set, a sleep of 0, a run, a sleep, the timer due, a run; the \
             trace has {events:?}"
        );
        // "Due in" counts from when the line is written, a moment after the timer was set: on a
        // loaded machine that moment can round the second down.
        let due = events[0].strip_prefix("timer main::{{closure}} due in ");
        let due: Option<f64> = due.and_then(|due| due.strip_suffix('s')?.parse().ok());
        assert!(
            due.is_some_and(|due| due > 0.5 && due <= 1.0),
            "expected the timer set, due in about 1 s: {}",
            events[0]
        );
        assert_eq!(events[1..3], ["sleep 0.00s", "run main::{{closure}}"]);
        assert!(events[3].starts_with("sleep ") && events[3] != "sleep 0.00s");
        assert_eq!(
            events[4..],
            ["timer main::{{closure}} is due", "run main::{{closure}}"]
        );
        let iterations: Vec<u64> = trace.iter().map(|(iteration, _)| *iteration).collect();
        assert_eq!(iterations, [0, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn step5_names_done_callbacks_by_the_users_function() {
        let trace = trace("step5-futures", &["--trace"]);
        assert_eq!(events(&trace, "run on_future_done"), ["run on_future_done"]);
        assert_eq!(events(&trace, "timer sleep::{{closure}} due in").len(), 3);
        assert_eq!(events(&trace, "timer sleep::{{closure}} is due").len(), 3);
        assert_eq!(events(&trace, "run gather::{{closure}}").len(), 3);
        assert!(
            events(&trace, "run ")
                .iter()
                .all(|event| !event.contains("schedule"))
        );
    }

    #[test]
    fn step6_traces_what_select_was_asked_and_what_it_answered() {
        let trace = trace("step6-select", &["--trace"]);
        let asked = events(&trace, "select read=");
        let answered = events(&trace, "select -> ");
        assert!(
            !asked.is_empty(),
            "no `select read=… write=… timeout=…` line in the trace"
        );
        assert_eq!(asked.len(), answered.len(), "each question has its answer");
        assert!(asked[0].ends_with("timeout=0.00s"));
        // The five connections in progress, in one wait with no deadline. Their numbers depend on
        // which descriptors the server's thread took meanwhile.
        let five_connecting = |event: &&str| {
            let writers = event.strip_prefix("select read=[] write=[");
            let writers = writers.and_then(|rest| rest.strip_suffix("] timeout=forever"));
            writers.is_some_and(|fds| fds.split(',').count() == 5)
        };
        assert!(asked.iter().any(five_connecting), "{asked:?}");
        assert_eq!(events(&trace, "add_writer fd ").len(), 5);
        assert_eq!(events(&trace, "add_reader fd ").len(), 5);
        assert_eq!(events(&trace, "remove_reader fd ").len(), 5);
        // Each ask comes before its answer, in the same iteration.
        let selects = trace
            .iter()
            .filter(|(_, event)| event.starts_with("select"));
        let selects: Vec<_> = selects.collect();
        for pair in selects.chunks(2) {
            assert!(pair[0].1.starts_with("select read=") && pair[1].1.starts_with("select -> "));
            assert_eq!(pair[0].0, pair[1].0);
        }
        // The callbacks bear the names of the demo's closures, not of the loop's wrapper.
        assert!(
            events(&trace, "run ")
                .iter()
                .all(|event| !event.contains("schedule_watch"))
        );
        assert_eq!(
            events(&trace, "run fetch::{{closure}}::{{closure}}").len(),
            5
        );
    }

    #[test]
    fn step7_traces_each_task_step_its_outcome_and_who_woke_it() {
        let trace = trace("step7-tasks", &["--trace", "demo"]);
        let greet: Vec<&str> = trace
            .iter()
            .take_while(|(_, event)| !event.ends_with("-> Ready"))
            .map(|(_, event)| event.as_str())
            .filter(|event| event.contains("Task-0") || event.starts_with("timer"))
            .collect();
        assert_eq!(
            greet,
            [
                "create_task Task-0 greet::{{closure}}",
                "timer sleep::{{closure}}::{{closure}} due in 1.00s",
                "Task-0 greet::{{closure}} -> Pending on a future",
                "timer sleep::{{closure}}::{{closure}} is due",
                "wake Task-0 by sleep::{{closure}}::{{closure}}",
            ]
        );
        assert_eq!(
            events(&trace, "Task-0 greet::{{closure}} -> Ready").len(),
            1
        );
        // A task's step runs under the task's name, not the name of the loop's closure.
        let steps = events(&trace, "run ").into_iter();
        let unnamed: Vec<&str> = steps.filter(|event| event.contains("wakeup")).collect();
        assert!(unnamed.is_empty(), "steps named by the loop: {unnamed:?}");
        assert!(!events(&trace, "run greet::{{closure}}").is_empty());
        // The proxy demo: five clients, each created, stepped until ready.
        let clients = events(&trace, "create_task").into_iter();
        assert_eq!(
            clients
                .filter(|event| event.ends_with("get_through::{{closure}}"))
                .count(),
            5
        );
        let ready = |name: &str| {
            let ready = trace.iter().filter(|(_, event)| event.contains(name));
            ready
                .filter(|(_, event)| event.ends_with("-> Ready"))
                .count()
        };
        assert_eq!(ready("get_through::{{closure}}"), 5);
        assert!(!events(&trace, "wake Task-").is_empty());
    }
}
