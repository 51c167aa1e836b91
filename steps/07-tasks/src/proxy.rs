// ANCHOR: header
//! The finale: step 1's proxy again, with a task per connection instead of a thread. Where
//! step 1's thread slept in `read`, a task returns `Pending` and the loop runs the others, so
//! one thread serves every client. The code still reads top to bottom, with `.await` at each
//! wait: that is what `async fn` is for.
//!
//! A client set up to use a proxy sends it one of two kinds of request. With
//! `GET http://host:port/path HTTP/1.1` (any method, the target in *absolute form*) the proxy
//! sends the origin `GET /path HTTP/1.1` with the headers meant for it, streams the body, and
//! copies the answer back. With `CONNECT host:port HTTP/1.1` it connects, answers `200`, then
//! copies bytes both ways without reading them: that is how HTTPS goes through a proxy.
//!
//! A client's connection carries one request after another (HTTP/1.1's *keep-alive*), answered
//! in the order they came, even when the client sends the next before the answer (*pipelining*).
//! Each request gets a connection of its own to its origin, which is asked to close it after
//! its answer (`Connection: close`). So the proxy reads the answer's framing to know where it
//! ends; an answer framed by the origin's hanging up ends the client's connection too.
//!
//! Every wait has a time limit, so no client, slow or gone, holds a task forever: see
//! [`Config`]. Each request prints a line: method, target, status, bytes sent back, time
//! taken, and in parentheses what went wrong, if anything.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use futures::future::{Either, FutureExt, select, try_join};
use futures::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use httparse::{EMPTY_HEADER, Header, Status};
use nix::errno::Errno;

use crate::net::{Lookup, TcpListener, TcpStream, getaddrinfo_with, system_lookup};
use crate::{Future, get_running_loop, say, sleep};
// ANCHOR_END: header

// ANCHOR: config
/// How the proxy behaves; `Config::default()` suits most uses. Each limit is nginx's, or close to
/// it. The idle limits bound a pause, not a transfer: a download that takes an hour is fine as
/// long as bytes keep coming.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// How long a client may take to send its whole request head before it gets
    /// `408 Request Timeout` and is hung up on. Without it, a client that sends a byte now and
    /// then (a *slowloris*), or nothing at all, would hold its connection, and a task, forever.
    /// Default: 60 s, nginx's `client_header_timeout`.
    pub head_timeout: Duration,
    /// The longest pause in a request body. Default: 60 s (`client_body_timeout`).
    pub body_timeout: Duration,
    /// How long an origin may take to be found and to accept the connection, then to begin
    /// its answer once it has the whole request, before the client gets
    /// `504 Gateway Timeout`. Default: 30 s.
    pub upstream_timeout: Duration,
    /// The longest pause in an answer, once begun. Default: 60 s (`proxy_read_timeout`).
    pub response_timeout: Duration,
    /// The longest pause in a `CONNECT` tunnel, both ways together. Default: 10 min
    /// (nginx's `proxy_timeout` for streams).
    pub tunnel_timeout: Duration,
    /// How long a client's connection may wait, idle, for its next request. Default: 75 s
    /// (`keepalive_timeout`).
    pub keepalive_timeout: Duration,
    /// How long one write to a client may wait for the client to read: a head, an interim
    /// answer, a refusal. A client that never reads is then hung up on, with its origin.
    /// Default: 60 s (`send_timeout`).
    pub send_timeout: Duration,
    /// How names are looked up, on the loop's default executor: the system's resolver, unless
    /// a test brings one that never answers.
    pub lookup: Lookup,
    /// Whether to print a line per request. Default: yes.
    pub log: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            head_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            upstream_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(60),
            tunnel_timeout: Duration::from_secs(600),
            keepalive_timeout: Duration::from_secs(75),
            send_timeout: Duration::from_secs(60),
            lookup: system_lookup,
            log: true,
        }
    }
}
// ANCHOR_END: config

// ANCHOR: log
/// How many log lines may wait for the terminal; more are dropped, and counted.
const LOG_BACKLOG: usize = 10_000;

/// What the log's thread is sent: a line to print, or a wish to know when all before it are.
enum ToLog {
    Line(String),
    Flushed(mpsc::Sender<()>),
}

/// The log's thread, started with the first line.
fn log_thread() -> &'static Mutex<SyncSender<ToLog>> {
    static LOG: OnceLock<Mutex<SyncSender<ToLog>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let (sender, lines) = mpsc::sync_channel(LOG_BACKLOG);
        thread::spawn(move || {
            for message in lines {
                let dropped = DROPPED_LINES.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    say!("({dropped} log lines dropped: the output was full)");
                }
                match message {
                    // Blocks this thread, not the loop's, while the output is full. A closed
                    // output ends the program quietly (`say!`), as it ends the demos.
                    ToLog::Line(line) => say!("{line}"),
                    ToLog::Flushed(done) => drop(done.send(())),
                }
            }
        });
        Mutex::new(sender)
    })
}

static DROPPED_LINES: AtomicU64 = AtomicU64::new(0);

/// Prints `line` without ever blocking the loop: a thread of its own writes the lines, and a
/// full backlog drops them, and counts them. A `println!` on the loop's thread would stop every
/// client while the terminal, or a pipe that nobody reads, is not taking more.
fn log(line: String) {
    let sender = log_thread().lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(TrySendError::Full(_)) = sender.try_send(ToLog::Line(line)) {
        DROPPED_LINES.fetch_add(1, Ordering::Relaxed);
    }
}

