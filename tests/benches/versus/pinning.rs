//! Where the processes run: on Linux with two CPUs or more, every server on one CPU and this
//! process (the clients, and all that is measured in it) on another, so that a server and its
//! load never take turns on one CPU. Elsewhere the OS places them.

use std::io;
use std::process::{Child, Command};

/// The CPU for the servers, and the one for this process, once this process is pinned.
pub struct Pinning {
    pub server: Option<usize>,
    /// What was pinned where, or why nothing was, for the table's header.
    pub said: String,
}

/// Pins this thread, and so every thread and process it starts later, to the second CPU it may
/// use, and keeps the first for the servers.
#[cfg(target_os = "linux")]
pub fn pin() -> Pinning {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    let allowed = sched_getaffinity(Pid::from_raw(0)).expect("this thread's CPUs");
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&cpu| allowed.is_set(cpu).unwrap_or(false))
        .collect();
    let &[server, client, ..] = &cpus[..] else {
        return Pinning {
            server: None,
            said: "nothing pinned: one CPU".into(),
        };
    };
    pin_this_thread(client).expect("a CPU this thread may use");
    Pinning {
        server: Some(server),
        said: format!(
            "servers pinned to CPU {server}; this process (the clients, what runs in it, \
             Python's loops) to CPU {client}"
        ),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn pin() -> Pinning {
    Pinning {
        server: None,
        said: "nothing pinned: CPU affinity is Linux's".into(),
    }
}

#[cfg(target_os = "linux")]
fn pin_this_thread(cpu: usize) -> nix::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
}

/// Starts `command` on `cpu`: from a thread pinned there, whose CPUs the child inherits.
#[cfg(target_os = "linux")]
pub fn spawn_on(cpu: Option<usize>, mut command: Command) -> io::Result<Child> {
    let Some(cpu) = cpu else {
        return command.spawn();
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                pin_this_thread(cpu)?;
                command.spawn()
            })
            .join()
            .expect("the spawning thread does not panic")
    })
}

#[cfg(not(target_os = "linux"))]
pub fn spawn_on(_cpu: Option<usize>, mut command: Command) -> io::Result<Child> {
    command.spawn()
}
