//! `check N`: builds step N's behaviour tests, runs them, and prints each rule with whether it
//! holds, as the results come.
//!
//! A learner's mistake can make a rule hang (a task never woken, a loop that never stops), so
//! every rule runs within [`BOUND`], and one still running then is reported as stuck. Every test
//! program starts at once, with all its tests at once: the check takes as long as its slowest
//! rule, and rules that hang cost the bound once, not once each.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use workshop_tests::exercise::{Step, readable};
use workshop_tests::rules::section;
use workshop_tests::{PACKAGES, workspace_root};

use crate::message::{Why, why_failed};
use crate::processes::kill_tree;

/// How long a rule may run before `check` calls it stuck: many times what the slowest rule
/// takes on a loaded 2-core laptop.
pub const BOUND: Duration = Duration::from_secs(30);

/// How long `check` stays silent at most: then it says what it is waiting for.
const PATIENCE: Duration = Duration::from_secs(5);

/// Builds and runs the step's behaviour tests, and prints each rule with whether it holds.
pub fn check(step: &Step) -> Result<(), String> {
    let started = Instant::now();
    let programs = build(step)?;
    let mut groups = Vec::new();
    for (binary, filter) in step.tests {
        let Some(program) = programs.get(*binary) else {
            return Err(format!("cargo built no test program `{binary}`"));
        };
        groups.push(Group::start(binary, filter, program)?);
    }
    let (mut broken, mut total) = (0, 0);
    for group in groups {
        println!("{}:", group.binary);
        let (group_broken, group_total) = group.report(step.number);
        broken += group_broken;
        total += group_total;
    }
    let (n, seconds) = (step.number, started.elapsed().as_secs_f64());
    if broken == 0 {
        println!("\nStep {n}: all {total} rules hold ({seconds:.1} s).");
        Ok(())
    } else {
        println!();
        Err(format!(
            "step {n}: {broken} of {total} rules do not hold yet ({seconds:.1} s)"
        ))
    }
}

/// What cargo's two outputs say while it builds.
enum Cargo {
    /// A line of its JSON messages.
    Message(String),
    /// A line of its status, such as `Compiling step7-tasks v0.1.0 (…)`.
    Status(String),
    /// The end of one of the two.
    End,
}