/// Waits until every line logged so far is printed; for a program about to print after the
/// proxy's lines, such as the demo. It blocks: never call it on the loop.
pub fn flush_log() {
    let (done, flushed) = mpsc::channel();
    let sender = log_thread()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if sender.send(ToLog::Flushed(done)).is_ok() {
        let _ = flushed.recv();
    }
}
// ANCHOR_END: log

// ANCHOR: head_limits
/// The largest message head (first line and headers) the proxy reads; a longer request gets
/// `431`. Without a limit, a client could make the proxy buffer headers until memory runs out.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The most headers a message may have; a request with more gets `431` too.
const MAX_HEADERS: usize = 100;
// ANCHOR_END: head_limits

// ANCHOR: not_forwarded
/// Headers never forwarded: the hop-by-hop ones, about one connection rather than the message
/// (RFC 9110, section 7.6.1), as are those a `Connection` header names; and `Host`, which the
/// proxy sets from the URL.
const NOT_FORWARDED: &str = "Connection Keep-Alive Proxy-Connection Proxy-Authorization \
                             Proxy-Authenticate TE Trailer Upgrade Host";

const TOO_LARGE: &str = "431 Request Header Fields Too Large";
// ANCHOR_END: not_forwarded

// ANCHOR: serve
/// Serves clients forever, each connection on a task of its own: step 1's thread, for the price
/// of a heap allocation. A task that fails or panics ends alone; the others go on.
///
/// When the process has no descriptor left, a new client would wait, unanswered, until one is
/// freed. So the proxy keeps one in reserve, as servers do: out of descriptors, it lets the
/// reserve go, accepts the client with the freed number, answers `503 Service Unavailable`,
/// hangs up, and takes the reserve back. The clients already connected go on being served.
pub async fn serve(listener: TcpListener, config: Config) -> io::Result<()> {
    let event_loop = get_running_loop()?;
    let mut reserve = Some(File::open("/dev/null")?);
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                event_loop.create_task(handle_client(client, config));
            }
            // ANCHOR_END: serve
            // ANCHOR: reserve
            Err(error) if out_of_descriptors(&error) => {
                drop(reserve.take());
                // Linux refuses before it looks for a client: there may be none waiting, and
                // then this must not wait for one.
                let waiting = listener.accept().now_or_never();
                let turned_away = matches!(waiting, Some(Ok(_)));
                if let Some(Ok((client, _))) = waiting {
                    // A fresh socket's buffer takes the short answer at once.
                    let _ = (&client).write_all(UNAVAILABLE.as_bytes()).await;
                    if config.log {
                        log(format!("- - 503 {} B 0.00 s ({error})", UNAVAILABLE.len()));
                    }
                }
                reserve = File::open("/dev/null").ok();
                if !turned_away || reserve.is_none() {
                    // Nobody to turn away, or still no descriptor: give the connected
                    // clients a moment to end, rather than spin.
                    sleep(Duration::from_millis(100)).await;
                }
            }
            // ANCHOR_END: reserve
            // ANCHOR: serve_end
            // Trying again at once could spin on an error that stays; asyncio waits a second.
            Err(error) => {
                eprintln!("accept failed: {error}");
                sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
// ANCHOR_END: serve_end

// ANCHOR: unavailable
/// What a client is told when the proxy has no descriptor left to serve it with.
const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
                           Content-Length: 42\r\nConnection: close\r\n\r\n\
                           503: the proxy is out of file descriptors\n";

/// Whether `error` says that the process, or the system, has no descriptor left.
fn out_of_descriptors(error: &io::Error) -> bool {
    let errno = error.raw_os_error().map(Errno::from_raw);
    matches!(errno, Some(Errno::EMFILE | Errno::ENFILE))
}
// ANCHOR_END: unavailable

// ANCHOR: handle_client
/// Serves one connection: its requests, one after another, each carried out or refused, then
/// its log line.
///
/// A request the proxy will not carry out gets an HTTP error saying why: `400` when it is
/// malformed, `408` when the client is too slow to send it, `431` when its head is too large,
/// `502` when the origin cannot be reached or answers nonsense, `504` when it does not answer in
/// time; then the connection ends. When a connection breaks instead (the client leaves, say),
/// or an answer is already on its way, nobody can be told: both connections are closed.
pub async fn handle_client(client: TcpStream, config: Config) {
    // An answer goes out in pieces (a head, then the body): with Nagle's algorithm on, a piece
    // would wait for the client to acknowledge the one before, which a client delays by up to
    // 40 ms, once per answer on a kept connection. nginx's `tcp_nodelay` says the same.
    let _ = client.set_nodelay(true);
    // An idle connection waits for its first byte in a small future, with no buffer: the
    // future that serves requests is some 12 KB and its buffer 8 KiB, made when a request
    // comes, as nginx makes a head's buffer when data arrives. The head limit counts from the
    // connection all the same: `serve_requests` gets what is left of it.
    let connected = Instant::now();
    let _ = timeout(config.head_timeout, client.readable()).await;
    Box::pin(serve_requests(client, config, connected)).await;
}

/// Serves the requests of a connection made at `connected`, one after another.
async fn serve_requests(client: TcpStream, config: Config, connected: Instant) {
    let mut from_client = BufReader::new(&client);
    for served in 0.. {
        // Between requests, the client may think as long as the keep-alive limit allows. Then
        // the head limit starts; for the first request it started with the connection.
        if served > 0 {
            let next = timeout(config.keepalive_timeout, from_client.fill_buf()).await;
            if !matches!(next, Ok(bytes) if !bytes.is_empty()) {
                return;
            }
        }
        let started = Instant::now();
        let mut log = LogLine {
            method: "-".into(),
            target: "-".into(),
            status: "-".into(),
            sent: 0,
        };
        let head_limit = match served {
            0 => config.head_timeout.saturating_sub(connected.elapsed()),
            _ => config.head_timeout,
        };
        let asked = proxy(&mut from_client, &client, head_limit, config, &mut log).await;
        let (next, trouble) = match asked {
            Ok(next) => (next, String::new()),
            Err(Failure::Broken(error)) => (Next::Hangup, format!(" ({error})")),
            // Once an answer has begun, an error status cannot follow it; interim answers
            // (`100 Continue`) are not the answer, and leave the status to come.
            Err(Failure::Refused(status, reason)) if log.status == "-" => {
                log.status = status[..3].into();
                // A client that left cannot be told.
                let _ = refuse(&client, status, &reason, &config, &mut log.sent).await;
                (Next::Hangup, format!(" ({reason})"))
            }
            Err(Failure::Refused(_, reason)) => (Next::Hangup, format!(" ({reason})")),
        };
        if config.log {
            let seconds = started.elapsed().as_secs_f64();
            let (method, target, status, sent) = (&log.method, &log.target, &log.status, log.sent);
            self::log(format!(
                "{method} {target} {status} {sent} B {seconds:.2} s{trouble}"
            ));
        }
        match next {
            Next::Request => {}
            Next::Close => return linger(&client).await,
            Next::Hangup => return,
        }
    }
}

/// What a client's connection does after a request.
enum Next {
    /// Waits for the next request.
    Request,
    /// Ends, once the client has read the answer: it said `Connection: close`, or the answer
    /// ended with the origin's connection.
    Close,
    /// Ends now: it broke, or an error answer already ended it.
    Hangup,
}
// ANCHOR_END: handle_client

// ANCHOR: log_line
/// What a request's log line says; `sent` counts the bytes sent back to the client.
struct LogLine {
    method: String,
    target: String,
    status: String,
    sent: u64,
}
// ANCHOR_END: log_line

// ANCHOR: failure
/// Why a request went no further.
enum Failure {
    /// The client gets this status line (step 1's refusal), with the reason as its body.
    Refused(&'static str, String),
    /// A connection broke: nobody is left to answer, or the answer is already on its way.
    Broken(io::Error),
}
// ANCHOR_END: failure

// ANCHOR: failure_status
/// What an I/O error means for the request. The functions that read it call a head too large
/// `FileTooLarge` and a body malformed `InvalidData`: the client is told. Anything else broke.
impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::FileTooLarge => Failure::Refused(TOO_LARGE, error.to_string()),
            io::ErrorKind::InvalidData => bad_request(error.to_string()),
            _ => Failure::Broken(error),
        }
    }
}

