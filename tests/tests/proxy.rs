//! Step 7's proxy: bytes come through exactly, whatever the framing and size, many clients are
//! served at once, bad requests get a clear answer, and nothing a client or an origin does stops
//! the proxy from serving the next client.
//!
//! Everything runs on 127.0.0.1, and in this process unless a test says why not: the proxy on a
//! loop of its own thread, origins as small blocking servers. Waits end on channels, joins and
//! reads, never on a guessed sleep, and every read gives up after [`HANG`], so a bug fails a
//! test instead of hanging it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::Duration;

use step7_tasks::proxy::{Config, MAX_HEAD_BYTES, serve};
use step7_tasks::{EventLoop, selectors};
use workshop_tests::{HANG, Started, curl, exchange, known_body};

/// Every test, on the selector named `$selector`: the proxy must behave the same on each.
macro_rules! proxy_tests {
    ($name:ident, $selector:literal) => {
        mod $name {
            use super::*;

            /// The proxy under test, on this module's selector.
            fn start_proxy(config: Config) -> SocketAddr {
                super::start_proxy($selector, config)
            }

            #[test]
            fn curl_gets_the_same_bytes_through_the_proxy_as_directly() {
                let _descriptors = some_descriptors();
                let (origin, heard) = start_origin();
                let proxy = start_proxy(Config::default());
                // `/chunked` is answered in chunks, which curl decodes: the proxy passes them on as they are.
                for path in ["/known/file.bin?x=1", "/chunked"] {
                    let url = format!("http://{origin}{path}");
                    let direct = curl(&[&url], &[]);
                    next(&heard);
                    let proxied = curl(&["-x", &format!("http://{proxy}"), &url], &[]);
                    let request = next(&heard).head;

                    assert!(
                        direct == known_body(),
                        "{path}: direct: {} bytes",
                        direct.len()
                    );
                    assert!(
                        proxied == direct,
                        "{path}: proxied: {} bytes",
                        proxied.len()
                    );
                    assert!(
                        request.starts_with(&format!("GET {path} HTTP/1.1\r\nHost: {origin}\r\n")),
                        "the origin got the origin form and the Host, not:\n{request}"
                    );
                    assert!(
                        request.ends_with("\r\nConnection: close\r\n\r\n"),
                        "{request}"
                    );
                    assert!(
                        !request.to_ascii_lowercase().contains("proxy-connection"),
                        "{request}"
                    );
                }
            }

            #[test]
            fn curl_tunnels_through_connect() {
                let _descriptors = some_descriptors();
                let (origin, heard) = start_origin();
                let proxy = start_proxy(Config::default());
                let url = format!("http://{origin}/known/tunnelled");

                // `-p` makes curl ask for a tunnel with CONNECT, then speak to the origin through it.
                let tunnelled = curl(&["-p", "-x", &format!("http://{proxy}"), &url], &[]);

                assert!(tunnelled == known_body(), "{} bytes", tunnelled.len());
                let request = next(&heard).head;
                assert!(
                    request.starts_with("GET /known/tunnelled HTTP/1.1\r\n"),
                    "{request}"
                );
                // The proxy did not touch what went through the tunnel.
                assert!(!request.contains("Connection: close"), "{request}");
            }

            #[test]
            fn limits_beyond_what_the_clock_counts_wait_for_ever_without_a_panic() {
                let _descriptors = some_descriptors();
                let (origin, heard) = start_origin();
                let never = Duration::MAX;
                let proxy = start_proxy(Config {
                    head_timeout: never,
                    body_timeout: never,
                    upstream_timeout: never,
                    response_timeout: never,
                    tunnel_timeout: never,
                    keepalive_timeout: never,
                    ..Config::default()
                });
                let url = format!("http://{origin}/known/tunnelled");
                let tunnelled = curl(&["-p", "-x", &format!("http://{proxy}"), &url], &[]);
                assert!(tunnelled == known_body(), "{} bytes", tunnelled.len());
                next(&heard);
                assert_good_request(proxy, origin);
            }

            #[test]
            fn curl_posts_a_body_and_gets_it_echoed() {
                let _descriptors = some_descriptors();
                let (origin, heard) = start_origin();
                let proxy = start_proxy(Config::default());
                let sent: Vec<u8> = (0..=255u8).rev().cycle().take(100_000).collect();

                let echoed = curl(&post_args(proxy, origin, &[]), &sent);

                assert!(
                    echoed == sent,
                    "echoed {} bytes of {}",
                    echoed.len(),
                    sent.len()
                );
                let request = next(&heard);
                assert!(
                    request.head.starts_with("POST /echo HTTP/1.1\r\n"),
                    "{}",
                    request.head
                );
                assert!(
                    request.head.contains("\r\nContent-Length: 100000\r\n"),
                    "{}",
                    request.head
                );
            }

            #[test]
            fn several_megabytes_of_binary_go_both_ways_byte_for_byte() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let proxy = start_proxy(Config::default());
                let sent = noise(8 * 1024 * 1024);

                let echoed = curl(&post_args(proxy, origin, &[]), &sent);

                assert!(
                    echoed == sent,
                    "echoed {} bytes of {}",
                    echoed.len(),
                    sent.len()
                );
            }

            #[test]
            fn a_chunked_body_is_forwarded_as_it_is_and_ends_where_its_framing_says() {
                let _descriptors = some_descriptors();
                let (origin, heard) = start_origin();
                let proxy = start_proxy(Config::default());

                // With curl, whose chunks the proxy follows to their end.
                let sent = noise(300_000);
                let header = ["-H", "Transfer-Encoding: chunked"];
                let echoed = curl(&post_args(proxy, origin, &header), &sent);
                assert!(
                    echoed == sent,
                    "echoed {} bytes of {}",
                    echoed.len(),
                    sent.len()
                );
                let request = next(&heard);
                assert!(request.body == sent);

                // By hand, with a chunk extension and a trailer, on a connection the client keeps open:
                // only the framing can tell the proxy that the body is over.
                let chunked = "5;name=value\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: yes\r\n\r\n";
                let request = format!(
                    "POST http://{origin}/echo HTTP/1.1\r\nHost: {origin}\r\n\
                     Transfer-Encoding: chunked\r\n\r\n{chunked}"
                );
                let mut client = connect(proxy);
                client.write_all(request.as_bytes()).unwrap();
                let (head, body) = read_framed(&mut BufReader::new(&client));
                assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
                assert_eq!(body, b"hello world!");
                let heard = next(&heard);
                assert!(
                    heard.head.contains("\r\nTransfer-Encoding: chunked\r\n"),
                    "{}",
                    heard.head
                );
                assert_eq!(
                    heard.raw_body,
                    chunked.as_bytes(),
                    "the chunks went through untouched"
                );
            }

            #[test]
            fn hop_by_hop_headers_stop_at_the_proxy_both_ways() {
                let _descriptors = some_descriptors();
                let (origin, heard) = start_origin();
                let proxy = start_proxy(Config::default());
                let request = format!(
                    "GET http://{origin}/hop HTTP/1.1\r\nHost: elsewhere.example\r\n\
                     Connection: keep-alive, X-Client-Hop\r\nX-Client-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
                     Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\
                     TE: trailers\r\nUpgrade: websocket\r\nX-Kept: yes\r\n\r\n"
                );

                let mut client = connect(proxy);
                client.write_all(request.as_bytes()).unwrap();
                let (head, body) = read_framed(&mut BufReader::new(&client));

                let expected =
                    format!("GET /hop HTTP/1.1\r\nHost: {origin}\r\nX-Kept: yes\r\nVia: 1.1 step7-tasks\r\nConnection: close\r\n\r\n");
                assert_eq!(next(&heard).head, expected);
                assert_eq!(
                    head,
                    "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Kept: yes\r\nVia: 1.1 step7-tasks\r\n\r\n",
                    "the client's connection stays open: no Connection: close"
                );
                assert_eq!(body, b"hop\n");
            }

            /// The proxy runs as its own program here: with the clients and the origin beside it,
            /// its 400 sockets would be numbered past the 1024 that `select` can watch.
            #[test]
            fn two_hundred_clients_at_once_each_get_their_own_answer() {
                let _descriptors = all_descriptors();
                allow_descriptors(4096);
                let (origin, _heard) = start_origin();
                let (_program, proxy) = start_proxy_program(&["--selector", $selector]);

                let clients: Vec<_> = (0..200)
                    .map(|number| {
                        thread::spawn(move || {
                            let path = format!("/client/{number}");
                            let request = format!("GET http://{origin}{path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
                            let mut client = connect(proxy);
                            client.write_all(request.as_bytes()).unwrap();
                            let (head, body) = read_answer(&mut client);
                            assert!(
                                head.starts_with("HTTP/1.1 200 OK\r\n"),
                                "client {number}: {head}{}",
                                String::from_utf8_lossy(&body)
                            );
                            assert_eq!(body, format!("you asked for {path}\n").as_bytes());
                        })
                    })
                    .collect();
                for client in clients {
                    client.join().unwrap();
                }
            }

            #[test]
            fn bad_requests_get_a_clear_answer_and_the_proxy_goes_on() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let proxy = start_proxy(Config::default());
                let refused = TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap();
                let padding = "x".repeat(MAX_HEAD_BYTES);
                let many_headers = "X-Header: 1\r\n".repeat(200);
                // An origin whose answers a proxy must not pass on.
                let odd_origin = start_blocking(|mut connection| {
                    let mut reader = BufReader::new(connection.try_clone()?);
                    let head = read_line_by_line(&mut reader, |line| line == "\r\n")?;
                    let answer = if head.contains("status-099") {
                        "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"
                    } else {
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"
                    };
                    connection.write_all(answer.as_bytes())
                });
                let cases = [
                    ("not an http request\r\n\r\n".to_string(), "400 Bad Request"),
                    (
                        "GET /not/absolute HTTP/1.1\r\nHost: example.com\r\n\r\n".to_string(),
                        "400 Bad Request",
                    ),
                    (
                        format!("POST http://{origin}/echo HTTP/1.1\r\nHost: test\r\nContent-Length: ten\r\n\r\n"),
                        "400 Bad Request",
                    ),
                    (
                        format!(
                            "POST http://{origin}/echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
                             zz\r\nhello\r\n0\r\n\r\n"
                        ),
                        "400 Bad Request",
                    ),
                    (
                        format!("GET http://{origin}/ HTTP/1.1\r\nHost: test\r\nX-Padding: {padding}\r\n\r\n"),
                        "431 Request Header Fields Too Large",
                    ),
                    (
                        format!("GET http://{origin}/ HTTP/1.1\r\nHost: test\r\n{many_headers}\r\n"),
                        "431 Request Header Fields Too Large",
                    ),
                    (
                        format!("GET http://{refused}/ HTTP/1.1\r\nHost: test\r\n\r\n"),
                        "502 Bad Gateway",
                    ),
                    (
                        format!("CONNECT {refused} HTTP/1.1\r\nHost: test\r\n\r\n"),
                        "502 Bad Gateway",
                    ),
                    // RFC 9112 and 9110, as nginx answers them.
                    (
                        format!("GET http://{origin}/ HTTP/2.0\r\nHost: test\r\n\r\n"),
                        "505 HTTP Version Not Supported",
                    ),
                    (format!("GET http://{origin}/ HTTP/1.1\r\n\r\n"), "400 Bad Request"),
                    (
                        format!("GET http://{origin}/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
                        "400 Bad Request",
                    ),
                    (
                        format!("GET http://user:secret@{origin}/ HTTP/1.1\r\nHost: test\r\n\r\n"),
                        "400 Bad Request",
                    ),
                    (
                        format!(
                            "POST http://{origin}/echo HTTP/1.1\r\nHost: test\r\n\
                             Connection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"
                        ),
                        "400 Bad Request",
                    ),
                    (
                        format!("GET http://{odd_origin}/status-099 HTTP/1.1\r\nHost: test\r\n\r\n"),
                        "502 Bad Gateway",
                    ),
                    (
                        format!("GET http://{odd_origin}/two-lengths HTTP/1.1\r\nHost: test\r\n\r\n"),
                        "502 Bad Gateway",
                    ),
                ];

                for (request, status) in cases {
                    let answer = exchange(proxy, request.as_bytes());
                    assert!(
                        answer.starts_with(&format!(
                            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
                        )),
                        "expected {status}, got:\n{answer}"
                    );
                    assert!(answer.ends_with("\n") && answer.contains(&format!("\r\n\r\n{status}: ")));
                    assert_good_request(proxy, origin);
                }
            }

            #[test]
            fn a_leading_empty_line_and_an_upper_case_scheme_are_accepted() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let proxy = start_proxy(Config::default());
                for request in [
                    format!("\r\nGET http://{origin}/good HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
                    format!("GET HTTP://{origin}/good HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
                ] {
                    let answer = exchange(proxy, request.as_bytes());
                    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
                }
            }

            #[test]
            fn an_origin_that_never_answers_gets_504_and_is_hung_up_on() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let (mute, hung_up) = start_mute_origin();
                // Long enough for the good origin to answer on a loaded machine, short enough for a test.
                let proxy = start_proxy(Config {
                    upstream_timeout: Duration::from_millis(300),
                    ..Config::default()
                });

                let answer = exchange(
                    proxy,
                    format!("GET http://{mute}/ HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
                );

                assert!(
                    answer.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
                    "{answer}"
                );
                let (received, closed) = next(&hung_up);
                assert!(closed, "the proxy left the origin connection open");
                assert!(received.starts_with(b"GET / HTTP/1.1\r\n"));
                assert_good_request(proxy, origin);
            }

            #[test]
            fn a_client_slow_to_send_its_head_gets_408_and_the_others_are_served() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let proxy = start_proxy(Config {
                    head_timeout: Duration::from_millis(200),
                    ..Config::default()
                });
                // A slowloris, whose head never ends, and one that has sent nothing yet.
                let mut slow = connect(proxy);
                slow.write_all(b"GET http://example.com/ HTTP/1.1\r\nX-Wait: 1\r\n")
                    .unwrap();
                let silent = connect(proxy);
                assert_good_request(proxy, origin);
                for mut stream in [slow, silent] {
                    let mut answer = Vec::new();
                    stream.read_to_end(&mut answer).unwrap();
                    let answer = String::from_utf8_lossy(&answer);
                    assert!(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{answer}");
                }
                assert_good_request(proxy, origin);
            }

            #[test]
            fn a_request_for_the_proxy_itself_is_refused_and_forwarded_ones_say_via() {
                let _descriptors = some_descriptors();
                let (origin, heard) = start_origin();
                let proxy = start_proxy(Config::default());
                let port = proxy.port();
                for target in [format!("http://{proxy}/"), format!("http://localhost:{port}/")] {
                    let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n");
                    let answer = exchange(proxy, request.as_bytes());
                    assert!(answer.starts_with("HTTP/1.1 508 Loop Detected\r\n"), "{answer}");
                }
                // The aliases of its address reach it too.
                let aliases = [
                    proxy.to_string(),
                    format!("0.0.0.0:{port}"),
                    format!("0:{port}"),
                    format!("[::ffff:127.0.0.1]:{port}"),
                    format!("[::]:{port}"),
                    format!("127.0.0.2:{port}"),
                ];
                for alias in aliases {
                    let connect = format!("CONNECT {alias} HTTP/1.1\r\nHost: test\r\n\r\n");
                    let answer = exchange(proxy, connect.as_bytes());
                    assert!(
                        answer.starts_with("HTTP/1.1 508 Loop Detected\r\n"),
                        "CONNECT {alias}: {answer}"
                    );
                }
                assert_good_request(proxy, origin);
                assert!(next(&heard).head.contains("\r\nVia: 1.1 step7-tasks\r\n"));
            }

            #[test]
            fn a_client_that_leaves_mid_body_takes_the_origin_connection_with_it() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let (mute, hung_up) = start_mute_origin();
                let proxy = start_proxy(Config::default());

                let mut client = connect(proxy);
                let head = format!("POST http://{mute}/upload HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n");
                client.write_all(head.as_bytes()).unwrap();
                client.write_all(&[7; 1000]).unwrap();
                drop(client);

                let (received, closed) = next(&hung_up);
                assert!(closed, "the proxy left the origin connection open");
                assert!(received.starts_with(b"POST /upload HTTP/1.1\r\n"));
                assert!(
                    received.ends_with(&[7; 1000]),
                    "the origin got what the client sent, no more"
                );
                assert_good_request(proxy, origin);
            }

            #[test]
            fn one_connection_carries_requests_one_after_another_and_pipelined() {
                let _descriptors = some_descriptors();
                let (origin, heard) = start_origin();
                let proxy = start_proxy(Config::default());
                let client = connect(proxy);
                let mut answers = BufReader::new(&client);
                let get = |path: &str| format!("GET http://{origin}{path} HTTP/1.1\r\nHost: test\r\n\r\n");

                // One after another; a `HEAD` answer has a Content-Length and no body.
                let head = format!("HEAD http://{origin}/known HTTP/1.1\r\nHost: test\r\n\r\n");
                (&client).write_all(head.as_bytes()).unwrap();
                let answer = read_line_by_line(&mut answers, |line| line == "\r\n").unwrap();
                let length = format!("\r\nContent-Length: {}\r\n", known_body().len());
                assert!(answer.contains(&length), "{answer}");
                (&client).write_all(get("/first").as_bytes()).unwrap();
                assert_eq!(read_framed(&mut answers).1, b"you asked for /first\n");

                // Pipelined: three requests at once, a body among them, answered in order.
                let post = format!(
                    "POST http://{origin}/echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello"
                );
                (&client).write_all([get("/a"), post, get("/b")].concat().as_bytes()).unwrap();
                for expected in [&b"you asked for /a\n"[..], b"hello", b"you asked for /b\n"] {
                    let (head, body) = read_framed(&mut answers);
                    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
                    assert!(!head.contains("Connection: close"), "{head}");
                    assert_eq!(body, expected);
                }
                // Each request had an origin connection of its own, asked to close.
                for _ in 0..5 {
                    assert!(next(&heard).head.ends_with("\r\nConnection: close\r\n\r\n"));
                }

                // A client that asks for the end gets it after the answer.
                let last = format!("GET http://{origin}/last HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
                (&client).write_all(last.as_bytes()).unwrap();
                let (head, body) = read_framed(&mut answers);
                assert!(head.ends_with("\r\nConnection: close\r\n\r\n"), "{head}");
                assert_eq!(body, b"you asked for /last\n");
                let mut rest = Vec::new();
                answers.read_to_end(&mut rest).expect("the proxy closes the connection");
                assert!(rest.is_empty(), "{rest:?}");
            }

            #[test]
            fn an_idle_kept_connection_is_closed_after_the_keepalive_limit() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let proxy = start_proxy(Config {
                    keepalive_timeout: Duration::from_millis(200),
                    ..Config::default()
                });
                let client = connect(proxy);
                let request = format!("GET http://{origin}/once HTTP/1.1\r\nHost: test\r\n\r\n");
                (&client).write_all(request.as_bytes()).unwrap();
                let mut answers = BufReader::new(&client);
                assert_eq!(read_framed(&mut answers).1, b"you asked for /once\n");

                let mut rest = Vec::new();
                answers.read_to_end(&mut rest).expect("the proxy closes the idle connection");
                assert!(rest.is_empty(), "nothing more is sent: {rest:?}");
                assert_good_request(proxy, origin);
            }

            #[test]
            fn a_lookup_that_never_answers_leaves_the_other_clients_served() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let proxy = start_proxy(Config {
                    lookup: never_answers,
                    upstream_timeout: HANG,
                    ..Config::default()
                });
                // Clients wait for names that are never found, each holding a thread of the pool.
                let waiting: Vec<TcpStream> = (0..8)
                    .map(|n| {
                        let client = connect(proxy);
                        let request = format!("GET http://host-{n}.test/ HTTP/1.1\r\nHost: x\r\n\r\n");
                        (&client).write_all(request.as_bytes()).unwrap();
                        client
                    })
                    .collect();
                // An IP address needs no lookup; a name another lookup finds, the pool's
                // other threads find.
                assert_good_request(proxy, origin);
                let port = origin.port();
                let by_name = format!("GET http://found.test:{port}/named HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let answer = exchange(proxy, by_name.as_bytes());
                assert!(answer.ends_with("you asked for /named\n"), "{answer}");
                drop(waiting);
            }

            #[test]
            fn an_origin_s_connection_header_never_strips_the_answer_s_framing() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let proxy = start_proxy(Config::default());
                let mut client = BufReader::new(connect(proxy));
                let request = format!("GET http://{origin}/unframing HTTP/1.1\r\nHost: t\r\n\r\n");
                let pipelined = format!("{request}{}", request.replace("/unframing", "/next"));
                client.get_mut().write_all(pipelined.as_bytes()).unwrap();
                let (head, body) = read_framed(&mut client);
                assert!(head.contains("\r\nContent-Length: 5\r\n"), "{head}");
                assert_eq!(body, b"hello");
                let (head, body) = read_framed(&mut client);
                assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
                assert_eq!(body, b"you asked for /next\n", "each answer in its own frame");
            }

            #[test]
            fn what_cannot_begin_a_request_gets_400_at_once() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let proxy = start_proxy(Config {
                    head_timeout: 2 * HANG,
                    ..Config::default()
                });
                // A TLS handshake's first bytes, and binary noise without a line end: with the
                // head limit longer than any read waits, only an answer at once passes.
                let tls_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
                for garbage in [&tls_hello[..], b"\x00\x01\x02garbage"] {
                    let answer = exchange(proxy, garbage);
                    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
                }
                let huge = format!(
                    "POST http://{origin}/echo HTTP/1.1\r\nHost: t\r\n\
                     Content-Length: 18446744073709551615\r\n\r\n"
                );
                let answer = exchange(proxy, huge.as_bytes());
                assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
                assert_good_request(proxy, origin);
            }

            #[test]
            fn a_100_continue_reaches_the_client_before_it_sends_its_body() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let proxy = start_proxy(Config::default());
                let client = connect(proxy);
                let head = format!(
                    "POST http://{origin}/echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\
                     Expect: 100-continue\r\n\r\n"
                );
                (&client).write_all(head.as_bytes()).unwrap();
                let mut answers = BufReader::new(&client);

                // The body waits for the go-ahead, which only the origin gives: a proxy that held
                // it back until the body came would leave both waiting (until [`HANG`]).
                let go_ahead = read_line_by_line(&mut answers, |line| line == "\r\n")
                    .expect("`100 Continue` before the body");
                assert_eq!(
                    go_ahead, "HTTP/1.1 100 Continue\r\nVia: 1.1 step7-tasks\r\n\r\n",
                    "in the proxy's version and words, as the final answer"
                );
                (&client).write_all(b"hello").unwrap();
                let (head, body) = read_framed(&mut answers);
                assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
                assert_eq!(body, b"hello");
            }

            #[test]
            fn an_origin_that_refuses_a_body_early_is_heard_and_the_connection_ends() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let refusing = start_blocking(|connection| {
                    let mut reader = BufReader::new(&connection);
                    read_line_by_line(&mut reader, |line| line == "\r\n")?;
                    (&connection).write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
                });
                let proxy = start_proxy(Config::default());
                let mut client = connect(proxy);
                let head = format!(
                    "POST http://{refusing}/upload HTTP/1.1\r\nHost: test\r\nContent-Length: 10000000\r\n\r\n"
                );
                client.write_all(head.as_bytes()).unwrap();

                // The body's rest would be read as the next request: the connection ends instead.
                let (head, body) = read_answer(&mut client);
                assert!(head.starts_with("HTTP/1.1 413 Content Too Large\r\n"), "{head}");
                assert!(head.ends_with("\r\nConnection: close\r\n\r\n"), "{head}");
                assert!(body.is_empty());
                assert_good_request(proxy, origin);
            }

            #[test]
            fn stalled_bodies_answers_and_tunnels_end_after_their_idle_limits() {
                let _descriptors = some_descriptors();
                let (origin, _heard) = start_origin();
                let limit = Duration::from_millis(200);
                let proxy = start_proxy(Config {
                    body_timeout: limit,
                    response_timeout: limit,
                    tunnel_timeout: limit,
                    ..Config::default()
                });
                // The three stalls wait out their limits side by side.
                let body = || {
                    // A body that stops halfway: 408, and the origin connection closed.
                    let (mute, hung_up) = start_mute_origin();
                    let mut client = connect(proxy);
                    let head = format!("POST http://{mute}/upload HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n");
                    client.write_all(head.as_bytes()).unwrap();
                    client.write_all(b"0123456789").unwrap();
                    let (head, _) = read_answer(&mut client);
                    assert!(head.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{head}");
                    let (received, closed) = next(&hung_up);
                    assert!(closed && received.ends_with(b"0123456789"));
                };
                let answer = || {
                    // An answer that stops halfway: the client gets what came, then the end.
                    let (stalling, gave_up) = start_stalling_origin();
                    let mut client = connect(proxy);
                    let request = format!("GET http://{stalling}/ HTTP/1.1\r\nHost: test\r\n\r\n");
                    client.write_all(request.as_bytes()).unwrap();
                    let (head, body) = read_answer(&mut client);
                    assert!(head.contains("\r\nContent-Length: 100\r\n"), "{head}");
                    assert_eq!(body, b"half");
                    assert!(next(&gave_up), "the proxy left the origin connection open");
                };
                let tunnel = || {
                    // A tunnel in which nobody speaks.
                    let (mute, hung_up) = start_mute_origin();
                    let mut client = connect(proxy);
                    let request = format!("CONNECT {mute} HTTP/1.1\r\nHost: test\r\n\r\n");
                    client.write_all(request.as_bytes()).unwrap();
                    let (head, body) = read_answer(&mut client);
                    assert_eq!(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
                    assert!(body.is_empty());
                    let (received, closed) = next(&hung_up);
                    assert!(closed && received.is_empty());
                };
                thread::scope(|scope| {
                    for stall in [scope.spawn(body), scope.spawn(answer), scope.spawn(tunnel)] {
                        stall.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    }
                });
                assert_good_request(proxy, origin);
            }
        }
    };
}