/// Builds the step's test programs, and the steps' programs that the demo tests run, with one
/// cargo command, so that cargo builds them side by side; returns each test program's path.
/// It says what it compiles, at most every [`PATIENCE`].
fn build(step: &Step) -> Result<HashMap<String, PathBuf>, String> {
    let format = if std::io::stdout().is_terminal() {
        "json-diagnostic-rendered-ansi"
    } else {
        "json"
    };
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(workspace_root())
        .args(["build", "--message-format", format, "--bins"]);
    for (binary, _) in step.tests {
        command.args(["--test", binary]);
    }
    for package in ["workshop-tests"].iter().chain(&PACKAGES) {
        command.args(["--package", package]);
    }
    let mut cargo = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo cannot be started: {e}"))?;
    let (sender, said) = mpsc::channel();
    let stdout = cargo.stdout.take().expect("cargo's stdout is piped");
    let stderr = cargo.stderr.take().expect("cargo's stderr is piped");
    forward_lines(stdout, sender.clone(), Cargo::Message, Cargo::End);
    forward_lines(stderr, sender, Cargo::Status, Cargo::End);
    let started = Instant::now();
    let (mut programs, mut errors, mut other) = (HashMap::new(), Vec::new(), Vec::new());
    let (mut compiling, mut ends) = (Vec::new(), 0);
    let mut last_word: Option<Instant> = None;
    while ends < 2 {
        let wait = last_word.map_or(PATIENCE, |said| PATIENCE.saturating_sub(said.elapsed()));
        match said.recv_timeout(wait) {
            Ok(Cargo::Message(line)) => {
                let message: Value = serde_json::from_str(&line).unwrap_or_default();
                if let Some((name, path)) = test_program(&message) {
                    programs.insert(name, path);
                } else if message["message"]["level"] == "error" {
                    errors.extend(message["message"]["rendered"].as_str().map(str::to_string));
                }
            }
            Ok(Cargo::Status(line)) => match line.trim().strip_prefix("Compiling ") {
                Some(package) => {
                    compiling.push(package.split(' ').next().unwrap_or(package).to_string());
                    if last_word.is_none() {
                        println!("compiling: {}", compiling.join(", "));
                        compiling.clear();
                        last_word = Some(Instant::now());
                    }
                }
                None => other.push(line),
            },
            Ok(Cargo::End) => ends += 1,
            Err(RecvTimeoutError::Timeout) if last_word.is_some() => {
                let seconds = started.elapsed().as_secs();
                let crates = match compiling.is_empty() {
                    true => String::new(),
                    false => format!(": {}", compiling.join(", ")),
                };
                println!("  … still compiling after {seconds} s{crates}");
                compiling.clear();
                last_word = Some(Instant::now());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = cargo
        .wait()
        .map_err(|e| format!("cargo cannot be waited for: {e}"))?;
    if status.success() {
        return Ok(programs);
    }
    let n = step.number;
    let why = if errors.is_empty() {
        other.join("\n")
    } else {
        errors.join("")
    };
    Err(format!(
        "step {n} does not compile yet:\n\n{why}\nstep {n} does not compile yet (above)"
    ))
}

/// A test program that cargo's `message` says it built: its name and its path.
fn test_program(message: &Value) -> Option<(String, PathBuf)> {
    let is_test = message["target"]["kind"]
        .as_array()?
        .iter()
        .any(|kind| *kind == "test");
    let name = message["target"]["name"].as_str()?;
    let path = message["executable"].as_str()?;
    is_test.then(|| (name.to_string(), PathBuf::from(path)))
}

/// Sends each line of `output` down `sender`, wrapped by `line`, then `end`, on a thread of
/// its own: a pipe that nobody drains would stop the program that writes to it.
fn forward_lines<T: Send + 'static>(
    output: impl Read + Send + 'static,
    sender: mpsc::Sender<T>,
    line: fn(String) -> T,
    end: T,
) {
    thread::spawn(move || {
        for text in BufReader::new(output).lines() {
            let Ok(text) = text else { break };
            if sender.send(line(text)).is_err() {
                return;
            }
        }
        let _ = sender.send(end);
    });
}

/// One test program, running the tests of one step: a group of rules.
struct Group {
    binary: &'static str,
    program: PathBuf,
    /// The rules, in the order of the test file, each with its tests (one per selector, for
    /// the rules of `select.rs`).
    rules: Vec<(String, Vec<String>)>,
    run: Run,
}

/// A test program running, and what it printed so far.
struct Run {
    child: Child,
    lines: Receiver<Option<String>>,
    stdout: String,
    started: Instant,
}

/// How one test ended.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Passed,
    Failed,
    Ignored,
    /// Still running at the bound.
    Stuck,
    /// Its program ended without saying: it crashed.
    Lost,
}

impl Group {
    /// Lists the tests that `filter` selects, and starts them all at once.
    fn start(binary: &'static str, filter: &'static str, program: &Path) -> Result<Group, String> {
        let listed = test_command(program)
            .args(["--list", "--format", "terse", filter])
            .output()
            .map_err(|e| format!("`{binary}` cannot be started: {e}"))?;
        let listed = String::from_utf8_lossy(&listed.stdout);
        let tests: Vec<&str> = listed
            .lines()
            .filter_map(|line| line.strip_suffix(": test"))
            .collect();
        if tests.is_empty() {
            return Err(format!("`{binary}` has no test for this step"));
        }
        let order = fs::read_to_string(workspace_root().join(format!("tests/tests/{binary}.rs")))
            .unwrap_or_default();
        let rules = rules(&tests, &order);
        let threads = tests.len().to_string();
        let arguments = ["--format", "pretty", "--test-threads", &threads, filter];
        let run = Run::start(test_command(program).args(arguments))?;
        Ok(Group {
            binary,
            program: program.to_path_buf(),
            rules,
            run,
        })
    }

    /// Prints each rule as soon as it and the rules before it are settled, and a line of what
    /// it waits for at most every [`PATIENCE`]; returns how many rules do not hold, of how many.
    fn report(mut self, step: u8) -> (usize, usize) {
        let deadline = self.run.started + BOUND;
        let mut outcomes: HashMap<String, Outcome> = HashMap::new();
        let mut why: HashMap<String, Why> = HashMap::new();
        let (mut printed, mut broken, mut ended) = (0, 0, false);
        let mut last_word = Instant::now();
        while printed < self.rules.len() {
            let (rule, tests) = &self.rules[printed];
            let settled: Option<Vec<Outcome>> = tests
                .iter()
                .map(|test| outcomes.get(test).cloned())
                .collect();
            let failed = |outcomes: &[Outcome]| outcomes.contains(&Outcome::Failed);
            match settled {
                // A failure's message comes once its program has ended.
                Some(outcomes) if ended || !failed(&outcomes) => {
                    if !self.print_rule(rule, tests, &outcomes, &why, step) {
                        broken += 1;
                    }
                    printed += 1;
                    last_word = Instant::now();
                    continue;
                }
                _ => {}
            }
            let wake = (last_word + PATIENCE).min(deadline);
            match self
                .run
                .lines
                .recv_timeout(wake.saturating_duration_since(Instant::now()))
            {
                Ok(Some(line)) => {
                    if let Some((test, outcome)) = result(&line) {
                        outcomes.insert(test, outcome);
                    }
                    self.run.stdout.push_str(&line);
                    self.run.stdout.push('\n');
                }
                Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.run.child.wait();
                    self.settle(&mut outcomes, &mut why, Outcome::Lost);
                    ended = true;
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    kill_tree(&mut self.run.child);
                    self.settle(&mut outcomes, &mut why, Outcome::Stuck);
                    ended = true;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let running = self
                        .rules
                        .iter()
                        .filter(|(_, tests)| tests.iter().any(|test| !outcomes.contains_key(test)));
                    let running: Vec<&String> = running.map(|(rule, _)| rule).collect();
                    if let Some(first) = running.first() {
                        let seconds = self.run.started.elapsed().as_secs();
                        let more = match running.len() {
                            1 => String::new(),
                            n => format!(", and {} more", n - 1),
                        };
                        println!(
                            "      … still running after {seconds} s: {}{more}",
                            readable(first)
                        );
                    }
                    last_word = Instant::now();
                }
            }
        }
        (broken, self.rules.len())
    }

    /// Once the program has ended, or was killed: each test without an outcome gets
    /// `missing`, and each failed test its message, from the program's output or, for a
    /// program killed before it printed them, from a run of the failed tests alone.
    fn settle(
        &mut self,
        outcomes: &mut HashMap<String, Outcome>,
        why: &mut HashMap<String, Why>,
        missing: Outcome,
    ) {
        for (_, tests) in &self.rules {
            for test in tests {
                outcomes.entry(test.clone()).or_insert(missing.clone());
            }
        }
        let failed: Vec<&String> = outcomes
            .iter()
            .filter(|(_, outcome)| **outcome == Outcome::Failed)
            .map(|(test, _)| test)
            .collect();
        let mut stdout = std::mem::take(&mut self.run.stdout);
        if missing == Outcome::Stuck && !failed.is_empty() {
            let mut command = test_command(&self.program);
            command
                .args(["--format", "pretty", "--exact"])
                .args(&failed);
            if let Ok(mut again) = Run::start(&mut command) {
                stdout = again.output_within(BOUND);
            }
        }
        for test in failed {
            why.insert(test.clone(), why_failed(&stdout, test));
        }
    }

    /// Prints the rule with whether it holds; `true` if it does. A rule that does not hold
    /// says why, the section of the book that states it, and how to run it alone, unless it
    /// ran into a function still to write.
    fn print_rule(
        &self,
        rule: &str,
        tests: &[String],
        outcomes: &[Outcome],
        why: &HashMap<String, Why>,
        step: u8,
    ) -> bool {
        let name = readable(rule);
        let at = |wanted: Outcome| {
            let mut ended = tests.iter().zip(outcomes);
            ended
                .find(|(_, outcome)| **outcome == wanted)
                .map(|(test, _)| test)
        };
        let (test, lines, command) = if let Some(test) = at(Outcome::Failed) {
            match why.get(test) {
                Some(Why::Todo(function)) => {
                    (test, vec![format!("{function} is still todo!()")], None)
                }
                Some(Why::Said(lines)) => (test, lines.clone(), Some("all of it")),
                None => (test, vec!["failed".to_string()], Some("all of it")),
            }
        } else if let Some(test) = at(Outcome::Stuck) {
            let hint = match step {
                7 => "a task that is never woken? a loop that never stops?",
                _ => "a loop that never stops? a wait that nothing ends?",
            };
            let bound = BOUND.as_secs();
            (
                test,
                vec![format!("did not finish in {bound} s: {hint}")],
                Some("alone"),
            )
        } else if let Some(test) = at(Outcome::Lost) {
            let line = "its test program ended before it did: it crashed, or exited".to_string();
            (test, vec![line], Some("alone"))
        } else {
            println!("  ✓ {name}");
            return true;
        };
        println!("  ✗ {name}");
        for line in lines {
            println!("      {line}");
        }
        if let Some(section) = section(self.binary, rule) {
            println!("      the rule: {section}");
        }
        if let Some(label) = command {
            let binary = self.binary;
            println!(
                "      ({label}: cargo test -p workshop-tests --test {binary} -- --exact {test})"
            );
        }
        false
    }
}

