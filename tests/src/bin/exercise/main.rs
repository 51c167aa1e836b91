//! `just exercise N` and `just check N`: exercises that check themselves.
//!
//! The functions that carry step N's idea are listed here, outside `steps/`, so the steps hold
//! no exercise marks and the book's diffs stay clean. `exercise N` replaces each one's body with
//! `todo!("hint")`, which still compiles; `check N` runs step N's behaviour tests and says
//! which rules hold; `exercise N --restore` puts back the bodies from git's `HEAD`.

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, ExitCode};

use workshop_tests::workspace_root;

/// One function to write, found in `file` by `signature`, which occurs there once.
struct Exercise {
    file: &'static str,
    signature: &'static str,
    hint: &'static str,
}

/// A step's exercises, and its behaviour tests: test binaries run with `filter`, which keeps
/// the tests of this step only (`""` for a binary that tests no other step).
struct Step {
    number: u8,
    exercises: &'static [Exercise],
    tests: &'static [(&'static str, &'static str)],
}

const STEPS: &[Step] = &[
    Step {
        number: 1,
        exercises: &[],
        tests: &[("step1", ""), ("demos", "step1_")],
    },
    Step {
        number: 2,
        exercises: &[],
        tests: &[("step2", ""), ("demos", "step2_")],
    },
    Step {
        number: 3,
        exercises: &[
            Exercise {
                file: "steps/03-callbacks/src/lib.rs",
                signature: "pub fn call_soon(",
                hint: "call_soon: refuse a closed loop (check_closed), wrap the callback in a \
                       Handle, push a clone of it at the back of the ready queue, return it",
            },
            Exercise {
                file: "steps/03-callbacks/src/lib.rs",
                signature: "fn run_once(",
                hint: "run_once: count this iteration (inner.iteration), then the handles ready \
                       now; pop that many from the front, skip the cancelled ones, trace each \
                       (`run {name}`, with Name) and run it",
            },
        ],
        tests: &[("callbacks", "step3_callbacks::"), ("demos", "step3_")],
    },
    Step {
        number: 4,
        exercises: &[
            Exercise {
                file: "steps/04-timers/src/lib.rs",
                signature: "pub fn call_at(",
                hint: "call_at: refuse a closed loop, wrap the callback in a Handle, push it on \
                       the timer heap (`scheduled`) for `when`, which gives its TimerHandle; \
                       trace `timer {name} due in {Until(when)}`, return the TimerHandle",
            },
            Exercise {
                file: "steps/04-timers/src/lib.rs",
                signature: "fn timeout(",
                hint: "timeout: zero when callbacks are ready or the loop is stopping; else wait \
                       until the heap's next deadline (saturating at zero), or forever (None) \
                       with no timer",
            },
            Exercise {
                file: "steps/04-timers/src/lib.rs",
                signature: "fn run_once(",
                hint: "run_once: count this iteration first, as step 3 does; purge the heap's \
                       cancelled timers, wait(timeout()), move every timer due by now (pop_due) to the \
                       back of the ready queue, tracing `timer {name} is due`, then run the \
                       ready callbacks as step 3 does",
            },
        ],
        tests: &[
            ("callbacks", "step4_timers::"),
            ("timers", "step4_timers::"),
            ("demos", "step4_"),
        ],
    },
    Step {
        number: 5,
        exercises: &[
            Exercise {
                file: "steps/05-futures/src/future.rs",
                signature: "fn finish(",
                hint: "finish: a done future refuses (Error::AlreadyDone); otherwise store the \
                       outcome, then schedule every done callback, taken out of the list",
            },
            Exercise {
                file: "steps/05-futures/src/future.rs",
                signature: "pub fn add_done_callback(",
                hint: "add_done_callback: if the future is done, schedule the callback now \
                       (boxed); otherwise keep it in the future's list of callbacks",
            },
            Exercise {
                file: "steps/05-futures/src/lib.rs",
                signature: "pub fn sleep(",
                hint: "sleep: create a future, and with call_later set its result after `delay` \
                       (ignore the error if it was cancelled meanwhile); return the future",
            },
        ],
        tests: &[
            ("callbacks", "step5_futures::"),
            ("timers", "step5_futures::"),
            ("futures", "step5_futures::"),
            ("demos", "step5_"),
        ],
    },
    Step {
        number: 6,
        exercises: &[
            Exercise {
                file: "steps/06-select/src/lib.rs",
                signature: "fn watch(",
                hint: "watch: refuse a closed loop; register the source with the selector if its \
                       descriptor is not watched yet, or modify it to add the direction; insert \
                       a Watch into the direction's map, dropping the replaced one after the \
                       borrow; trace `add_{Direction} fd {fd} {Name}`",
            },
            Exercise {
                file: "steps/06-select/src/lib.rs",
                signature: "fn wait(",
                hint: "wait: trace the question, `select read={Fds} write={Fds} \
                       timeout={Timeout}`; ask the selector to select(timeout) (panic if it \
                       fails) and trace its answer, `select -> {Answer}`; for each ready \
                       descriptor schedule_watch its reader if readable, then its writer if \
                       writable",
            },
        ],
        tests: &[
            ("callbacks", "step6_select::"),
            ("timers", "step6_select::"),
            ("futures", "step6_select::"),
            ("select", "step6_select::"),
            ("demos", "step6_"),
        ],
    },
    Step {
        number: 7,
        exercises: &[
            Exercise {
                file: "steps/07-tasks/src/task.rs",
                signature: "fn wakeup(self: Rc<Self>) {",
                hint: "wakeup: unless a step is already scheduled (set `scheduled`, see what it \
                       was), schedule a closure that steps this task, with call_soon_named and \
                       the task's name, so that the trace shows the task's async fn",
            },
            Exercise {
                file: "steps/07-tasks/src/task.rs",
                signature: "fn schedule_woken_tasks(",
                hint: "schedule_woken_tasks: take the ids out of the inbox (if the loop has one), \
                       and wake up each task still in the loop's map (clone it out first)",
            },
            Exercise {
                file: "steps/07-tasks/src/wait.rs",
                signature: "fn poll_done(",
                hint: "poll_done: Ready if the future is done; else give this awaiter a number \
                       once, store or update its waker among the future's awaiters, tell the \
                       current task how to cancel (awaited_by_current_task), and be Pending",
            },
        ],
        tests: &[
            ("callbacks", "step7_tasks::"),
            ("timers", "step7_tasks::"),
            ("futures", "step7_tasks::"),
            ("select", "step7_tasks::"),
            ("tasks", ""),
            ("demos", "step7_"),
        ],
    },
];

