//! `just book-sync`: writes the book's generated files (the steps' diffs, file by file and hunk
//! by hunk, and the demos' output) under `book/src/generated/`, and deletes the ones no longer
//! generated.
//!
//! `just book-check` (`book-sync --check`) writes nothing: it fails, listing what differs, when
//! the files on disk are not what the steps and demos make now. It is CI's check, kept out of
//! `cargo test` so that a learner who edits a step sees the behaviour tests, not a stale book.
//!
//! An output whose only changes are durations or ports is left as it is, so that syncing twice
//! changes nothing in git. When a demo's own durations change (a new delay), delete its file
//! under `book/src/generated/output/` first, so that the book shows the new numbers.

use std::fs;
use std::process::ExitCode;

use workshop_tests::book::{
    generate, generated_dir, is_current, on_disk, staleness, system_diff_is_gnu,
};

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(_) => {
            eprintln!("usage: book-sync [--check]");
            return ExitCode::FAILURE;
        }
    };
    if check { self::check() } else { sync() }
}

/// Compares the generated files on disk with fresh ones, writing nothing.
fn check() -> ExitCode {
    let mut fresh = generate();
    let mut disk = on_disk();
    if !system_diff_is_gnu() {
        // Another `diff` may cut the same change into other hunks: check the outputs only here,
        // and leave the diffs to a machine with GNU diff, such as CI's.
        eprintln!("book-sync: the system's diff is not GNU diff; checking the outputs only");
        fresh.retain(|path, _| path.starts_with("output"));
        disk.retain(|path, _| path.starts_with("output"));
    }
    let problems = staleness(&fresh, &disk);
    if problems.is_empty() {
        println!(
            "book-sync: the book's {} generated files are current",
            fresh.len()
        );
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "book-sync: the book's generated files do not match the steps' code and the demos' \
         output;\nrun `just book-sync` to regenerate them, then show any new hunk in its \
         chapter:\n  {}",
        problems.join("\n  ")
    );
    ExitCode::FAILURE
}

/// Writes the generated files that changed and deletes the ones no longer generated.
fn sync() -> ExitCode {
    if !system_diff_is_gnu() {
        eprintln!(
            "book-sync: the book's diffs are made with GNU diff; install it (diffutils) first"
        );
        return ExitCode::FAILURE;
    }
    let root = generated_dir();
    let fresh = generate();
    let old = on_disk();

    let mut written = 0;
    for (path, contents) in &fresh {
        if old
            .get(path)
            .is_some_and(|old| is_current(path, old, contents))
        {
            continue;
        }
        let target = root.join(path);
        let folder = target
            .parent()
            .expect("generated files are inside generated/");
        fs::create_dir_all(folder).expect("generated/ can be written");
        fs::write(&target, contents).expect("generated/ can be written");
        println!("wrote   book/src/generated/{}", path.display());
        written += 1;
    }

    let mut removed = 0;
    for path in old.keys().filter(|path| !fresh.contains_key(*path)) {
        let target = root.join(path);
        fs::remove_file(&target).expect("generated/ can be written");
        // Folders left empty go too, up to generated/; one that still holds files stays.
        for folder in target.ancestors().skip(1) {
            if folder == root || fs::remove_dir(folder).is_err() {
                break;
            }
        }
        println!("removed book/src/generated/{}", path.display());
        removed += 1;
    }

    let unchanged = fresh.len() - written;
    println!("book-sync: {written} written, {removed} removed, {unchanged} already current");
    ExitCode::SUCCESS
}
