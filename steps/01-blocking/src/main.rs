//! Step 1 demo: five clients at once through a blocking proxy, then through a thread per
//! connection.
//!
//! Everything runs in this process, on 127.0.0.1 and ports the OS picks: a slow origin server, a
//! proxy in front of it, and the clients.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use step1_blocking::{serve_one_at_a_time, serve_thread_per_connection, slow_origin};

/// `println!`, for output that someone may stop reading (`just run 1 | head -1`). Rust ignores
/// SIGPIPE, so a write to a closed pipe fails with `BrokenPipe`, and `println!` would panic:
/// this ends the program quietly instead, as the signal would end a C program.
macro_rules! say {
    ($($line:tt)*) => {{
        use std::io::Write as _;
        match writeln!(std::io::stdout().lock(), $($line)*) {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            written => written.expect("stdout takes the line"),
        }
    }};
}

/// How many clients ask at the same time.
const CLIENTS: usize = 5;
/// How long the origin takes to answer each request.
const ORIGIN_DELAY: Duration = Duration::from_millis(200);

fn main() -> io::Result<()> {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        say!(
            "usage: {}  (no options: it runs the demo)",
            env!("CARGO_PKG_NAME")
        );
        return Ok(());
    }
    let origin = start(|listener| slow_origin(listener, ORIGIN_DELAY))?;
    let delay = ORIGIN_DELAY.as_secs_f64();
    say!("The origin server takes {delay:.2} s to answer each request.");

    say!("\n{CLIENTS} clients at once through a proxy that serves one connection at a time:");
    let one_at_a_time = run_clients(start(serve_one_at_a_time)?, origin)?;

    say!("\nThe same through a proxy that starts a thread per connection:");
    let thread_per_connection = run_clients(start(serve_thread_per_connection)?, origin)?;

    say!("\nThreads fix the waiting, at a price: each is an OS thread with a stack of its own");
    say!("(Rust reserves 2 MiB for every spawned thread) that the kernel must schedule.");
    say!("10 000 connections would mean 10 000 threads and nearly 20 GiB of reserved stacks.");

    let ratio = one_at_a_time.as_secs_f64() / thread_per_connection.as_secs_f64();
    say!("\nOne at a time took {ratio:.1}x as long as a thread per connection.");
    Ok(())
}

/// Binds a listener on a port the OS picks, runs `serve` on it on a thread of its own, and
/// returns the listener's address.
fn start(serve: impl FnOnce(TcpListener) + Send + 'static) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    thread::spawn(move || serve(listener));
    Ok(address)
}

/// Sends `CLIENTS` requests at once through `proxy`, prints when each client finished, in client
/// order, and returns how long the last one took.
fn run_clients(proxy: SocketAddr, origin: SocketAddr) -> io::Result<Duration> {
    // Connecting one after the other puts the clients in the proxy's listen queue in this order,
    // which is the order a blocking proxy accepts them in. Then all requests go out at once.
    let connections: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(proxy))
        .collect::<io::Result<_>>()?;
    let started = Instant::now();
    let clients: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            thread::spawn(move || {
                fetch(connection, origin).map(|status| (status, started.elapsed()))
            })
        })
        .collect();

    let mut last = Duration::ZERO;
    for (number, client) in (1..).zip(clients) {
        let (status, took) = client.join().expect("a client thread panicked")?;
        say!(
            "  client {number} got {status} after {:.2} s",
            took.as_secs_f64()
        );
        last = last.max(took);
    }
    Ok(last)
}

/// Asks `proxy` for the origin's front page, as a browser set up to use a proxy does, reads the
/// answer to the end, and returns its status, such as `200 OK`.
fn fetch(mut proxy: TcpStream, origin: SocketAddr) -> io::Result<String> {
    let request = format!("GET http://{origin}/ HTTP/1.1\r\nHost: {origin}\r\n\r\n");
    proxy.write_all(request.as_bytes())?;
    let mut response = String::new();
    proxy.read_to_string(&mut response)?;
    let status_line = response.lines().next().unwrap_or_default();
    Ok(status_line.trim_start_matches("HTTP/1.1 ").to_string())
}
