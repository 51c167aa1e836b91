//! The book's generated files: each step's diff from the step before, hunk by hunk, and the real
//! output of the demo runs the book shows.
//!
//! They live under `book/src/generated/`, where the chapters include them. `just book-sync` (the
//! `book-sync` binary) writes them; `just book-check` (`book-sync --check`, run by CI and by
//! `just check`, not by `cargo test`) computes them again and fails when what is on disk is
//! stale. A step is in the book once its chapter exists: the chapter of `steps/04-timers` is
//! `book/src/04-timers.md`. Only the steps in the book get generated files, so a step still
//! being written changes nothing here until its chapter is started.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use regex::Regex;

use crate::{Demo, normalize, run_demo, timeline, workspace_root};

/// A demo run that a chapter shows, with its output in `generated/output/<name>.txt`.
pub struct Run {
    /// The step whose chapter shows the run.
    pub step: u32,
    /// The output's file name, without `.txt`.
    pub name: &'static str,
    /// The step's package.
    pub package: &'static str,
    /// The arguments passed to the demo, after `--`.
    pub args: &'static [&'static str],
}

impl Run {
    /// The command with cargo alone, such as `cargo run -p step3-callbacks -- --trace`.
    pub fn cargo_command(&self) -> String {
        let mut command = format!("cargo run -p {}", self.package);
        if !self.args.is_empty() {
            command.push_str(" -- ");
            command.push_str(&self.args.join(" "));
        }
        command
    }

    /// The command with the justfile, such as `just run 3 --trace`.
    pub fn just_command(&self) -> String {
        let mut command = format!("just run {}", self.step);
        for arg in self.args {
            command.push(' ');
            command.push_str(arg);
        }
        command
    }

    /// Where the output is kept, relative to `book/src/generated/`.
    pub fn output_path(&self) -> PathBuf {
        Path::new("output").join(format!("{}.txt", self.name))
    }
}

/// Every demo run the book shows, in the order of the steps.
pub const RUNS: &[Run] = &[
    Run {
        step: 1,
        name: "step1",
        package: "step1-blocking",
        args: &[],
    },
    Run {
        step: 2,
        name: "step2",
        package: "step2-generators",
        args: &[],
    },
    Run {
        step: 3,
        name: "step3",
        package: "step3-callbacks",
        args: &[],
    },
    Run {
        step: 3,
        name: "step3-trace",
        package: "step3-callbacks",
        args: &["--trace"],
    },
    Run {
        step: 4,
        name: "step4",
        package: "step4-timers",
        args: &[],
    },
    Run {
        step: 4,
        name: "step4-trace",
        package: "step4-timers",
        args: &["--trace"],
    },
    Run {
        step: 5,
        name: "step5",
        package: "step5-futures",
        args: &[],
    },
    Run {
        step: 5,
        name: "step5-trace",
        package: "step5-futures",
        args: &["--trace"],
    },
    Run {
        step: 6,
        name: "step6",
        package: "step6-select",
        args: &[],
    },
    Run {
        step: 6,
        name: "step6-trace",
        package: "step6-select",
        args: &["--trace"],
    },
    Run {
        step: 7,
        name: "step7-demo",
        package: "step7-tasks",
        args: &["demo"],
    },
    Run {
        step: 7,
        name: "step7-trace",
        package: "step7-tasks",
        args: &["--trace", "demo"],
    },
    Run {
        step: 7,
        name: "step7-compare",
        package: "step7-tasks",
        args: &["compare"],
    },
];

/// The runs whose trace the book draws as a timeline, each with the picture's title; the
/// picture is `generated/timeline/<run>.svg`.
pub const TIMELINES: &[(&str, &str)] = &[
    (
        "step4-trace",
        "Step 4: Hello now, World after a timer of 1 s",
    ),
    (
        "step6-trace",
        "Step 6: five fetches, one loop waiting in select",
    ),
    ("step7-trace", "Step 7: the proxy demo's tasks"),
];

/// Where the timeline of a run is kept, relative to `book/src/generated/`.
pub fn timeline_path(run: &str) -> PathBuf {
    Path::new("timeline").join(format!("{run}.svg"))
}

