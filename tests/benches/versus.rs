//! Our loop against the fastest: step 7's loop beside tokio's current-thread runtime on the
//! talk's benchmarks, spawn-and-await, a yield loop, a TCP echo server, and the web example;
//! CPython's asyncio (and uvloop) join when `python3` (and `uvloop`) are here.
//!
//! Each round runs every benchmark on every contender in turn; the table shows the median of
//! the rounds, in nanoseconds per operation (lower is better), and ours / tokio. For the web
//! example, requests per second (higher is better). Everything runs on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncWriteExt};
use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use step7_tasks::net::{TcpListener, TcpStream};
use step7_tasks::{EventLoop, get_running_loop, sleep};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

// The example's `main` is for `cargo run`; the benchmark serves its app.
#[allow(dead_code)]
#[path = "../../steps/07-tasks/examples/web.rs"]
mod web;

const ROUNDS: usize = 5;

fn main() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("the limit on open files");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("the soft limit can be raised");
    // `-- --echo ours` (or `tokio`) runs only the echo, to count its system calls with strace.
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--echo") {
        let (total, user) = match args.get(at + 1).map(String::as_str) {
            Some("tokio") => echo_on_tokio(20_000, 0),
            _ => echo_on_ours(20_000, 0),
        };
        println!("CPU per round trip: {total:.0} ns, of which user {user:.0} ns");
        return;
    }
    let idle = if hard >= 12_000 { 5_000 } else { 0 };
    let benchmarks: Vec<(&str, u64, Contender, Contender)> = vec![
        (
            "run_until_complete(task(sleep(0)))",
            20_000,
            ours_sleep_task,
            tokio_spawn_yield,
        ),
        (
            "call_soon(noop) + run (tokio: spawn)",
            1_000_000,
            ours_call_soon,
            tokio_spawn_many,
        ),
        ("call_later(0, noop) + run", 200_000, ours_call_later, none),
        (
            "create_task(async {}) + run to the end",
            100_000,
            ours_create_tasks,
            tokio_spawn_many,
        ),
        (
            "one task: sleep(0).await (tokio: yield_now)",
            200_000,
            ours_yield_loop,
            tokio_yield_loop,
        ),
        (
            "TCP echo, CPU per round trip",
            20_000,
            ours_echo_idle0,
            tokio_echo_idle0,
        ),
        (
            "TCP echo, user CPU per round trip",
            20_000,
            ours_echo_user,
            tokio_echo_user,
        ),
    ];
    let mut rows: Vec<(String, Vec<f64>, Vec<f64>)> = benchmarks
        .iter()
        .map(|(name, ..)| (name.to_string(), Vec::new(), Vec::new()))
        .collect();
    let mut idle_rows = [Vec::new(), Vec::new()];
    let mut web_rows = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for ((_, count, ours, tokio), (_, ours_ns, tokio_ns)) in benchmarks.iter().zip(&mut rows) {
            ours_ns.push(ours(*count));
            tokio_ns.push(tokio(*count));
        }
        if idle > 0 {
            idle_rows[0].push(echo_on_ours(20_000, idle).0);
            idle_rows[1].push(echo_on_tokio(20_000, idle).0);
        }
        web_rows.0.push(web_requests_per_second(start_ours_web()));
        web_rows.1.push(web_requests_per_second(start_tokio_web()));
    }
    let python = python_benchmarks();
    println!("ns per operation, median of {ROUNDS} rounds (lower is better)\n");
    println!(
        "| benchmark | step 7 | tokio current_thread | step 7 / tokio | {} |",
        python.header
    );
    println!(
        "| --- | ---: | ---: | ---: |{}",
        " ---: |".repeat(python.columns)
    );
    for (index, (name, ours, tokio)) in rows.into_iter().enumerate() {
        let (ours, tokio) = (median(ours), median(tokio));
        println!(
            "| {name} | {} | {} | {} |{}",
            format_ns(ours),
            format_ns(tokio),
            ratio(ours, tokio),
            python.cells(index)
        );
    }
    if idle > 0 {
        let (ours, tokio) = (median(idle_rows[0].clone()), median(idle_rows[1].clone()));
        println!(
            "| TCP echo, CPU per round trip, {idle} idle connections | {} | {} | {} |{}",
            format_ns(ours),
            format_ns(tokio),
            ratio(ours, tokio),
            python.empty()
        );
    } else {
        println!(
            "(TCP echo beside 5,000 idle connections skipped: the limit on open files is {hard})"
        );
    }
    let (ours, tokio) = (median(web_rows.0), median(web_rows.1));
    println!(
        "\nThe web example, keep-alive, 16 connections: step 7 {ours:.0} requests/s, \
         tokio current_thread {tokio:.0} requests/s: {:.2}x tokio's rate",
        ours / tokio
    );
    println!("{}", python.note);
}

