//! The web example: the talk's FastAPI app as an axum `Router`, served by hyper on step 7's
//! loop. The server runs in this process, on a loop of its own thread; the clients are curl
//! and a small keep-alive client on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use step7_tasks::get_running_loop;
use workshop_tests::{HANG, Started, curl};

// The example's `main` is for `cargo run`; the tests use the rest of it.
#[allow(dead_code)]
#[path = "../../steps/07-tasks/examples/web.rs"]
mod web;

/// Serves `app` on a loop of its own, on a thread of its own, and returns its address.
fn start(app: Router) -> SocketAddr {
    let (bound_tx, bound) = mpsc::channel();
    thread::spawn(move || {
        step7_tasks::run(async move {
            let listener = step7_tasks::net::TcpListener::bind("127.0.0.1:0").unwrap();
            bound_tx.send(listener.local_addr().unwrap()).unwrap();
            web::serve(listener, app).await
        })
    });
    bound.recv().unwrap()
}

/// The talk's app, with two routes for the tests: one that shows the loop's state, and one
/// that calls tokio's runtime, which is not there.
fn app_under_test() -> Router {
    web::app()
        .route(
            "/loop",
            get(|| async { format!("{:?}", get_running_loop().unwrap()) }),
        )
        .route(
            "/tokio",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                "tokio's timer fired"
            }),
        )
}

fn curl_get(server: SocketAddr, path: &str) -> String {
    String::from_utf8(curl(&[format!("http://{server}{path}")], &[])).unwrap()
}

/// A client that keeps one connection open and sends one request after another on it.
struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    fn connect(server: SocketAddr) -> Self {
        let stream = TcpStream::connect(server).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        KeepAlive {
            reader: BufReader::new(stream),
        }
    }

    /// GETs `path` and returns the status line and the body.
    fn get(&mut self, path: &str) -> (String, String) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let mut status = String::new();
        self.reader.read_line(&mut status).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (
            status.trim_end().to_string(),
            String::from_utf8(body).unwrap(),
        )
    }
}