proxy_tests!(select, "select");
proxy_tests!(poll, "poll");
#[cfg(any(target_os = "linux", target_os = "android"))]
proxy_tests!(epoll, "epoll");
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
proxy_tests!(kqueue, "kqueue");

/// The next report from an origin; an origin that never reports fails the test instead of
/// hanging it (a mute origin gives up on its own after [`HANG`]).
fn next<T>(reports: &Receiver<T>) -> T {
    reports
        .recv_timeout(2 * HANG)
        .expect("a report from the origin")
}

/// Starts the proxy on a loop of its own, with the selector named `selector`, on a thread of its
/// own, and returns its address.
fn start_proxy(selector: &'static str, config: Config) -> SocketAddr {
    // The log writes to the process's stdout, past the capture of the tests' output.
    let config = Config {
        log: false,
        ..config
    };
    let (address, bound) = mpsc::channel();
    thread::spawn(move || {
        let event_loop = || EventLoop::with_selector(selectors::by_name(selector).unwrap());
        step7_tasks::run_with(event_loop, async move {
            let listener = step7_tasks::net::TcpListener::bind("127.0.0.1:0").unwrap();
            address.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, config).await.unwrap();
        })
    });
    bound.recv().unwrap()
}

/// A name lookup for the proxy's `Config`: `found.test` is 127.0.0.1, and any other name is
/// never answered, as a DNS server that does not reply (the call holds its thread for an hour).
fn never_answers(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if host == "found.test" {
        return Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    }
    thread::sleep(Duration::from_secs(3600));
    Err(io::Error::other("no answer"))
}

