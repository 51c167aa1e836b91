//! `--trace`, each step's debug mode: every loop step's demo prints the events its step adds, in
//! order, each line with a time and an iteration. Times vary, so only orders and counts are
//! checked.

use workshop_tests::run_demo;

/// The trace lines of a demo's output, as `(iteration, event)`; the demo's own lines are left
/// out.
fn trace(package: &str, args: &[&str]) -> Vec<(u64, String)> {
    let output = run_demo(package, args);
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
    assert!(trace("step3-callbacks", &[]).is_empty());
}

#[test]
fn step4_traces_the_timer_and_the_sleep_until_it_is_due() {
    let trace = trace("step4-timers", &["--trace"]);
    let events: Vec<&str> = trace.iter().map(|(_, event)| event.as_str()).collect();
    assert_eq!(events[0], "timer main::{{closure}} due in 1.00s");
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
    assert_eq!(asked.len(), answered.len());
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
