//! Wrong answers fail: each wrong version of an exercise's function listed in
//! `workshop_tests::mutants` is put in a copy of the workspace, and `just check N` must fail it,
//! naming the rule it breaks.
//!
//! The copy lives in `<target>/mutants/workspace` and builds into `<target>/mutants/target`,
//! apart from the workspace's own build (a step's program built from a wrong answer must never
//! replace the real one), and both are kept between runs, so that each build is incremental. A
//! round puts one wrong answer in each step at most, and runs the steps' checks at once: the
//! steps share no code, so their mistakes cannot hide each other, and the rounds whose mistakes
//! hang wait for the check's bound together.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use workshop_tests::exercise::{Exercise, STEPS, body, function_name, readable};
use workshop_tests::mutants::{MUTANTS, Mutant};
use workshop_tests::{PACKAGES, workspace_root};

/// Longer than a round can take, the check's own bound included: only a check that hangs
/// itself reaches it.
const ROUND_LIMIT: Duration = Duration::from_secs(300);

#[test]
fn every_wrong_answer_fails_just_check_with_its_rule() {
    let started = Instant::now();
    let mutants_dir = target_dir().join("mutants");
    let copy = mutants_dir.join("workspace");
    let target = mutants_dir.join("target");
    copy_workspace(&copy);
    let originals: Vec<(PathBuf, String)> = exercise_files()
        .into_iter()
        .map(|file| {
            let text = fs::read_to_string(workspace_root().join(&file)).unwrap();
            (file, text)
        })
        .collect();
    let mut problems = Vec::new();
    for round in rounds() {
        for (file, original) in &originals {
            let mut text = original.clone();
            for mutant in round
                .iter()
                .filter(|mutant| exercise(mutant).file == file.as_path())
            {
                let (start, end) = body(&text, exercise(mutant)).unwrap();
                text.replace_range(start..end, mutant.body);
            }
            write_if_changed(&copy.join(file), &text);
        }
        let built = cargo(&copy, &target)
            .args(["build", "--quiet", "--bins"])
            .args(
                STEPS
                    .iter()
                    .flat_map(|step| step.tests)
                    .flat_map(|(binary, _)| ["--test", binary]),
            )
            .args(
                ["workshop-tests"]
                    .iter()
                    .chain(&PACKAGES)
                    .flat_map(|package| ["--package", package]),
            )
            .output()
            .expect("cargo can be started");
        if !built.status.success() {
            let mistakes: Vec<&str> = round.iter().map(|mutant| mutant.mistake).collect();
            problems.push(format!(
                "a round does not compile ({}):\n{}",
                mistakes.join("; "),
                String::from_utf8_lossy(&built.stderr)
            ));
            continue;
        }
        let checks = check_at_once(&target.join("debug/exercise"), &copy, &target, &round);
        for (mutant, output) in round.iter().zip(checks) {
            problems.extend(not_caught(mutant, &output));
        }
    }
    for (file, original) in &originals {
        write_if_changed(&copy.join(file), original);
    }
    assert!(
        problems.is_empty(),
        "{} of {} wrong answers were not caught as they should be ({:.0} s):\n\n{}",
        problems.len(),
        MUTANTS.len(),
        started.elapsed().as_secs_f64(),
        problems.join("\n\n")
    );
}

/// The exercise a wrong answer replaces the body of.
fn exercise(mutant: &Mutant) -> &'static Exercise {
    let step = STEPS.iter().find(|step| step.number == mutant.step);
    let exercises = step.map_or(&[][..], |step| step.exercises);
    let found = exercises
        .iter()
        .find(|exercise| function_name(exercise) == mutant.function);
    found.unwrap_or_else(|| panic!("step {} has no exercise `{}`", mutant.step, mutant.function))
}

/// The files that hold exercises.
fn exercise_files() -> BTreeSet<PathBuf> {
    let exercises = STEPS.iter().flat_map(|step| step.exercises);
    exercises
        .map(|exercise| PathBuf::from(exercise.file))
        .collect()
}

/// The wrong answers in rounds, one per step at most; in each step those that hang come first,
/// so that they share rounds.
fn rounds() -> Vec<Vec<&'static Mutant>> {
    let mut rounds: Vec<Vec<&Mutant>> = Vec::new();
    for step in STEPS {
        let mut mutants: Vec<&Mutant> = MUTANTS.iter().filter(|m| m.step == step.number).collect();
        mutants.sort_by_key(|mutant| !mutant.hangs);
        for (index, mutant) in mutants.into_iter().enumerate() {
            if rounds.len() == index {
                rounds.push(Vec::new());
            }
            rounds[index].push(mutant);
        }
    }
    rounds
}