/// What the test origin heard in one request.
struct Heard {
    head: String,
    /// The body as it came, chunked or not.
    raw_body: Vec<u8>,
    /// The body as it meant, chunks decoded.
    body: Vec<u8>,
}

/// Starts an origin that answers `GET /known…` with [`known_body`], `/chunked` with the same
/// in chunks, `/hop` with hop-by-hop headers, `POST /echo` with the body it decoded, anything
/// else with a line naming the path; and sends what it heard down the returned channel. It
/// answers `Expect: 100-continue` with `100 Continue` before it reads the body, and `HEAD`
/// with the head alone.
fn start_origin() -> (SocketAddr, Receiver<Heard>) {
    let (heard, hearing) = mpsc::channel();
    let address = start_blocking(move |connection| {
        let mut reader = BufReader::new(&connection);
        let head = read_line_by_line(&mut reader, |line| line == "\r\n")?;
        let header = |name: &str| {
            let lines = head.lines().filter_map(|line| line.split_once(": "));
            lines
                .filter(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.to_string())
                .next()
        };
        if header("Expect").is_some_and(|value| value.eq_ignore_ascii_case("100-continue")) {
            (&connection).write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let (mut raw_body, mut body) = (Vec::new(), Vec::new());
        if header("Transfer-Encoding").is_some() {
            read_chunked(&mut reader, &mut raw_body, &mut body)?;
        } else if let Some(length) = header("Content-Length") {
            let length = length.parse().map_err(io::Error::other)?;
            reader.by_ref().take(length).read_to_end(&mut raw_body)?;
            body.clone_from(&raw_body);
        }

        let path = head.split(' ').nth(1).unwrap_or_default().to_string();
        let mut answer = if path.starts_with("/known") {
            with_length(&known_body())
        } else if path == "/chunked" {
            let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for chunk in known_body().chunks(70_000) {
                answer.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
                answer.extend(chunk);
                answer.extend(b"\r\n");
            }
            answer.extend(b"0\r\n\r\n");
            answer
        } else if path == "/hop" {
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: X-Origin-Hop\r\n\
              X-Origin-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\nhop\n"
                .to_vec()
        } else if path == "/echo" {
            with_length(&body)
        } else if path == "/big-head" {
            let filler = "x".repeat(1000);
            let headers: String = (0..60)
                .map(|n| format!("X-Filler-{n}: {filler}\r\n"))
                .collect();
            format!("HTTP/1.1 200 OK\r\n{headers}Content-Length: 0\r\n\r\n").into_bytes()
        } else if path == "/unframing" {
            b"HTTP/1.1 200 OK\r\nConnection: Content-Length, Transfer-Encoding\r\n\
              Content-Length: 5\r\n\r\nhello"
                .to_vec()
        } else if path == "/drip" {
            // `100 Continue` every 50 ms, and never an answer, until the proxy hangs up.
            loop {
                (&connection).write_all(b"HTTP/1.0 100 Continue\r\nKeep-Alive: 5\r\n\r\n")?;
                thread::sleep(Duration::from_millis(50));
            }
        } else {
            with_length(format!("you asked for {path}\n").as_bytes())
        };
        if head.starts_with("HEAD ") {
            let end = answer.windows(4).position(|window| window == b"\r\n\r\n");
            answer.truncate(end.unwrap_or_default() + 4);
        }
        (&connection).write_all(&answer)?;
        // The test may have stopped listening; the origin does not mind.
        let _ = heard.send(Heard {
            head,
            raw_body,
            body,
        });
        Ok(())
    });
    (address, hearing)
}

/// Starts an origin that never answers: it reads what it is sent until the other side hangs
/// up, then reports what it got, and whether the other side closed (rather than it giving up
/// after [`HANG`]).
fn start_mute_origin() -> (SocketAddr, Receiver<(Vec<u8>, bool)>) {
    let (hung_up, hearing) = mpsc::channel();
    let address = start_blocking(move |mut connection| {
        let mut received = Vec::new();
        let closed = match connection.read_to_end(&mut received) {
            Ok(_) => true,
            Err(error) => !matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        let _ = hung_up.send((received, closed));
        Ok(())
    });
    (address, hearing)
}

/// Starts an origin that begins an answer of 100 bytes, sends 4, then waits; it reports whether
/// the other side hung up (rather than it giving up after [`HANG`]).
fn start_stalling_origin() -> (SocketAddr, Receiver<bool>) {
    let (gave_up, hearing) = mpsc::channel();
    let address = start_blocking(move |mut connection| {
        read_line_by_line(&mut BufReader::new(&connection), |line| line == "\r\n")?;
        connection.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")?;
        let closed = connection.read_to_end(&mut Vec::new()).is_ok();
        let _ = gave_up.send(closed);
        Ok(())
    });
    (address, hearing)
}

/// Serves each connection with `serve` on a thread of its own, reads giving up after [`HANG`].
fn start_blocking(
    serve: impl Fn(TcpStream) -> io::Result<()> + Clone + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for connection in listener.incoming() {
            let serve = serve.clone();
            let connection = connection.unwrap();
            connection.set_read_timeout(Some(HANG)).unwrap();
            // A request the origin cannot read just ends its connection.
            thread::spawn(move || serve(connection));
        }
    });
    address
}

