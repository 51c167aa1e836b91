//! A server's system calls, counted in a pass of their own, by a tool attached to its process
//! while a load runs: `perf stat` if it can, which counts in the kernel and hardly slows the
//! server; else `strace -c`, which stops the server at every call. That slowness changes what
//! is counted: the client's next message may be there already when the server, slowed, reads
//! again, so a server that reads before it waits finds its reads full more often than it
//! would.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};

use crate::servers::Server;
use crate::table::CONTENDERS;

/// System calls per operation (a round trip, a request): all of them, and the three kinds that
/// an event loop's I/O makes.
#[derive(Clone, Copy, Default)]
pub struct Syscalls {
    pub all: f64,
    pub reads: f64,
    pub writes: f64,
    pub waits: f64,
}

impl Syscalls {
    /// Counts `calls` calls of the system call `name` in their kind, if it has one.
    fn sort(&mut self, name: &str, calls: f64) {
        match name {
            "read" | "readv" | "recvfrom" | "recvmsg" | "recvmmsg" => self.reads += calls,
            "write" | "writev" | "sendto" | "sendmsg" | "sendmmsg" => self.writes += calls,
            "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => self.waits += calls,
            _ => {}
        }
    }

    fn per(mut self, operations: u64) -> Syscalls {
        for calls in [
            &mut self.all,
            &mut self.reads,
            &mut self.writes,
            &mut self.waits,
        ] {
            *calls /= operations as f64;
        }
        self
    }
}

/// The tool that counted.
#[derive(Clone, Copy, PartialEq)]
pub enum Counter {
    Perf,
    Strace,
}

/// What counted the system calls, if anything did, and the first reason it could not.
#[derive(Default)]
pub struct Counted {
    by: Option<Counter>,
    why_not: Option<String>,
}

impl Counted {
    /// A row of system calls per operation, counted by `count` on each server that runs.
    pub fn row(
        &mut self,
        name: String,
        servers: &mut [Option<Server>; CONTENDERS],
        mut count: impl FnMut(&mut Server) -> Result<(Syscalls, Counter), String>,
    ) -> Vec<String> {
        let counts = servers
            .each_mut()
            .map(|server| match count(server.as_mut()?) {
                Ok((calls, by)) => {
                    self.by = Some(by);
                    Some(calls)
                }
                Err(why) => {
                    self.why_not.get_or_insert(why);
                    None
                }
            });
        let cell = |count: &Option<Syscalls>| match count {
            Some(calls) => format!(
                "{:.2} ({:.2} read, {:.2} write, {:.2} epoll_wait)",
                calls.all, calls.reads, calls.writes, calls.waits
            ),
            None => "—".into(),
        };
        let ratio = match &counts[..2] {
            [Some(ours), Some(tokio)] => format!("{:.2}x", ours.all / tokio.all),
            _ => "—".into(),
        };
        let mut cells = vec![name, cell(&counts[0]), cell(&counts[1]), ratio];
        cells.extend(counts[2..].iter().map(cell));
        cells
    }

    /// How the system calls were counted, or why they were not.
    pub fn said(&self) -> String {
        match (self.by, &self.why_not) {
            (Some(Counter::Perf), _) => "System calls counted by `perf stat` on tracepoints: \
                in the kernel, hardly slowing the server."
                .into(),
            (Some(Counter::Strace), _) => "System calls counted by strace (no perf here): it \
                stops the server at every call, so the client's next message is often there \
                already when the server reads again, which flatters servers that read before \
                they wait."
                .into(),
            (None, Some(why)) => format!("System calls not counted: {why}."),
            (None, None) => "System calls not counted: no server ran.".into(),
        }
    }
}

/// Counts the system calls of process `pid` while `work` runs, per operation that `work` says
/// it made. An error says why neither tool could count.
pub fn count(pid: u32, work: impl FnOnce() -> u64) -> Result<(Syscalls, Counter), String> {
    let output = std::env::temp_dir().join(format!("versus-{}-{pid}", std::process::id()));
    let attached = match Perf::attach(pid, &output) {
        Ok(perf) => Attached::Perf(perf),
        Err(no_perf) => match attach_strace(pid, &output) {
            Ok((strace, messages)) => Attached::Strace(strace, messages),
            Err(no_strace) => return Err(format!("{no_perf}; {no_strace}")),
        },
    };
    let operations = work();
    let (text, counter) = match attached {
        Attached::Perf(perf) => (perf.stop(&output)?, Counter::Perf),
        Attached::Strace(strace, _messages) => (stop(strace, &output)?, Counter::Strace),
    };
    let mut calls = Syscalls::default();
    match counter {
        Counter::Perf => perf_counts(&text, &mut calls),
        Counter::Strace => strace_counts(&text, &mut calls),
    }
    Ok((calls.per(operations), counter))
}

