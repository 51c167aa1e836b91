//! Step 7's proxy under the three loads a proxy meets in the wild, each beside a well-behaved
//! client that must go on being served (`just stress`):
//!
//! 1. *Slowloris*: 2,000 connections that send a request head a byte at a time and never end
//!    it. Each must get `408` and be closed once the head timeout has passed, and not before.
//! 2. *A bulk download* of 1 GiB, beside a client that makes a request every 10 ms: that
//!    client's worst request is the number (the goal is 50 ms; without the loop's cooperative
//!    budget it was over a second).
//! 3. *Keep-alive*: 1,000,000 requests from 100 connections, each a connection that carries
//!    request after request: zero errors, and the proxy's memory and descriptors flat.
//! 4. *Lookups that never answer*: 100 requests for names whose lookup never returns, beside
//!    a good client asking every 10 ms (goal: its worst request under 50 ms). This one runs the
//!    proxy in this process, with a lookup of its own that never returns.
//! 5. *A slow upload*: a body sent at a steady pace for 60 s, with the default limits: the
//!    origin's answer must come (the wait for it starts when the body is sent).
//! 6. *A client that never reads*: it asks for answers and reads none; the proxy must hang up
//!    within its send limit (3 s here).
//! 7. *Idle connections*: 10,000 connections that send nothing, to a fresh proxy; its memory
//!    per connection (goal: at most 12 KB).
//!
//! Everything runs on 127.0.0.1. The proxy is the real program (`step7-tasks`, built with
//! `--release`), a child process, so that its memory and descriptors can be read on their own;
//! its log is read and counted. The origin and the clients are plain threads in this process.
//! `cargo bench --bench stress -- --slowloris N --head-timeout S --bulk BYTES --requests N
//! --connections N --lookups N --upload SECONDS --idle N` changes the sizes; a size of 0 skips
//! its load.

use std::collections::BTreeMap;
use std::env;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// How long any one read may take before the stress test calls it a failure.
const PATIENCE: Duration = Duration::from_secs(10);

/// Enough for the origin never to be what the keep-alive load waits for: each of its threads
/// waits for the proxy to send a request on each connection it accepts.
const ORIGIN_THREADS: usize = 128;

/// The proxy's send limit in these loads, in seconds.
const SEND_LIMIT: u64 = 3;

fn main() {
    let number = |name: &str, default: u64| -> u64 {
        let args: Vec<String> = env::args().collect();
        match args.iter().position(|arg| arg == name) {
            Some(at) => args[at + 1].parse().expect("a number"),
            None => default,
        }
    };
    let slowloris = number("--slowloris", 2_000) as usize;
    let head_timeout = number("--head-timeout", 5);
    let bulk = number("--bulk", 1 << 30);
    let requests = number("--requests", 1_000_000) as usize;
    let connections = number("--connections", 100) as usize;
    let lookups = number("--lookups", 100) as usize;
    let upload = number("--upload", 60);
    let idle = number("--idle", 10_000) as usize;

    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("the limit on open files");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("the soft limit can be raised");
    let needed = slowloris.max(idle) as u64 + 512;
    if hard < needed {
        println!(
            "skipped: {} connections need {needed} open files per process, and this system \
             allows {hard} (raise it with `ulimit -n {needed}`)",
            slowloris.max(idle)
        );
        return;
    }

    let origin = start_origin();
    let proxy = Proxy::start(head_timeout);
    println!("proxy: pid {}, {}", proxy.pid(), proxy.usage());
    // A size of 0 skips its load.
    if slowloris > 0 {
        slow_clients(&proxy, origin, slowloris, Duration::from_secs(head_timeout));
        println!("proxy: {}", proxy.usage());
    }
    if bulk > 0 {
        bulk_download(&proxy, origin, bulk);
        println!("proxy: {}", proxy.usage());
    }
    if requests > 0 {
        keep_alive(&proxy, origin, requests, connections);
        println!("proxy: {}", proxy.usage());
    }
    if lookups > 0 {
        lookups_that_never_answer(origin, lookups);
    }
    if upload > 0 {
        slow_upload(&proxy, origin, Duration::from_secs(upload));
        println!("proxy: {}", proxy.usage());
    }
    never_reads(&proxy, origin);
    println!("proxy: {}", proxy.usage());
    println!("the proxy's log: {}", proxy.logged());
    if idle > 0 {
        // On a proxy of its own: the allocator keeps what the loads above freed, and new
        // connections would reuse it unseen.
        idle_connections(&Proxy::start(head_timeout), idle);
    }
}

