//! Our loop against the fastest, on the same work: step 7's loop beside tokio's current-thread
//! runtime, CPython's asyncio and uvloop (when `python3`, and `uvloop` for it, are here).
//!
//! What each row compares, and why it is like for like:
//!
//! - **`run_until_complete(task(sleep(0)))`**, the talk's benchmark: a loop run until a task
//!   that yields once has ended. tokio's is `block_on(spawn(yield_now()))`.
//! - **`call_soon(noop)`**, **`call_later(0, noop)`**: a thousand callbacks, then the loop run
//!   until they have run. tokio has no callbacks, so only asyncio and uvloop stand beside ours.
//! - **`create_task(async {})` + run**: a thousand tasks that end at their first step, then the
//!   loop run until the last has ended; tokio `spawn`s the same in a `block_on`. Then 100,000
//!   at once, where the ready queue and the allocator hold them all (not in Python, whose
//!   garbage collector makes big batches dearer).
//! - **Yield, no I/O poll**: a task that yields in a loop while nothing else is ready. Ours
//!   awaits `sleep(0)`, which wakes its own task, and the loop skips the selector while only
//!   task steps are ready, 61 iterations at most. tokio's task wakes itself and returns
//!   `Pending`, and tokio runs it again, polling its driver once every 61 tasks
//!   (`event_interval`): the same rule.
//! - **Yield, one I/O poll each**: ours `yield_now()`, which makes the next iteration ask the
//!   selector; tokio's `yield_now()`, which defers the task until its I/O driver was polled;
//!   asyncio's and uvloop's `sleep(0)`, as they poll in every iteration anyway.
//! - **Echo**: a TCP echo server in a process of its own, reading into 64 KiB as real servers
//!   do (asyncio's and uvloop's: a `BufferedProtocol` with a buffer that size). The same
//!   client for every server (a tokio runtime in this process) makes round trips of 64 bytes
//!   on 1 connection, on 64 at once, and on 1 beside 5,000 idle ones. What counts is the
//!   server's CPU time per round trip, which the server measures itself (`getrusage`, asked
//!   for on its stdin while it is idle, before and after), and its system calls per round
//!   trip, counted in a pass of their own (`syscalls.rs` says how).
//! - **Web**: the web example's app (`GET /`) on hyper, on our loop or on tokio's, in a
//!   process of its own; 16 and 256 keep-alive connections ask as fast as answers come:
//!   requests per second, the server's CPU time per request, and the share of its CPU it
//!   used (near 100%: the server, not the client, sets the pace).
//!
//! Each round measures every row's contenders one after another, first to last in one round
//! and last to first in the next; Python's loops run in child processes that stay up, asked
//! for one sample at a time, so that their samples interleave with ours. On Linux with two
//! CPUs or more, the servers run on one and this process on the other. A cell is the median
//! of the rounds with their min–max; the ratio is the median of the rounds' own ratios.
//!
//! The total CPU time is exact; its split into user and system time is the kernel's, which
//! on most Linux kernels samples it at each timer tick (250 or 1,000 times a second): the
//! user rows are estimates, hence their wider spread.
//!
//! `-- --rounds N` runs N rounds (7 by default). `-- --echo ours` (or `tokio`) runs only that
//! echo server, for 20,000 round trips on one connection (`--connections N`: on each of N), to
//! watch with `strace -f` or `perf record -p` by hand.

use std::env;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::runtime::Runtime;

// The example's `main` is for `cargo run`; the benchmark serves its app.
#[allow(dead_code)]
#[path = "../../steps/07-tasks/examples/web.rs"]
mod web;

#[path = "versus/clients.rs"]
mod clients;
#[path = "versus/contenders.rs"]
mod contenders;
#[path = "versus/machine.rs"]
mod machine;
#[path = "versus/pinning.rs"]
mod pinning;
#[path = "versus/python.rs"]
mod python;
#[path = "versus/servers.rs"]
mod servers;
#[path = "versus/syscalls.rs"]
mod syscalls;
#[path = "versus/table.rs"]
mod table;

