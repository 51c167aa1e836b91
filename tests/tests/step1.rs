//! Step 1: the blocking proxy forwards bytes exactly, refuses bad requests with a clear answer,
//! keeps serving after them, and makes clients queue where a thread per connection does not.
//!
//! Timing is checked only as orders and ratios, never as absolute durations, so that a slow,
//! loaded machine passes too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use workshop_tests::{HANG, curl, exchange, known_body};

use step1_blocking as step1;

use step1::{MAX_HEAD_BYTES, serve_one_at_a_time, serve_thread_per_connection, slow_origin};

#[test]
fn curl_gets_the_same_bytes_through_the_proxy_as_directly() {
    let (origin, heads) = start_test_origin();
    let proxy = start(serve_one_at_a_time);
    let url = format!("http://{origin}/some/file.bin?x=1");

    let direct = curl(&[&url], &[]);
    let direct_head = heads.recv().unwrap();
    let proxied = curl(&["--proxy", &format!("http://{proxy}"), &url], &[]);
    let proxied_head = heads.recv().unwrap();

    let body = known_body();
    assert!(
        direct == body,
        "direct: {} bytes, expected {}",
        direct.len(),
        body.len()
    );
    assert!(
        proxied == body,
        "proxied: {} bytes, expected {}",
        proxied.len(),
        body.len()
    );
    assert!(direct_head.starts_with("GET /some/file.bin?x=1 HTTP/1.1\r\n"));
    assert!(
        proxied_head.starts_with("GET /some/file.bin?x=1 HTTP/1.1\r\n"),
        "the origin got a request in origin form, not:\n{proxied_head}"
    );
    assert!(
        proxied_head.contains("\r\nConnection: close\r\n"),
        "{proxied_head}"
    );
    assert!(
        !proxied_head
            .to_ascii_lowercase()
            .contains("proxy-connection"),
        "{proxied_head}"
    );
}

#[test]
fn curl_posts_a_body_through_the_proxy_and_gets_it_echoed() {
    let (origin, heads) = start_test_origin();
    let proxy = start(serve_thread_per_connection);
    let sent: Vec<u8> = (0..=255u8).rev().cycle().take(100_000).collect();

    let proxy_url = format!("http://{proxy}");
    let url = format!("http://{origin}/echo");
    // An empty `Expect:` stops curl from waiting for a `100 Continue` before sending the body.
    let args = [
        "--proxy",
        &proxy_url,
        "--data-binary",
        "@-",
        "-H",
        "Expect:",
        &url,
    ];
    let echoed = curl(&args, &sent);

    let head = heads.recv().unwrap();
    assert!(head.starts_with("POST /echo HTTP/1.1\r\n"), "{head}");
    assert!(
        echoed == sent,
        "echoed {} bytes of {}",
        echoed.len(),
        sent.len()
    );
}

#[test]
fn one_at_a_time_makes_clients_queue_and_threads_do_not() {
    let origin = start(|listener| slow_origin(listener, Duration::from_millis(100)));
    let one_at_a_time = finish_times(start(serve_one_at_a_time), origin, 5);
    let thread_per_connection = finish_times(start(serve_thread_per_connection), origin, 5);

    let first = |times: &[Duration]| *times.iter().min().unwrap();
    let last = |times: &[Duration]| *times.iter().max().unwrap();
    assert!(
        last(&one_at_a_time) >= last(&thread_per_connection).mul_f64(2.5),
        "one at a time: {one_at_a_time:?}, thread per connection: {thread_per_connection:?}"
    );
    assert!(
        last(&one_at_a_time) >= first(&one_at_a_time).mul_f64(3.0),
        "the clients of a blocking proxy finish one after another: {one_at_a_time:?}"
    );
}

#[test]
fn bad_requests_get_a_clear_answer_and_the_server_goes_on() {
    let origin = start(|listener| slow_origin(listener, Duration::ZERO));
    let proxy = start(serve_one_at_a_time);
    let unreachable = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let padding = "x".repeat(MAX_HEAD_BYTES);
    let cases = [
        ("not an http request\r\n\r\n".to_string(), "400 Bad Request"),
        (
            "GET /not/absolute HTTP/1.1\r\nHost: example.com\r\n\r\n".to_string(),
            "400 Bad Request",
        ),
        (
            format!("GET http://{origin}/ HTTP/1.1\r\nX-Padding: {padding}\r\n\r\n"),
            "431 Request Header Fields Too Large",
        ),
        (
            format!(
                "POST http://{origin}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            "411 Length Required",
        ),
        (
            format!("GET http://{unreachable}/ HTTP/1.1\r\n\r\n"),
            "502 Bad Gateway",
        ),
    ];
    let good = format!("GET http://{origin}/ HTTP/1.1\r\nHost: {origin}\r\n\r\n");

    for (request, status) in cases {
        let answer = exchange(proxy, request.as_bytes());
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "expected {status}, got:\n{answer}"
        );
        let answer = exchange(proxy, good.as_bytes());
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "after {status}, got:\n{answer}"
        );
    }
}

/// Binds a listener on a port the OS picks, runs `serve` on it on a thread of its own, and
/// returns its address.
fn start(serve: impl FnOnce(TcpListener) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || serve(listener));
    address
}

/// Starts an origin that answers a GET with [`known_body`] and a POST with its own body, and
/// sends the head of every request it gets down the returned channel.
fn start_test_origin() -> (SocketAddr, Receiver<String>) {
    let (heads, received) = mpsc::channel();
    let address = start(move |listener| {
        for connection in listener.incoming() {
            let connection = connection.unwrap();
            let mut reader = BufReader::new(&connection);
            let (mut head, mut body_length) = (String::new(), 0);
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                head.push_str(&line);
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("Content-Length") {
                        body_length = value.trim().parse().unwrap();
                    }
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let body = if head.starts_with("POST") {
                let mut body = vec![0; body_length];
                reader.read_exact(&mut body).unwrap();
                body
            } else {
                known_body()
            };
            let length = body.len();
            let mut answer =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n").into_bytes();
            answer.extend(body);
            (&connection).write_all(&answer).unwrap();
            heads.send(head).unwrap();
        }
    });
    (address, received)
}

/// Sends `clients` requests at once through `proxy` to `origin`, and returns how long after the
/// start each client had its whole answer.
fn finish_times(proxy: SocketAddr, origin: SocketAddr, clients: usize) -> Vec<Duration> {
    let request = format!("GET http://{origin}/ HTTP/1.1\r\nHost: {origin}\r\n\r\n");
    // Connected one after the other, they queue in this order for a blocking proxy.
    let connections: Vec<TcpStream> = (0..clients)
        .map(|_| TcpStream::connect(proxy).unwrap())
        .collect();
    let started = Instant::now();
    let clients: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let request = request.clone();
            thread::spawn(move || {
                connection.set_read_timeout(Some(HANG)).unwrap();
                connection.write_all(request.as_bytes()).unwrap();
                let mut answer = String::new();
                connection.read_to_string(&mut answer).unwrap();
                assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
                started.elapsed()
            })
        })
        .collect();
    clients
        .into_iter()
        .map(|client| client.join().unwrap())
        .collect()
}
