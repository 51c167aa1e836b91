//! CPython's asyncio and uvloop, each in a child `python3` (`loops.py`) that stays up all
//! along: the bench asks it for one sample at a time, so that Python's samples interleave
//! with ours, under the same conditions.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

const SCRIPT: &str = include_str!("loops.py");

/// A Python loop, ready for benchmarks.
pub struct PythonLoop {
    /// What it says it is, such as "uvloop 0.23.0".
    pub name: String,
    child: Child,
    ask: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl PythonLoop {
    /// Starts the loop `kind`, "asyncio" or "uvloop", or says why it cannot.
    pub fn start(kind: &str) -> Result<PythonLoop, String> {
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT, kind, "bench"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|error| format!("{kind}: no python3 here ({error})"))?;
        let ask = child.stdin.take().expect("a pipe to its stdin");
        let mut answers = BufReader::new(child.stdout.take().expect("a pipe from its stdout"));
        let mut said = String::new();
        drop(answers.read_line(&mut said));
        let name = said.trim();
        if name.is_empty() || name.starts_with('!') {
            drop(child.wait());
            let why = name
                .strip_prefix('!')
                .unwrap_or("python3 failed (see above)");
            return Err(format!("{kind}: {}", why.trim()));
        }
        Ok(PythonLoop {
            name: name.to_string(),
            child,
            ask,
            answers,
        })
    }

    /// Nanoseconds per operation of `count` operations of `benchmark` (a function of
    /// `loops.py`).
    pub fn measure(&mut self, benchmark: &str, count: u64) -> f64 {
        writeln!(self.ask, "{benchmark} {count}").expect("python3 reads its stdin");
        let mut line = String::new();
        self.answers.read_line(&mut line).expect("python3 answers");
        line.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}: {benchmark} answered {line:?}", self.name))
    }
}

impl Drop for PythonLoop {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

/// The command that starts an echo server on the Python loop `kind`.
pub fn echo_server(kind: &str) -> Command {
    let mut command = Command::new("python3");
    command.args(["-c", SCRIPT, kind, "echo"]);
    command
}