use clients::Clients;
use python::PythonLoop;
use servers::Server;
use syscalls::Counted;
use table::{CONTENDERS, Row, Unit};

/// Rounds by default: every cell is the median of this many samples, with their min–max.
const ROUNDS: usize = 7;

/// A benchmark that runs in this process, and in Python's children: ns per operation.
struct Micro {
    name: &'static str,
    /// Operations per sample.
    count: u64,
    ours: fn(u64) -> f64,
    tokio: Option<fn(u64) -> f64>,
    /// Its function in `loops.py`, if Python has it.
    python: Option<&'static str>,
}

const MICROS: [Micro; 7] = [
    Micro {
        name: "`run_until_complete(task(sleep(0)))` (tokio: `block_on(spawn(yield_now()))`)",
        count: 10_000,
        ours: contenders::ours_sleep_task,
        tokio: Some(contenders::tokio_spawn_yield),
        python: Some("run_until_complete"),
    },
    Micro {
        name: "`call_soon(noop)` + run, by 1,000",
        count: 100_000,
        ours: contenders::ours_call_soon,
        tokio: None,
        python: Some("call_soon"),
    },
    Micro {
        name: "`call_later(0, noop)` + run, by 1,000",
        count: 50_000,
        ours: contenders::ours_call_later,
        tokio: None,
        python: Some("call_later"),
    },
    Micro {
        name: "`create_task(async {})` + run, by 1,000 (tokio: `spawn`)",
        count: 50_000,
        ours: contenders::ours_tasks_by_thousands,
        tokio: Some(contenders::tokio_tasks_by_thousands),
        python: Some("create_task"),
    },
    Micro {
        name: "`create_task(async {})` + run, 100,000 at once (tokio: `spawn`)",
        count: 100_000,
        ours: contenders::ours_tasks_all_at_once,
        tokio: Some(contenders::tokio_tasks_all_at_once),
        python: None,
    },
    Micro {
        name: "yield, no I/O poll: `sleep(0)` (tokio: a task that wakes itself)",
        count: 500_000,
        ours: contenders::ours_sleep_zero_loop,
        tokio: Some(contenders::tokio_wake_self_loop),
        python: None,
    },
    Micro {
        name: "yield, one I/O poll each: `yield_now()` (tokio: `yield_now()`; Python: `sleep(0)`)",
        count: 100_000,
        ours: contenders::ours_yield_now_loop,
        tokio: Some(contenders::tokio_yield_now_loop),
        python: Some("yield_loop"),
    },
];

/// A load on the echo servers: round trips of 64 bytes on `busy` connections at once, `each`
/// per connection, beside `idle` connections that stay open. The 192,000 round trips on 64
/// connections last long enough for a few hundred timer ticks, of which the kernel's estimate
/// of user time is made.
struct EchoLoad {
    name: &'static str,
    busy: usize,
    idle: usize,
    each: u64,
}

const ECHO_LOADS: [EchoLoad; 3] = [
    EchoLoad {
        name: "1 connection",
        busy: 1,
        idle: 0,
        each: 5_000,
    },
    EchoLoad {
        name: "64 connections",
        busy: 64,
        idle: 0,
        each: 3_000,
    },
    EchoLoad {
        name: "1 connection beside 5,000 idle",
        busy: 1,
        idle: 5_000,
        each: 5_000,
    },
];

/// Keep-alive connections on the web servers.
const WEB_LOADS: [usize; 2] = [16, 256];
/// How long the web clients ask before, and while, the server is measured.
const WEB_WARM_UP: Duration = Duration::from_millis(100);
const WEB_WINDOW: Duration = Duration::from_millis(500);