fn bad_request(reason: impl Into<String>) -> Failure {
    Failure::Refused("400 Bad Request", reason.into())
}

/// The origin could not be reached, or heard: `504` when time ran out, `502` otherwise.
fn bad_gateway(context: String, error: io::Error) -> Failure {
    let status = match error.kind() {
        io::ErrorKind::TimedOut => "504 Gateway Timeout",
        _ => "502 Bad Gateway",
    };
    Failure::Refused(status, format!("{context}: {error}"))
}
// ANCHOR_END: failure_status

// ANCHOR: proxy_head
/// What the answer to a request depends on, besides the answer itself.
struct Asked<'a> {
    /// The origin, for error messages.
    authority: &'a str,
    /// A `HEAD` request's answer has a head only.
    head_only: bool,
    /// An HTTP/1.0 client is not sent interim answers, which it would not understand.
    version: u8,
    /// Whether the client wants the connection kept for another request.
    keep_alive: bool,
}

/// Reads one request from `from_client` and carries it out; `log` learns what it was and how
/// it went. Returns what the connection does next.
///
/// The body goes to the origin while its answer comes back: an origin may answer
/// `100 Continue` to let the client send its body (`Expect: 100-continue`), and that interim
/// answer must reach the client at once; an origin may also answer before it has read the whole
/// body, to refuse it.
async fn proxy(
    from_client: &mut BufReader<&TcpStream>,
    client: &TcpStream,
    head_limit: Duration,
    config: Config,
    log: &mut LogLine,
) -> Result<Next, Failure> {
    let head = match timeout(head_limit, read_request_head(from_client)).await {
        Err(error) if error.kind() == io::ErrorKind::TimedOut => {
            let reason = format!("no complete request head in time: {error}");
            return Err(Failure::Refused("408 Request Timeout", reason));
        }
        head => head?,
    };
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&head) {
        Ok(Status::Complete(_)) => {}
        Ok(Status::Partial) => return Err(bad_request("the request head is incomplete")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Failure::Refused(
                TOO_LARGE,
                format!("over {MAX_HEADERS} headers"),
            ));
        }
        Err(httparse::Error::Version) if names_another_version(&head) => {
            let reason = "this proxy speaks HTTP/1.0 and HTTP/1.1".to_string();
            return Err(Failure::Refused("505 HTTP Version Not Supported", reason));
        }
        Err(error) => return Err(bad_request(format!("malformed request head: {error}"))),
    }
    // ANCHOR_END: proxy_head
    // ANCHOR: request_checks
    // HTTP/1.1 asks for exactly one Host (RFC 9112, section 3.2).
    let hosts = request
        .headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case("Host"));
    if request.version == Some(1) && hosts.count() != 1 {
        return Err(bad_request(
            "an HTTP/1.1 request has exactly one Host header",
        ));
    }
    // Framing is end to end: a `Connection` header may not drop it on the way.
    if connection_names(request.headers).any(is_framing) {
        return Err(bad_request(
            "the Connection header names the message's framing",
        ));
    }
    // ANCHOR_END: request_checks
    // ANCHOR: proxy_target
    // A complete request has all three.
    let method = request.method.unwrap_or_default();
    let target = request.path.unwrap_or_default();
    let version = request.version.unwrap_or_default();
    (log.method, log.target) = (method.into(), target.into());
    if method == "CONNECT" {
        tunnel(from_client, client, target, config, log).await?;
        return Ok(Next::Hangup);
    }

    // A proxy needs the absolute form, `http://host[:port]/path`: a bare `/path` names no server.
    // The scheme is case-insensitive (RFC 3986, section 3.1).
    let address = match target.split_at_checked(7) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http://") => rest,
        _ => {
            return Err(bad_request(format!(
                "`{target}` is not an absolute http:// URL"
            )));
        }
    };
    let (authority, path) = address.split_at(address.find(['/', '?']).unwrap_or(address.len()));
    if authority.contains('@') {
        // RFC 9110, section 4.2.4: credentials do not belong in an http URL.
        return Err(bad_request(format!(
            "`{target}` carries credentials in its URL"
        )));
    }
    let (host, port) = host_and_port(authority, 80)?;
    // A request without framing has no body (RFC 9112, section 6.3).
    let body = match body_framing(request.headers).map_err(bad_request)? {
        Body::Unframed => Body::Length(0),
        body => body,
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    let first_lines = format!("{method} /{path} HTTP/1.{version}\r\nHost: {authority}\r\n");
    let forwarded = forward_head(first_lines, request.headers, true);
    // HTTP/1.1 keeps a connection unless told otherwise; HTTP/1.0 does not, here.
    let closing = connection_names(request.headers).any(|name| name.eq_ignore_ascii_case(b"close"));
    let asked = Asked {
        authority,
        head_only: method == "HEAD",
        version,
        keep_alive: version == 1 && !closing,
    };
    // ANCHOR_END: proxy_target

    // ANCHOR: proxy_relay
    let origin = connect(client, host, port, &config).await?;
    let _ = origin.set_nodelay(true);
    (&origin).write_all(&forwarded).await?;
    // Done once the origin has the whole request: its time to answer starts then.
    let sent = get_running_loop().map_err(io::Error::from)?.create_future();
    if matches!(body, Body::Length(0)) {
        let _ = sent.set_result(());
    }
    let upload = pin!(async {
        let idle = Idle::new(config.body_timeout);
        idle.guard(copy_body(from_client, &origin, body, &idle, &mut 0))
            .await?;
        let _ = sent.set_result(());
        Ok::<_, Stop>(())
    });
    let download = pin!(answer(&origin, client, &asked, &sent, config, log));
    match select(upload, download).await {
        Either::Left((Ok(()), download)) => download.await,
        // The origin stopped reading the body: its answer, if any, says why.
        Either::Left((Err(Stop::Writing(_)), download)) => download.await.map(|_| Next::Close),
        Either::Left((Err(Stop::Reading(error)), _)) => match error.kind() {
            io::ErrorKind::TimedOut => {
                let reason = format!("the request body stalled: {error}");
                Err(Failure::Refused("408 Request Timeout", reason))
            }
            _ => Err(error.into()),
        },
        // The origin answered before it had the whole body. `answer` saw that (`sent`) and
        // ends the connection: the body's rest would be read as the next request.
        Either::Right((answered, _)) => answered,
    }
}
// ANCHOR_END: proxy_relay