const USAGE: &str = "usage: exercise N [--restore] | exercise check N    (N from 1 to 7)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (command, number) = match args.as_slice() {
        ["--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["check", n] => ("check", *n),
        [n] => ("exercise", *n),
        [n, "--restore"] => ("restore", *n),
        _ => return fail(USAGE),
    };
    let Some(step) = STEPS.iter().find(|step| step.number.to_string() == number) else {
        return fail(&format!("there is no step {number}: the steps are 1 to 7"));
    };
    let outcome = match command {
        "check" => check(step),
        "exercise" if step.exercises.is_empty() => Err(format!(
            "step {number} has no exercises: they start at step 3"
        )),
        "exercise" => edit(step, Edit::Exercise),
        _ => edit(step, Edit::Restore),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("exercise: {message}");
    ExitCode::FAILURE
}

#[derive(Clone, Copy, PartialEq)]
enum Edit {
    Exercise,
    Restore,
}

/// Replaces each exercise's body, with its hint or with the body in git's `HEAD`.
fn edit(step: &Step, edit: Edit) -> Result<(), String> {
    let root = workspace_root();
    for exercise in step.exercises {
        let path = root.join(exercise.file);
        let source = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", exercise.file))?;
        let (start, end) = body(&source, exercise)?;
        let current = &source[start..end];
        let name = function_name(exercise);
        let replacement = match edit {
            Edit::Exercise if is_todo(current) => {
                println!("{}: {name} is already an exercise", exercise.file);
                continue;
            }
            Edit::Exercise => todo_body(&source, start, exercise.hint),
            Edit::Restore => {
                let original = committed(exercise.file)?;
                let (start, end) = body(&original, exercise)?;
                original[start..end].to_string()
            }
        };
        if replacement == current {
            println!("{}: {name} is already the solution", exercise.file);
            continue;
        }
        let edited = format!("{}{replacement}{}", &source[..start], &source[end..]);
        fs::write(&path, edited).map_err(|e| format!("{}: {e}", exercise.file))?;
        let verb = if edit == Edit::Exercise {
            "is now yours to write"
        } else {
            "restored"
        };
        println!("{}: {name} {verb}", exercise.file);
    }
    if edit == Edit::Exercise {
        let n = step.number;
        println!(
            "\nWrite them, then `just check {n}`. The solution: `just exercise {n} --restore`."
        );
    }
    Ok(())
}

