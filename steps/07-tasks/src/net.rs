// ANCHOR: header
//! Async TCP on the loop: step 6's `add_reader`/`add_writer`, wrapped so that a task can
//! `.await` a socket.
//!
//! Every operation first just tries: sockets are non-blocking, so it either succeeds or fails
//! with `WouldBlock`. Only then does the task leave its waker with the socket, register
//! interest (the first time), and return `Pending`; readiness wakes the task, its next step
//! tries again. It does not even try when the socket is known not ready: after a `WouldBlock`,
//! or a read or write that moved less than asked, the next operation would find `WouldBlock`,
//! so it waits for the selector's report without asking the kernel (tokio's readiness cache).
//!
//! Interest stays registered while tasks keep waiting on the socket, so a connection that is
//! read again and again costs the selector nothing more after its first wait. But readiness
//! that finds nobody waiting removes it: an operation that nobody waits for any more (it lost
//! a `select` or a timeout, its task was cancelled) would otherwise leave the socket watched,
//! and the selectors, which report a readable socket at every wait until it is read, would wake
//! the loop on every iteration. asyncio removes the reader when the operation's future is done
//! or cancelled, to the same end. All interest goes when the socket is dropped.
//!
//! [`TcpStream`] implements the `futures` crate's `AsyncRead` and `AsyncWrite`, so that
//! crate's helpers (`copy`, `AsyncReadExt`, `AsyncWriteExt`, `BufReader`) work on our loop.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use futures::io::{AsyncRead, AsyncWrite};

use crate::budget::{consume_budget, refund_budget};
use crate::{EventLoop, connect_nonblocking, get_running_loop};
// ANCHOR_END: header

// ANCHOR: registered
/// Which readiness an operation waits for.
#[derive(Clone, Copy)]
enum Interest {
    Read,
    Write,
}

/// A non-blocking socket on the loop, and for each direction the tasks waiting on it.
struct Registered<S: AsRawFd> {
    event_loop: EventLoop,
    socket: Rc<S>,
    reading: Rc<Waiting>,
    writing: Rc<Waiting>,
}

/// One direction of a socket: the wakers of the tasks that wait for it, whether the loop
/// watches the socket for it, and whether the socket may be ready.
///
/// Usually one task waits; but two tasks may read one `&TcpStream`, and each must be woken,
/// or the one whose waker was replaced would wait for ever with data in the socket. So each
/// waker is kept once, and readiness wakes them all: those that find nothing wait again.
struct Waiting {
    wakers: RefCell<Vec<Waker>>,
    watched: Cell<bool>,
    /// The readiness cache (tokio's `ScheduledIo`): `false` from when an operation found the
    /// socket not ready until the selector reports it (or refuses to watch it). Meanwhile the
    /// next operation would only find `WouldBlock`, so it waits without the system call: one
    /// saved per round trip.
    ready: Cell<bool>,
}

impl Default for Waiting {
    /// Nothing known yet: the first operation tries.
    fn default() -> Self {
        Waiting {
            wakers: RefCell::default(),
            watched: Cell::default(),
            ready: Cell::new(true),
        }
    }
}

