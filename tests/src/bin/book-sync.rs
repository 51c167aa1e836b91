//! `just book-sync`: writes the book's generated files (the steps' diffs, hunk by hunk, and the
//! demos' output) under `book/src/generated/`, and deletes the ones no longer generated.
//!
//! An output whose only changes are durations or ports is left as it is, so that syncing twice
//! changes nothing in git. When a demo's own durations change (a new delay), delete its file
//! under `book/src/generated/output/` first, so that the book shows the new numbers.

use std::fs;

use workshop_tests::book::{generate, generated_dir, is_current, on_disk, system_diff_is_gnu};

fn main() {
    if !system_diff_is_gnu() {
        eprintln!(
            "book-sync: the book's diffs are made with GNU diff; install it (diffutils) first"
        );
        std::process::exit(1);
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
        // A folder left empty goes too; one that still holds files stays.
        let _ = fs::remove_dir(target.parent().expect("inside generated/"));
        println!("removed book/src/generated/{}", path.display());
        removed += 1;
    }

    let unchanged = fresh.len() - written;
    println!("book-sync: {written} written, {removed} removed, {unchanged} already current");
}