type Contender = fn(u64) -> f64;

fn none(_: u64) -> f64 {
    f64::NAN
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn format_ns(ns: f64) -> String {
    if ns.is_nan() {
        "—".into()
    } else if ns < 100.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.0}")
    }
}

fn ratio(ours: f64, theirs: f64) -> String {
    if ours.is_nan() || theirs.is_nan() {
        "—".into()
    } else {
        format!("{:.2}x", ours / theirs)
    }
}

/// Nanoseconds per operation of `work`, which does `count` of them.
fn per_op(count: u64, work: impl FnOnce()) -> f64 {
    let start = Instant::now();
    work();
    start.elapsed().as_secs_f64() * 1e9 / count as f64
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn ours_sleep_task(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        for _ in 0..count {
            event_loop.run_until_complete(sleep(Duration::ZERO));
        }
    });
    event_loop.close();
    ns
}

fn tokio_spawn_yield(count: u64) -> f64 {
    let runtime = current_thread();
    per_op(count, || {
        for _ in 0..count {
            runtime
                .block_on(async { tokio::spawn(tokio::task::yield_now()).await })
                .expect("the task ends");
        }
    })
}

fn ours_call_soon(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        for _ in 0..count {
            event_loop.call_soon(|| {});
        }
        let stopper = event_loop.clone();
        event_loop.call_soon(move || stopper.stop());
        event_loop.run_forever();
    });
    event_loop.close();
    ns
}

fn ours_call_later(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        for _ in 0..count {
            event_loop.call_later(Duration::ZERO, || {});
        }
        let stopper = event_loop.clone();
        event_loop.call_later(Duration::ZERO, move || stopper.stop());
        event_loop.run_forever();
    });
    event_loop.close();
    ns
}

fn ours_create_tasks(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        let mut last = None;
        for _ in 0..count {
            last = Some(event_loop.create_task(async {}));
        }
        event_loop
            .run_until_complete(last.expect("at least one task"))
            .expect("the task ends");
    });
    event_loop.close();
    ns
}

fn tokio_spawn_many(count: u64) -> f64 {
    let runtime = current_thread();
    per_op(count, || {
        runtime.block_on(async {
            let mut last = None;
            for _ in 0..count {
                last = Some(tokio::spawn(async {}));
            }
            last.expect("at least one task")
                .await
                .expect("the task ends");
        })
    })
}

fn ours_yield_loop(count: u64) -> f64 {
    let event_loop = EventLoop::new();
    let ns = per_op(count, || {
        event_loop.run_until_complete(async move {
            for _ in 0..count {
                sleep(Duration::ZERO).await;
            }
        })
    });
    event_loop.close();
    ns
}

fn tokio_yield_loop(count: u64) -> f64 {
    let runtime = current_thread();
    per_op(count, || {
        runtime.block_on(async move {
            for _ in 0..count {
                tokio::task::yield_now().await;
            }
        })
    })
}

/// This process's CPU time: user, and user plus system.
fn cpu_time() -> (Duration, Duration) {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("the process's usage");
    let micros = |time: nix::sys::time::TimeVal| {
        Duration::from_micros(time.tv_sec() as u64 * 1_000_000 + time.tv_usec() as u64)
    };
    let user = micros(usage.user_time());
    (user, user + micros(usage.system_time()))
}

fn ours_echo_idle0(count: u64) -> f64 {
    echo_on_ours(count, 0).0
}

fn ours_echo_user(count: u64) -> f64 {
    echo_on_ours(count, 0).1
}

