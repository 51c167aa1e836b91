//! The book is whole: each step's chapter shows every hunk of its diff once, every include and
//! every link inside the book resolves, `SUMMARY.md` lists every chapter, and each output shown
//! sits under the commands that print it.
//!
//! Whether the generated files match the code is not checked here but by `just book-check`:
//! a learner's edit to a step makes them stale, and must not hide the behaviour tests.

use std::collections::HashSet;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use workshop_tests::book::{
    RUNS, Step, book_src, generated_dir, is_hunk_file, new_files, on_disk, steps,
};
use workshop_tests::exercise::STEPS;
use workshop_tests::rules::{SECTIONS, section};
use workshop_tests::workspace_root;

#[test]
fn each_step_shows_every_hunk_of_its_diff_once() {
    let disk = on_disk();
    let root = workspace_root();
    for step in steps().iter().skip(1).filter(|step| step.in_book()) {
        // What the chapter must show, as paths from the workspace's root: each hunk of a
        // changed file, from book/src/generated/, and each new file, from the step itself.
        let generated = generated_dir();
        let generated = generated
            .strip_prefix(&root)
            .expect("the book is in the workspace");
        let hunks = disk
            .keys()
            .filter(|path| path.starts_with(step.diff_dir()) && is_hunk_file(path));
        let mut expected: Vec<PathBuf> = hunks.map(|path| generated.join(path)).collect();
        let Some(full) = disk.get(&step.diff_dir().join("full.diff")) else {
            panic!("no diff for step {}: run `just book-sync`", step.number);
        };
        let new_files = new_files(step, full);
        expected.extend(new_files.iter().cloned());
        let pages = pages(step);
        // Each piece shown: (where, the fence it is shown in, its path).
        let mut shown = Vec::new();
        let mut problems = Vec::new();
        // A new file shown in parts (`file.rs:anchor`): the parts, in order, per file.
        let mut parts: Vec<(PathBuf, Vec<String>)> = Vec::new();
        for page in &pages {
            for (line, target, anchor) in page.anchored_includes() {
                let Ok(relative) = target.strip_prefix(&root) else {
                    continue;
                };
                let is_hunk = relative
                    .strip_prefix(generated)
                    .is_ok_and(|path| path.starts_with(step.diff_dir()) && is_hunk_file(path));
                if is_hunk || new_files.iter().any(|new| new == relative) {
                    let place = format!("{} line {line}", page.name);
                    if let Some(anchor) = anchor {
                        match parts.iter_mut().find(|(path, _)| path == relative) {
                            Some((_, anchors)) => {
                                anchors.push(anchor);
                                continue;
                            }
                            None => parts.push((relative.to_path_buf(), vec![anchor])),
                        }
                    }
                    shown.push((place, page.fence(line), relative.to_path_buf()));
                }
            }
        }
        for (path, anchors) in &parts {
            problems.extend(uncovered(&root.join(path), anchors));
        }
        let is_diff = |path: &Path| {
            path.extension()
                .is_some_and(|extension| extension == "diff")
        };
        let page_names: Vec<&str> = pages.iter().map(|page| page.name.as_str()).collect();
        for piece in &expected {
            let places: Vec<&str> = shown
                .iter()
                .filter(|(_, _, path)| path == piece)
                .map(|(place, _, _)| place.as_str())
                .collect();
            match places.len() {
                0 => problems.push(format!("{} is not shown", piece.display())),
                1 => {}
                _ => problems.push(format!(
                    "{} is shown {} times: {}",
                    piece.display(),
                    places.len(),
                    places.join(", ")
                )),
            }
        }
        for (place, fence, path) in &shown {
            let language = if is_diff(path) { "```diff" } else { "```rust" };
            if is_diff(path) && !expected.contains(path) {
                problems.push(format!(
                    "{place} shows {}, no longer a hunk of the diff",
                    path.display()
                ));
            } else if fence.trim_end() != language {
                problems.push(format!(
                    "{place} shows {} in a {} block; a new file goes in ```rust, a changed one \
                     in ```diff",
                    path.display(),
                    fence.trim()
                ));
            }
        }
        // The hunks of one file go in the file's order, whatever order the files come in.
        for (index, (place, _, path)) in shown.iter().enumerate() {
            let earlier_later_hunk = shown[..index].iter().find(|(_, _, before)| {
                is_diff(path)
                    && is_diff(before)
                    && before.parent() == path.parent()
                    && before > path
            });
            if let Some((before_place, _, before)) = earlier_later_hunk {
                problems.push(format!(
                    "{place} shows {} after {} ({before_place}): show one file's hunks in order",
                    path.display(),
                    before.display()
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "step {}'s pages ({}) must show each hunk of its diff, and each new file, exactly \
             once (after `just book-sync`, a new hunk must be added to a chapter):\n  {}",
            step.number,
            page_names.join(", "),
            problems.join("\n  ")
        );
    }
}

#[test]
fn every_include_names_a_file_that_exists() {
    for chapter in Chapter::all() {
        for (line, target) in chapter.includes() {
            assert!(
                target.is_file(),
                "{} line {line} includes {}, which does not exist",
                chapter.name,
                target.display()
            );
        }
    }
}

#[test]
fn every_output_shown_sits_under_the_commands_that_print_it() {
    let chapters = Chapter::all();
    for chapter in &chapters {
        for (line, target) in chapter.includes() {
            let Ok(relative) = target.strip_prefix(generated_dir()) else {
                continue;
            };
            if !relative.starts_with("output") {
                continue;
            }
            let run = RUNS
                .iter()
                .find(|run| run.output_path() == relative)
                .unwrap_or_else(|| {
                    panic!(
                        "{} line {line}: no run makes {}",
                        chapter.name,
                        shown(relative)
                    )
                });
            let above = &chapter.lines[line.saturating_sub(9)..line - 1];
            for command in [run.just_command(), run.cargo_command()] {
                assert!(
                    above.iter().any(|text| shows_command(text, &command)),
                    "{} line {line} shows {} without `{command}` in the lines above it",
                    chapter.name,
                    shown(relative)
                );
            }
        }
    }
    for step in steps().iter().filter(|step| step.in_book()) {
        let pages = pages(step);
        let included: HashSet<PathBuf> = pages
            .iter()
            .flat_map(Chapter::includes)
            .map(|(_, target)| target)
            .collect();
        for run in RUNS.iter().filter(|run| run.step == step.number) {
            assert!(
                included.contains(&generated_dir().join(run.output_path())),
                "{} does not show the output of `{}`",
                pages[0].name,
                run.just_command()
            );
        }
    }
}

#[test]
fn every_link_inside_the_book_resolves() {
    for chapter in Chapter::all() {
        for (line, link) in chapter.links() {
            if ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| link.starts_with(scheme))
            {
                continue;
            }
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                chapter.path.clone()
            } else {
                assert!(
                    path.ends_with(".md"),
                    "{} line {line} links to {link}: only chapters (.md) resolve in the built book",
                    chapter.name
                );
                resolve(&chapter.path, path)
            };
            assert!(
                target.is_file(),
                "{} line {line} links to {link}, but {} does not exist",
                chapter.name,
                target.display()
            );
            if !anchor.is_empty() {
                let ids = Chapter::read(&target).heading_ids();
                assert!(
                    ids.iter().any(|id| id == anchor),
                    "{} line {line} links to {link}, but that chapter has no heading with id `{anchor}`; it has: {}",
                    chapter.name,
                    ids.join(", ")
                );
            }
        }
    }
}

#[test]
fn summary_lists_every_chapter() {
    let summary = Chapter::read(&book_src().join("SUMMARY.md"));
    let listed: HashSet<PathBuf> = summary
        .links()
        .into_iter()
        .map(|(_, link)| resolve(&summary.path, link.split('#').next().unwrap_or_default()))
        .collect();
    for chapter in Chapter::all() {
        if chapter.path != summary.path {
            assert!(
                listed.contains(&chapter.path),
                "SUMMARY.md does not list {}, so the built book would leave it out",
                chapter.name
            );
        }
    }
}

/// `just check N` names, under each rule that does not hold, the section of the book that states
/// it: every rule it runs has one, and every section named is a heading of its chapter.
#[test]
fn every_rule_just_check_runs_names_a_section_of_the_book_that_exists() {
    static TEST: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"#\[test\]\s*(?:#\[[^\]]*\]\s*)*fn (\w+)\(").unwrap());
    let binaries: HashSet<&str> = STEPS
        .iter()
        .flat_map(|step| step.tests.iter().map(|(binary, _)| *binary))
        .collect();
    let mut problems = Vec::new();
    for binary in &binaries {
        let file = workspace_root().join(format!("tests/tests/{binary}.rs"));
        let source = fs::read_to_string(&file).unwrap();
        for rule in TEST.captures_iter(&source) {
            if section(binary, &rule[1]).is_none() {
                problems.push(format!("{binary}: `{}` names no section", &rule[1]));
            }
        }
    }
    for (binary, rules) in SECTIONS {
        if !binaries.contains(binary) {
            problems.push(format!(
                "`{binary}` is not a test program that `just check` runs"
            ));
        }
        for (rule, section) in *rules {
            let chapter = Chapter::read(&book_src().join(section.chapter.file));
            let headings: Vec<String> = chapter
                .prose()
                .into_iter()
                .filter_map(|(_, line)| {
                    let heading = line.trim_start_matches('#');
                    (heading.len() < line.len()).then(|| heading.trim().to_string())
                })
                .collect();
            if headings.first().map(String::as_str) != Some(section.chapter.title) {
                problems.push(format!(
                    "{} is not titled {:?}",
                    chapter.name, section.chapter.title
                ));
            }
            if !headings.iter().any(|heading| heading == section.heading) {
                problems.push(format!(
                    "{binary}: `{rule}` names {:?}, not a heading of {}",
                    section.heading, chapter.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn heading_ids_follow_mdbook() {
    let chapter = Chapter {
        path: PathBuf::from("x.md"),
        name: "x.md".to_string(),
        lines: [
            "# Step 4: `call_at`, timers",
            "```python",
            "# not a heading",
            "```",
            "## Run it",
            "## Run it",
            "## [Linked](other.md) *words* {#custom-id}",
        ]
        .map(String::from)
        .to_vec(),
    };
    assert_eq!(
        chapter.heading_ids(),
        ["step-4-call_at-timers", "run-it", "run-it-1", "custom-id"]
    );
}

/// A step's pages in reading order: its chapter, then the chapters nested under it in
/// `SUMMARY.md`, so that a long step can be read in parts.
fn pages(step: &Step) -> Vec<Chapter> {
    static ENTRY: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(\s*)[-*]\s+\[[^\]]*\]\(([^)#\s]+)").unwrap());
    let summary = Chapter::read(&book_src().join("SUMMARY.md"));
    let mut pages = vec![Chapter::read(&step.chapter())];
    let mut parent_indent = None;
    for line in &summary.lines {
        let Some(entry) = ENTRY.captures(line) else {
            continue;
        };
        let indent = entry[1].len();
        let path = resolve(&summary.path, &entry[2]);
        match parent_indent {
            None if path == step.chapter() => parent_indent = Some(indent),
            Some(parent) if indent > parent => pages.push(Chapter::read(&path)),
            Some(_) => break,
            None => {}
        }
    }
    pages
}

/// A generated file's path as the reader knows it.
fn shown(path: &Path) -> String {
    format!("book/src/generated/{}", path.display())
}

/// Whether `line` shows `command` whole, not as the start of a longer one.
fn shows_command(line: &str, command: &str) -> bool {
    let pattern = format!(r"(^|[\s`$]){}(\s*$|\s+#|`)", regex::escape(command));
    Regex::new(&pattern).unwrap().is_match(line)
}

/// `link`, relative to the folder of `from`, as a path without `.` or `..`.
fn resolve(from: &Path, link: &str) -> PathBuf {
    let mut path = PathBuf::new();
    for component in from
        .parent()
        .expect("a chapter is in a folder")
        .join(link)
        .components()
    {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                path.pop();
            }
            other => path.push(other),
        }
    }
    path
}

/// One markdown file of the book.
struct Chapter {
    path: PathBuf,
    /// The path under `book/src`, for messages.
    name: String,
    lines: Vec<String>,
}

impl Chapter {
    fn read(path: &Path) -> Chapter {
        let text = fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let name = path
            .strip_prefix(book_src())
            .unwrap_or(path)
            .display()
            .to_string();
        Chapter {
            path: path.to_path_buf(),
            name,
            lines: text.lines().map(String::from).collect(),
        }
    }

    /// Every markdown file under `book/src`, outside `generated/`.
    fn all() -> Vec<Chapter> {
        fn walk(dir: &Path, chapters: &mut Vec<Chapter>) {
            for entry in fs::read_dir(dir).expect("book/src can be listed") {
                let path = entry.expect("book/src can be listed").path();
                if path.is_dir() && path != generated_dir() {
                    walk(&path, chapters);
                } else if path.extension().is_some_and(|extension| extension == "md") {
                    chapters.push(Chapter::read(&path));
                }
            }
        }
        let mut chapters = Vec::new();
        walk(&book_src(), &mut chapters);
        assert!(!chapters.is_empty(), "the book has no chapters");
        chapters
    }

    /// Each `{{#include …}}` (or `rustdoc_include`, `playground`): its line number, from 1, and
    /// the file it names.
    fn includes(&self) -> Vec<(usize, PathBuf)> {
        static INCLUDE: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"\{\{#(?:include|rustdoc_include|playground)\s+([^}\s:]+)").unwrap()
        });
        let mut includes = Vec::new();
        for (number, line) in (1..).zip(&self.lines) {
            for captures in INCLUDE.captures_iter(line) {
                includes.push((number, resolve(&self.path, &captures[1])));
            }
        }
        includes
    }

    /// [`includes`](Self::includes), with the anchor each names, if any (`file.rs:anchor`).
    fn anchored_includes(&self) -> Vec<(usize, PathBuf, Option<String>)> {
        static ANCHORED: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(
                r"\{\{#(?:include|rustdoc_include|playground)\s+([^}\s:]+)(?::([A-Za-z_][\w-]*))?",
            )
            .unwrap()
        });
        let mut includes = Vec::new();
        for (number, line) in (1..).zip(&self.lines) {
            for captures in ANCHORED.captures_iter(line) {
                let anchor = captures.get(2).map(|anchor| anchor.as_str().to_string());
                includes.push((number, resolve(&self.path, &captures[1]), anchor));
            }
        }
        includes
    }

    /// The line that opens the fenced code block around line `line` (from 1), or "" outside
    /// any.
    fn fence(&self, line: usize) -> &str {
        let mut open = "";
        for text in &self.lines[..line - 1] {
            let trimmed = text.trim_start();
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                open = if open.is_empty() { trimmed } else { "" };
            }
        }
        open
    }

    /// The lines outside fenced code blocks, with their numbers, from 1.
    fn prose(&self) -> Vec<(usize, &str)> {
        let mut in_code = false;
        let mut prose = Vec::new();
        for (number, line) in (1..).zip(&self.lines) {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                in_code = !in_code;
            } else if !in_code {
                prose.push((number, line.as_str()));
            }
        }
        prose
    }

    /// Each link's line number and target, from `[text](target)` and `[name]: target`, outside
    /// code.
    fn links(&self) -> Vec<(usize, String)> {
        static CODE_SPAN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`[^`]*`").unwrap());
        static INLINE: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r#"\]\(([^)\s]+)(?:\s+"[^"]*")?\)"#).unwrap());
        static REFERENCE: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"^\s*\[[^\]]+\]:\s*(\S+)").unwrap());
        let mut links = Vec::new();
        for (number, line) in self.prose() {
            let line = CODE_SPAN.replace_all(line, "");
            for pattern in [&*INLINE, &*REFERENCE] {
                for captures in pattern.captures_iter(&line) {
                    links.push((number, captures[1].to_string()));
                }
            }
        }
        links
    }

    /// The ids mdBook gives this chapter's headings, in order: `{#id}` when given, else the
    /// heading's text in lower case, spaces made dashes, other punctuation dropped, and `-1`,
    /// `-2`, … added to repeats.
    fn heading_ids(&self) -> Vec<String> {
        static HEADING: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"^#{1,6}\s+(.*?)\s*#*\s*$").unwrap());
        static CUSTOM_ID: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"\{#([^}\s]+)[^}]*\}\s*$").unwrap());
        static LINK: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap());
        let mut used = HashSet::new();
        let mut ids = Vec::new();
        for (_, line) in self.prose() {
            let Some(heading) = HEADING.captures(line) else {
                continue;
            };
            let text = &heading[1];
            let id = match CUSTOM_ID.captures(text) {
                Some(custom) => custom[1].to_string(),
                None => {
                    let text = LINK.replace_all(text, "$1");
                    text.trim()
                        .to_lowercase()
                        .chars()
                        .filter_map(|c| match c {
                            c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
                            c if c.is_whitespace() => Some('-'),
                            _ => None,
                        })
                        .collect()
                }
            };
            let unique = (0..)
                .map(|n| {
                    if n == 0 {
                        id.clone()
                    } else {
                        format!("{id}-{n}")
                    }
                })
                .find(|candidate| !used.contains(candidate))
                .expect("some suffix is free");
            used.insert(unique.clone());
            ids.push(unique);
        }
        ids
    }
}

