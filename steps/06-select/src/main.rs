//! The talk's walkthrough of one request done with callbacks, run for several URLs at once.
//!
//! `cargo run -p step6-select` starts a small HTTP server on 127.0.0.1 (in a thread of its
//! own: it stands for the internet) that takes a while to answer, then fetches several pages
//! from it through one loop. They all wait at the same time, so all of them take about as long
//! as one. Add `-- --trace` to see the loop's trace, and `-- --selector NAME`
//! to wait with another selector than the default one (`select`, `poll`, `epoll`, `kqueue`).

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use step6_select::{EventLoop, Future, connect_nonblocking, gather, listen, say, selectors};

/// How long the server thinks before it answers.
const SERVER_DELAY: Duration = Duration::from_millis(300);

/// The outcome of one fetch: the response's status line, or why there is none.
type Fetched = Result<String, String>;

/// One request in flight. Its state lives in a struct shared by the callbacks, because each
/// step returns to the loop and the next one starts in another callback: the function's
/// "stack" is ripped into pieces. Step 7 stitches it back together with `async fn`.
struct Fetch {
    event_loop: EventLoop,
    stream: Rc<TcpStream>,
    unsent: RefCell<Vec<u8>>,
    received: RefCell<Vec<u8>>,
    done: Future<Fetched>,
}

/// Fetches `path` from `addr` with nothing but callbacks, one step of the talk's slide each.
fn fetch(event_loop: &EventLoop, addr: SocketAddr, path: &'static str) -> Future<Fetched> {
    let done = event_loop.create_future();
    let (event_loop, future) = (event_loop.clone(), done.clone());
    // 1. Schedule the first step.
    event_loop.clone().call_soon(move || {
        // 2. Open the connection: it is not open yet when `connect_nonblocking` returns.
        let stream = match connect_nonblocking(addr) {
            Ok(stream) => Rc::new(stream),
            Err(error) => return finish(&future, Err(error.to_string())),
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let fetch = Rc::new(Fetch {
            event_loop,
            stream,
            unsent: RefCell::new(request.into_bytes()),
            received: RefCell::new(Vec::new()),
            done: future,
        });
        // 3. Add the writer: the socket becomes writable when the connection is up (or failed).
        let on_writable = fetch.clone();
        let added = fetch
            .event_loop
            .add_writer(fetch.stream.clone(), move || send(&on_writable));
        if let Err(error) = added {
            finish(&fetch.done, Err(error.to_string()));
        }
    });
    done
}

/// 4. Wait for the write, then send what the socket takes.
fn send(fetch: &Rc<Fetch>) {
    if let Ok(Some(error)) = fetch.stream.take_error() {
        return fail(fetch, error);
    }
    let mut unsent = fetch.unsent.borrow_mut();
    match (&*fetch.stream).write(&unsent) {
        Ok(n) => drop(unsent.drain(..n)),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
        Err(error) => return fail(fetch, error),
    }
    if unsent.is_empty() {
        fetch.event_loop.remove_writer(&fetch.stream);
        // 5. Add the reader.
        let on_readable = fetch.clone();
        let added =
            (fetch.event_loop).add_reader(fetch.stream.clone(), move || receive(&on_readable));
        if let Err(error) = added {
            fail(fetch, error);
        }
    }
}

/// 6. Wait for the read, then take what has arrived, until the server closes.
fn receive(fetch: &Rc<Fetch>) {
    let mut chunk = [0; 4096];
    match (&*fetch.stream).read(&mut chunk) {
        Ok(0) => {
            fetch.event_loop.remove_reader(&fetch.stream);
            // 7. Schedule the next step: the future's done callbacks.
            finish(&fetch.done, Ok(status_line(&fetch.received.borrow())));
        }
        Ok(n) => fetch.received.borrow_mut().extend_from_slice(&chunk[..n]),
        // Readiness can be spurious: there was nothing to read after all, so wait again.
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
        Err(error) => fail(fetch, error),
    }
}

/// Stops watching the socket and gives the fetch its error.
fn fail(fetch: &Fetch, error: io::Error) {
    fetch.event_loop.remove_writer(&fetch.stream);
    fetch.event_loop.remove_reader(&fetch.stream);
    finish(&fetch.done, Err(error.to_string()));
}

/// Gives the fetch its outcome; its done callbacks are the next step.
fn finish(done: &Future<Fetched>, outcome: Fetched) {
    done.set_result(outcome).expect("a fetch finishes once");
}

/// The first line of an HTTP response, such as `HTTP/1.1 200 OK`, and its body.
fn status_line(response: &[u8]) -> String {
    let text = String::from_utf8_lossy(response);
    let status = text.lines().next().unwrap_or("(empty response)");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    format!("{status}: {body}")
}

/// A blocking server with a thread per connection, standing in for a slow site far away.
fn start_server() -> io::Result<SocketAddr> {
    let listener = listen("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || answer_slowly(stream));
        }
    });
    Ok(addr)
}