// ANCHOR: answer
/// Reads the origin's answer and passes it on to the client: interim answers (`100 Continue`)
/// as they come, then the final head and body. `sent` is done once the request has gone out
/// whole: the origin's time to answer starts then, as nginx's does, and interim answers do not
/// restart it; the connection's next request waits for it too.
async fn answer(
    origin: &TcpStream,
    client: &TcpStream,
    asked: &Asked<'_>,
    sent: &Future<()>,
    config: Config,
    log: &mut LogLine,
) -> Result<Next, Failure> {
    let authority = asked.authority;
    let mut from_origin = BufReader::new(origin);
    let mut answer_due = pin!(async {
        let _ = sent.await;
        sleep(config.upstream_timeout).await;
    });
    loop {
        let head = match select(pin!(read_head(&mut from_origin)), answer_due.as_mut()).await {
            Either::Left((head, _)) => head,
            Either::Right(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "nothing within {:.2} s",
                    config.upstream_timeout.as_secs_f64()
                ),
            )),
        };
        let head =
            head.map_err(|error| bad_gateway(format!("no answer from {authority}"), error))?;
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(Status::Complete(_)) = response.parse(&head) else {
            let reason = format!("{authority} did not answer in HTTP");
            return Err(Failure::Refused("502 Bad Gateway", reason));
        };
        let (status, reason) = (response.code.unwrap_or_default(), response.reason);
        if !(100..600).contains(&status) {
            let reason = format!("{authority} answered with status {status:03}");
            return Err(Failure::Refused("502 Bad Gateway", reason));
        }
        // ANCHOR_END: answer
        // ANCHOR: interim
        // `100 Continue` and its kind come before the answer; they are passed on in the proxy's
        // version, without the origin's hop-by-hop headers, as the final head is.
        if (100..200).contains(&status) && status != 101 {
            if asked.version == 1 {
                let status_line = format!("HTTP/1.1 {status} {}\r\n", reason.unwrap_or(""));
                let head = forward_head(status_line, response.headers, false);
                send(client, &head, &config).await?;
                log.sent += head.len() as u64;
            }
            continue;
        }
        // ANCHOR_END: interim
        // ANCHOR: answer_end
        // Framing that cannot be trusted is refused, as nginx does, even where no body follows:
        // RFC 9112, section 6.3, asks a proxy to answer 502 to conflicting lengths.
        let framing = body_framing(response.headers).map_err(|reason| {
            Failure::Refused("502 Bad Gateway", format!("{authority}: {reason}"))
        })?;
        // Some answers never have a body; one without framing ends when the origin hangs up.
        let body = if asked.head_only || status == 204 || status == 304 {
            Body::Length(0)
        } else {
            framing
        };
        let reusable = asked.keep_alive && !matches!(body, Body::Unframed) && sent.done();
        // A proxy speaks its own version (RFC 9110, section 6.2).
        let status_line = format!("HTTP/1.1 {status} {}\r\n", reason.unwrap_or(""));
        let head = forward_head(status_line, response.headers, !reusable);
        log.status = status.to_string();
        send(client, &head, &config).await?;
        log.sent += head.len() as u64;
        let idle = Idle::new(config.response_timeout);
        idle.guard(copy_body(
            &mut from_origin,
            client,
            body,
            &idle,
            &mut log.sent,
        ))
        .await
        .map_err(|(Stop::Reading(error) | Stop::Writing(error))| Failure::Broken(error))?;
        return Ok(if reusable { Next::Request } else { Next::Close });
    }
}
// ANCHOR_END: answer_end

