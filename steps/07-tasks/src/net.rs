//! Async TCP on the loop: step 6's `add_reader`/`add_writer`, wrapped so that a task can
//! `.await` a socket.
//!
//! Every operation first just tries: sockets are non-blocking, so it either succeeds or fails
//! with `WouldBlock`. Only then does the task register interest, with its waker as the
//! callback, and return `Pending`; readiness wakes the task, its next step tries again.
//!
//! Interest lasts for one readiness: the callback removes it, then wakes the task. An operation
//! that nobody waits for any more (it lost a `select`, a timeout, its task was cancelled) thus
//! costs one spurious wake-up at most; a lasting registration would make `select`, which
//! reports a readable socket again and again until it is read, wake the loop on every
//! iteration. asyncio removes the reader when the operation's future is done or cancelled, to
//! the same end. Interest is also removed when an operation succeeds, and when the socket is
//! dropped.
//!
//! [`TcpStream`] implements the `futures` crate's `AsyncRead` and `AsyncWrite`, so that
//! crate's helpers (`copy`, `AsyncReadExt`, `AsyncWriteExt`, `BufReader`) work on our loop.

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

use crate::{EventLoop, connect_nonblocking, get_running_loop};

/// Which readiness an operation waits for.
#[derive(Clone, Copy)]
enum Interest {
    Read,
    Write,
}

/// Tries `operation`; if it would block, registers `cx`'s waker for `interest` on `source` and
/// returns `Pending`. Any other outcome ends the wait, so the interest is removed.
fn poll_io<S: AsFd + AsRawFd + 'static, R>(
    event_loop: &EventLoop,
    source: &Rc<S>,
    interest: Interest,
    cx: &Context<'_>,
    mut operation: impl FnMut(&S) -> io::Result<R>,
) -> Poll<io::Result<R>> {
    loop {
        match operation(source) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // The callback holds the latest waker: registering again replaces it. The
                // waker is stored before the interest is registered, so no readiness is lost.
                let (waker, lp, fd) = (cx.waker().clone(), event_loop.clone(), source.as_raw_fd());
                let wake = move || {
                    remove_interest(&lp, fd, interest);
                    waker.wake_by_ref();
                };
                let registered = match interest {
                    Interest::Read => event_loop.add_reader(source.clone(), wake),
                    Interest::Write => event_loop.add_writer(source.clone(), wake),
                };
                return match registered {
                    Ok(()) => Poll::Pending,
                    Err(error) => Poll::Ready(Err(error)),
                };
            }
            outcome => {
                remove_interest(event_loop, source.as_raw_fd(), interest);
                return Poll::Ready(outcome);
            }
        }
    }
}

fn remove_interest(event_loop: &EventLoop, fd: RawFd, interest: Interest) {
    match interest {
        Interest::Read => event_loop.remove_reader(&fd),
        Interest::Write => event_loop.remove_writer(&fd),
    };
}

/// A TCP socket listening for connections (what asyncio's `start_server` listens on).
pub struct TcpListener {
    event_loop: EventLoop,
    socket: Rc<std::net::TcpListener>,
}

impl TcpListener {
    /// Listens on `addr`. Must be called inside a running loop, which will serve it.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let event_loop = get_running_loop()?;
        let socket = std::net::TcpListener::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(TcpListener {
            event_loop,
            socket: Rc::new(socket),
        })
    }

    /// The address it listens on, with the port the OS chose when bound to port 0.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, peer) = poll_fn(|cx| {
            poll_io(
                &self.event_loop,
                &self.socket,
                Interest::Read,
                cx,
                |listener| listener.accept(),
            )
        })
        .await?;
        Ok((TcpStream::new(self.event_loop.clone(), socket)?, peer))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.event_loop.remove_reader(&self.socket);
    }
}

/// A TCP connection that tasks read and write without blocking the loop.
pub struct TcpStream {
    event_loop: EventLoop,
    socket: Rc<std::net::TcpStream>,
}

impl TcpStream {
    fn new(event_loop: EventLoop, socket: std::net::TcpStream) -> io::Result<TcpStream> {
        socket.set_nonblocking(true)?;
        socket.set_nodelay(true)?;
        Ok(TcpStream {
            event_loop,
            socket: Rc::new(socket),
        })
    }

    /// Connects to `addr` without blocking the loop: the connection starts, the task waits
    /// until the socket is writable, then the socket's error (if any) says how it went.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::new(get_running_loop()?, connect_nonblocking(addr)?)?;
        poll_fn(|cx| {
            poll_io(
                &stream.event_loop,
                &stream.socket,
                Interest::Write,
                cx,
                |socket| {
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
                },
            )
        })
        .await?;
        Ok(stream)
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// The address of this end.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// Reading needs only a shared reference, so one task can read and write the same stream
/// at once (say, relaying both ways) through `&TcpStream`.
impl AsyncRead for &TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll_io(
            &self.event_loop,
            &self.socket,
            Interest::Read,
            cx,
            |mut socket| socket.read(buf),
        )
    }
}

impl AsyncWrite for &TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_io(
            &self.event_loop,
            &self.socket,
            Interest::Write,
            cx,
            |mut socket| socket.write(buf),
        )
    }

    /// Nothing to flush: every write goes straight to the kernel.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the sending half: the peer reads the end of the stream, and can still answer.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(match self.socket.shutdown(Shutdown::Write) {
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
        self.socket.as_raw_fd()
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.event_loop.remove_reader(&self.socket);
        self.event_loop.remove_writer(&self.socket);
    }
}