/// A server, when the bench starts this program as one (`--serve-echo`, `--serve-web`); one
/// echo server by hand (`--echo`); else the bench, round after round, then its tables.
fn main() {
    let open_files = raise_open_files();
    let args: Vec<String> = env::args().collect();
    let option = |name: &str| {
        let at = args.iter().position(|arg| arg == name)?;
        Some(args.get(at + 1).map_or("", String::as_str))
    };
    for mode in ["--serve-echo", "--serve-web"] {
        if let Some(kind) = option(mode) {
            return servers::serve(mode, kind);
        }
    }
    if let Some(kind) = option("--echo") {
        let connections =
            option("--connections").map_or(1, |n| n.parse().expect("--connections takes a number"));
        return echo_by_hand(kind, connections);
    }
    let rounds = option("--rounds").map_or(ROUNDS, |n| n.parse().expect("--rounds takes a number"));
    let started = Instant::now();
    let machine = machine::describe();
    let pinning = pinning::pin();
    let mut contenders = Contenders::start(pinning.server);
    println!("Machine: {machine}; {}", contenders.python_names());
    println!("Pinning: {}", pinning.said);
    let echo_loads: Vec<&EchoLoad> = ECHO_LOADS
        .iter()
        .filter(|load| load.idle as u64 + 256 <= open_files)
        .collect();

    let mut micro_rows: Vec<Row> = MICROS.iter().map(|m| Row::new(m.name, Unit::Ns)).collect();
    let mut echo_rows: Vec<[Row; 2]> = echo_loads
        .iter()
        .map(|load| {
            [
                Row::new(format!("{}: CPU per round trip", load.name), Unit::Ns),
                Row::new(format!("{}: user CPU per round trip", load.name), Unit::Ns),
            ]
        })
        .collect();
    let mut web_rows: Vec<[Row; 3]> = WEB_LOADS
        .iter()
        .map(|n| {
            [
                Row::new(format!("{n} connections: requests/s"), Unit::PerSecond),
                Row::new(format!("{n} connections: server CPU per request"), Unit::Ns),
                Row::new(format!("{n} connections: server busy"), Unit::Share),
            ]
        })
        .collect();
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        for (micro, row) in MICROS.iter().zip(&mut micro_rows) {
            row.add(in_turn(round, |who| contenders.micro(who, micro)));
        }
        for (load, rows) in echo_loads.iter().zip(&mut echo_rows) {
            table::add(rows, in_turn(round, |who| contenders.echo(who, load)));
        }
        for (&connections, rows) in WEB_LOADS.iter().zip(&mut web_rows) {
            table::add(rows, in_turn(round, |who| contenders.web(who, connections)));
        }
    }
    eprintln!("counting the servers' system calls");
    let plural = if rounds == 1 { "" } else { "s" };
    let mut counted = Counted::default();
    let (echo_syscalls, web_syscalls) = contenders.count_syscalls(&mut counted);

    let mut header = vec!["", "step 7", "tokio current_thread", "step 7 / tokio"];
    header.extend(contenders.python_header());
    table::print(
        &format!(
            "In this process (Python's in its own), ns per operation, lower is better; \
             median (min–max) of {rounds} round{plural}:"
        ),
        &header,
        micro_rows.iter().map(Row::cells).collect(),
    );
    let mut rows: Vec<Vec<String>> = echo_rows.iter().flatten().map(Row::cells).collect();
    rows.extend(echo_syscalls);
    table::print(
        "TCP echo servers, each in its own process, reading into 64 KiB; the same client makes \
         round trips of 64 bytes. The server's CPU time per round trip, in ns, lower is better; \
         its system calls per round trip, in a pass of their own (all of them, and how many \
         read, write, epoll_wait):",
        &header,
        rows,
    );
    let mut rows: Vec<Vec<String>> = web_rows.iter().flatten().map(Row::cells).collect();
    rows.push(web_syscalls);
    table::print(
        "The web example's server in its own process, `GET /` on keep-alive connections, the \
         same client: requests per second, higher is better; the server's CPU time per \
         request, in ns, lower is better; the share of its CPU it used:",
        &header[..4],
        rows,
    );
    if echo_loads.len() < ECHO_LOADS.len() {
        println!("\nEcho beside 5,000 idle connections: skipped, {open_files} open files at most.");
    }
    for why in contenders
        .pythons
        .iter()
        .filter_map(|python| python.as_ref().err())
    {
        println!("\n{why}: its column is empty.");
    }
    println!("\n{}", counted.said());
    let seconds = started.elapsed().as_secs_f64();
    println!("\n{rounds} round{plural} in {seconds:.0} s.");
}

