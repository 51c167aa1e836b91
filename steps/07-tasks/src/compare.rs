//! Blocking versus async, measured: the same requests through step 1's proxy and this one.
//!
//! Everything runs in this process on 127.0.0.1: a slow origin (step 1's, a thread per
//! connection, so it is never the bottleneck), step 1's one-connection-at-a-time proxy, and
//! this step's async proxy on our loop. The same number of clients, all at once, go through
//! each proxy; the blocking one serves them in turn, the async one all together.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use step1_blocking::{serve_one_at_a_time, slow_origin};

use crate::proxy::{self, Config};

/// How long each proxy took for the same batch of requests.
pub struct Comparison {
    /// How many clients went through each proxy, all at once.
    pub requests: usize,
    /// How long the origin waits before answering each request.
    pub origin_delay: Duration,
    /// The time until the last client of the batch had its answer, through step 1's proxy.
    pub blocking: Duration,
    /// The same through this step's async proxy.
    pub asynchronous: Duration,
}

impl Comparison {
    /// How many times longer the blocking proxy took.
    pub fn ratio(&self) -> f64 {
        self.blocking.as_secs_f64() / self.asynchronous.as_secs_f64()
    }
}

/// The most clients a batch may have. Clients, proxies and origin share this process, with a
/// thread and four descriptors per client in flight, and many systems allow a process 1024
/// open files: a larger batch would fail for want of descriptors, not of speed.
pub const MAX_REQUESTS: usize = 200;

/// Starts the origin and both proxies, sends `requests` clients through each, and times them.
pub fn compare(requests: usize, origin_delay: Duration) -> io::Result<Comparison> {
    if requests > MAX_REQUESTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_REQUESTS} clients: each takes four descriptors in this process"),
        ));
    }
    let origin = spawn_server(move |listener| slow_origin(listener, origin_delay))?;
    let blocking = spawn_server(serve_one_at_a_time)?;
    let asynchronous = spawn_async_proxy()?;
    Ok(Comparison {
        requests,
        origin_delay,
        blocking: time_batch(blocking, origin, requests)?,
        asynchronous: time_batch(asynchronous, origin, requests)?,
    })
}

/// Binds 127.0.0.1 on a port the OS picks and serves it with `serve` on a thread of its own.
fn spawn_server(serve: impl FnOnce(TcpListener) + Send + 'static) -> io::Result<SocketAddr> {
    let listener = crate::listen("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || serve(listener));
    Ok(addr)
}

/// Runs the async proxy on a loop of its own, in a thread of its own.
fn spawn_async_proxy() -> io::Result<SocketAddr> {
    let (addr_tx, addr_rx) = mpsc::channel();
    let proxy = thread::spawn(move || {
        crate::run(async move {
            let listener = match crate::net::TcpListener::bind("127.0.0.1:0") {
                Ok(listener) => listener,
                Err(error) => return drop(addr_tx.send(Err(error))),
            };
            drop(addr_tx.send(listener.local_addr()));
            let quiet = Config {
                log: false,
                ..Config::default()
            };
            if let Err(error) = proxy::serve(listener, quiet).await {
                eprintln!("the async proxy stopped: {error}");
            }
        })
    });
    // A loop that panics may leak its tasks, and the sender with them: the thread's end says it.
    loop {
        match addr_rx.recv_timeout(Duration::from_millis(10)) {
            Ok(addr) => return addr,
            Err(RecvTimeoutError::Timeout) if !proxy.is_finished() => {}
            Err(_) => {
                return Err(io::Error::other(
                    "the async proxy stopped before it listened",
                ));
            }
        }
    }
}

/// Sends `requests` GETs through `proxy` at once, each from a thread of its own, and returns
/// how long it took until every one had its whole answer.
fn time_batch(proxy: SocketAddr, origin: SocketAddr, requests: usize) -> io::Result<Duration> {
    let start = Instant::now();
    let clients: Vec<_> = (0..requests)
        .map(|i| thread::spawn(move || get_through(proxy, origin, i)))
        .collect();
    for client in clients {
        client
            .join()
            .map_err(|_| io::Error::other("a client panicked"))??;
    }
    Ok(start.elapsed())
}

/// One GET through the proxy; an answer that is not `200 OK` is an error.
fn get_through(proxy: SocketAddr, origin: SocketAddr, i: usize) -> io::Result<()> {
    let failed = |error: io::Error| io::Error::new(error.kind(), format!("request {i}: {error}"));
    let mut stream = TcpStream::connect(proxy).map_err(failed)?;
    let request =
        format!("GET http://{origin}/{i} HTTP/1.1\r\nHost: {origin}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(failed)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(failed)?;
    if !response.starts_with(b"HTTP/1.1 200") {
        let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
        return Err(io::Error::other(format!("request {i} failed: {head:?}")));
    }
    Ok(())
}

/// The table the `compare` command prints.
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = |total: Duration| self.requests as f64 / total.as_secs_f64();
        writeln!(
            f,
            "{} clients at once, through each proxy, to an origin that takes {:.2} s per answer",
            self.requests,
            self.origin_delay.as_secs_f64()
        )?;
        writeln!(f)?;
        writeln!(f, "| proxy | total | requests per second |")?;
        writeln!(f, "| --- | --- | --- |")?;
        for (name, total) in [
            ("step 1, one at a time", self.blocking),
            ("step 7, async on our loop", self.asynchronous),
        ] {
            let (seconds, rate) = (total.as_secs_f64(), rate(total));
            writeln!(f, "| {name} | {seconds:.2} s | {rate:.1} req/s |")?;
        }
        writeln!(f)?;
        write!(f, "The blocking proxy took {:.1}x as long.", self.ratio())
    }
}