/// 2,000 connections send a head a byte at a time; a good client makes a request every 50 ms
/// until all of them are closed.
fn slow_clients(proxy: &Proxy, origin: SocketAddr, count: usize, head_timeout: Duration) {
    println!();
    println!("1. {count} slowloris connections, head timeout {head_timeout:?}");
    let opening = Instant::now();
    let mut slow: Vec<(TcpStream, Instant)> = Vec::with_capacity(count);
    let connecting: Vec<_> = (0..8)
        .map(|part| {
            let share = count / 8 + usize::from(part < count % 8);
            let address = proxy.address;
            thread::spawn(move || {
                let open = |_| {
                    let mut stream = TcpStream::connect(address).expect("the proxy accepts");
                    let opened = Instant::now();
                    let start = format!("GET http://{origin}/ HTTP/1.1\r\nHost: slow\r\n");
                    stream.write_all(start.as_bytes()).expect("the proxy reads");
                    stream.set_nonblocking(true).expect("non-blocking");
                    (stream, opened)
                };
                (0..share).map(open).collect::<Vec<_>>()
            })
        })
        .collect();
    for part in connecting {
        slow.extend(part.join().expect("a connecting thread"));
    }
    println!(
        "   all open in {:.2} s; a good client asks every 50 ms meanwhile",
        opening.elapsed().as_secs_f64()
    );

    let good = GoodClient::start(proxy.address, origin, Duration::from_millis(50));
    let give_up = Instant::now() + 3 * head_timeout + Duration::from_secs(30);
    let (mut refused, mut dropped, mut early) = (0, 0, 0);
    let mut lifetimes = Vec::with_capacity(count);
    while !slow.is_empty() && Instant::now() < give_up {
        thread::sleep(Duration::from_millis(250));
        slow.retain_mut(|(stream, opened)| {
            let mut answer = [0; 256];
            let outcome = match stream.read(&mut answer) {
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    // Still open: one more byte of a header that never ends. A write that
                    // fails found it closed meanwhile: the next read tells how.
                    let _ = stream.write_all(b"x");
                    return true;
                }
                Ok(read) => answer[..read].starts_with(b"HTTP/1.1 408 "),
                Err(_) => false,
            };
            let lived = opened.elapsed();
            lifetimes.push(lived);
            early += usize::from(lived < head_timeout);
            if outcome {
                refused += 1
            } else {
                dropped += 1
            }
            false
        });
    }
    let served = good.stop();
    lifetimes.sort();
    let (first, last) = (lifetimes.first(), lifetimes.last());
    println!(
        "   {refused} answered 408 and closed, {dropped} closed without it, {} still open, \
         {early} closed before the timeout; closed {:.2} to {:.2} s after they connected \
         (checked every 0.25 s)",
        slow.len(),
        first.map_or(0.0, Duration::as_secs_f64),
        last.map_or(0.0, Duration::as_secs_f64),
    );
    println!("   the good client: {served}");
}

/// One client downloads `bytes` through the proxy; a good client asks every 10 ms meanwhile.
fn bulk_download(proxy: &Proxy, origin: SocketAddr, bytes: u64) {
    println!();
    println!(
        "2. a bulk download of {:.2} GiB",
        bytes as f64 / (1u64 << 30) as f64
    );
    let good = GoodClient::start(proxy.address, origin, Duration::from_millis(10));
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy.address).expect("the proxy accepts");
    let request = format!(
        "GET http://{origin}/bulk/{bytes} HTTP/1.1\r\nHost: bulk\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .expect("the proxy reads");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("a read timeout");
    let received = std::io::copy(&mut stream, &mut std::io::sink()).expect("the download");
    let seconds = started.elapsed().as_secs_f64();
    let served = good.stop();
    println!(
        "   {received} bytes (head included) in {seconds:.2} s: {:.0} MB/s",
        received as f64 / seconds / 1e6
    );
    println!("   the good client: {served}");
}