#[test]
fn curl_gets_each_route_of_the_talks_app() {
    let server = start(app_under_test());
    assert_eq!(curl_get(server, "/"), r#"{"message":"Hello World"}"#);
    assert_eq!(
        curl_get(server, "/items/42?q=pika"),
        r#"{"item_id":42,"q":"pika"}"#
    );
    assert_eq!(curl_get(server, "/items/7"), r#"{"item_id":7,"q":null}"#);
    let json = ["-H", "Content-Type: application/json", "-d"];
    let url = format!("http://{server}/items");
    let created = curl(
        &[
            json[0],
            json[1],
            json[2],
            r#"{"name":"Eevee","price":9.5}"#,
            &url,
        ],
        &[],
    );
    assert_eq!(
        String::from_utf8(created).unwrap(),
        r#"{"name":"Eevee","price":9.5}"#
    );
    let status = ["-o", "/dev/null", "-w", "%{http_code}"];
    let invalid = curl(
        &[&status[..], &json[..], &[r#"{"name":"Eevee"}"#, &url]].concat(),
        &[],
    );
    assert_eq!(invalid, b"422", "a missing field");
    let missing = curl(
        &[&status[..], &[&format!("http://{server}/nowhere")]].concat(),
        &[],
    );
    assert_eq!(missing, b"404");
    assert_eq!(curl_get(server, "/sleep/10"), r#"{"slept_ms":10}"#);
}

#[test]
fn fifty_requests_that_sleep_at_once_take_about_one_sleep() {
    let server = start(app_under_test());
    let nap = Duration::from_millis(300);
    let start = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|_| {
            thread::spawn(move || {
                KeepAlive::connect(server).get(&format!("/sleep/{}", nap.as_millis()))
            })
        })
        .collect();
    for client in clients {
        let (status, _) = client.join().unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK");
    }
    let naps = start.elapsed().as_secs_f64() / nap.as_secs_f64();
    assert!(
        naps < 10.0,
        "50 sleeps took {naps:.1} times one sleep: they did not wait together"
    );
}

#[test]
fn a_handler_that_needs_tokios_runtime_fails_alone() {
    let server = start(app_under_test());
    let mut failing = KeepAlive::connect(server);
    let request = b"GET /tokio HTTP/1.1\r\nHost: test\r\n\r\n";
    failing.reader.get_mut().write_all(request).unwrap();
    let mut answer = Vec::new();
    failing.reader.read_to_end(&mut answer).unwrap();
    assert!(answer.is_empty(), "the connection ends without an answer");
    let mut healthy = KeepAlive::connect(server);
    assert_eq!(healthy.get("/").0, "HTTP/1.1 200 OK");
}

#[test]
fn keep_alive_requests_leave_no_timer_behind() {
    let server = start(app_under_test());
    let mut client = KeepAlive::connect(server);
    for _ in 0..1_000 {
        assert_eq!(client.get("/").0, "HTTP/1.1 200 OK");
    }
    let (_, state) = client.get("/loop");
    let timers: usize = state
        .split(" timers=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("the loop's state: {state}"));
    assert!(
        timers < 250,
        "1,000 requests left {timers} timers in the loop's heap: {state}"
    );
}

#[test]
fn a_handler_dropped_before_its_answer_stops_the_work_it_waits_for() {
    let (dropped, tasks) = step7_tasks::run(async {
        let event_loop = get_running_loop().unwrap();
        let (dropped, guard) = workshop_tests::drop_flag();
        let mut handler = Box::pin(web::on_loop(async move {
            let _guard = guard;
            step7_tasks::sleep(Duration::from_secs(3600)).await;
        }));
        // hyper polls the handler, and drops it when its client leaves.
        assert!(futures::FutureExt::now_or_never(&mut handler).is_none());
        step7_tasks::sleep(Duration::ZERO).await;
        drop(handler);
        step7_tasks::sleep(Duration::ZERO).await;
        step7_tasks::sleep(Duration::ZERO).await;
        (dropped.get(), format!("{event_loop:?}"))
    });
    assert!(dropped, "the hour-long sleep is dropped with its handler");
    assert!(
        tasks.contains(" tasks=1>"),
        "only the main task is left: {tasks}"
    );
}

#[test]
fn the_example_logs_a_line_per_request_as_the_proxy_does() {
    let lines = workshop_tests::within_hang("the example's log", || {
        let mut web =
            Started::start(workshop_tests::step_example("web").args(["--listen", "127.0.0.1:0"]));
        let first = web.line();
        let server: SocketAddr = first
            .strip_prefix("serving the talk's app on http://")
            .unwrap_or_else(|| panic!("the first line: {first}"))
            .parse()
            .unwrap();
        curl_get(server, "/items/42?q=pika");
        curl_get(server, "/nowhere");
        [web.line(), web.line()]
    });
    let logged = regex::Regex::new(r"^(\S+ \S+ \d{3} \d+ B) \d+\.\d\d s$").unwrap();
    let logged: Vec<&str> = lines
        .iter()
        .map(|line| match logged.captures(line) {
            Some(captures) => captures.get(1).unwrap().as_str(),
            None => panic!("not a log line: {line}"),
        })
        .collect();
    assert_eq!(
        logged,
        ["GET /items/42?q=pika 200 25 B", "GET /nowhere 404 0 B"]
    );
}

#[test]
fn a_request_head_that_never_ends_is_timed_out_on_our_loop_s_timers() {
    // hyper's limit on reading a head runs on `LoopTimer`; 30 s in the example, 0.2 s here.
    let (bound_tx, bound) = mpsc::channel();
    thread::spawn(move || {
        step7_tasks::run(async move {
            let listener = step7_tasks::net::TcpListener::bind("127.0.0.1:0").unwrap();
            bound_tx.send(listener.local_addr().unwrap()).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper_util::service::TowerToHyperService::new(web::app());
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(web::LoopTimer)
                .header_read_timeout(Duration::from_millis(200))
                .serve_connection(web::Io::new(stream), service);
            drop(connection.await);
        })
    });
    let mut client = TcpStream::connect(bound.recv().unwrap()).unwrap();
    client.set_read_timeout(Some(HANG)).unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: slow\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let outcome = client.read_to_end(&mut answer);
    assert!(
        outcome.is_ok(),
        "the server should close a connection whose head never ends: {outcome:?}"
    );
}
