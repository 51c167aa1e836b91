//! Step 7's proxy at the limit on open descriptors: new clients get `503`, the clients already
//! connected are not disturbed, and the proxy serves again once descriptors are freed. This
//! lowers the process's limit on open files, so it lives in a test binary of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, connect, socket};
use step7_tasks::proxy::{Config, serve};
use workshop_tests::HANG;

/// An origin that answers every request with `ok`, a thread per connection.
fn start_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let mut request = [0; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            });
        }
    });
    addr
}

/// The proxy, quiet, with a short head timeout: an idle client is told `408` soon.
fn start_proxy() -> SocketAddr {
    let (bound_tx, bound) = mpsc::channel();
    thread::spawn(move || {
        step7_tasks::run(async move {
            let listener = step7_tasks::net::TcpListener::bind("127.0.0.1:0").unwrap();
            bound_tx.send(listener.local_addr().unwrap()).unwrap();
            let config = Config {
                head_timeout: Duration::from_millis(400),
                log: false,
                ..Config::default()
            };
            serve(listener, config).await
        })
    });
    bound.recv().unwrap()
}

/// A TCP socket made now, while descriptors are plenty, to connect later, when none are left.
fn unconnected() -> OwnedFd {
    socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap()
}

fn connect_to(socket: OwnedFd, addr: SocketAddr) -> TcpStream {
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&socket),
        &SockaddrStorage::from(addr),
    )
    .unwrap();
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream
}

#[test]
fn at_the_descriptor_limit_new_clients_get_503_and_the_proxy_recovers() {
    let origin = start_origin();
    let proxy = start_proxy();
    let sockets: Vec<OwnedFd> = (0..40).map(|_| unconnected()).collect();
    let good = unconnected();
    // From here on, the process may open only a few more descriptors: fewer than 40.
    let open = std::fs::read_dir("/dev/fd").unwrap().count() as u64;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, open + 16, hard).unwrap();

    // Forty clients connect and send nothing. The proxy accepts the first ones, which wait
    // for their head until it times out (`408`); then it has no descriptor left, and turns the
    // others away at once (`503`).
    let clients: Vec<TcpStream> = sockets
        .into_iter()
        .map(|socket| connect_to(socket, proxy))
        .collect();
    let statuses: Vec<String> = clients
        .into_iter()
        .map(|mut client| {
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).unwrap();
            let answer = String::from_utf8_lossy(&answer).into_owned();
            answer.lines().next().unwrap_or("").to_string()
        })
        .collect();
    let count = |status: &str| statuses.iter().filter(|line| line.contains(status)).count();
    assert!(count("408 Request Timeout") > 0, "{statuses:?}");
    assert!(count("503 Service Unavailable") > 0, "{statuses:?}");
    assert_eq!(count("408") + count("503"), 40, "{statuses:?}");

    // Their descriptors are free again: the proxy serves.
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    let mut client = connect_to(good, proxy);
    let request =
        format!("GET http://{origin}/ HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    client.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
}