fn function_name(exercise: &Exercise) -> &str {
    let after_fn = exercise
        .signature
        .split("fn ")
        .nth(1)
        .unwrap_or(exercise.signature);
    after_fn.split(['(', '<']).next().unwrap_or(after_fn)
}

fn is_todo(body: &str) -> bool {
    body.trim_start_matches('{')
        .trim_start()
        .starts_with("todo!(")
}

/// The file as git's `HEAD` has it: the solution, as long as the exercise is not committed.
fn committed(file: &str) -> Result<String, String> {
    let output = Command::new("git")
        .current_dir(workspace_root())
        .args(["show", &format!("HEAD:{file}")])
        .output()
        .map_err(|e| format!("git cannot be started: {e}"))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        return Err(format!("git has no {file} in HEAD: {why}"));
    }
    String::from_utf8(output.stdout).map_err(|_| format!("{file} in HEAD is not UTF-8"))
}

/// A body that is only `todo!` with the hint, wrapped as rustfmt would leave it.
fn todo_body(source: &str, body_start: usize, hint: &str) -> String {
    let line_start = source[..body_start].rfind('\n').map_or(0, |i| i + 1);
    let indent: String = source[line_start..]
        .chars()
        .take_while(|c| *c == ' ')
        .collect();
    // The hint is a format string: braces print as themselves only when doubled.
    let hint = hint
        .replace('{', "{{")
        .replace('}', "}}")
        .replace('"', "\\\"");
    let mut lines = vec![String::new()];
    for word in hint.split(' ') {
        let line = lines.last_mut().expect("there is a line");
        if !line.is_empty() && indent.len() + 8 + line.len() + word.len() > 96 {
            line.push_str(" \\");
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    let mut body = format!("{{\n{indent}    todo!(\n");
    for (i, line) in lines.iter().enumerate() {
        let quote = if i == 0 { "\"" } else { " " };
        body.push_str(&format!("{indent}        {quote}{line}"));
        body.push_str(if i + 1 == lines.len() { "\"\n" } else { "\n" });
    }
    body.push_str(&format!("{indent}    )\n{indent}}}"));
    body
}

/// The byte range of the exercise's function body, from `{` to its matching `}` included.
fn body(source: &str, exercise: &Exercise) -> Result<(usize, usize), String> {
    let found: Vec<_> = source.match_indices(exercise.signature).collect();
    let [(at, _)] = found.as_slice() else {
        return Err(format!(
            "{}: `{}` should occur once, and occurs {} times",
            exercise.file,
            exercise.signature,
            found.len()
        ));
    };
    matching_braces(source, *at).ok_or_else(|| {
        format!(
            "{}: no body found after `{}`",
            exercise.file, exercise.signature
        )
    })
}

/// From `from`, the first `{` in code and its matching `}`, skipping what is inside comments,
/// strings and character literals (a lifetime's `'` opens nothing).
fn matching_braces(source: &str, from: usize) -> Option<(usize, usize)> {
    let chars: Vec<(usize, char)> = source[from..]
        .char_indices()
        .map(|(i, c)| (from + i, c))
        .collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let (mut i, mut depth, mut open) = (0, 0usize, None);
    while let Some(c) = at(i) {
        match c {
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => {
                let mut nested = 0;
                loop {
                    match (at(i)?, at(i + 1)) {
                        ('/', Some('*')) => (nested, i) = (nested + 1, i + 1),
                        ('*', Some('/')) => (nested, i) = (nested - 1, i + 1),
                        _ => {}
                    }
                    i += 1;
                    if nested == 0 {
                        break;
                    }
                }
                continue;
            }
            'r' if matches!(at(i + 1), Some('"' | '#'))
                && !at(i.wrapping_sub(1)).is_some_and(|c| c.is_alphanumeric() || c == '_') =>
            {
                let hashes = (i + 1..).take_while(|&j| at(j) == Some('#')).count();
                i += 1 + hashes;
                if at(i) != Some('"') {
                    continue;
                }
                i += 1;
                while !(at(i)? == '"' && (1..=hashes).all(|k| at(i + k) == Some('#'))) {
                    i += 1;
                }
                i += hashes;
            }
            '"' => {
                i += 1;
                while at(i)? != '"' {
                    i += if at(i) == Some('\\') { 2 } else { 1 };
                }
            }
            '\'' if at(i + 1) == Some('\\') => {
                i += 2;
                while at(i + 1)? != '\'' {
                    i += 1;
                }
                i += 1;
            }
            '\'' if at(i + 2) == Some('\'') => i += 2,
            '{' => {
                open.get_or_insert(chars[i].0);
                depth += 1;
            }
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some((open?, chars[i].0 + 1));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Runs the step's behaviour tests, and prints each rule with whether it holds.
fn check(step: &Step) -> Result<(), String> {
    let mut broken = 0;
    let mut total = 0;
    for (binary, filter) in step.tests {
        let output = Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args([
                "test",
                "--quiet",
                "--package",
                "workshop-tests",
                "--test",
                binary,
            ])
            .args(["--", "--format", "pretty", filter])
            .output()
            .map_err(|e| format!("cargo cannot be started: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let order = fs::read_to_string(workspace_root().join(format!("tests/tests/{binary}.rs")))
            .unwrap_or_default();
        let rules = rules(&stdout, &order, binary);
        if rules.is_empty() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "`cargo test --test {binary}` ran no test:\n{stderr}"
            ));
        }
        println!("{binary}:");
        for (name, failure) in &rules {
            total += 1;
            match failure {
                None => println!("  ✓ {name}"),
                Some(why) => {
                    broken += 1;
                    println!("  ✗ {name}\n      {why}");
                }
            }
        }
    }
    let n = step.number;
    if broken == 0 {
        println!("\nStep {n}: all {total} rules hold.");
        Ok(())
    } else {
        Err(format!(
            "step {n}: {broken} of {total} rules do not hold yet"
        ))
    }
}

/// Each rule the output names, in readable words, with why it failed if it did and the command
/// that shows the whole failure, in the order of the test file `order` (test binary `binary`).
/// A rule that runs on several selectors holds when it holds on all.
fn rules(stdout: &str, order: &str, binary: &str) -> Vec<(String, Option<String>)> {
    let mut rules = BTreeMap::new();
    for line in stdout.lines() {
        let Some((test, result)) = line
            .strip_prefix("test ")
            .and_then(|line| line.rsplit_once(" ... "))
        else {
            continue;
        };
        let failure = match result {
            "ok" => None,
            "ignored" => continue,
            _ => {
                let why = why_failed(stdout, test);
                // A function still to write says all there is to say.
                Some(if why.ends_with(TODO) {
                    why
                } else {
                    let command =
                        format!("cargo test -p workshop-tests --test {binary} -- --exact {test}");
                    format!("{why}\n      (all of it: {command})")
                })
            }
        };
        let rule = test.rsplit("::").next().unwrap_or(test);
        let position = order.find(&format!("fn {rule}(")).unwrap_or(usize::MAX);
        let before = rules.entry((position, readable(rule))).or_insert(None);
        if before.is_none() {
            *before = failure;
        }
    }
    rules
        .into_iter()
        .map(|((_, rule), failure)| (rule, failure))
        .collect()
}

/// `a_loop_s_queue` as `a loop's queue`.
fn readable(rule: &str) -> String {
    let words = format!(" {} ", rule.replace('_', " "));
    words.replace(" s ", "'s ").trim().to_string()
}

/// The first line of the panic message libtest printed for `test`.
fn why_failed(stdout: &str, test: &str) -> String {
    let section = format!("---- {test} stdout ----");
    let message: Vec<&str> = stdout
        .split(&section)
        .nth(1)
        .map(|rest| {
            let lines = rest
                .lines()
                .skip_while(|line| !line.contains("panicked at"));
            // The message, with an assertion's `left:` and `right:`, up to the backtrace or
            // the note about it.
            let ends = ["note:", "stack backtrace:", "---- "];
            let message = lines.skip(1).take_while(|line| {
                !line.is_empty() && !ends.iter().any(|end| line.starts_with(end))
            });
            message.take(MESSAGE_LINES).collect()
        })
        .unwrap_or_default();
    let Some(first) = message.first() else {
        return "failed".to_string();
    };
    if let Some(hint) = first.trim().strip_prefix("not yet implemented: ") {
        let function = hint.split(':').next().unwrap_or(hint);
        return format!("{function}{TODO}");
    }
    // Long lines are wrapped at 90 characters, so the message fits the terminal.
    let mut lines: Vec<String> = Vec::new();
    for line in &message {
        let mut wrapped = String::new();
        for word in line.split_whitespace() {
            if !wrapped.is_empty() && wrapped.chars().count() + 1 + word.chars().count() > 90 {
                lines.push(std::mem::take(&mut wrapped));
            }
            if !wrapped.is_empty() {
                wrapped.push(' ');
            }
            wrapped.push_str(word);
        }
        lines.push(wrapped);
    }
    lines.truncate(MESSAGE_LINES * 2);
    lines.join("\n      ")
}

/// How a rule whose function is still to write fails.
const TODO: &str = " is still todo!()";

/// How many lines of a failing rule's message `just check` reads; wrapped, it shows twice as
/// many at most.
const MESSAGE_LINES: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_in_strings_chars_comments_and_lifetimes_are_not_code() {
        let source = r##"fn f<'a>(x: &'a str) -> char {
    let _ = "}{\"}"; // }
    /* { /* } */ { */
    let _ = r#"}"{"#;
    let _ = ['{', '\'', '\u{7d}'];
    '}'
}
fn g() {}"##;
        let (start, end) = matching_braces(source, 0).unwrap();
        assert_eq!(&source[start..start + 1], "{");
        assert!(source[end..].starts_with("\nfn g"));
    }

    #[test]
    fn every_exercise_names_one_function_with_a_body() {
        for step in STEPS {
            for exercise in step.exercises {
                let path = workspace_root().join(exercise.file);
                let source = fs::read_to_string(path).unwrap();
                let (start, end) = body(&source, exercise).unwrap();
                assert!(!is_todo(&source[start..end]), "{}", exercise.signature);
            }
        }
    }

    #[test]
    fn a_todo_body_is_recognised_and_fits_the_width() {
        let source = "    fn f(&self) {\n        1\n    }\n";
        let exercise = &STEPS[2].exercises[1];
        let (start, _) = matching_braces(source, 0).unwrap();
        let todo = todo_body(source, start, exercise.hint);
        assert!(is_todo(&todo));
        assert!(todo.lines().all(|line| line.len() <= 100), "{todo}");
        assert!(todo.contains("{{name}}"), "braces escaped: {todo}");
    }

    #[test]
    fn rules_read_as_words_in_the_test_file_s_order_and_fail_on_any_selector() {
        let stdout = "test m::poll::b_rule ... ok\ntest m::select::b_rule ... FAILED\n\
                      test m::a_loop_s_rule ... ok\n\n---- m::select::b_rule stdout ----\n\
                      thread 'x' panicked at src/lib.rs:1:1:\nnot yet implemented: wait: do it\n";
        let order = "fn b_rule() {}\nfn a_loop_s_rule() {}";
        let rules = rules(stdout, order, "file");
        assert_eq!(
            rules,
            [
                (
                    "b rule".to_string(),
                    Some("wait is still todo!()".to_string())
                ),
                ("a loop's rule".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_failed_assertion_shows_its_values_and_how_to_see_all_of_it() {
        let stdout = "test c_rule ... FAILED\n\n---- c_rule stdout ----\n\
                      thread 'c_rule' panicked at tests/x.rs:1:1:\n\
                      assertion `left == right` failed\n  left: [0, 1]\n right: [0, 2]\n\
                      note: run with `RUST_BACKTRACE=1`\n";
        let rules = rules(stdout, "fn c_rule() {}", "file");
        let why = rules[0].1.as_deref().unwrap();
        assert_eq!(
            why.lines().map(str::trim).collect::<Vec<_>>(),
            [
                "assertion `left == right` failed",
                "left: [0, 1]",
                "right: [0, 2]",
                "(all of it: cargo test -p workshop-tests --test file -- --exact c_rule)",
            ]
        );
    }
}