/// Everything measured beside our loop, by column (ours, tokio, asyncio, uvloop): Python's
/// loops, the echo and web servers, and the client that loads the servers.
struct Contenders {
    pythons: [Result<PythonLoop, String>; 2],
    echo: [Option<Server>; CONTENDERS],
    web: [Option<Server>; CONTENDERS],
    client: Runtime,
}

impl Contenders {
    /// Starts Python's loops here, and the servers on `server_cpu`, each in its own process.
    fn start(server_cpu: Option<usize>) -> Contenders {
        let pythons = [PythonLoop::start("asyncio"), PythonLoop::start("uvloop")];
        let start = |command| match Server::start(command, server_cpu) {
            Ok(server) => Some(server),
            Err(error) => {
                eprintln!("a server did not start: {error}");
                None
            }
        };
        let python_echo = |at: usize, kind| match pythons[at] {
            Ok(_) => start(python::echo_server(kind)),
            Err(_) => None,
        };
        let echo = [
            start(servers::command("--serve-echo", "ours")),
            start(servers::command("--serve-echo", "tokio")),
            python_echo(0, "asyncio"),
            python_echo(1, "uvloop"),
        ];
        let web = [
            start(servers::command("--serve-web", "ours")),
            start(servers::command("--serve-web", "tokio")),
            None,
            None,
        ];
        Contenders {
            pythons,
            echo,
            web,
            client: current_thread(),
        }
    }

    /// What the Python loops say they are, or why they are not here.
    fn python_names(&self) -> String {
        let name = |python: &Result<PythonLoop, String>| match python {
            Ok(python) => python.name.clone(),
            Err(why) => why.clone(),
        };
        self.pythons.iter().map(name).collect::<Vec<_>>().join(", ")
    }

    /// The Python columns' names.
    fn python_header(&self) -> Vec<&str> {
        let kinds = self.pythons.iter().zip(["asyncio", "uvloop"]);
        kinds
            .map(|(python, kind)| python.as_ref().map_or(kind, |python| &python.name))
            .collect()
    }

    /// Contender `who`'s ns per operation of `micro`, if it has that benchmark.
    fn micro(&mut self, who: usize, micro: &Micro) -> Option<f64> {
        match who {
            0 => Some((micro.ours)(micro.count)),
            1 => micro.tokio.map(|tokio| tokio(micro.count)),
            _ => {
                let python = self.pythons[who - 2].as_mut().ok()?;
                Some(python.measure(micro.python?, micro.count))
            }
        }
    }

    /// Contender `who`'s echo server under `load`: its CPU time per round trip, total and user.
    fn echo(&mut self, who: usize, load: &EchoLoad) -> Option<[f64; 2]> {
        let server = self.echo[who].as_mut()?;
        Some(echo_cost(&self.client, server, load))
    }

    /// Contender `who`'s web server, with `connections` asking.
    fn web(&mut self, who: usize, connections: usize) -> Option<[f64; 3]> {
        let server = self.web[who].as_mut()?;
        Some(web_cost(&self.client, server, connections))
    }

    /// The rows of system calls: per echo round trip on 1 and 64 connections, and per web
    /// request on 16.
    fn count_syscalls(&mut self, counted: &mut Counted) -> (Vec<Vec<String>>, Vec<String>) {
        let client = &self.client;
        let echo = ECHO_LOADS[..2].iter().map(|load| {
            let name = format!("{}: system calls per round trip", load.name);
            counted.row(name, &mut self.echo, |server| {
                let mut clients = Clients::connect(client, server.addr, load.busy, 0);
                clients.round_trips(WARM_UP_TRIPS);
                syscalls::count(server.pid(), || clients.round_trips(load.each))
            })
        });
        let echo = echo.collect();
        let connections = WEB_LOADS[0];
        let name = format!("{connections} connections: system calls per request");
        let web = counted.row(name, &mut self.web, |server| {
            let mut clients = Clients::connect(client, server.addr, connections, 0);
            clients.ask_until(Instant::now() + WEB_WARM_UP);
            let window = || clients.ask_until(Instant::now() + WEB_WINDOW);
            syscalls::count(server.pid(), window)
        });
        (echo, web)
    }
}