/// `requests` requests from `connections` keep-alive connections, the proxy's memory and
/// descriptors read every few seconds.
fn keep_alive(proxy: &Proxy, origin: SocketAddr, requests: usize, connections: usize) {
    println!();
    println!("3. {requests} keep-alive requests from {connections} connections");
    let done = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|client| {
            let share = requests / connections + usize::from(client < requests % connections);
            let (address, done, errors) = (proxy.address, done.clone(), errors.clone());
            thread::spawn(move || {
                let mut connection = None;
                for _ in 0..share {
                    let stream = match &mut connection {
                        Some(stream) => stream,
                        None => connection.insert(KeptConnection::open(address)),
                    };
                    match stream.get(origin) {
                        Ok(()) => drop(done.fetch_add(1, Ordering::Relaxed)),
                        Err(error) => {
                            errors.lock().unwrap().push(error);
                            connection = None;
                        }
                    }
                }
            })
        })
        .collect();
    let mut samples = Vec::new();
    while clients.iter().any(|client| !client.is_finished()) {
        thread::sleep(Duration::from_secs(1));
        let count = done.load(Ordering::Relaxed);
        let (rss, descriptors) = (proxy.rss_kib(), proxy.descriptors());
        if samples.len() % 5 == 0 {
            println!(
                "   {count:>9} done, {:>6.0}/s, proxy {}",
                count as f64 / started.elapsed().as_secs_f64(),
                proxy.usage()
            );
        }
        samples.push((rss, descriptors));
    }
    for client in clients {
        client.join().expect("a client thread");
    }
    let seconds = started.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed);
    let errors = errors.lock().unwrap();
    println!(
        "   {count} answered in {seconds:.1} s ({:.0}/s), {} errors{}",
        count as f64 / seconds,
        errors.len(),
        errors
            .first()
            .map_or(String::new(), |error| format!(", the first: {error}"))
    );
    // Flat: the last quarter of the run needs no more than the first.
    let quarter = (samples.len() / 4).max(1);
    let peak = |samples: &[(Option<u64>, Option<usize>)]| {
        let rss = samples.iter().filter_map(|sample| sample.0).max();
        let descriptors = samples.iter().filter_map(|sample| sample.1).max();
        (rss, descriptors)
    };
    let (early, late) = (
        peak(&samples[..quarter]),
        peak(&samples[samples.len() - quarter..]),
    );
    println!(
        "   proxy peak in the first quarter: {} KiB, {} descriptors; in the last: {} KiB, {} \
         descriptors",
        shown(early.0),
        shown(early.1),
        shown(late.0),
        shown(late.1)
    );
}

/// `count` requests for names whose lookup never returns, beside a good client; on a proxy in
/// this process, whose `Config` brings that lookup.
fn lookups_that_never_answer(origin: SocketAddr, count: usize) {
    println!();
    println!("4. {count} requests for names whose lookup never answers");
    fn never_answers(_: &str, _: u16) -> std::io::Result<Vec<SocketAddr>> {
        thread::sleep(Duration::from_secs(24 * 3600));
        Err(std::io::Error::other("no answer"))
    }
    let (bound, address) = std::sync::mpsc::channel();
    thread::spawn(move || {
        step7_tasks::run(async move {
            let listener = step7_tasks::net::TcpListener::bind("127.0.0.1:0").expect("a port");
            bound
                .send(listener.local_addr().expect("its address"))
                .expect("the bench waits");
            let config = step7_tasks::proxy::Config {
                lookup: never_answers,
                log: false,
                ..Default::default()
            };
            step7_tasks::proxy::serve(listener, config).await
        })
    });
    let proxy = address.recv().expect("the proxy's address");
    let waiting: Vec<TcpStream> = (0..count)
        .map(|n| {
            let mut stream = TcpStream::connect(proxy).expect("the proxy accepts");
            let request = format!("GET http://never-{n}.invalid/ HTTP/1.1\r\nHost: x\r\n\r\n");
            stream
                .write_all(request.as_bytes())
                .expect("the proxy reads");
            stream
        })
        .collect();
    println!("   all {count} asked; a good client asks every 10 ms for 3 s");
    let good = GoodClient::start(proxy, origin, Duration::from_millis(10));
    thread::sleep(Duration::from_secs(3));
    println!("   the good client: {}", good.stop());
    drop(waiting);
}