/// How many times a run is tried when its output differs from the book's copy: a loaded
/// machine can delay a timer past the next one, and a trace then takes other iterations.
const ATTEMPTS: usize = 3;

/// One step of the workshop: a folder `steps/NN-name`.
#[derive(Debug, Clone)]
pub struct Step {
    /// The step's number, from the folder's name.
    pub number: u32,
    /// The folder's name, such as `04-timers`.
    pub dir: String,
}

impl Step {
    /// The step's chapter: `book/src/<folder name>.md`.
    pub fn chapter(&self) -> PathBuf {
        book_src().join(format!("{}.md", self.dir))
    }

    /// Whether the book has a chapter for this step yet.
    pub fn in_book(&self) -> bool {
        self.chapter().is_file()
    }

    /// Where this step's diff from the step before is kept, relative to `book/src/generated/`.
    pub fn diff_dir(&self) -> PathBuf {
        PathBuf::from(format!("diff-{}", self.number))
    }
}

/// The book's sources, `book/src`.
pub fn book_src() -> PathBuf {
    workspace_root().join("book").join("src")
}

/// Where the generated files go, `book/src/generated`.
pub fn generated_dir() -> PathBuf {
    book_src().join("generated")
}

/// Every step under `steps/`, in order.
pub fn steps() -> Vec<Step> {
    let entries = fs::read_dir(workspace_root().join("steps")).expect("steps/ can be read");
    let mut steps: Vec<Step> = entries
        .map(|entry| entry.expect("steps/ can be listed").file_name())
        .filter_map(|name| {
            let dir = name.to_str()?.to_string();
            let number = dir.split_once('-')?.0.parse().ok()?;
            Some(Step { number, dir })
        })
        .collect();
    steps.sort_by_key(|step| step.number);
    steps
}

/// Computes every generated file: `(path under book/src/generated/, contents)`.
///
/// For each step in the book, its diff from the step before as `diff-N/full.diff` and its
/// [`hunk_files`]; the output of each of its [`RUNS`], which runs the demos; and the
/// [`TIMELINES`], drawn from the outputs as the book keeps them.
pub fn generate() -> BTreeMap<PathBuf, String> {
    let disk = on_disk();
    let steps = steps();
    let in_book = |number| {
        steps
            .iter()
            .any(|step| step.number == number && step.in_book())
    };
    // All at once: the demos mostly sleep.
    let demos: Vec<(&Run, Demo)> = RUNS
        .iter()
        .filter(|run| in_book(run.step))
        .map(|run| (run, Demo::start(run.package, run.args)))
        .collect();
    let mut files = BTreeMap::new();
    for (index, step) in steps.iter().enumerate() {
        if !step.in_book() {
            continue;
        }
        if let Some(previous) = index.checked_sub(1).map(|index| &steps[index]) {
            let diff = diff(previous, step);
            files.extend(hunk_files(step, &diff));
            files.insert(step.diff_dir().join("full.diff"), diff);
        }
    }
    for (run, demo) in demos {
        let path = run.output_path();
        let kept = disk.get(&path);
        let mut output = demo.output();
        // A trace's lines may come in another order on a loaded machine: a run that differs
        // from the book's copy is run again, alone, before it counts as stale.
        for _ in 1..ATTEMPTS {
            if kept.is_none_or(|kept| is_current(&path, kept, &output)) {
                break;
            }
            output = run_demo(run.package, run.args);
        }
        if let Some((_, title)) = TIMELINES.iter().find(|(name, _)| *name == run.name) {
            // Drawn from the copy the book shows, so that the picture matches its text.
            let shown = kept.filter(|kept| is_current(&path, kept, &output));
            let svg = timeline::render(shown.unwrap_or(&output), title);
            files.insert(timeline_path(run.name), svg);
        }
        files.insert(path, output);
    }
    files
}

/// The hunks of `step`'s changed files, named by the file they change so that an edit to one
/// file renames nothing of the others: `diff-N/src/lib.rs/01.diff`, `02.diff`, … in the file's
/// order. A new file is not cut up: its chapter shows it whole (see [`new_files`]).
pub fn hunk_files(step: &Step, diff: &str) -> Vec<(PathBuf, String)> {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let changed = file_hunks(step, diff).filter(|(_, is_new, _)| !is_new);
    changed
        .map(|(file, _, hunk)| {
            let count = counts.entry(file.clone()).or_default();
            *count += 1;
            let name = format!("{count:02}.diff");
            (step.diff_dir().join(file).join(name), hunk)
        })
        .collect()
}

