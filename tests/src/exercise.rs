//! The exercises of `just exercise N`, and the behaviour tests `just check N` runs: what the
//! `exercise` program edits and runs, and what the test of wrong answers (`tests/mutants.rs`)
//! needs to find the same functions.
//!
//! The functions that carry step N's idea are listed here, outside `steps/`, so the steps hold
//! no exercise marks and the book's diffs stay clean.

/// One function to write, found in `file` by `signature`, which occurs there once.
pub struct Exercise {
    /// The file, from the workspace's root.
    pub file: &'static str,
    /// What the function's definition starts with, up to its first parameter or its body.
    pub signature: &'static str,
    /// What the `todo!` that replaces the body says.
    pub hint: &'static str,
}

/// A step's exercises, and its behaviour tests: test binaries run with `filter`, which keeps
/// the tests of this step only (`""` for a binary that tests no other step).
pub struct Step {
    /// The step's number, 1 to 7.
    pub number: u8,
    /// The functions `just exercise N` empties.
    pub exercises: &'static [Exercise],
    /// The test binaries `just check N` runs, each with its filter, in the order they print.
    pub tests: &'static [(&'static str, &'static str)],
}

/// Every step, in order.
pub const STEPS: &[Step] = &[
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
                       was), schedule this task's next step with call_soon_step, which queues \
                       the task itself, so that the trace shows the task's async fn",
            },
            Exercise {
                file: "steps/07-tasks/src/task.rs",
                signature: "fn schedule_woken_tasks(",
                hint: "schedule_woken_tasks: take the ids out of the inbox (if the loop has one), \
                       and wake_task each of them",
            },
            Exercise {
                file: "steps/07-tasks/src/wait.rs",
                signature: "fn poll_done(",
                hint: "poll_done: Ready if the future is done; else give this awaiter a number \
                       and an `alive` token once, update its waker among the future's waiters or \
                       push it there (Waiter::Awaiter), the first time tell the current task how \
                       to cancel (awaited_by_current_task), and be Pending",
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

/// The function's name, from its signature: `call_soon` for `pub fn call_soon(`.
pub fn function_name(exercise: &Exercise) -> &str {
    let after_fn = exercise
        .signature
        .split("fn ")
        .nth(1)
        .unwrap_or(exercise.signature);
    after_fn.split(['(', '<']).next().unwrap_or(after_fn)
}

/// A rule's test function in readable words: `a_loop_s_queue` as `a loop's queue`.
pub fn readable(rule: &str) -> String {
    let words = format!(" {} ", rule.replace('_', " "));
    words.replace(" s ", "'s ").trim().to_string()
}

/// Whether `body` is only a `todo!`, as `just exercise N` leaves it.
pub fn is_todo(body: &str) -> bool {
    body.trim_start_matches('{')
        .trim_start()
        .starts_with("todo!(")
}

/// The byte range of the exercise's function body, from `{` to its matching `}` included.
pub fn body(source: &str, exercise: &Exercise) -> Result<(usize, usize), String> {
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
pub fn matching_braces(source: &str, from: usize) -> Option<(usize, usize)> {
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
}