/// A body sent at a steady pace for `length`, with the default limits (the upstream one is
/// 30 s): the origin reads it all, then answers.
fn slow_upload(proxy: &Proxy, origin: SocketAddr, length: Duration) {
    println!();
    println!(
        "5. an upload at a steady pace for {:.0} s",
        length.as_secs_f64()
    );
    let pieces = length.as_millis() as usize / 100;
    let mut stream = TcpStream::connect(proxy.address).expect("the proxy accepts");
    let head = format!(
        "POST http://{origin}/upload HTTP/1.1\r\nHost: up\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        pieces * 1024
    );
    stream.write_all(head.as_bytes()).expect("the proxy reads");
    let started = Instant::now();
    for piece in 0..pieces {
        stream
            .write_all(&[b'u'; 1024])
            .expect("the proxy reads the body");
        thread::sleep(
            (started + (piece as u32 + 1) * Duration::from_millis(100))
                .saturating_duration_since(Instant::now()),
        );
    }
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("a read timeout");
    let mut answer = Vec::new();
    let outcome = stream.read_to_end(&mut answer);
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    println!(
        "   {} KiB sent over {:.1} s; the answer: {status:?}{}",
        pieces,
        started.elapsed().as_secs_f64(),
        outcome
            .err()
            .map_or(String::new(), |error| format!(" ({error})"))
    );
}

/// A client asks for a hundred answers of heads alone, 60 KB each, and reads nothing: the
/// proxy must hang up within its send limit once the buffers on the way are full.
fn never_reads(proxy: &Proxy, origin: SocketAddr) {
    println!();
    println!("6. a client that never reads, send limit {SEND_LIMIT} s");
    let mut stream = TcpStream::connect(proxy.address).expect("the proxy accepts");
    let request = format!("GET http://{origin}/big-head HTTP/1.1\r\nHost: x\r\n\r\n");
    stream
        .write_all(request.repeat(100).as_bytes())
        .expect("the proxy reads");
    // It goes on sending empty lines: a proxy that hangs up with them unread resets the
    // connection, and the write fails.
    stream
        .set_write_timeout(Some(PATIENCE * 6))
        .expect("a write timeout");
    let started = Instant::now();
    let flood = vec![b'\n'; 1 << 20];
    let outcome = (0..1024).try_for_each(|_| stream.write_all(&flood));
    println!(
        "   hung up on {:.2} s after it began asking ({})",
        started.elapsed().as_secs_f64(),
        outcome
            .err()
            .map_or("never".into(), |error| error.to_string())
    );
    // The log line is written as the connection ends: wait for it a little.
    let deadline = Instant::now() + PATIENCE;
    while proxy.troubles.lock().unwrap().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    for line in proxy.troubles.lock().unwrap().iter() {
        println!("   the proxy's log: {line}");
    }
}

/// `count` connections that send nothing: what each costs the proxy in memory.
fn idle_connections(proxy: &Proxy, count: usize) {
    println!();
    println!("7. {count} idle connections");
    let before = proxy.rss_kib();
    let connections: Vec<TcpStream> = (0..count)
        .map(|_| TcpStream::connect(proxy.address).expect("the proxy accepts"))
        .collect();
    // The proxy accepts them as fast as it can; its memory is read once it has.
    let deadline = Instant::now() + PATIENCE;
    while proxy.descriptors().is_some_and(|open| open < count) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let after = proxy.rss_kib();
    if let (Some(before), Some(after)) = (before, after) {
        let per = (after.saturating_sub(before)) as f64 * 1024.0 / count as f64;
        println!(
            "   proxy resident {before} KiB -> {after} KiB: {:.1} KB per connection, {}",
            per / 1000.0,
            proxy.usage()
        );
    }
    drop(connections);
}

