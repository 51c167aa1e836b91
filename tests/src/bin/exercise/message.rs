//! What a failing rule says: the panic's message as libtest printed it, with an assertion's two
//! values named for what they are, and wrapped to fit a terminal.

/// Why a test failed, as `check` prints it.
#[derive(Debug, PartialEq)]
pub enum Why {
    /// It ran into a function still to write: this one.
    Todo(String),
    /// Its panic said this, in lines ready to print.
    Said(Vec<String>),
}

/// How many lines of a panic's message `check` reads.
const MESSAGE_LINES: usize = 4;

/// How wide a printed line may be, and how many lines one line of the message may wrap to.
const WIDTH: usize = 90;
const WRAPPED_LINES: usize = 3;

/// Why `test` failed, from the section libtest printed for it in `stdout`.
///
/// Every behaviour test writes `assert_eq!(seen, expected)`: libtest's `left` is what was seen
/// and `right` what was expected, and they are printed so, expected first.
pub fn why_failed(stdout: &str, test: &str) -> Why {
    let section = format!("---- {test} stdout ----");
    let ends = ["note:", "stack backtrace:", "---- "];
    let message: Vec<&str> = stdout
        .split(&section)
        .nth(1)
        .map(|rest| {
            let lines = rest
                .lines()
                .skip_while(|line| !line.contains("panicked at"));
            lines
                .skip(1)
                .take_while(|line| {
                    !line.is_empty() && !ends.iter().any(|end| line.starts_with(end))
                })
                .take(MESSAGE_LINES)
                .collect()
        })
        .unwrap_or_default();
    if let Some(function) = message.iter().find_map(|line| todo_in(line)) {
        return Why::Todo(function);
    }
    let (mut lines, mut seen, mut expected) = (Vec::new(), None, None);
    for line in &message {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("assertion `left == right` failed") {
            let custom = rest.trim_start_matches(':').trim();
            if !custom.is_empty() {
                lines.push(custom.to_string());
            }
        } else if let Some(value) = trimmed.strip_prefix("left: ") {
            seen = Some(value);
        } else if let Some(value) = trimmed.strip_prefix("right: ") {
            expected = Some(value);
        } else {
            lines.push(line.to_string());
        }
    }
    if let Some(expected) = expected {
        lines.push(format!("expected: {expected}"));
    }
    if let Some(seen) = seen {
        lines.push(format!("    seen: {seen}"));
    }
    if lines.is_empty() {
        lines.push("failed".to_string());
    }
    Why::Said(lines.iter().flat_map(|line| wrap(line)).collect())
}

/// The function that a `todo!` of `just exercise` names, if `line` is its panic.
fn todo_in(line: &str) -> Option<String> {
    let (_, hint) = line.split_once("not yet implemented: ")?;
    Some(hint.split(':').next().unwrap_or(hint).trim().to_string())
}

/// `line` in lines of [`WIDTH`] characters at most, broken between words, cut after
/// [`WRAPPED_LINES`] lines; an indent is kept on every line.
fn wrap(line: &str) -> Vec<String> {
    let indent = &line[..line.len() - line.trim_start().len()];
    let mut lines: Vec<String> = Vec::new();
    let mut current = indent.to_string();
    for word in line.split_whitespace() {
        let length = current.chars().count();
        if length > indent.len() && length + 1 + word.chars().count() > WIDTH {
            lines.push(std::mem::replace(&mut current, indent.to_string()));
        }
        if current.len() > indent.len() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    if lines.len() > WRAPPED_LINES {
        lines.truncate(WRAPPED_LINES);
        lines[WRAPPED_LINES - 1].push_str(" …");
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_assertion_says_what_was_expected_and_what_was_seen() {
        let stdout = "test c_rule ... FAILED\n\n---- c_rule stdout ----\n\
                      thread 'c_rule' panicked at tests/x.rs:1:1:\n\
                      assertion `left == right` failed: the order\n  left: [0, 2]\n right: [0, 1]\n\
                      note: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            why_failed(stdout, "c_rule"),
            Why::Said(vec![
                "the order".to_string(),
                "expected: [0, 1]".to_string(),
                "    seen: [0, 2]".to_string(),
            ])
        );
    }

    #[test]
    fn a_todo_is_found_in_a_demo_s_message_too() {
        let stdout = "---- d stdout ----\nthread 'd' panicked at tests/src/lib.rs:1:1:\n\
                      `step3-callbacks` panicked at steps/03-callbacks/src/lib.rs:58:9:\n\
                      not yet implemented: call_soon: refuse a closed loop\n\n";
        assert_eq!(why_failed(stdout, "d"), Why::Todo("call_soon".to_string()));
    }

    #[test]
    fn a_long_value_is_wrapped_then_cut() {
        let long = format!("  left: [{}]", vec!["12345"; 100].join(", "));
        let stdout = format!(
            "---- t stdout ----\nthread 't' panicked at x.rs:1:1:\n\
             assertion `left == right` failed\n{long}\n right: []\n"
        );
        let Why::Said(lines) = why_failed(&stdout, "t") else {
            panic!("not a todo");
        };
        assert_eq!(lines[0], "expected: []");
        assert_eq!(lines.len(), 1 + WRAPPED_LINES);
        assert!(lines.iter().all(|line| line.chars().count() <= WIDTH + 2));
        assert!(lines[WRAPPED_LINES].ends_with(" …"));
    }
}
