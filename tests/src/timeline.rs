//! The book's timelines: a loop's trace (`--trace`) drawn as an SVG picture, one lane per task
//! (or per callback, timer and descriptor, before step 7), time running left to right.
//!
//! Hand-written SVG keeps the book offline and the workspace free of a plotting dependency.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::LazyLock;

use regex::Regex;

/// One line of a trace: `  1.00s #2  timer main::{{closure}} is due`.
static LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(\d+\.\d+)s #(\d+)\s+(.*)$").unwrap());

/// What a trace shows without its times and numbers: the set of its lines with every number,
/// every list of descriptors, and every `select`'s timeout, masked. Timing changes the times
/// and the order of a trace's lines from run to run, and, under load, how many iterations it
/// takes and how many descriptors one `select` answers; this shape stays, unless the code
/// changes.
pub fn shape(trace: &str) -> BTreeSet<String> {
    static NUMBER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"timeout=\S+|\d+(\.\d+)?").unwrap());
    static LIST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[[^\]]*\]").unwrap());
    let masked = trace
        .lines()
        .map(|line| NUMBER.replace_all(line, "N").into_owned());
    masked
        .map(|line| LIST.replace_all(&line, "[…]").into_owned())
        .collect()
}

/// Something drawn on a lane.
enum Mark {
    /// The lane waits from `start` to `end`.
    Wait { start: f64, end: f64 },
    /// The lane runs (or is answered) at this time.
    Run(f64),
    /// The lane's task is woken at this time.
    Wake(f64),
}

/// The lanes of a timeline, in the order they first appear, each with its marks.
#[derive(Default)]
struct Lanes(Vec<(String, Vec<Mark>)>);

impl Lanes {
    fn add(&mut self, lane: &str, mark: Mark) {
        match self.0.iter_mut().find(|(name, _)| name == lane) {
            Some((_, marks)) => marks.push(mark),
            None => self.0.push((lane.to_string(), vec![mark])),
        }
    }
}

/// The last loop's events in `output`, a demo's output with its trace: `(time, event)`. A demo
/// that runs several loops (step 7's) starts a new trace at iteration 0 or 1 each time.
fn last_trace(output: &str) -> Vec<(f64, String)> {
    let mut events = Vec::new();
    let mut last_iteration = 0;
    for captures in output.lines().filter_map(|line| LINE.captures(line)) {
        let iteration: u64 = captures[2].parse().unwrap();
        if iteration < last_iteration {
            events.clear();
        }
        last_iteration = iteration;
        events.push((captures[1].parse().unwrap(), captures[3].to_string()));
    }
    events
}

/// Reads the lanes off a trace. With tasks, the lanes are the loop and the tasks: a task waits
/// from its `Pending` step to its next event. Without, they are the loop, each descriptor the
/// loop asked about, each timer (waiting from `due in` to `is due`) and each callback.
fn lanes(events: &[(f64, String)]) -> Lanes {
    static TASK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(Task-\d+ \S+) -> (\w+)").unwrap());
    static WAKE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^wake (Task-\d+)").unwrap());
    static FDS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[([\d,]*)\]").unwrap());
    static DUE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^timer (\S+) due in (\d+\.\d+)s").unwrap());
    let with_tasks = events.iter().any(|(_, event)| TASK.is_match(event));
    let mut lanes = Lanes::default();
    lanes.0.push(("the loop".to_string(), Vec::new()));
    let mut pending: Vec<(String, f64)> = Vec::new();
    for (index, (time, event)) in events.iter().enumerate() {
        let time = *time;
        let next = events.get(index + 1).map_or(time, |(next, _)| *next);
        if let Some(task) = TASK.captures(event) {
            close_wait(&mut lanes, &mut pending, &task[1], time);
            lanes.add(&task[1], Mark::Run(time));
            if &task[2] == "Pending" {
                pending.push((task[1].to_string(), time));
            }
        } else if let Some(wake) = WAKE.captures(event) {
            let lane = lanes.0.iter().map(|(name, _)| name.clone());
            let lane = lane
                .into_iter()
                .find(|name| name.starts_with(&format!("{} ", &wake[1])));
            if let Some(lane) = lane {
                close_wait(&mut lanes, &mut pending, &lane, time);
                lanes.add(&lane, Mark::Wake(time));
            }
        } else if event.starts_with("sleep ") || event.starts_with("select read=") {
            lanes.add(
                "the loop",
                Mark::Wait {
                    start: time,
                    end: next,
                },
            );
            if !with_tasks {
                for fd in FDS.captures_iter(event).flat_map(|list| fd_list(&list[1])) {
                    lanes.add(
                        &format!("fd {fd}"),
                        Mark::Wait {
                            start: time,
                            end: next,
                        },
                    );
                }
            }
        } else if let Some(answer) = event.strip_prefix("select -> ") {
            if !with_tasks {
                for fd in FDS.captures_iter(answer).flat_map(|list| fd_list(&list[1])) {
                    lanes.add(&format!("fd {fd}"), Mark::Run(time));
                }
            }
        } else if with_tasks {
            continue;
        } else if let Some(due) = DUE.captures(event) {
            let end = time + due[2].parse::<f64>().unwrap();
            lanes.add(
                &format!("timer {}", &due[1]),
                Mark::Wait { start: time, end },
            );
        } else if let Some(name) = event
            .strip_prefix("timer ")
            .and_then(|e| e.strip_suffix(" is due"))
        {
            lanes.add(&format!("timer {name}"), Mark::Run(time));
        } else if let Some(name) = event.strip_prefix("run ") {
            lanes.add(name, Mark::Run(time));
        }
    }
    lanes
}

