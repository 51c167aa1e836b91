//! Ending a test program that does not finish, with every process it started.

use std::fs;
use std::process::{Child, Command};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Kills `child` and every process it started, and theirs: a test program that hangs may have
/// started a demo that hangs too, and none may outlive the check. They are stopped first, so
/// that none can start another meanwhile, then looked for once more and killed.
pub fn kill_tree(child: &mut Child) {
    let mut doomed = vec![child.id()];
    for signal in [Signal::SIGSTOP, Signal::SIGKILL] {
        let family = parents();
        let mut next = 0;
        while let Some(&parent) = doomed.get(next) {
            for &(pid, ppid) in &family {
                if ppid == parent && !doomed.contains(&pid) {
                    doomed.push(pid);
                }
            }
            next += 1;
        }
        for &pid in &doomed {
            if let Ok(pid) = i32::try_from(pid) {
                // One that has ended meanwhile is fine.
                let _ = kill(Pid::from_raw(pid), signal);
            }
        }
    }
    let _ = child.wait();
}

/// Every process, with its parent's number: from /proc on Linux, from `ps` elsewhere.
fn parents() -> Vec<(u32, u32)> {
    let entries = fs::read_dir("/proc").into_iter().flatten().flatten();
    let from_proc: Vec<(u32, u32)> = entries
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (name) state ppid …`, where the name may hold spaces and parentheses.
            let (_, after_name) = stat.rsplit_once(')')?;
            let ppid = after_name.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    if !from_proc.is_empty() {
        return from_proc;
    }
    let Ok(listed) = Command::new("ps")
        .args(["-A", "-o", "pid=", "-o", "ppid="])
        .output()
    else {
        return Vec::new();
    };
    let listed = String::from_utf8_lossy(&listed.stdout);
    let pair = |line: &str| {
        let mut numbers = line.split_whitespace().map(str::parse);
        Some((numbers.next()?.ok()?, numbers.next()?.ok()?))
    };
    listed.lines().filter_map(pair).collect()
}