impl Run {
    /// Starts `command`, its output read line by line on a thread of its own.
    fn start(command: &mut Command) -> Result<Run, String> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("a test program cannot be started: {e}"))?;
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("the tests' stdout is piped");
        forward_lines(stdout, sender, Some, None);
        Ok(Run {
            child,
            lines,
            stdout: String::new(),
            started: Instant::now(),
        })
    }

    /// Everything the program prints until it ends, or until `bound`, when it is killed.
    fn output_within(&mut self, bound: Duration) -> String {
        let deadline = self.started + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Some(line)) => {
                    self.stdout.push_str(&line);
                    self.stdout.push('\n');
                }
                Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {
                    kill_tree(&mut self.child);
                    break;
                }
            }
        }
        std::mem::take(&mut self.stdout)
    }
}

/// A test program, set to run as `cargo test` runs it, from its package's folder, and to print
/// a panic's message without a backtrace.
fn test_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(workspace_root().join("tests"))
        .env("RUST_BACKTRACE", "0");
    command
}

/// The test and its outcome, if `line` is libtest's result line for one.
fn result(line: &str) -> Option<(String, Outcome)> {
    let (test, outcome) = line.strip_prefix("test ")?.rsplit_once(" ... ")?;
    let test = test.strip_suffix(" - should panic").unwrap_or(test);
    let outcome = match outcome {
        "ok" => Outcome::Passed,
        "FAILED" => Outcome::Failed,
        outcome if outcome.starts_with("ignored") => Outcome::Ignored,
        _ => return None,
    };
    Some((test.to_string(), outcome))
}

