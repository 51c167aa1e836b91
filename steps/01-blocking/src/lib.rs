//! Step 1: the problem with blocking I/O.
//!
//! A forward proxy is what a browser talks to when it is told to use one. The browser puts the
//! whole address in the request line, `GET http://example.com/page HTTP/1.1`; the proxy connects
//! to `example.com`, passes the request on and copies the answer back. Most of a proxy's life is
//! waiting: for the client to send, for the origin server to think, for the answer to arrive.
//!
//! Every call in this file *blocks*: `accept`, `read`, `connect` and `write` put the thread to
//! sleep until the operating system has something for it. [`serve_one_at_a_time`] shows the
//! price: while it waits on one slow origin, every other client waits too.
//! [`serve_thread_per_connection`] is the traditional fix, a thread for each connection, so that
//! only that thread sleeps. The steps after this one build the other fix: one thread that never
//! blocks.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// The largest request head (request line and headers) the proxy reads; a longer one gets `431`.
///
/// Without a limit, a client could make the proxy buffer headers until memory runs out.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Headers about the client's connection to the proxy, not about the request: never forwarded.
const HOP_BY_HOP: [&str; 4] = [
    "Connection",
    "Proxy-Connection",
    "Keep-Alive",
    "Proxy-Authorization",
];

/// Serves clients one after another: accept a connection, handle it to the end, accept the next.
///
/// While [`handle_connection`] waits for an origin, nobody calls `accept`: the next clients sit
/// in the listen queue, so one slow origin delays everyone behind it (head-of-line blocking).
/// Runs forever; a connection that fails is reported on stderr and the loop goes on.
pub fn serve_one_at_a_time(listener: TcpListener) {
    for client in listener.incoming() {
        match client {
            Ok(client) => handle_and_report(client),
            Err(error) => eprintln!("accept failed: {error}"),
        }
    }
}

/// Serves each client on a thread of its own, so waiting for an origin blocks only that thread.
///
/// This is the traditional fix, and it works until the threads become the cost: each has its own
/// stack and must be scheduled by the kernel, and at some point the OS refuses to start more.
/// Runs forever; failures are reported on stderr.
pub fn serve_thread_per_connection(listener: TcpListener) {
    for client in listener.incoming() {
        let spawned =
            client.and_then(|client| thread::Builder::new().spawn(|| handle_and_report(client)));
        if let Err(error) = spawned {
            eprintln!("cannot serve a connection: {error}");
        }
    }
}

/// Handles one connection and reports its failure, if any: one client's trouble is not the
/// server's.
fn handle_and_report(client: TcpStream) {
    if let Err(error) = handle_connection(client) {
        eprintln!("connection failed: {error}");
    }
}

/// Proxies one request: reads it from `client`, sends it to the origin server it names, and
/// copies the answer back.
///
/// The origin is asked to close the connection when it is done (`Connection: close`), so the
/// answer is simply everything it sends until it hangs up, copied byte for byte. A request the
/// proxy cannot forward gets an HTTP error instead, which is then returned as an `Err`: `400` when
/// it is malformed, `431` when its head is too large, `411` when its body is chunked instead of
/// counted by a Content-Length, `502` when the origin cannot be reached.
pub fn handle_connection(client: TcpStream) -> io::Result<()> {
    let mut from_client = BufReader::new(&client);
    let request = match read_head(&mut from_client).and_then(|lines| parse_request(&lines)) {
        Ok(request) => request,
        Err(refusal) => return refuse(&client, refusal),
    };
    let (host, port) = (request.host.as_str(), request.port);
    let mut origin = match TcpStream::connect((host, port)) {
        Ok(origin) => origin,
        Err(error) => {
            let reason = format!("cannot connect to {host}:{port}: {error}");
            return refuse(&client, refusal("502 Bad Gateway", reason));
        }
    };
    origin.write_all(request.head.as_bytes())?;
    // The body is streamed, never held whole; `take` stops after exactly its length.
    io::copy(&mut from_client.take(request.body_length), &mut origin)?;
    io::copy(&mut origin, &mut &client)?;
    Ok(())
}

/// A request the proxy will not forward: the status line to answer with, and why.
struct Refusal {
    status: &'static str,
    reason: String,
}

fn refusal(status: &'static str, reason: impl Into<String>) -> Refusal {
    let reason = reason.into();
    Refusal { status, reason }
}

/// The refusal for a request the proxy cannot make sense of.
fn bad_request(reason: impl Into<String>) -> Refusal {
    refusal("400 Bad Request", reason)
}

/// What the proxy needs to forward a request: where to connect, what to send first, and how
/// much body follows.
struct Request {
    host: String,
    port: u16,
    /// The request line in origin form, the headers we keep, and the blank line.
    head: String,
    /// The number of body bytes after the head, from Content-Length (none when it is absent).
    body_length: u64,
}

