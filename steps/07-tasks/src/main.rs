//! The finale: an async HTTP/1.1 proxy on the loop we built.
//!
//! - `cargo run -p step7-tasks` starts the proxy on 127.0.0.1:8080 (`-- --listen ADDR` to
//!   change it); try `curl -x http://127.0.0.1:8080 http://example.com/`.
//! - `cargo run -p step7-tasks -- demo` runs the talk's `asyncio.run(greet())`, then a slow
//!   origin, the proxy and five clients, all tasks on one loop in this process.
//! - `cargo run -p step7-tasks -- --trace demo` prints the loops' trace as the demo runs.
//! - `cargo run -p step7-tasks -- compare` measures step 1's blocking proxy against this one.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use step7_tasks::compare::compare;
use step7_tasks::net::{TcpListener, TcpStream};
use step7_tasks::proxy::{self, Config};
use step7_tasks::{EventLoop, gather, get_running_loop, run_with, say, selectors, sleep};

const USAGE: &str = "\
usage: step7-tasks [--selector NAME] [--trace] [--LIMIT SECONDS]... [--listen ADDR | demo]
       step7-tasks compare [CLIENTS [DELAY_MS]]
limits, in seconds (nginx's defaults): --head-timeout 60, --body-timeout 60,
  --upstream-timeout 30, --response-timeout 60, --tunnel-timeout 600, --keepalive-timeout 75,
  --send-timeout 60";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("step7-tasks: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the options, then runs the command that follows them.
fn dispatch(mut args: &[&str]) -> io::Result<()> {
    let (mut selector, mut trace, mut config) = (None, false, Config::default());
    let mut listen = None;
    // Options come in any order, before the command or after `--listen ADDR`.
    loop {
        match args {
            ["--selector", name, rest @ ..] => (selector, args) = (Some(*name), rest),
            ["--listen", addr, rest @ ..] => (listen, args) = (Some(*addr), rest),
            ["--trace", rest @ ..] => (trace, args) = (true, rest),
            [flag, seconds, rest @ ..] if flag.ends_with("-timeout") => {
                let limit = match *flag {
                    "--head-timeout" => &mut config.head_timeout,
                    "--body-timeout" => &mut config.body_timeout,
                    "--upstream-timeout" => &mut config.upstream_timeout,
                    "--response-timeout" => &mut config.response_timeout,
                    "--tunnel-timeout" => &mut config.tunnel_timeout,
                    "--keepalive-timeout" => &mut config.keepalive_timeout,
                    "--send-timeout" => &mut config.send_timeout,
                    _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, USAGE)),
                };
                (*limit, args) = (parse_seconds(seconds)?, rest);
            }
            _ => break,
        }
    }
    match (args, listen) {
        (["--help" | "-h"], _) => {
            say!("{USAGE}");
            Ok(())
        }
        ([], addr) => serve_proxy(addr.unwrap_or("127.0.0.1:8080"), (selector, trace), config),
        (["demo"], None) => demo((selector, trace)),
        (["compare", numbers @ ..], None) if numbers.len() <= 2 => {
            let requests = numbers.first().map_or(Ok(50), |n| parse(n));
            let delay = numbers.get(1).map_or(Ok(100), |n| parse(n));
            requests.and_then(|requests| print_comparison(requests, delay? as u64))
        }
        ([first, ..], _) => {
            let message = format!("`{first}` is not understood here\n{USAGE}");
            Err(io::Error::new(io::ErrorKind::InvalidInput, message))
        }
    }
}

fn parse_seconds(seconds: &str) -> io::Result<Duration> {
    let seconds: f64 = seconds
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, USAGE))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, USAGE))
}

fn parse(number: &str) -> io::Result<usize> {
    number
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, USAGE))
}

/// The loop's options: the selector named by `--selector`, if any, and whether to `--trace`.
type LoopOptions<'a> = (Option<&'a str>, bool);

/// A new loop on the selector named by `--selector`, or on the default one; in debug mode,
/// which prints the loop's trace, with `--trace`.
fn new_loop((selector, trace): LoopOptions) -> io::Result<EventLoop> {
    let event_loop = match selector {
        Some(name) => EventLoop::with_selector(selectors::by_name(name)?),
        None => EventLoop::new(),
    };
    event_loop.set_debug(trace);
    Ok(event_loop)
}

