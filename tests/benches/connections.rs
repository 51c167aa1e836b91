//! Step 7's proxy, on the default selector, holding 10,000 idle client connections while a
//! steady stream of good requests goes through it: the number `select` could never reach.
//!
//! Everything runs on 127.0.0.1. This process runs the proxy (a loop on a thread of its own)
//! and an origin; the idle clients live in a child process (this same program, started with
//! `--hold ADDR COUNT`), since one process may not be allowed descriptors for both ends of
//! 10,000 connections. Each request of the stream opens a connection, asks the origin for a
//! page through the proxy, and checks the answer. At the end the child checks that every idle
//! connection is still open. `cargo bench --bench connections -- --idle N` holds N instead.

use std::env;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use step7_tasks::proxy::{Config, serve};

const REQUESTS: usize = 2_000;
const PAGE: &str = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n";

fn main() {
    let args: Vec<String> = env::args().collect();
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("the limit on open files");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("the soft limit can be raised");
    if let Some(at) = args.iter().position(|arg| arg == "--hold") {
        hold(args[at + 1].parse().unwrap(), args[at + 2].parse().unwrap());
        return;
    }
    let idle: usize = match args.iter().position(|arg| arg == "--idle") {
        Some(at) => args[at + 1].parse().expect("--idle takes a number"),
        None => 10_000,
    };
    // Each side holds one descriptor per idle connection; the proxy also needs a few of its
    // own, two per request in flight, and the origin's.
    let needed = idle as u64 + 256;
    if hard < needed {
        println!(
            "skipped: holding {idle} connections needs {needed} open files per process, and \
             this system allows {hard} (raise it with `ulimit -n {needed}`)"
        );
        return;
    }

    let origin = start_origin();
    let proxy = start_proxy();
    let start = Instant::now();
    let mut child = Command::new(env::current_exe().expect("this program"))
        .args(["--hold", &proxy.to_string(), &idle.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child that holds the idle connections");
    let mut from_child = BufReader::new(child.stdout.take().expect("its stdout"));
    let mut line = String::new();
    from_child
        .read_line(&mut line)
        .expect("the child says when it holds them");
    println!("{} in {:.2} s", line.trim(), start.elapsed().as_secs_f64());

    let mut latencies = Vec::with_capacity(REQUESTS);
    let mut failures = 0;
    for _ in 0..REQUESTS {
        let asked = Instant::now();
        match get_through(proxy, origin) {
            Ok(()) => latencies.push(asked.elapsed()),
            Err(error) => {
                failures += 1;
                eprintln!("a request failed: {error}");
            }
        }
    }
    drop(child.stdin.take());
    line.clear();
    from_child
        .read_line(&mut line)
        .expect("the child reports the connections still open");
    child.wait().expect("the child ends");

    latencies.sort();
    let at = |share: f64| {
        latencies[((latencies.len() as f64 * share) as usize).min(latencies.len() - 1)]
    };
    println!(
        "{REQUESTS} requests through the proxy beside them: {failures} failed; \
         latency median {:.0} µs, 99th percentile {:.0} µs, worst {:.0} µs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        at(1.0).as_secs_f64() * 1e6,
    );
    println!("{}", line.trim());
}

/// One GET through the proxy, checked.
fn get_through(proxy: SocketAddr, origin: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(proxy)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET http://{origin}/page HTTP/1.1\r\nHost: {origin}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\nhi\n") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "unexpected answer: {answer:?}"
        )))
    }
}

/// The child: opens `count` connections to `proxy`, says so, waits until its stdin closes,
/// then says how many are still open (a read that would block: the proxy has not hung up).
fn hold(proxy: SocketAddr, count: usize) {
    // Eight threads connect at once, as many clients would.
    let connecting: Vec<_> = (0..8)
        .map(|part| {
            let share = count / 8 + usize::from(part < count % 8);
            thread::spawn(move || {
                (0..share)
                    .map(|_| TcpStream::connect(proxy).expect("the proxy accepts"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let streams: Vec<TcpStream> = connecting
        .into_iter()
        .flat_map(|part| part.join().expect("a connecting thread"))
        .collect();
    println!("holding {count} idle connections to the proxy");
    let mut rest = Vec::new();
    drop(std::io::stdin().read_to_end(&mut rest));
    let open = streams
        .iter()
        .filter(|stream| {
            stream.set_nonblocking(true).expect("non-blocking");
            matches!((&**stream).read(&mut [0]), Err(error) if error.kind() == ErrorKind::WouldBlock)
        })
        .count();
    println!("{open} of {count} idle connections still open at the end");
}

/// An origin that answers every request with a short page, a thread per connection.
fn start_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the origin");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|read| read > 2) {
                    line.clear();
                }
                drop((&stream).write_all(PAGE.as_bytes()));
            });
        }
    });
    addr
}

/// The proxy, quiet, on a loop of its own (the default selector) in a thread of its own.
fn start_proxy() -> SocketAddr {
    let (bound_tx, bound) = mpsc::channel();
    thread::spawn(move || {
        step7_tasks::run(async move {
            let listener = step7_tasks::net::TcpListener::bind("127.0.0.1:0").expect("a port");
            bound_tx
                .send(listener.local_addr().expect("its address"))
                .expect("the main thread");
            let quiet = Config {
                log: false,
                ..Config::default()
            };
            serve(listener, quiet).await
        })
    });
    bound.recv().expect("the proxy's address")
}