// ANCHOR: tunnel
/// Carries out `CONNECT host:port`: connects, answers `200`, then copies bytes both ways until
/// both sides have finished sending, either fails, or neither sends for the tunnel's limit.
async fn tunnel(
    from_client: &mut BufReader<&TcpStream>,
    client: &TcpStream,
    target: &str,
    config: Config,
    log: &mut LogLine,
) -> Result<(), Failure> {
    let (host, port) = host_and_port(target, 443)?;
    let origin = connect(client, host, port, &config).await?;
    let established = b"HTTP/1.1 200 Connection Established\r\n\r\n";
    send(client, established, &config).await?;
    log.status = "200".into();
    log.sent += established.len() as u64;
    let idle = Idle::new(config.tunnel_timeout);
    let mut from_origin = BufReader::new(&origin);
    // The log counts what goes back to the client only.
    let mut uploaded = 0;
    let up = copy_body(from_client, &origin, Body::Unframed, &idle, &mut uploaded);
    let down = copy_body(
        &mut from_origin,
        client,
        Body::Unframed,
        &idle,
        &mut log.sent,
    );
    idle.guard(try_join(up, down))
        .await
        .map_err(|(Stop::Reading(error) | Stop::Writing(error))| Failure::Broken(error))?;
    Ok(())
}
// ANCHOR_END: tunnel

// ANCHOR: forward_head
/// The head to forward: `first_lines`, the headers meant for the other end, `Via` (this proxy
/// was on the way), and `Connection: close` if `closing`.
/// Those of [`NOT_FORWARDED`] stay behind, and so do those a `Connection` header names, except
/// the framing (`Content-Length`, `Transfer-Encoding`): the body is passed on as it was framed,
/// and without its framing the client could not tell where it ends.
fn forward_head(first_lines: String, headers: &[Header<'_>], closing: bool) -> Vec<u8> {
    let not_forwarded = NOT_FORWARDED.split_whitespace().map(str::as_bytes);
    let named = connection_names(headers).filter(|name| !is_framing(name));
    let skipped: Vec<&[u8]> = not_forwarded.chain(named).collect();
    let mut head = first_lines.into_bytes();
    for &Header { name, value } in headers {
        if !skipped
            .iter()
            .any(|skip| skip.eq_ignore_ascii_case(name.as_bytes()))
        {
            head.extend([name.as_bytes(), b": ", value, b"\r\n"].concat());
        }
    }
    // Every proxy on the way says so (RFC 9110, section 7.6.3).
    head.extend(b"Via: 1.1 step7-tasks\r\n");
    if closing {
        head.extend(b"Connection: close\r\n");
    }
    head.extend(b"\r\n");
    head
}
// ANCHOR_END: forward_head

// ANCHOR: head_checks
/// Whether `name` is a header that frames a body.
fn is_framing(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"Content-Length") || name.eq_ignore_ascii_case(b"Transfer-Encoding")
}