/// Reads lines up to and including the one `last` picks, and returns them whole.
fn read_line_by_line(reader: &mut impl BufRead, last: impl Fn(&str) -> bool) -> io::Result<String> {
    let mut text = String::new();
    loop {
        let start = text.len();
        if reader.read_line(&mut text)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if last(&text[start..]) {
            return Ok(text);
        }
    }
}

/// Reads a chunked body, keeping it as it came in `raw` and decoded in `body`.
fn read_chunked(
    reader: &mut impl BufRead,
    raw: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> io::Result<()> {
    loop {
        let line = read_line_by_line(reader, |_| true)?;
        raw.extend(line.as_bytes());
        let size = line.split([';', '\r']).next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16).map_err(io::Error::other)?;
        if size == 0 {
            let trailer = read_line_by_line(reader, |line| line == "\r\n")?;
            raw.extend(trailer.as_bytes());
            return Ok(());
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        raw.extend(&chunk);
        body.extend(&chunk[..size]);
    }
}

/// A `200 OK` answer with `body` and its Content-Length.
fn with_length(body: &[u8]) -> Vec<u8> {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    [head.as_bytes(), body].concat()
}

/// `length` bytes that look random (xorshift), the same on every run.
fn noise(length: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut bytes = Vec::with_capacity(length);
    while bytes.len() < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend(state.to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

/// curl's arguments to POST its standard input to the origin's `/echo` through the proxy.
fn post_args(proxy: SocketAddr, origin: SocketAddr, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["-x".to_string(), format!("http://{proxy}")];
    // An empty `Expect:` stops curl from waiting for a `100 Continue` before sending the body.
    args.extend(["--data-binary", "@-", "-H", "Expect:"].map(String::from));
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args.push(format!("http://{origin}/echo"));
    args
}

/// A connection to `proxy` whose reads give up after [`HANG`].
fn connect(proxy: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(proxy).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream
}

/// Reads one answer, by its Content-Length, leaving the connection open for the next.
fn read_framed(reader: &mut impl BufRead) -> (String, Vec<u8>) {
    let head = read_line_by_line(reader, |line| line == "\r\n").expect("an answer's head");
    let length = head
        .lines()
        .filter_map(|line| line.split_once(": "))
        .find(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
        .map_or(0, |(_, value)| value.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the answer's body");
    (head, body)
}

/// Reads an answer up to the proxy's closing the connection, and splits it into head and body.
fn read_answer(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let end = answer.windows(4).position(|window| window == b"\r\n\r\n");
    let end = end.expect("a complete head") + 4;
    let body = answer.split_off(end);
    (String::from_utf8(answer).unwrap(), body)
}

/// Asserts that a plain GET through `proxy` to `origin` works.
fn assert_good_request(proxy: SocketAddr, origin: SocketAddr) {
    let answer = exchange(
        proxy,
        format!("GET http://{origin}/good HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\nyou asked for /good\n"),
        "{answer}"
    );
}

/// Taken by every test but the one with 200 clients, which takes [`all_descriptors`]: that one
/// holds some 400 descriptors in this process at its peak, and would push the sockets of a
/// proxy beside it past the 1024 that `select` can watch.
fn some_descriptors() -> RwLockReadGuard<'static, ()> {
    DESCRIPTORS.read().unwrap_or_else(PoisonError::into_inner)
}

/// Taken by the test with 200 clients, so that it runs alone.
fn all_descriptors() -> RwLockWriteGuard<'static, ()> {
    DESCRIPTORS.write().unwrap_or_else(PoisonError::into_inner)
}

static DESCRIPTORS: RwLock<()> = RwLock::new(());

/// Raises the soft limit on open files to `wanted` when it is lower (macOS allows 256 by
/// default), within the hard limit.
fn allow_descriptors(wanted: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < wanted.min(hard) {
        setrlimit(Resource::RLIMIT_NOFILE, wanted.min(hard), hard).unwrap();
    }
}

/// Starts the proxy's program on an address the system picks, with `options`, and returns it
/// with that address, read from the first line of its log. The rest of the log is left in the
/// pipe, unread.
fn start_proxy_program(options: &[&str]) -> (Started, SocketAddr) {
    let options: Vec<String> = options.iter().map(|option| option.to_string()).collect();
    let (proxy, first) = workshop_tests::within_hang("the proxy's first line", move || {
        let mut proxy = Started::start(
            workshop_tests::step_program("step7-tasks")
                .args(["--listen", "127.0.0.1:0"])
                .args(options),
        );
        let first = proxy.line();
        (proxy, first)
    });
    let address = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("the proxy's first line: {first}"));
    (proxy, address.parse().unwrap())
}

#[test]
fn the_wait_for_the_answer_starts_once_the_body_is_sent() {
    let _descriptors = some_descriptors();
    let (origin, heard) = start_origin();
    let limit = Duration::from_secs(1);
    let proxy = start_proxy(
        "poll",
        Config {
            upstream_timeout: limit,
            ..Config::default()
        },
    );
    // A steady upload that lasts longer than the limit (a pace, not a wait for something):
    // the origin answers once it has it all, well within the limit after that.
    let mut client = BufReader::new(connect(proxy));
    let head =
        format!("POST http://{origin}/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n");
    client.get_mut().write_all(head.as_bytes()).unwrap();
    for piece in [b"abc", b"def", b"ghi", b"jkl"] {
        thread::sleep(limit / 3);
        client.get_mut().write_all(piece).unwrap();
    }
    let (head, body) = read_framed(&mut client);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, b"abcdefghijkl");
    assert_eq!(next(&heard).body, b"abcdefghijkl");
}

#[test]
fn interim_answers_do_not_restart_the_wait_for_the_answer() {
    let _descriptors = some_descriptors();
    let (origin, _heard) = start_origin();
    let proxy = start_proxy(
        "poll",
        Config {
            upstream_timeout: Duration::from_secs(1),
            ..Config::default()
        },
    );
    // The origin sends `100 Continue` every 50 ms, and never its answer.
    let mut client = BufReader::new(connect(proxy));
    let request = format!("GET http://{origin}/drip HTTP/1.1\r\nHost: t\r\n\r\n");
    client.get_mut().write_all(request.as_bytes()).unwrap();
    client.get_mut().set_read_timeout(Some(HANG)).unwrap();
    let mut interim = 0;
    loop {
        let head = read_line_by_line(&mut client, |line| line == "\r\n").unwrap();
        if head.starts_with("HTTP/1.1 100 Continue\r\n") {
            assert!(
                !head.contains("Keep-Alive"),
                "the origin's hop-by-hop headers stay: {head}"
            );
            interim += 1;
            continue;
        }
        assert!(
            head.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
            "{head}"
        );
        break;
    }
    assert!(interim > 0, "the interim answers were passed on");
}

#[test]
fn a_client_that_never_reads_is_hung_up_on_within_the_send_limit() {
    let _descriptors = some_descriptors();
    let (origin, _heard) = start_origin();
    let proxy = start_proxy(
        "poll",
        Config {
            send_timeout: Duration::from_millis(300),
            response_timeout: 2 * HANG,
            ..Config::default()
        },
    );
    // A hundred answers of heads alone, 60 KB each, to a client that reads nothing and keeps a
    // small buffer: once the buffers on the way are full, a write of a head cannot end.
    let mut client = small_receive_buffer(proxy);
    let request = format!("GET http://{origin}/big-head HTTP/1.1\r\nHost: t\r\n\r\n");
    client.write_all(request.repeat(100).as_bytes()).unwrap();
    // Then the client goes on sending (empty lines, which may come between requests) and
    // still reads nothing. A proxy that gave up closes with this input unread, which resets
    // the connection, and the write fails; one that waits for ever leaves it blocked.
    client.set_write_timeout(Some(HANG)).unwrap();
    let flood = vec![b'\n'; 1 << 20];
    let outcome = (0..64).try_for_each(|_| client.write_all(&flood));
    let error = outcome.expect_err("the proxy read all of it instead of writing");
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "the proxy should hang up within its send limit: {error}"
    );
}

/// A blocking connection to `proxy` whose receive buffer is as small as the system allows.
fn small_receive_buffer(proxy: SocketAddr) -> TcpStream {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, connect, setsockopt, socket, sockopt::RcvBuf,
    };
    let socket = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    setsockopt(&socket, RcvBuf, &1024).unwrap();
    let SocketAddr::V4(address) = proxy else {
        panic!("the proxy listens on 127.0.0.1");
    };
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&socket),
        &SockaddrIn::from(address),
    )
    .unwrap();
    TcpStream::from(socket)
}

#[test]
fn a_log_that_nobody_reads_does_not_stop_the_proxy() {
    let _descriptors = some_descriptors();
    let (origin, _heard) = start_origin();
    let (_proxy, address) = start_proxy_program(&[]);
    // From here on, nobody reads the proxy's output. A pipe holds 64 KiB or less, eight of
    // these log lines with their 8 KiB targets, and the proxy must go on serving when it is full.
    let path = format!("/long?{}", "x".repeat(8 * 1024));
    for _ in 0..200 {
        let answer = exchange(
            address,
            format!(
                "GET http://{origin}{path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.ends_with(&format!("you asked for {path}\n")),
            "{answer}"
        );
    }
    assert_good_request(address, origin);
}