/// Raises this process's limit on open files as far as it may go, for it and the servers it
/// starts; macOS says its hard limit is "unlimited" but allows 10,240 at most. Returns the limit.
fn raise_open_files() -> u64 {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("the limit on open files");
    [hard, 10_240]
        .into_iter()
        .filter(|&limit| limit > soft)
        .find(|&limit| setrlimit(Resource::RLIMIT_NOFILE, limit, hard).is_ok())
        .unwrap_or(soft)
}

/// Measures the contenders one after another, first to last in even rounds and last to first
/// in odd ones, so that none always goes first; returns the results in column order.
fn in_turn<T>(round: usize, mut measure: impl FnMut(usize) -> Option<T>) -> [Option<T>; 4] {
    let mut results = [const { None }; CONTENDERS];
    for at in 0..CONTENDERS {
        let who = if round % 2 == 0 {
            at
        } else {
            CONTENDERS - 1 - at
        };
        results[who] = measure(who);
    }
    results
}

/// A tokio current-thread runtime: every tokio contender, server and client here runs on one.
fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Round trips each busy connection makes before the measure starts.
const WARM_UP_TRIPS: u64 = 20;

/// The server's CPU time per round trip, total and user, in ns: `load.each` round trips on each
/// busy connection, asked for by the server before and after, while it is idle.
fn echo_cost(client: &Runtime, server: &mut Server, load: &EchoLoad) -> [f64; 2] {
    let mut clients = Clients::connect(client, server.addr, load.busy, load.idle);
    clients.round_trips(WARM_UP_TRIPS);
    let before = server.usage();
    let trips = clients.round_trips(load.each);
    let after = server.usage();
    drop(clients);
    server.settle();
    let per_trip = |spent: Duration| spent.as_secs_f64() * 1e9 / trips as f64;
    [
        per_trip(after.total.saturating_sub(before.total)),
        per_trip(after.user.saturating_sub(before.user)),
    ]
}

/// Requests per second from `connections` keep-alive connections asking for `WEB_WINDOW`, the
/// server's CPU time per request in ns, and the share of one CPU it used meanwhile.
fn web_cost(client: &Runtime, server: &mut Server, connections: usize) -> [f64; 3] {
    let mut clients = Clients::connect(client, server.addr, connections, 0);
    clients.ask_until(Instant::now() + WEB_WARM_UP);
    let before = server.usage();
    let start = Instant::now();
    let answers = clients.ask_until(start + WEB_WINDOW) as f64;
    let elapsed = start.elapsed().as_secs_f64();
    let after = server.usage();
    drop(clients);
    server.settle();
    let busy = after.total.saturating_sub(before.total).as_secs_f64();
    [answers / elapsed, busy * 1e9 / answers, busy / elapsed]
}

/// `-- --echo ours` (or `tokio`): that echo server alone, 20,000 round trips on one
/// connection, for `strace -f` by hand.
fn echo_by_hand(kind: &str, connections: usize) {
    let command = servers::command("--serve-echo", kind);
    let mut server = Server::start(command, None).expect("the echo server starts");
    println!("--echo {kind}: the server is process {}", server.pid());
    let load = EchoLoad {
        name: "by hand",
        busy: connections,
        idle: 0,
        each: 20_000,
    };
    let [total, user] = echo_cost(&current_thread(), &mut server, &load);
    println!("--echo {kind}: server CPU per round trip {total:.0} ns, of which user {user:.0} ns");
}