/// Ends the wait of `lane`'s task, if it waits, at `time`.
fn close_wait(lanes: &mut Lanes, pending: &mut Vec<(String, f64)>, lane: &str, time: f64) {
    if let Some(at) = pending.iter().position(|(name, _)| name == lane) {
        let (_, start) = pending.swap_remove(at);
        lanes.add(lane, Mark::Wait { start, end: time });
    }
}

fn fd_list(list: &str) -> Vec<u32> {
    list.split(',').filter_map(|fd| fd.parse().ok()).collect()
}

/// The picture of the last trace in `output`, as an SVG document.
pub fn render(output: &str, title: &str) -> String {
    const LABEL: f64 = 230.0;
    const PLOT: f64 = 500.0;
    const LANE: f64 = 22.0;
    const TOP: f64 = 34.0;
    let events = last_trace(output);
    let lanes = lanes(&events);
    let end = events.iter().map(|(time, _)| *time).fold(0.0, f64::max);
    let span = [0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0]
        .into_iter()
        .find(|tick| end / tick <= 8.0)
        .unwrap_or(10.0);
    let scale_end = (end / span).ceil().max(1.0) * span;
    let x = |time: f64| LABEL + time / scale_end * PLOT;
    let height = TOP + LANE * lanes.0.len() as f64 + 40.0;
    let width = LABEL + PLOT + 20.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" "#,
            r#"height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" "#,
            r#"font-size="11">"#,
        ),
        width = width,
        height = height,
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="4" y="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let bottom = TOP + LANE * lanes.0.len() as f64;
    let ticks = (scale_end / span).round() as usize;
    for tick in 0..=ticks {
        let time = tick as f64 * span;
        let _ = writeln!(
            svg,
            concat!(
                r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{bottom}" stroke="#ddd"/><text "##,
                r##"x="{0:.1}" y="{1}" text-anchor="middle">{time:.2} s</text>"##,
            ),
            x(time),
            bottom + 14.0,
            TOP = TOP,
            bottom = bottom,
            time = time,
        );
    }
    for (row, (name, marks)) in lanes.0.iter().enumerate() {
        let y = TOP + LANE * row as f64;
        // An async fn's future is named `{{closure}}`: for a task, the function's name says
        // enough. A callback keeps its name as the trace shows it: two closures of one function
        // are two lanes, and must read as two.
        let shown = match name.starts_with("Task-") {
            true => name.replace("::{{closure}}", ""),
            false => name.clone(),
        };
        let shown: String = shown.chars().take(38).collect();
        let _ = writeln!(
            svg,
            r#"<text x="4" y="{:.1}">{}</text>"#,
            y + 15.0,
            escape(&shown)
        );
        for mark in marks {
            let _ = match *mark {
                Mark::Wait { start, end } => writeln!(
                    svg,
                    concat!(
                        r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="8" fill="#bcd4ec">"##,
                        r##"<title>waits {:.2} s</title></rect>"##,
                    ),
                    x(start),
                    y + 7.0,
                    (x(end) - x(start)).max(1.0),
                    end - start
                ),
                Mark::Run(time) => writeln!(
                    svg,
                    concat!(
                        r##"<rect x="{:.1}" y="{:.1}" width="3" height="16" fill="#1f4e79">"##,
                        r##"<title>runs at {time:.2} s</title></rect>"##,
                    ),
                    x(time) - 1.5,
                    y + 3.0,
                    time = time,
                ),
                Mark::Wake(time) => writeln!(
                    svg,
                    concat!(
                        r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#e07b00">"##,
                        r##"<title>woken at {time:.2} s</title></circle>"##,
                    ),
                    x(time),
                    y + 11.0,
                    time = time,
                ),
            };
        }
    }
    let legend = bottom + 32.0;
    let _ = write!(
        svg,
        concat!(
            r##"<rect x="4" y="{0}" width="3" height="12" fill="#1f4e79"/><text x="12" "##,
            r##"y="{1}">runs (a callback, a task's step, an answer)</text><rect x="260" y="{2}" "##,
            r##"width="24" height="8" fill="#bcd4ec"/><text x="290" y="{1}">waits</text>"##,
        ),
        legend - 10.0,
        legend,
        legend - 7.0,
    );
    // Only a trace with tasks has wakes: a legend for what the picture never shows would puzzle.
    let woken = lanes.0.iter().flat_map(|(_, marks)| marks);
    if woken.into_iter().any(|mark| matches!(mark, Mark::Wake(_))) {
        let _ = write!(
            svg,
            concat!(
                r##"<circle cx="344" cy="{0}" r="4" fill="#e07b00"/>"##,
                r##"<text x="352" y="{1}">woken</text>"##,
            ),
            legend - 3.0,
            legend
        );
    }
    svg.push('\n');
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