fn answer_slowly(stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let name = request_line.split(['/', ' ']).nth(2).unwrap_or("nobody");
    thread::sleep(SERVER_DELAY);
    let body = format!("A wild {name} appears!");
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    (&stream).write_all(response.as_bytes())
}

/// The demo's loop: on the default selector, or on the one `--selector NAME` names.
fn new_loop() -> io::Result<EventLoop> {
    let args: Vec<String> = std::env::args().collect();
    let event_loop = match args.iter().position(|arg| arg == "--selector") {
        Some(at) => {
            let name = args.get(at + 1).map_or("", String::as_str);
            let event_loop = EventLoop::with_selector(selectors::by_name(name)?);
            say!("waiting with {}", event_loop.selector_name());
            event_loop
        }
        None => EventLoop::new(),
    };
    event_loop.set_debug(args.iter().any(|arg| arg == "--trace"));
    Ok(event_loop)
}

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        say!(
            "usage: {} [--trace] [--selector NAME]",
            env!("CARGO_PKG_NAME")
        );
        return ExitCode::SUCCESS;
    }
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("step6-select: {error}");
            ExitCode::FAILURE
        }
    }
}

fn demo() -> io::Result<()> {
    let addr = start_server()?;
    let event_loop = new_loop()?;

    let paths = [
        "/Pikachu",
        "/Bulbasaur",
        "/Charmander",
        "/Squirtle",
        "/Eevee",
    ];
    say!(
        "fetching {} pages; the server takes {:.2} s to answer each",
        paths.len(),
        SERVER_DELAY.as_secs_f64()
    );
    let start = Instant::now();
    let fetches = paths.map(|path| fetch(&event_loop, addr, path));
    let responses = event_loop.run_until_complete(&gather(&event_loop, fetches.to_vec()));
    let elapsed = start.elapsed();
    let responses = responses.expect("gather is not cancelled");
    for (path, response) in paths.iter().zip(&responses) {
        match response {
            Ok(response) => say!("GET {path} -> {response}"),
            Err(error) => say!("GET {path} failed: {error}"),
        }
    }
    let fetched = responses.iter().filter(|response| response.is_ok()).count();
    say!("{}", verdict(elapsed, fetched));
    Ok(())
}

/// What the measured time says: fetches that waited together take about one server delay,
/// fetches one after the other a delay each.
fn verdict(elapsed: Duration, pages: usize) -> String {
    let took = elapsed.as_secs_f64();
    let one = SERVER_DELAY.as_secs_f64();
    if pages == 0 {
        return format!("no page arrived in {took:.2} s: there is no wait to compare");
    }
    let in_a_row = one * pages as f64;
    let head = format!("{pages} pages in {took:.2} s: about the time of");
    if took - one < in_a_row - took {
        format!("{head} one ({one:.2} s), not of {pages} in a row")
    } else {
        format!("{head} {pages} in a row ({in_a_row:.2} s), not of one")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_follows_the_measured_time() {
        let together = verdict(SERVER_DELAY + Duration::from_millis(20), 5);
        assert!(together.contains("about the time of one"), "{together}");
        let in_a_row = verdict(SERVER_DELAY * 5, 5);
        assert!(
            in_a_row.contains("about the time of 5 in a row"),
            "{in_a_row}"
        );
        let none = verdict(Duration::from_millis(3), 0);
        assert!(none.starts_with("no page arrived"), "{none}");
    }
}