fn tokio_echo_idle0(count: u64) -> f64 {
    echo_on_tokio(count, 0).0
}

fn tokio_echo_user(count: u64) -> f64 {
    echo_on_tokio(count, 0).1
}

/// A TCP echo server and its client, both tasks of one loop, `count` round trips of 64 bytes,
/// beside `idle` connections that a task each waits on: CPU ns per round trip, total and user.
fn echo_on_ours(count: u64, idle: usize) -> (f64, f64) {
    step7_tasks::run(async move {
        let event_loop = get_running_loop().expect("run's loop");
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").expect("a port"));
        let addr = listener.local_addr().expect("its address");
        let server = listener.clone();
        event_loop.create_task(async move {
            let lp = get_running_loop().expect("the loop");
            loop {
                let (stream, _) = server.accept().await.expect("a connection");
                lp.create_task(async move {
                    let mut buffer = [0; 64];
                    while let Ok(read @ 1..) = (&stream).read(&mut buffer).await {
                        (&stream)
                            .write_all(&buffer[..read])
                            .await
                            .expect("the echo");
                    }
                });
            }
        });
        let mut held = Vec::new();
        for _ in 0..idle {
            held.push(TcpStream::connect(addr).await.expect("an idle connection"));
        }
        let client = TcpStream::connect(addr).await.expect("the client");
        let mut buffer = [7; 64];
        let (user, total) = cpu_time();
        for _ in 0..count {
            (&client)
                .write_all(&buffer)
                .await
                .expect("the client writes");
            (&client)
                .read_exact(&mut buffer)
                .await
                .expect("the echo comes back");
        }
        let (user_after, total_after) = cpu_time();
        per_round_trip(count, total_after - total, user_after - user)
    })
}

fn echo_on_tokio(count: u64, idle: usize) -> (f64, f64) {
    current_thread().block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.expect("a connection");
                stream.set_nodelay(true).expect("no delay");
                tokio::spawn(async move {
                    let mut buffer = [0; 64];
                    while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                        stream.write_all(&buffer[..read]).await.expect("the echo");
                    }
                });
            }
        });
        let mut held = Vec::new();
        for _ in 0..idle {
            held.push(
                tokio::net::TcpStream::connect(addr)
                    .await
                    .expect("an idle connection"),
            );
        }
        let mut client = tokio::net::TcpStream::connect(addr)
            .await
            .expect("the client");
        client.set_nodelay(true).expect("no delay");
        let mut buffer = [7; 64];
        let (user, total) = cpu_time();
        for _ in 0..count {
            client.write_all(&buffer).await.expect("the client writes");
            client
                .read_exact(&mut buffer)
                .await
                .expect("the echo comes back");
        }
        let (user_after, total_after) = cpu_time();
        per_round_trip(count, total_after - total, user_after - user)
    })
}

fn per_round_trip(count: u64, total: Duration, user: Duration) -> (f64, f64) {
    let ns = |time: Duration| time.as_secs_f64() * 1e9 / count as f64;
    (ns(total), ns(user))
}

/// Starts the web example on our loop, on a thread of its own.
fn start_ours_web() -> SocketAddr {
    let (bound_tx, bound) = mpsc::channel();
    thread::spawn(move || {
        step7_tasks::run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
            bound_tx
                .send(listener.local_addr().expect("its address"))
                .expect("the bench");
            web::serve(listener, web::app()).await
        })
    });
    bound.recv().expect("the server's address")
}

/// Starts the same app on tokio's current-thread runtime, with hyper and its tokio glue.
fn start_tokio_web() -> SocketAddr {
    let (bound_tx, bound) = mpsc::channel();
    thread::spawn(move || {
        current_thread().block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            bound_tx
                .send(listener.local_addr().expect("its address"))
                .expect("the bench");
            loop {
                let (stream, _) = listener.accept().await.expect("a connection");
                stream.set_nodelay(true).expect("no delay");
                let service = hyper_util::service::TowerToHyperService::new(web::app());
                tokio::spawn(async move {
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    drop(connection.await);
                });
            }
        })
    });
    bound.recv().expect("the server's address")
}