/// Reads a request head line by line, up to the blank line that ends it, and returns its lines
/// without their line endings. The body, if any, stays unread in `reader`.
fn read_head(reader: &mut impl BufRead) -> Result<Vec<String>, Refusal> {
    let mut lines = Vec::new();
    let mut budget = MAX_HEAD_BYTES as u64;
    loop {
        let mut line = Vec::new();
        let read = reader.by_ref().take(budget).read_until(b'\n', &mut line);
        budget -= read.map_err(|error| bad_request(format!("cannot read: {error}")))? as u64;
        if budget == 0 && !line.ends_with(b"\n") {
            let reason = format!("the request head is over {} KiB", MAX_HEAD_BYTES / 1024);
            return Err(refusal("431 Request Header Fields Too Large", reason));
        } else if !line.ends_with(b"\n") {
            return Err(bad_request("the connection ended inside the request head"));
        }
        let line =
            String::from_utf8(line).map_err(|_| bad_request("the request head is not UTF-8"))?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line.to_string());
    }
}

/// Understands a head such as `GET http://example.com:8080/page HTTP/1.1` plus headers, and
/// prepares what the origin gets: `GET /page HTTP/1.1`, the same headers except [`HOP_BY_HOP`]
/// ones, and `Connection: close`.
fn parse_request(lines: &[String]) -> Result<Request, Refusal> {
    let Some((request_line, headers)) = lines.split_first() else {
        return Err(bad_request("the request is empty"));
    };
    let parts = request_line.split(' ').collect::<Vec<_>>();
    let [method, target, version @ ("HTTP/1.0" | "HTTP/1.1")] = parts[..] else {
        return Err(bad_request("not a `METHOD URL HTTP/1.x` request line"));
    };
    // A proxy needs the absolute form, `http://host[:port]/path`: a bare `/path` names no server.
    let Some(address) = target.strip_prefix("http://") else {
        return Err(bad_request("the target is not an absolute http:// URL"));
    };
    let (authority, path) = address.split_at(address.find('/').unwrap_or(address.len()));
    let (host, port) = authority.split_once(':').unwrap_or((authority, "80"));
    let Ok(port) = port.parse() else {
        return Err(bad_request("the port is not a number"));
    };
    if host.is_empty() {
        return Err(bad_request("the target names no host"));
    }

    let path = if path.is_empty() { "/" } else { path };
    let mut head = format!("{method} {path} {version}\r\n");
    let mut body_length = 0;
    for header in headers {
        let Some((name, value)) = header.split_once(':') else {
            let reason = format!("the header line `{header}` has no colon");
            return Err(bad_request(reason));
        };
        if HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop)) {
            continue;
        }
        if name.eq_ignore_ascii_case("Content-Length") {
            body_length = value
                .trim()
                .parse()
                .map_err(|_| bad_request("the Content-Length is not a number"))?;
        }
        // The end of a chunked body is found only by decoding it, which this proxy does not do.
        if name.eq_ignore_ascii_case("Transfer-Encoding") {
            let reason = "only bodies with a Content-Length are forwarded";
            return Err(refusal("411 Length Required", reason));
        }
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    Ok(Request {
        host: host.to_string(),
        port,
        head,
        body_length,
    })
}

/// Answers a request the proxy will not forward, hangs up, and returns the refusal as an error.
///
/// The client may still be sending (the rest of an oversized head, a body). Closing a socket with
/// unread input makes the OS send a reset, which can destroy the answer before the client reads
/// it; so the proxy shuts down its sending side and reads until the client closes its own.
fn refuse(mut client: &TcpStream, Refusal { status, reason }: Refusal) -> io::Result<()> {
    let body = format!("{status}: {reason}\n");
    let length = body.len();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n{body}"
    );
    client.write_all(response.as_bytes())?;
    client.shutdown(Shutdown::Write)?;
    // What the client still sends is read and dropped; an error here changes nothing.
    let _ = io::copy(&mut client, &mut io::sink());
    Err(io::Error::other(format!("refused with {status}: {reason}")))
}

/// The page [`slow_origin`] serves.
const SLOW_PAGE: &str = "sorry for the wait\n";

/// A deliberately slow origin server for the demos: it answers every request after `delay`.
///
/// It gives each connection a thread of its own, so it makes any number of clients wait at the
/// same time and is never the bottleneck: whatever queueing a demo shows comes from the proxy in
/// front of it. It reads the request head only (send it no body), answers `200 OK` with a short
/// page and its Content-Length, and closes. Runs forever: bind the listener to `127.0.0.1:0` and
/// run it on a thread of its own.
pub fn slow_origin(listener: TcpListener, delay: Duration) {
    for connection in listener.incoming().flatten() {
        thread::spawn(move || {
            if read_head(&mut BufReader::new(&connection)).is_ok() {
                thread::sleep(delay);
                let length = SLOW_PAGE.len();
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n\
                     Connection: close\r\n\r\n{SLOW_PAGE}"
                );
                // A client that left early is no concern of the origin's.
                let _ = (&connection).write_all(response.as_bytes());
            }
        });
    }
}