/// The header names that the `Connection` headers list: they are about this connection only.
fn connection_names<'a>(headers: &'a [Header<'_>]) -> impl Iterator<Item = &'a [u8]> {
    let connection = headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case("Connection"));
    let named = connection.flat_map(|header| header.value.split(|&byte| byte == b','));
    named.map(<[u8]>::trim_ascii)
}

/// Reads a request head. Empty lines before it are left over from a message before: skipped,
/// as RFC 9112 (section 2.2) asks. The head timeout bounds how many.
async fn read_request_head(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<Vec<u8>> {
    loop {
        refuse_what_is_no_method(reader).await?;
        let head = read_head(reader).await?;
        if !matches!(&head[..], b"\r\n" | b"\n") {
            return Ok(head);
        }
    }
}

/// Fails with `InvalidData` at once when the bytes that have come cannot begin a request line:
/// a method is letters and such (a *token*), then a space. A TLS handshake, or binary garbage
/// without a line end, would otherwise wait out the head limit; nginx answers 400 at once too.
async fn refuse_what_is_no_method(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<()> {
    let start = reader.fill_buf().await?;
    let method = start.iter().take_while(|&&byte| byte != b' ');
    let token = |byte: &u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(byte);
    if method
        .clone()
        .any(|byte| !token(byte) && !matches!(byte, b'\r' | b'\n'))
    {
        let reason = "this is not an HTTP request";
        return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
    }
    Ok(())
}

/// Whether the request line ends with a well-formed HTTP version that is not 1.x, such as
/// `HTTP/2.0`: that gets `505`, while a malformed one gets `400`.
fn names_another_version(head: &[u8]) -> bool {
    let line = head.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let version = line.trim_ascii_end().rsplit(|&byte| byte == b' ').next();
    match version.and_then(|version| version.strip_prefix(b"HTTP/")) {
        Some([major, b'.', minor]) => major.is_ascii_digit() && minor.is_ascii_digit(),
        Some([major]) => major.is_ascii_digit(),
        _ => false,
    }
}
// ANCHOR_END: head_checks

// ANCHOR: read_head
/// Reads a message head, line by line up to the empty line that ends it, and returns it whole.
/// The body, if any, stays unread in `reader`.
async fn read_head(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        read_line(reader, &mut head, MAX_HEAD_BYTES - start).await?;
        if matches!(&head[start..], b"\r\n" | b"\n") {
            return Ok(head);
        }
    }
}

/// Appends one line to `buffer`, line end included. Fails with `FileTooLarge` when the line is
/// longer than `limit`, with `UnexpectedEof` when the connection ends first.
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    buffer: &mut Vec<u8>,
    limit: usize,
) -> io::Result<()> {
    let mut line = (&mut *reader).take(limit as u64);
    let read = line.read_until(b'\n', buffer).await?;
    if read > 0 && buffer.ends_with(b"\n") {
        Ok(())
    } else if read == limit {
        let reason = format!("a head or a line is over {} KiB", MAX_HEAD_BYTES / 1024);
        Err(io::Error::new(io::ErrorKind::FileTooLarge, reason))
    } else {
        let reason = "the connection ended in the middle of a message";
        Err(io::Error::new(io::ErrorKind::UnexpectedEof, reason))
    }
}
// ANCHOR_END: read_head

// ANCHOR: body
/// Where a message's body ends: the one thing about it the proxy must know.
enum Body {
    Length(u64),
    Chunked,
    /// Neither header: a request has no body, an answer ends when its sender hangs up.
    Unframed,
}
// ANCHOR_END: body