/// Runs `just check N` in the copy for each wrong answer's step, all at once, and returns what
/// each printed.
fn check_at_once(exercise: &Path, copy: &Path, target: &Path, round: &[&Mutant]) -> Vec<Output> {
    let (sender, outputs_received) = mpsc::channel();
    for (index, mutant) in round.iter().enumerate() {
        let mut command = Command::new(exercise);
        command
            .current_dir(copy)
            .args(["check", &mutant.step.to_string()]);
        clean_environment(&mut command, copy, target);
        let sender = sender.clone();
        thread::spawn(move || {
            let output = command
                .output()
                .expect("the copy's exercise program starts");
            let _ = sender.send((index, output));
        });
    }
    drop(sender);
    let mut outputs: Vec<Option<Output>> = round.iter().map(|_| None).collect();
    let deadline = Instant::now() + ROUND_LIMIT;
    for _ in round {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((index, output)) = outputs_received.recv_timeout(left) else {
            panic!("a round of checks still runs after {ROUND_LIMIT:?}: the check hangs");
        };
        outputs[index] = Some(output);
    }
    outputs
        .into_iter()
        .map(|output| output.expect("each check's output"))
        .collect()
}

/// Why the check's `output` did not catch `mutant` as it should, if it did not: it must fail,
/// and show the mutant's rule as not holding, as stuck if the mistake hangs, and with the
/// section of the book that states it.
fn not_caught(mutant: &Mutant, output: &Output) -> Option<String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (binary, rule) = mutant.caught_by;
    let shown = format!("  ✗ {}\n", readable(rule));
    let said = stdout.split(&shown).nth(1).map(|rest| {
        let lines = rest.lines().take_while(|line| line.starts_with("      "));
        lines.collect::<Vec<_>>().join("\n")
    });
    let why = match &said {
        _ if output.status.success() => "the check passed it",
        None => "its rule holds",
        Some(said) if mutant.hangs != said.contains("did not finish in") => match mutant.hangs {
            true => "its rule fails, where it should hang",
            false => "its rule hangs, where it should fail",
        },
        Some(said) if !said.contains("the rule: ") => "its rule names no section of the book",
        Some(_) => return None,
    };
    Some(format!(
        "step {}, {}: \"{}\": {why} ({binary}: {rule}). The check said:\n{stdout}{}",
        mutant.step,
        mutant.function,
        mutant.mistake,
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The target folder these tests were built in (`target/debug/deps/this-test` runs them).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("a test knows its own path");
    let deps = exe.parent().expect("a test lives in deps");
    let profile = deps.parent().expect("deps lives in the profile's folder");
    profile
        .parent()
        .expect("the profile lives in the target folder")
        .to_path_buf()
}

/// Copies the workspace's manifests, steps and tests into `copy`, writing only the files that
/// differ (cargo rebuilds what changed since the last run, not everything), and removing those
/// gone from the workspace.
fn copy_workspace(copy: &Path) {
    let root = workspace_root();
    let mut files = vec![PathBuf::from("Cargo.toml"), PathBuf::from("Cargo.lock")];
    for folder in ["steps", "tests"] {
        files.extend(files_under(&root, Path::new(folder)));
    }
    for file in &files {
        let bytes = fs::read(root.join(file)).unwrap();
        let to = copy.join(file);
        if fs::read(&to).ok().as_ref() != Some(&bytes) {
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::write(&to, bytes).unwrap();
        }
    }
    for folder in ["steps", "tests"] {
        for stale in files_under(copy, Path::new(folder)) {
            if !files.contains(&stale) {
                fs::remove_file(copy.join(stale)).unwrap();
            }
        }
    }
}

/// The files under `root/folder`, as paths from `root`.
fn files_under(root: &Path, folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root.join(folder)) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = folder.join(entry.unwrap().file_name());
        if root.join(&path).is_dir() {
            files.extend(files_under(root, &path));
        } else {
            files.push(path);
        }
    }
    files
}

fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).unwrap();
    }
}

/// Cargo, in the copy, building into the copy's target folder.
fn cargo(copy: &Path, target: &Path) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(copy);
    clean_environment(&mut command, copy, target);
    command
}

/// Keeps what cargo told this test about the workspace (`CARGO_MANIFEST_DIR` and the like) from
/// reaching the copy's programs, and points insta's snapshots at the copy, never to be written.
fn clean_environment(command: &mut Command, copy: &Path, target: &Path) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" {
            command.env_remove(name.as_ref());
        }
    }
    command
        .env("CARGO_TARGET_DIR", target)
        .env("INSTA_WORKSPACE_ROOT", copy)
        .env("INSTA_UPDATE", "no");
}