/// The rules of `tests`, each with its tests (a rule of `select.rs` has one per selector), in
/// the order of the test file's source, `order`.
fn rules(tests: &[&str], order: &str) -> Vec<(String, Vec<String>)> {
    let mut rules: Vec<(String, Vec<String>)> = Vec::new();
    for test in tests {
        let rule = test.rsplit("::").next().unwrap_or(test);
        match rules.iter_mut().find(|(name, _)| name == rule) {
            Some((_, tests)) => tests.push(test.to_string()),
            None => rules.push((rule.to_string(), vec![test.to_string()])),
        }
    }
    rules.sort_by_key(|(rule, _)| order.find(&format!("fn {rule}(")).unwrap_or(usize::MAX));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_words_in_the_test_file_s_order_one_for_every_selector() {
        let tests = ["m::poll::b_rule", "m::a_loop_s_rule", "m::select::b_rule"];
        let order = "fn b_rule() {}\nfn a_loop_s_rule() {}";
        let rules = rules(&tests, order);
        let names: Vec<String> = rules.iter().map(|(rule, _)| readable(rule)).collect();
        assert_eq!(names, ["b rule", "a loop's rule"]);
        assert_eq!(rules[0].1, ["m::poll::b_rule", "m::select::b_rule"]);
    }

    #[test]
    fn libtest_s_result_lines_are_read() {
        let passed = result("test m::select::b_rule ... ok");
        assert_eq!(
            passed,
            Some(("m::select::b_rule".to_string(), Outcome::Passed))
        );
        assert!(result("test x ... FAILED") == Some(("x".to_string(), Outcome::Failed)));
        let panics = result("test p - should panic ... ok");
        assert_eq!(panics, Some(("p".to_string(), Outcome::Passed)));
        assert!(result("running 3 tests").is_none());
    }
}