enum Attached {
    Perf(Perf),
    /// strace, and its stderr, kept open for it to say goodbye into.
    Strace(Child, BufReader<ChildStderr>),
}

/// `perf stat`, started with its counters off and driven through its stdin, so that it counts
/// exactly while the work runs.
struct Perf {
    child: Child,
    control: ChildStdin,
    acks: BufReader<ChildStdout>,
}

/// Every system call, and the tracepoints of the ones an event loop's I/O makes.
const PERF_EVENTS: &str = "raw_syscalls:sys_enter,syscalls:sys_enter_read,\
    syscalls:sys_enter_readv,syscalls:sys_enter_recv*,syscalls:sys_enter_write,\
    syscalls:sys_enter_writev,syscalls:sys_enter_send*,syscalls:sys_enter_epoll_*wait*";

impl Perf {
    fn attach(pid: u32, output: &Path) -> Result<Perf, String> {
        let mut child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", PERF_EVENTS, "-D", "-1"])
            .args(["--control", "fd:0,1", "-p", &pid.to_string(), "-o"])
            .arg(output)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("no perf here ({error})"))?;
        let control = child.stdin.take().expect("perf's stdin");
        let acks = BufReader::new(child.stdout.take().expect("perf's stdout"));
        let mut perf = Perf {
            child,
            control,
            acks,
        };
        if perf.command("enable") {
            return Ok(perf);
        }
        drop(perf.child.kill());
        let output = perf
            .child
            .wait_with_output()
            .map_err(|error| error.to_string())?;
        let said = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "perf cannot count: {}",
            said.lines().next().unwrap_or("")
        ))
    }

    /// Sends perf a command and waits for its acknowledgment.
    fn command(&mut self, command: &str) -> bool {
        let mut ack = String::new();
        writeln!(self.control, "{command}").is_ok()
            && self.acks.read_line(&mut ack).is_ok()
            && ack.contains("ack")
    }

    fn stop(mut self, output: &Path) -> Result<String, String> {
        self.command("disable");
        stop(self.child, output)
    }
}

/// Ends the tool as Ctrl-C would (it then writes its counts) and reads what it wrote.
fn stop(tool: Child, output: &Path) -> Result<String, String> {
    use nix::sys::signal::{Signal, kill};
    let pid = nix::unistd::Pid::from_raw(tool.id() as i32);
    kill(pid, Signal::SIGINT).map_err(|error| error.to_string())?;
    tool.wait_with_output().map_err(|error| error.to_string())?;
    let text = std::fs::read_to_string(output).map_err(|error| error.to_string());
    drop(std::fs::remove_file(output));
    text
}

/// perf's lines, `count,unit,event,…`: the total, and each tracepoint's own.
fn perf_counts(text: &str, calls: &mut Syscalls) {
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(count), Some(event)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        let Ok(count) = count.parse::<f64>() else {
            continue;
        };
        match event.strip_prefix("syscalls:sys_enter_") {
            Some(name) => calls.sort(name, count),
            None if *event == "raw_syscalls:sys_enter" => calls.all = count,
            None => {}
        }
    }
}

fn attach_strace(pid: u32, output: &Path) -> Result<(Child, BufReader<ChildStderr>), String> {
    let mut strace = Command::new("strace")
        .args(["-c", "-f", "-p", &pid.to_string(), "-o"])
        .arg(output)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("no strace here ({error})"))?;
    // strace says "Process N attached" once it follows every thread: not before the work.
    let mut said = String::new();
    let mut messages = BufReader::new(strace.stderr.take().expect("strace's stderr"));
    while !said.contains("attached") {
        if messages.read_line(&mut said).unwrap_or(0) == 0 {
            drop(strace.wait());
            return Err(format!("strace could not attach: {}", said.trim()));
        }
    }
    Ok((strace, messages))
}

/// strace's summary: a row per system call, `% time, seconds, usecs/call, calls, [errors,]
/// name`, then a total row, left out, since the rows add up to it.
fn strace_counts(text: &str, calls: &mut Syscalls) {
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(&name), Some(count)) = (fields.last(), fields.get(3)) else {
            continue;
        };
        let (Ok(_), Ok(count)) = (fields[0].parse::<f64>(), count.parse::<f64>()) else {
            continue;
        };
        if name != "total" {
            calls.all += count;
            calls.sort(name, count);
        }
    }
}