impl<S: AsFd + AsRawFd + 'static> Registered<S> {
    fn new(event_loop: EventLoop, socket: S) -> Self {
        Registered {
            event_loop,
            socket: Rc::new(socket),
            reading: Rc::default(),
            writing: Rc::default(),
        }
    }
    // ANCHOR_END: registered

    // ANCHOR: poll_io
    /// Tries `operation`, unless the socket is known not ready for `interest`; if it would
    /// block, leaves `cx`'s waker for it, has the loop watch the socket for it if it does not
    /// yet, and returns `Pending`.
    fn poll_io<R>(
        &self,
        interest: Interest,
        cx: &Context<'_>,
        mut operation: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        if !consume_budget() {
            // This step has done its share: step again in the next iteration, after the others,
            // and after the selector is asked, so that their sockets are heard too.
            self.event_loop.ask_selector_next();
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let waiting = self.waiting(interest);
        loop {
            // Known not ready, the system call would find `WouldBlock`: the cache answers.
            let outcome = if waiting.ready.get() {
                operation(&self.socket)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
            match outcome {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    waiting.ready.set(false);
                    // Finding nothing is no work done: the budget gets its unit back, or a task
                    // waiting on many idle sockets would spend it on them at every step.
                    refund_budget();
                    // The waker is stored before the interest is registered, so no readiness
                    // is lost.
                    let mut wakers = waiting.wakers.borrow_mut();
                    if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
                        wakers.push(cx.waker().clone());
                    }
                    drop(wakers);
                    if waiting.watched.get() {
                        return Poll::Pending;
                    }
                    let (slot, lp, fd) = (waiting.clone(), self.event_loop.clone(), self.fd());
                    let wake = move || {
                        // The selector reports the socket: the next operation tries again.
                        slot.ready.set(true);
                        let mut wakers = slot.wakers.take();
                        if wakers.is_empty() {
                            slot.watched.set(false);
                            remove_interest(&lp, fd, interest);
                        }
                        wakers.drain(..).for_each(Waker::wake);
                        // The list keeps its memory for the next wait: no allocation per wake.
                        let mut list = slot.wakers.borrow_mut();
                        if list.is_empty() {
                            *list = wakers;
                        }
                    };
                    let registered = match interest {
                        Interest::Read => self.event_loop.add_reader(self.socket.clone(), wake),
                        Interest::Write => self.event_loop.add_writer(self.socket.clone(), wake),
                    };
                    return match registered {
                        Ok(()) => {
                            waiting.watched.set(true);
                            Poll::Pending
                        }
                        Err(error) => {
                            // Nothing will report the socket: the next operation must try.
                            waiting.ready.set(true);
                            Poll::Ready(Err(error))
                        }
                    };
                }
                outcome => {
                    // This task waits no more: if nobody else does, a readiness that comes
                    // anyway removes the interest.
                    let mut wakers = waiting.wakers.borrow_mut();
                    let mine = wakers.iter().position(|waker| waker.will_wake(cx.waker()));
                    let mine = mine.map(|index| wakers.swap_remove(index));
                    drop(wakers);
                    drop(mine);
                    return Poll::Ready(outcome);
                }
            }
        }
    }

    /// `poll_io` for a read or a write of `len` bytes. One that moved fewer found the kernel's
    /// buffer emptied (or filled, for a write), so the socket is known not ready: the next one
    /// would find `WouldBlock` (tokio's `clear_readiness` after a partial read).
    fn poll_transfer(
        &self,
        interest: Interest,
        cx: &Context<'_>,
        len: usize,
        operation: impl FnMut(&S) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let outcome = ready!(self.poll_io(interest, cx, operation));
        if matches!(outcome, Ok(moved) if 0 < moved && moved < len) {
            self.waiting(interest).ready.set(false);
        }
        Poll::Ready(outcome)
    }

    fn waiting(&self, interest: Interest) -> &Rc<Waiting> {
        match interest {
            Interest::Read => &self.reading,
            Interest::Write => &self.writing,
        }
    }

    fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}
// ANCHOR_END: poll_io

// ANCHOR: drop
impl<S: AsRawFd> Drop for Registered<S> {
    fn drop(&mut self) {
        let fd = self.socket.as_raw_fd();
        if self.reading.watched.get() {
            self.event_loop.remove_reader(&fd);
        }
        if self.writing.watched.get() {
            self.event_loop.remove_writer(&fd);
        }
    }
}

fn remove_interest(event_loop: &EventLoop, fd: RawFd, interest: Interest) {
    match interest {
        Interest::Read => event_loop.remove_reader(&fd),
        Interest::Write => event_loop.remove_writer(&fd),
    };
}
// ANCHOR_END: drop

// ANCHOR: listener
/// A TCP socket listening for connections (what asyncio's `start_server` listens on).
pub struct TcpListener {
    io: Registered<std::net::TcpListener>,
}

impl TcpListener {
    /// Listens on `addr`. Must be called inside a running loop, which will serve it.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let event_loop = get_running_loop()?;
        let socket = crate::listen(addr)?;
        socket.set_nonblocking(true)?;
        Ok(TcpListener {
            io: Registered::new(event_loop, socket),
        })
    }

    /// The address it listens on, with the port the OS chose when bound to port 0.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.socket.local_addr()
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let accepted = poll_fn(|cx| {
            self.io
                .poll_io(Interest::Read, cx, |listener| listener.accept())
        });
        let (socket, peer) = accepted.await?;
        Ok((TcpStream::new(self.io.event_loop.clone(), socket)?, peer))
    }
}
// ANCHOR_END: listener