/// Requests per second that 16 keep-alive connections, one thread each, get from `server` in
/// one second of `GET /`.
fn web_requests_per_second(server: SocketAddr) -> f64 {
    const CONNECTIONS: usize = 16;
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (stop, served) = (stop.clone(), served.clone());
            thread::spawn(move || {
                let stream = std::net::TcpStream::connect(server).expect("the server");
                stream.set_nodelay(true).expect("no delay");
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while !stop.load(Ordering::Relaxed) {
                    reader
                        .get_mut()
                        .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                        .expect("the request");
                    let mut length = 0;
                    loop {
                        line.clear();
                        reader.read_line(&mut line).expect("the answer");
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(value) =
                            line.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = value.trim().parse().expect("a length");
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).expect("the body");
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let before = served.load(Ordering::Relaxed);
    let start = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let after = served.load(Ordering::Relaxed);
    let rate = (after - before) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client");
    }
    rate
}

/// CPython's asyncio, and uvloop if it is installed, on the benchmarks they have.
struct Python {
    header: String,
    columns: usize,
    /// Per benchmark row, one cell per column.
    cells: Vec<Vec<String>>,
    note: String,
}

impl Python {
    fn cells(&self, row: usize) -> String {
        match self.cells.get(row) {
            Some(cells) => cells.iter().map(|cell| format!(" {cell} |")).collect(),
            None => self.empty(),
        }
    }

    fn empty(&self) -> String {
        " — |".repeat(self.columns)
    }
}

/// The benchmarks of the table, in Python, for each loop given; one line per loop, ns per
/// operation in the table's order ("nan" where asyncio has no such thing).
const PYTHON: &str = r#"
import asyncio, sys, time

def per_op(count, work):
    start = time.perf_counter()
    work()
    return (time.perf_counter() - start) * 1e9 / count

def measure(new_loop):
    loop = new_loop()
    asyncio.set_event_loop(loop)
    def sleep_task():
        for _ in range(20_000):
            loop.run_until_complete(loop.create_task(asyncio.sleep(0)))
    def soon():
        for _ in range(200_000):
            loop.call_soon(lambda: None)
        loop.call_soon(loop.stop)
        loop.run_forever()
    def later():
        for _ in range(200_000):
            loop.call_later(0, lambda: None)
        loop.call_later(0, loop.stop)
        loop.run_forever()
    async def nothing():
        pass
    def tasks():
        last = None
        for _ in range(100_000):
            last = loop.create_task(nothing())
        loop.run_until_complete(last)
    async def yields():
        for _ in range(200_000):
            await asyncio.sleep(0)
    def yield_loop():
        loop.run_until_complete(yields())
    row = [per_op(20_000, sleep_task), per_op(200_000, soon), per_op(200_000, later),
           per_op(100_000, tasks), per_op(200_000, yield_loop)]
    loop.close()
    return row

loops = [("CPython " + sys.version.split()[0] + " asyncio", asyncio.new_event_loop)]
try:
    import uvloop
    loops.append(("uvloop", uvloop.new_event_loop))
except ImportError:
    pass
for name, new_loop in loops:
    rows = [measure(new_loop) for _ in range(3)]
    medians = [sorted(column)[1] for column in zip(*rows)]
    print(name + "\t" + "\t".join(f"{ns:.1f}" for ns in medians))
"#;

fn python_benchmarks() -> Python {
    let output = Command::new("python3").args(["-c", PYTHON]).output();
    let lines: Vec<(String, Vec<f64>)> = match output {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let name = fields.next()?.to_string();
                Some((name, fields.filter_map(|ns| ns.parse().ok()).collect()))
            })
            .collect(),
        _ => Vec::new(),
    };
    if lines.is_empty() {
        return Python {
            header: "CPython asyncio".into(),
            columns: 1,
            cells: Vec::new(),
            note: "CPython's asyncio: skipped, no python3 here.".into(),
        };
    }
    let note = if lines.len() == 1 {
        "uvloop: skipped, not installed for this python3 (pip install uvloop to compare).".into()
    } else {
        String::new()
    };
    let header = lines
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(" | ");
    let cells = (0..5)
        .map(|row| lines.iter().map(|(_, ns)| format_ns(ns[row])).collect())
        .collect();
    Python {
        header,
        columns: lines.len(),
        cells,
        note,
    }
}