/// The files that `step`'s diff adds, as paths from the workspace's root
/// (`steps/07-tasks/src/task.rs`): its chapter includes each from the step itself, as Rust.
pub fn new_files(step: &Step, diff: &str) -> Vec<PathBuf> {
    let added = file_hunks(step, diff).filter(|(_, is_new, _)| *is_new);
    added
        .map(|(file, _, _)| Path::new("steps").join(&step.dir).join(file))
        .collect()
}

/// Each hunk of `step`'s diff with the file it is in and whether it adds that file whole.
fn file_hunks(step: &Step, diff: &str) -> impl Iterator<Item = (String, bool, String)> {
    let prefix = format!("+++ steps/{}/", step.dir);
    let number = step.number;
    split_hunks(diff).into_iter().map(move |hunk| {
        let file = hunk
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("a hunk of step {number} names no file: {hunk}"))
            .to_string();
        let is_new = hunk.lines().any(|line| line.starts_with("@@ -0,0 "));
        (file, is_new, hunk)
    })
}

/// Whether a path under `generated/` is a hunk of a step's diff that a chapter must show:
/// anything under `diff-N/` but the whole diff, `full.diff`.
pub fn is_hunk_file(path: &Path) -> bool {
    let mut components = path.components();
    let in_diff = components
        .next()
        .and_then(|first| first.as_os_str().to_str())
        .is_some_and(|first| first.starts_with("diff-"));
    in_diff && components.as_path() != Path::new("full.diff")
}

/// What is wrong with the generated files on disk, `disk`, against `fresh`, one line each:
/// missing, stale, or no longer generated. Empty when the book is current.
pub fn staleness(
    fresh: &BTreeMap<PathBuf, String>,
    disk: &BTreeMap<PathBuf, String>,
) -> Vec<String> {
    let shown = |path: &Path| format!("book/src/generated/{}", path.display());
    let mut problems = Vec::new();
    for (path, contents) in fresh {
        match disk.get(path) {
            None => problems.push(format!("missing: {}", shown(path))),
            Some(old) if !is_current(path, old, contents) => {
                problems.push(format!("stale:   {}", shown(path)));
            }
            Some(_) => {}
        }
    }
    for path in disk.keys().filter(|path| !fresh.contains_key(*path)) {
        problems.push(format!("no longer generated: {}", shown(path)));
    }
    problems
}

/// Whether the system's `diff` is GNU diff, which made the book's diffs. Other `diff`s (the BSD
/// one of recent macOS) may cut the same changes into other hunks.
pub fn system_diff_is_gnu() -> bool {
    Command::new("diff")
        .arg("--version")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("GNU diffutils"))
}

/// What changed from `old` to `new`, exactly as `just diff N` shows it: `diff -ruN` of the two
/// folders, with the timestamps cut from the `---` and `+++` lines.
pub fn diff(old: &Step, new: &Step) -> String {
    let output = Command::new("diff")
        .current_dir(workspace_root())
        // Messages such as "\ No newline at end of file" are translated in other locales.
        .env("LC_ALL", "C")
        .arg("-ruN")
        .arg(Path::new("steps").join(&old.dir))
        .arg(Path::new("steps").join(&new.dir))
        .output()
        .expect("the system's `diff` can be started");
    // `diff` exits with 1 when the folders differ, 0 when they do not, and 2 on trouble.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "`diff -ruN steps/{} steps/{}` failed: {}",
        old.dir,
        new.dir,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("the steps are UTF-8");
    strip_timestamps(&text)
}

/// The justfile's `sed -E 's/^(---|\+\+\+) ([^\t]*)\t.*/\1 \2/'`, line by line.
fn strip_timestamps(diff: &str) -> String {
    static TIMESTAMP: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(---|\+\+\+) ([^\t]*)\t.*").unwrap());
    diff.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(line) => format!("{}\n", TIMESTAMP.replace(line, "$1 $2")),
            None => TIMESTAMP.replace(line, "$1 $2").into_owned(),
        })
        .collect()
}