// ANCHOR: body_framing
/// Finds where a message's body ends from its headers (RFC 9112, section 6), or says why it
/// cannot be known.
fn body_framing(headers: &[Header<'_>]) -> Result<Body, &'static str> {
    let values = |name: &str| -> Vec<&[u8]> {
        let named = headers
            .iter()
            .filter(|header| header.name.eq_ignore_ascii_case(name));
        named.map(|header| header.value.trim_ascii()).collect()
    };
    match (
        values("Transfer-Encoding").last(),
        &values("Content-Length")[..],
    ) {
        // Two framings could be read two ways: the trick behind request smuggling.
        (Some(_), [_, ..]) => Err("both Transfer-Encoding and Content-Length"),
        (Some(codings), []) => match codings.rsplit(|&byte| byte == b',').next() {
            Some(last) if last.trim_ascii().eq_ignore_ascii_case(b"chunked") => Ok(Body::Chunked),
            _ => Err("the last transfer coding is not chunked"),
        },
        (None, []) => Ok(Body::Unframed),
        // A length beyond `i64::MAX` is no file's, and nginx refuses it too.
        (None, [length]) => number(length, 10)
            .filter(|&length| i64::try_from(length).is_ok())
            .map(Body::Length)
            .ok_or("the Content-Length is not a number a body can have"),
        (None, _) => Err("more than one Content-Length"),
    }
}

/// `digits` as a number in `radix`; `None` for anything else, even a sign, which
/// `from_str_radix` would take.
fn number(digits: &[u8], radix: u32) -> Option<u64> {
    let digits = std::str::from_utf8(digits).ok()?;
    if digits.is_empty() || !digits.chars().all(|digit| digit.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}
// ANCHOR_END: body_framing

// ANCHOR: copy
/// Which end of a copy failed: the one read from, or the one written to. Reading from the
/// client fails the request; writing to an origin that stopped reading does not, since its
/// answer may say why.
enum Stop {
    Reading(io::Error),
    Writing(io::Error),
}

/// The `?` on a read.
impl From<io::Error> for Stop {
    fn from(error: io::Error) -> Self {
        Stop::Reading(error)
    }
}

/// Copies a body from `from` to `to`, adding to `sent` what it wrote, and telling `idle` of
/// each piece. A body that ends with its sender hanging up ends with a half close of `to`:
/// its reader sees the end too, and may still answer.
async fn copy_body(
    from: &mut (impl AsyncBufRead + Unpin),
    to: &TcpStream,
    body: Body,
    idle: &Idle,
    sent: &mut u64,
) -> Result<(), Stop> {
    match body {
        Body::Length(length) => copy_exact(from, to, length, idle, sent).await,
        Body::Chunked => copy_chunked(from, to, idle, sent).await,
        Body::Unframed => {
            copy(from, to, u64::MAX, idle, sent).await?;
            let mut to = to;
            to.close().await.map_err(Stop::Writing)
        }
    }
}

/// Copies what `from` sends to `to` until it ends or `limit` bytes have gone, adding to `sent`.
async fn copy(
    from: &mut (impl AsyncBufRead + Unpin),
    mut to: &TcpStream,
    limit: u64,
    idle: &Idle,
    sent: &mut u64,
) -> Result<u64, Stop> {
    let mut copied = 0;
    while copied < limit {
        let piece = from.fill_buf().await?;
        if piece.is_empty() {
            break;
        }
        let length = piece
            .len()
            .min(usize::try_from(limit - copied).unwrap_or(usize::MAX));
        to.write_all(&piece[..length])
            .await
            .map_err(Stop::Writing)?;
        from.consume_unpin(length);
        copied += length as u64;
        *sent += length as u64;
        idle.touch();
    }
    Ok(copied)
}
// ANCHOR_END: copy

// ANCHOR: copy_framed
/// Copies exactly `length` bytes; fewer means the sender left halfway.
async fn copy_exact(
    from: &mut (impl AsyncBufRead + Unpin),
    to: &TcpStream,
    length: u64,
    idle: &Idle,
    sent: &mut u64,
) -> Result<(), Stop> {
    if copy(from, to, length, idle, sent).await? < length {
        let reason = "the connection ended in the middle of a body";
        return Err(Stop::Reading(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            reason,
        )));
    }
    Ok(())
}

/// Copies a chunked body as it is, reading its framing only to find where it ends: chunks, each
/// a line with its size in hex, that many bytes and a line end, up to a chunk of size 0; then
/// trailer fields, up to an empty line.
async fn copy_chunked(
    from: &mut (impl AsyncBufRead + Unpin),
    mut to: &TcpStream,
    idle: &Idle,
    sent: &mut u64,
) -> Result<(), Stop> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body");
    let mut line = Vec::new();
    loop {
        line.clear();
        read_line(from, &mut line, MAX_HEAD_BYTES).await?;
        // An extension, `;name=value`, may follow the size.
        let digits = line.split(|&byte| byte == b';').next().unwrap_or_default();
        let size = number(digits.trim_ascii(), 16).ok_or_else(malformed)?;
        to.write_all(&line).await.map_err(Stop::Writing)?;
        *sent += line.len() as u64;
        if size == 0 {
            break;
        }
        copy_exact(from, to, size, idle, sent).await?;
        line.clear();
        read_line(from, &mut line, MAX_HEAD_BYTES).await?;
        if !matches!(&line[..], b"\r\n" | b"\n") {
            return Err(malformed().into());
        }
        to.write_all(&line).await.map_err(Stop::Writing)?;
        *sent += line.len() as u64;
    }
    // The trailer section is a head without a first line.
    let trailers = read_head(from).await?;
    to.write_all(&trailers).await.map_err(Stop::Writing)?;
    *sent += trailers.len() as u64;
    Ok(())
}
// ANCHOR_END: copy_framed

// ANCHOR: connect
/// Splits `host[:port]`, or `[ipv6]:port`, taking `default_port` when there is none.
fn host_and_port(authority: &str, default_port: u16) -> Result<(&str, u16), Failure> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.ends_with(']') => (host, port.parse().ok()),
        _ => (authority, Some(default_port)),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match port {
        Some(port) if !host.is_empty() => Ok((host, port)),
        _ => Err(bad_request(format!("`{authority}` is not a host and port"))),
    }
}

