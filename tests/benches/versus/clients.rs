//! The load: the same clients for every server, on one tokio current-thread runtime in this
//! process. Only the server is measured; the clients' own cost does not count.

use std::net::SocketAddr;
use std::time::Instant;

use futures::future::join_all;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// What a web client asks, again and again on its connection.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/// Connections to one server: the busy ones, and idle ones that only stay open.
pub struct Clients<'a> {
    runtime: &'a Runtime,
    streams: Vec<TcpStream>,
    _idle: Vec<std::net::TcpStream>,
}

impl<'a> Clients<'a> {
    /// Opens `idle` connections to `server` (an echo server: see `connect_idle`), then `busy`
    /// ones.
    pub fn connect(runtime: &'a Runtime, server: SocketAddr, busy: usize, idle: usize) -> Self {
        let idle = connect_idle(server, idle);
        let streams = runtime.block_on(async {
            let mut streams = Vec::with_capacity(busy);
            for _ in 0..busy {
                let stream = TcpStream::connect(server).await.expect("a connection");
                stream.set_nodelay(true).expect("no delay");
                streams.push(stream);
            }
            streams
        });
        Clients {
            runtime,
            streams,
            _idle: idle,
        }
    }

    /// Every busy connection at once makes `each` round trips of 64 bytes, one after the other;
    /// returns how many round trips that made in all.
    pub fn round_trips(&mut self, each: u64) -> u64 {
        let trips = self.streams.iter_mut().map(|stream| async move {
            let mut message = [7; 64];
            for _ in 0..each {
                stream.write_all(&message).await.expect("the client writes");
                stream.read_exact(&mut message).await.expect("the echo");
            }
        });
        self.runtime.block_on(join_all(trips));
        each * self.streams.len() as u64
    }

    /// Every busy connection asks for `GET /` as soon as its last answer has come, until
    /// `until`; returns how many answers came in all.
    pub fn ask_until(&mut self, until: Instant) -> u64 {
        let askers = self.streams.iter_mut().map(|stream| async move {
            let mut buffer = vec![0; 4096];
            let mut answers = 0;
            while Instant::now() < until {
                stream.write_all(REQUEST).await.expect("the request");
                read_answer(stream, &mut buffer).await;
                answers += 1;
            }
            answers
        });
        self.runtime.block_on(join_all(askers)).into_iter().sum()
    }
}

/// Opens `count` connections that stay idle, a hundred at a time: the last of each hundred
/// makes a round trip, and once it is answered the server has accepted the hundred. Opened all
/// at once, they would fill the server's queue of connections not yet accepted (1,024), and
/// the kernel would drop the next ones, which the client sends again a second later.
///
/// Each is closed with a reset (`SO_LINGER` 0), which leaves no port waiting in `TIME_WAIT`:
/// with 5,000 per measure, a system that gives out 16,384 ports (macOS) would run out.
fn connect_idle(server: SocketAddr, count: usize) -> Vec<std::net::TcpStream> {
    use nix::sys::socket::{setsockopt, sockopt::Linger};
    use std::io::{Read, Write};
    let reset = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let mut idle = Vec::with_capacity(count);
    while idle.len() < count {
        for _ in 0..(count - idle.len()).min(100) {
            let stream = std::net::TcpStream::connect(server).expect("an idle connection");
            setsockopt(&stream, Linger, &reset).expect("SO_LINGER");
            idle.push(stream);
        }
        let last = idle.last_mut().expect("a hundred or fewer");
        let mut message = [7; 64];
        last.write_all(&message)
            .expect("the last of a hundred writes");
        last.read_exact(&mut message).expect("its echo");
    }
    idle
}

/// Reads one answer: its head, and a body as long as its `Content-Length` says.
async fn read_answer(stream: &mut TcpStream, buffer: &mut [u8]) {
    let mut filled = 0;
    loop {
        let read = stream
            .read(&mut buffer[filled..])
            .await
            .expect("the answer");
        assert!(read > 0, "the server hung up");
        filled += read;
        let answer = &buffer[..filled];
        if let Some(end) = answer.windows(4).position(|bytes| bytes == b"\r\n\r\n") {
            assert!(
                answer.starts_with(b"HTTP/1.1 200 "),
                "an answer that says OK"
            );
            if filled >= end + 4 + content_length(&answer[..end]) {
                return;
            }
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    let head = std::str::from_utf8(head).expect("a head in ASCII");
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length")
}