/// What a file shown in anchored parts leaves out: every line must sit in exactly one of the
/// anchors shown, each shown once, so that the parts add up to the whole file.
fn uncovered(path: &Path, anchors: &[String]) -> Vec<String> {
    let name = path.display();
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut problems = Vec::new();
    for (index, anchor) in anchors.iter().enumerate() {
        if anchors[..index].contains(anchor) {
            problems.push(format!("{name}: the part {anchor:?} is shown twice"));
        }
        if !text.contains(&format!("// ANCHOR: {anchor}\n")) {
            problems.push(format!("{name} has no part {anchor:?}"));
        }
    }
    let mut open: Vec<&str> = Vec::new();
    for (number, line) in (1..).zip(text.lines()) {
        let trimmed = line.trim();
        if let Some(anchor) = trimmed.strip_prefix("// ANCHOR: ") {
            if !anchors.iter().any(|shown| shown == anchor) {
                problems.push(format!("{name}: the part {anchor:?} is not shown"));
            }
            open.push(anchor);
        } else if let Some(anchor) = trimmed.strip_prefix("// ANCHOR_END: ") {
            open.retain(|open| *open != anchor);
        } else if open.len() != 1 && !trimmed.is_empty() {
            let parts = open.len();
            problems.push(format!(
                "{name} line {number} is in {parts} parts shown, not one"
            ));
            break;
        }
    }
    problems
}