/// Finds `host` and connects to the first of its addresses that accepts, each within the
/// upstream limit.
///
/// A name is looked up with `getaddrinfo` on the loop's default executor (asyncio's
/// `loop.getaddrinfo`): the C library's lookup may wait for a DNS server, and on the loop's
/// thread every client would wait with it. A lookup that never answers holds a thread of the
/// pool, and its client gets `504` when the limit ends; the other clients never notice.
///
/// A target that is the proxy itself is refused (`508 Loop Detected`): a request to the proxy's
/// own address would come back to it, again and again, each time with one more connection.
async fn connect(
    client: &TcpStream,
    host: &str,
    port: u16,
    config: &Config,
) -> Result<TcpStream, Failure> {
    let limit = config.upstream_timeout;
    let addresses = timeout(limit, getaddrinfo_with(config.lookup, host, port))
        .await
        .map_err(|error| bad_gateway(format!("cannot find {host}"), error))?;
    // ANCHOR_END: connect
    // ANCHOR: loop_check
    // The address the client reached us at is the one we listen on. Its aliases reach it too:
    // any loopback address, the unspecified one (`0.0.0.0`, which a connection takes for this
    // host), and the IPv4 address written as IPv6 (`::ffff:127.0.0.1`).
    let ours = client.local_addr().map_err(Failure::Broken)?;
    let our_ip = ours.ip().to_canonical();
    let is_ours = |address: &SocketAddr| {
        let ip = address.ip().to_canonical();
        address.port() == ours.port()
            && (ip == our_ip || ip.is_unspecified() || ip.is_loopback() && our_ip.is_loopback())
    };
    if addresses.iter().any(is_ours) {
        let reason = match host.contains(':') {
            true => format!("[{host}]:{port} is this proxy"),
            false => format!("{host}:{port} is this proxy"),
        };
        return Err(Failure::Refused("508 Loop Detected", reason));
    }
    // ANCHOR_END: loop_check
    // ANCHOR: connect_end
    let first_that_connects = async {
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    };
    let connected = timeout(limit, first_that_connects).await;
    connected.map_err(|error| bad_gateway(format!("cannot connect to {host}:{port}"), error))
}
// ANCHOR_END: connect_end

// ANCHOR: timeout
/// Waits for `future` for `limit` at most, then gives up with a `TimedOut` error.
///
/// `select` races the two and drops the loser: a wait that ends in time drops the `sleep`,
/// which cancels its timer, so the wait leaves no callback behind on the loop.
async fn timeout<T>(
    limit: Duration,
    future: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let future = pin!(future);
    let clock = pin!(sleep(limit));
    match select(future, clock).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => {
            let reason = format!("nothing within {:.2} s", limit.as_secs_f64());
            Err(io::Error::new(io::ErrorKind::TimedOut, reason))
        }
    }
}

/// Writes `bytes` to the client within the send limit (nginx's `send_timeout`): a client that
/// does not read cannot hold its connection, and its origin's, for ever.
async fn send(client: &TcpStream, bytes: &[u8], config: &Config) -> io::Result<()> {
    timeout(config.send_timeout, (&*client).write_all(bytes)).await
}
// ANCHOR_END: timeout

// ANCHOR: idle
/// A transfer's last sign of life, and how long it may go without one.
///
/// Restarting a timer at every read and write would cost a timer per read. Instead, the copy
/// notes the time of each piece ([`Idle::touch`]), and one timer, set for the limit, looks when
/// it fires: a transfer that moved meanwhile gets a new timer for the rest of its limit. So a
/// flowing transfer costs one timer per limit, and a stalled one ends within its limit.
struct Idle {
    limit: Duration,
    last: Cell<Instant>,
}

impl Idle {
    fn new(limit: Duration) -> Self {
        Idle {
            limit,
            last: Cell::new(Instant::now()),
        }
    }

    fn touch(&self) {
        self.last.set(Instant::now());
    }

    /// Runs `transfer` until it ends, or until it has gone `limit` without a sign of life; then
    /// it is dropped, and fails with `TimedOut`.
    async fn guard<T>(
        &self,
        transfer: impl std::future::Future<Output = Result<T, Stop>>,
    ) -> Result<T, Stop> {
        let expired = pin!(async {
            loop {
                // Time left, counted without adding to an `Instant`, which a huge limit overflows.
                let left = self.limit.saturating_sub(self.last.get().elapsed());
                if left.is_zero() {
                    return;
                }
                sleep(left).await;
            }
        });
        match select(pin!(transfer), expired).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(_) => {
                let reason = format!("nothing for {:.2} s", self.limit.as_secs_f64());
                Err(Stop::Reading(io::Error::new(
                    io::ErrorKind::TimedOut,
                    reason,
                )))
            }
        }
    }
}
// ANCHOR_END: idle

// ANCHOR: linger
/// Answers a request the proxy will not carry out, with a short text saying why, and ends the
/// connection.
async fn refuse(
    client: &TcpStream,
    status: &str,
    reason: &str,
    config: &Config,
    sent: &mut u64,
) -> io::Result<()> {
    let body = format!("{status}: {reason}\n");
    let length = body.len();
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n{body}"
    );
    send(client, answer.as_bytes(), config).await?;
    *sent += answer.len() as u64;
    linger(client).await;
    Ok(())
}

/// Ends a connection whose client may still be sending (the rest of an oversized head, a body,
/// requests after the last one answered).
///
/// Closing a socket with unread input makes the OS send a reset, which can destroy the last
/// answer before the client reads it; so, as in step 1 and as nginx's `lingering_close`, the
/// proxy closes its sending side and reads until the client closes its own, for 5 s at most:
/// a client that neither sends nor leaves does not keep the task forever.
async fn linger(client: &TcpStream) {
    let mut to_client = client;
    if to_client.close().await.is_ok() {
        let drain = async { futures::io::copy(client, &mut futures::io::sink()).await };
        let _ = timeout(Duration::from_secs(5), drain).await;
    }
}
// ANCHOR_END: linger