fn shown<T: ToString>(value: Option<T>) -> String {
    value.map_or("?".into(), |value| value.to_string())
}

/// A connection that carries one request after another.
struct KeptConnection {
    reader: BufReader<TcpStream>,
}

impl KeptConnection {
    fn open(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).expect("the proxy accepts");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("a read timeout");
        stream.set_nodelay(true).expect("no delay");
        KeptConnection {
            reader: BufReader::new(stream),
        }
    }

    /// One request and its answer, checked; the connection stays open.
    fn get(&mut self, origin: SocketAddr) -> Result<(), String> {
        let request = format!("GET http://{origin}/page HTTP/1.1\r\nHost: kept\r\n\r\n");
        let stream = self.reader.get_mut();
        stream
            .write_all(request.as_bytes())
            .map_err(|error| error.to_string())?;
        let (mut head, mut line) = (String::new(), String::new());
        while line != "\r\n" {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return Err(format!("the proxy closed the connection after {head:?}")),
                Ok(_) => head.push_str(&line),
                Err(error) => return Err(error.to_string()),
            }
        }
        let mut body = [0; 3];
        self.reader
            .read_exact(&mut body)
            .map_err(|error| error.to_string())?;
        if head.starts_with("HTTP/1.1 200 ")
            && !head.contains("Connection: close")
            && &body == b"hi\n"
        {
            Ok(())
        } else {
            Err(format!("unexpected answer: {head:?} {body:?}"))
        }
    }
}

/// A client that asks for a page through the proxy at a steady pace, each time on a new
/// connection, and times each answer.
struct GoodClient {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<(Vec<Duration>, Vec<String>)>,
}

impl GoodClient {
    fn start(proxy: SocketAddr, origin: SocketAddr, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let (mut times, mut errors) = (Vec::new(), Vec::new());
            let mut next = Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                let asked = Instant::now();
                match get_once(proxy, origin) {
                    Ok(()) => times.push(asked.elapsed()),
                    Err(error) => errors.push(error),
                }
                // Keeps the pace: the next request is due `every` after the last was.
                next += every;
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            (times, errors)
        });
        GoodClient { stop, thread }
    }

    /// Stops the client and says how it was served.
    fn stop(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let (mut times, errors) = self.thread.join().expect("the good client");
        times.sort();
        let at = |share: f64| {
            let at = ((times.len() as f64 * share) as usize).min(times.len().saturating_sub(1));
            times.get(at).map_or(0.0, |time| time.as_secs_f64() * 1e3)
        };
        format!(
            "{} requests served, {} failed{}; latency median {:.2} ms, 99th percentile {:.2} ms, \
             worst {:.2} ms",
            times.len(),
            errors.len(),
            errors
                .first()
                .map_or(String::new(), |error| format!(" ({error})")),
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }
}

/// One request on a connection of its own, checked.
fn get_once(proxy: SocketAddr, origin: SocketAddr) -> Result<(), String> {
    let attempt = || -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(proxy)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        let request =
            format!("GET http://{origin}/page HTTP/1.1\r\nHost: good\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        Ok(answer)
    };
    let answer = attempt().map_err(|error| error.to_string())?;
    if answer.starts_with(b"HTTP/1.1 200 ") && answer.ends_with(b"\r\n\r\nhi\n") {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer: {:?}",
            String::from_utf8_lossy(&answer)
        ))
    }
}

/// An origin with [`ORIGIN_THREADS`] threads that take turns accepting: `/bulk/N` is N bytes, anything
/// else a short page; every answer ends the connection, as the proxy asks.
fn start_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the origin");
    let address = listener.local_addr().expect("its address");
    for _ in 0..ORIGIN_THREADS {
        let listener = listener.try_clone().expect("the listener, shared");
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                drop(answer(stream));
            }
        });
    }
    address
}

fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (mut line, mut length) = (String::new(), 0);
    while reader.read_line(&mut line)? > 2 {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        line.clear();
    }
    let path = request_line.split(' ').nth(1).unwrap_or_default();
    if path == "/upload" {
        // The request's body, read whole before the answer, as an origin that stores it would.
        std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink())?;
        return write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
    }
    if path == "/big-head" {
        let filler = "x".repeat(1000);
        let headers: String = (0..60)
            .map(|n| format!("X-Filler-{n}: {filler}\r\n"))
            .collect();
        return write!(
            stream,
            "HTTP/1.1 200 OK\r\n{headers}Content-Length: 0\r\n\r\n"
        );
    }
    match path
        .strip_prefix("/bulk/")
        .and_then(|size| size.parse::<u64>().ok())
    {
        Some(mut left) => {
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {left}\r\n\r\n")?;
            let block = [0; 256 * 1024];
            while left > 0 {
                let length = left.min(block.len() as u64) as usize;
                stream.write_all(&block[..length])?;
                left -= length as u64;
            }
            Ok(())
        }
        None => stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n"),
    }
}

/// The proxy program, its log counted by status as it comes; killed when dropped.
struct Proxy {
    child: Child,
    address: SocketAddr,
    statuses: Arc<Mutex<BTreeMap<String, usize>>>,
    /// The log's lines about `/big-head` that say what went wrong.
    troubles: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start(head_timeout: u64) -> Self {
        let mut child = Command::new(env!("CARGO"))
            .current_dir(workshop_tests::workspace_root())
            .args([
                "run",
                "--quiet",
                "--release",
                "--package",
                "step7-tasks",
                "--",
            ])
            .args(["--head-timeout", &head_timeout.to_string()])
            .args(["--send-timeout", &SEND_LIMIT.to_string()])
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("cargo can be started");
        let mut output = BufReader::new(child.stdout.take().expect("the proxy's output"));
        let mut first = String::new();
        output
            .read_line(&mut first)
            .expect("the proxy's first line");
        let address = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split([',', '\n']).next())
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("the proxy's first line: {first}"));
        let statuses = Arc::new(Mutex::new(BTreeMap::new()));
        let troubles = Arc::new(Mutex::new(Vec::new()));
        let (counted, noted) = (statuses.clone(), troubles.clone());
        thread::spawn(move || {
            for line in output.lines().map_while(Result::ok) {
                if line.contains("/big-head") && line.ends_with(')') {
                    noted.lock().unwrap().push(line.clone());
                }
                // `METHOD TARGET STATUS …`; anything else is a note, such as dropped lines.
                let status = match line.split(' ').nth(2) {
                    Some(status) if status.parse::<u16>().is_ok() || status == "-" => status,
                    _ => "a note",
                };
                let status = status.to_string();
                *counted.lock().unwrap().entry(status).or_insert(0) += 1;
            }
        });
        Proxy {
            child,
            address,
            statuses,
            troubles,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The proxy's resident memory, from `ps`, which Linux and macOS both have.
    fn rss_kib(&self) -> Option<u64> {
        let output = Command::new("ps")
            .args(["-o", "rss=", "-p", &self.pid().to_string()])
            .output()
            .ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    }

    /// The proxy's open descriptors, where `/proc` shows them (Linux).
    fn descriptors(&self) -> Option<usize> {
        let listed = std::fs::read_dir(format!("/proc/{}/fd", self.pid())).ok()?;
        Some(listed.count())
    }

    fn usage(&self) -> String {
        format!(
            "{} KiB resident, {} descriptors",
            shown(self.rss_kib()),
            shown(self.descriptors())
        )
    }

    /// How many lines the proxy logged, by status.
    fn logged(&self) -> String {
        let statuses = self.statuses.lock().unwrap();
        let counts: Vec<String> = statuses
            .iter()
            .map(|(status, count)| format!("{count} × {status}"))
            .collect();
        counts.join(", ")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