// ANCHOR: stream
/// A TCP connection that tasks read and write without blocking the loop.
pub struct TcpStream {
    io: Registered<std::net::TcpStream>,
}

impl TcpStream {
    fn new(event_loop: EventLoop, socket: std::net::TcpStream) -> io::Result<TcpStream> {
        socket.set_nonblocking(true)?;
        socket.set_nodelay(true)?;
        Ok(TcpStream {
            io: Registered::new(event_loop, socket),
        })
    }

    /// Connects to `addr` without blocking the loop: the connection starts, the task waits
    /// until the socket is writable, then the socket's error (if any) says how it went.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::new(get_running_loop()?, connect_nonblocking(addr)?)?;
        poll_fn(|cx| {
            stream.io.poll_io(Interest::Write, cx, |socket| {
                if let Some(error) = socket.take_error()? {
                    return Err(error);
                }
                // Not connected yet and no error: still in progress, as if it would block.
                match socket.peer_addr() {
                    Err(error) if error.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    outcome => outcome.map(drop),
                }
            })
        })
        .await?;
        Ok(stream)
    }

    /// Waits until the connection has something to read, or has ended, and reads nothing
    /// (tokio's `readable`): a server can wait for a request before it makes a buffer for it.
    pub async fn readable(&self) -> io::Result<()> {
        let peek = |socket: &std::net::TcpStream| socket.peek(&mut [0; 1]).map(drop);
        poll_fn(|cx| self.io.poll_io(Interest::Read, cx, peek)).await
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.socket.peer_addr()
    }

    /// The address of this end.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.socket.local_addr()
    }

    /// Turns Nagle's algorithm off (`TCP_NODELAY`), as std's `set_nodelay` does: small writes
    /// go out at once instead of waiting for the previous one to be acknowledged.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.socket.set_nodelay(nodelay)
    }
}
// ANCHOR_END: stream

// ANCHOR: getaddrinfo
/// Finds the addresses of `host` without blocking the loop (asyncio's `loop.getaddrinfo`): an
/// IP address at once, a name with [`system_lookup`] on the default executor.
pub async fn getaddrinfo(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    getaddrinfo_with(system_lookup, host, port).await
}

/// [`getaddrinfo`] with another way to look names up, such as a resolver of one's own, or, in
/// a test, one that never answers.
pub async fn getaddrinfo_with(
    lookup: Lookup,
    host: &str,
    port: u16,
) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host = host.to_string();
    let looked_up = get_running_loop()?.run_in_executor(move || lookup(&host, port));
    looked_up.await?
}

/// A blocking name lookup, for the default executor to run.
pub type Lookup = fn(&str, u16) -> io::Result<Vec<SocketAddr>>;

/// The system's resolver: the C library's `getaddrinfo`, which reads `/etc/hosts` and may wait
/// for a DNS server. Blocking: on the loop's thread, only through [`getaddrinfo`].
pub fn system_lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    (host, port).to_socket_addrs().map(Iterator::collect)
}
// ANCHOR_END: getaddrinfo

// ANCHOR: adapters
/// Reading needs only a shared reference, so one task can read and write the same stream
/// at once (say, relaying both ways) through `&TcpStream`.
impl AsyncRead for &TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.io
            .poll_transfer(Interest::Read, cx, len, |mut socket| socket.read(buf))
    }
}

impl AsyncWrite for &TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io
            .poll_transfer(Interest::Write, cx, buf.len(), |mut socket| {
                socket.write(buf)
            })
    }

    /// One system call for several buffers (`writev(2)`), as hyper writes a head and a body.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|buf| buf.len()).sum();
        self.io
            .poll_transfer(Interest::Write, cx, len, |mut socket| {
                socket.write_vectored(bufs)
            })
    }

    /// Nothing to flush: every write goes straight to the kernel.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the sending half: the peer reads the end of the stream, and can still answer.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(match self.io.socket.shutdown(Shutdown::Write) {
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
            outcome => outcome,
        })
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_close(cx)
    }
}

/// The descriptor, as `std`'s sockets expose theirs (asyncio: `get_extra_info("socket")`).
impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.socket.as_raw_fd()
    }
}
// ANCHOR_END: adapters
