//! `just exercise N` and `just check N`: exercises that check themselves.
//!
//! `exercise N` replaces the body of each function that carries step N's idea (listed in
//! `workshop_tests::exercise`) with `todo!("hint")`, which still compiles; `check N` runs step
//! N's behaviour tests and says which rules hold, each within a bound; `exercise N --restore`
//! puts back the bodies from git's `HEAD`.

mod check;
mod message;
mod processes;

use std::fs;
use std::process::{Command, ExitCode};

use workshop_tests::exercise::{STEPS, Step, body, function_name, is_todo};
use workshop_tests::workspace_root;

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
        "check" => check::check(step),
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

#[cfg(test)]
mod tests {
    use workshop_tests::exercise::matching_braces;

    use super::*;

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
}