/// Splits a unified diff into its hunks, in order, each preceded by its file's `---` and `+++`
/// lines so that it says which file it is from.
///
/// A hunk's extent comes from the line counts in its `@@` line, so a removed line that happens
/// to start with `-- ` is never taken for a file header.
pub fn split_hunks(diff: &str) -> Vec<String> {
    let mut hunks = Vec::new();
    let mut header = String::new();
    let mut lines = diff.split_terminator('\n').peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("diff ") {
            header.clear();
        } else if line.starts_with("--- ") || line.starts_with("+++ ") {
            header.push_str(line);
            header.push('\n');
        } else if let Some((mut old, mut new)) = hunk_lengths(line) {
            let mut hunk = format!("{header}{line}\n");
            while old > 0 || new > 0 {
                let line = lines
                    .next()
                    .expect("a hunk has as many lines as its @@ line says");
                match line.chars().next() {
                    Some('-') => old -= 1,
                    Some('+') => new -= 1,
                    Some(' ') | None => (old, new) = (old - 1, new - 1),
                    Some('\\') => {}
                    _ => panic!("not a line of a unified diff hunk: {line}"),
                }
                hunk.push_str(line);
                hunk.push('\n');
            }
            // "\ No newline at end of file" belongs to the line before it.
            while let Some(marker) = lines.next_if(|line| line.starts_with('\\')) {
                hunk.push_str(marker);
                hunk.push('\n');
            }
            hunks.push(hunk);
        } else {
            panic!("a line that `diff -ruN` does not print between hunks: {line}");
        }
    }
    hunks
}

/// The old and new line counts of a hunk's `@@ -a,b +c,d @@` line (a missing count is 1).
fn hunk_lengths(line: &str) -> Option<(usize, usize)> {
    static HUNK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@").unwrap());
    let captures = HUNK.captures(line)?;
    let count = |index| {
        captures
            .get(index)
            .map_or(1, |count| count.as_str().parse().unwrap())
    };
    Some((count(1), count(2)))
}

/// Every file under `book/src/generated/` now, by its path under that folder.
pub fn on_disk() -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("generated/ can be listed").path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let contents = fs::read_to_string(&path).expect("generated files are UTF-8");
                let relative = path.strip_prefix(root).expect("walked from the root");
                files.insert(relative.to_path_buf(), contents);
            }
        }
    }
    let mut files = BTreeMap::new();
    let root = generated_dir();
    walk(&root, &root, &mut files);
    files
}

/// Whether `on_disk` is current with `fresh` for the generated file at `path`.
///
/// Outputs are compared after [`normalize`], since durations and ports change from run to
/// run while the words and lines must not; traces by their [`shape`](timeline::shape), since
/// timing also changes the order of their lines; diffs and timelines are compared exactly.
pub fn is_current(path: &Path, on_disk: &str, fresh: &str) -> bool {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    if path.starts_with("output") && name.ends_with("-trace.txt") {
        timeline::shape(on_disk) == timeline::shape(fresh)
    } else if path.starts_with("output") {
        normalize(on_disk) == normalize(fresh)
    } else {
        on_disk == fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_carry_their_file_header_and_end_where_their_counts_say() {
        let diff = "diff -ruN a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n--- not a header\n+new\n \
                    \n@@ -9 +9 @@\n-old\n\\ No newline at end of file\n+new\n\
                    diff -ruN a/y b/y\n--- a/y\n+++ b/y\n@@ -0,0 +1 @@\n+y\n";
        assert_eq!(
            split_hunks(diff),
            [
                "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n--- not a header\n+new\n \n",
                "--- a/x\n+++ b/x\n@@ -9 +9 @@\n-old\n\\ No newline at end of file\n+new\n",
                "--- a/y\n+++ b/y\n@@ -0,0 +1 @@\n+y\n",
            ]
        );
    }

    #[test]
    fn timestamps_are_cut_from_file_headers_only() {
        let diff = "--- a/x\t2024-01-01 10:00:00.0 +0100\n+++ b/x\t2024-01-02\n-- a\n";
        assert_eq!(strip_timestamps(diff), "--- a/x\n+++ b/x\n-- a\n");
    }
}