/// The proxy, until the process is stopped (Ctrl-C).
fn serve_proxy(addr: &str, options: LoopOptions, config: Config) -> io::Result<()> {
    let addr = addr.to_string();
    let event_loop = new_loop(options)?;
    run_with(|| event_loop, async move {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let selector = get_running_loop()?.selector_name();
        say!("proxy listening on http://{addr}, waiting with {selector}");
        if !addr.ip().is_loopback() {
            eprintln!(
                "warning: {addr} is reachable from other machines, and this proxy forwards \
                 anyone's requests anywhere, with no password: keep it on 127.0.0.1"
            );
        }
        // 0.0.0.0 (or `::`) means every address of this machine: a client asks for one of them.
        let mut reachable = addr;
        if addr.ip().is_unspecified() {
            reachable.set_ip(match addr {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        say!("try: curl -x http://{reachable} http://example.com/");
        proxy::serve(listener, config).await
    })
}

fn print_comparison(requests: usize, delay_ms: u64) -> io::Result<()> {
    if requests == 0 {
        let why = "compare needs at least one client, such as `compare 50`: with none, \
                   there is nothing to measure";
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    say!("{}", compare(requests, Duration::from_millis(delay_ms))?);
    Ok(())
}

/// The talk's first example: print, sleep without blocking anyone, print.
async fn greet() {
    say!("Hello");
    sleep(Duration::from_secs(1)).await;
    say!("World");
}

/// The pages the demo's clients fetch, and how long the origin takes for each.
const PAGES: [(&str, u64); 5] = [
    ("Pikachu", 1500),
    ("Bulbasaur", 300),
    ("Charmander", 1200),
    ("Squirtle", 600),
    ("Eevee", 900),
];

fn demo(options: LoopOptions) -> io::Result<()> {
    let event_loop = new_loop(options)?;
    if options.0.is_some() {
        say!("waiting with {}", event_loop.selector_name());
    }
    say!("asyncio.run(greet()):");
    run_with(|| event_loop, greet());
    say!();
    say!(
        "A slow origin, the proxy and {} clients, all tasks on one loop:",
        PAGES.len()
    );
    let event_loop = new_loop(options)?;
    let answers = run_with(|| event_loop, async {
        let event_loop = get_running_loop()?;
        let origin = TcpListener::bind("127.0.0.1:0")?;
        let origin_addr = origin.local_addr()?;
        event_loop.create_task(serve_origin(origin));
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let proxy_addr = listener.local_addr()?;
        event_loop.create_task(proxy::serve(listener, Config::default()));

        let start = Instant::now();
        let clients = PAGES.map(|(name, _)| {
            let url = format!("http://{origin_addr}/{name}");
            event_loop.create_task(get_through(proxy_addr, url))
        });
        let answers = gather(&event_loop, clients).await?;
        Ok::<_, io::Error>((answers, start.elapsed()))
    })?;
    proxy::flush_log();
    let (answers, elapsed) = answers;
    say!();
    for ((name, _), answer) in PAGES.iter().zip(&answers) {
        say!("{name:<10} -> {answer}");
    }
    let answered: Vec<u64> = PAGES
        .iter()
        .zip(&answers)
        .filter(|(_, answer)| answer.starts_with("HTTP/1.1 200"))
        .map(|((_, ms), _)| *ms)
        .collect();
    say!("{}", verdict(elapsed, &answered));
    Ok(())
}

/// What the measured time says: waits that overlapped take the longest of them, waits in a
/// row (a blocked loop) their sum.
fn verdict(elapsed: Duration, waits_ms: &[u64]) -> String {
    let took = elapsed.as_secs_f64();
    let longest = waits_ms.iter().max().copied().unwrap_or(0) as f64 / 1000.0;
    let sum = waits_ms.iter().sum::<u64>() as f64 / 1000.0;
    let n = waits_ms.len();
    if n == 0 {
        format!("no page arrived in {took:.2} s: there is no wait to compare")
    } else if took - longest < sum - took {
        let line = format!("{n} answers in {took:.2} s: the longest wait ({longest:.2} s)");
        format!("{line}, not the sum ({sum:.2} s)")
    } else {
        format!("{n} answers in {took:.2} s: the sum of the waits ({sum:.2} s), not the longest")
    }
}

/// One GET through the proxy, as a client does it; the answer's status line and body, or
/// what went wrong.
async fn get_through(proxy: SocketAddr, url: String) -> String {
    let attempt = async {
        let stream = TcpStream::connect(proxy).await?;
        let request = format!("GET {url} HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n");
        (&stream).write_all(request.as_bytes()).await?;
        let mut response = String::new();
        (&stream).read_to_string(&mut response).await?;
        let status = response.lines().next().unwrap_or("");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").trim_end();
        // The proxy's own answers repeat their status in the body: print it once.
        let reason = status.split_once(' ').map_or("", |(_, reason)| reason);
        let body = body
            .strip_prefix(reason)
            .map_or(body, |rest| rest.trim_start_matches(": "));
        Ok::<_, io::Error>(format!("{status}: {body}"))
    };
    attempt
        .await
        .unwrap_or_else(|error| format!("failed: {error}"))
}

/// A slow origin, as tasks on our loop: each page takes its time from [`PAGES`].
async fn serve_origin(listener: TcpListener) -> io::Result<()> {
    let event_loop = get_running_loop()?;
    loop {
        let (stream, _) = listener.accept().await?;
        event_loop.create_task(answer_slowly(stream));
    }
}

async fn answer_slowly(stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut line = String::new();
    while reader.read_line(&mut line).await? > 2 {
        line.clear();
    }
    let name = request_line.split(['/', ' ']).nth(2).unwrap_or("");
    let delay = PAGES
        .iter()
        .find(|(page, _)| *page == name)
        .map_or(0, |(_, ms)| *ms);
    sleep(Duration::from_millis(delay)).await;
    let body = format!("A wild {name} appears!");
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    (&stream).write_all(response.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_follows_the_measured_time() {
        let waits = [1500, 300, 1200, 600, 900];
        let overlapped = verdict(Duration::from_millis(1520), &waits);
        assert!(
            overlapped.contains(": the longest wait (1.50 s)"),
            "{overlapped}"
        );
        let in_a_row = verdict(Duration::from_millis(4530), &waits);
        assert!(
            in_a_row.contains(": the sum of the waits (4.50 s)"),
            "{in_a_row}"
        );
        let none = verdict(Duration::from_millis(10), &[]);
        assert!(none.starts_with("no page arrived"), "{none}");
    }
}
