//! Sockets made for the loop: a connection started without blocking, and a listener with room
//! for many clients. What `nix` does here, std's types do not offer.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, connect, setsockopt, socket,
    sockopt,
};

/// Starts connecting a non-blocking TCP socket to `addr` and returns before the connection
/// is made (`connect` answers `EINPROGRESS`). The socket becomes writable when the attempt is
/// over; then [`TcpStream::take_error`] tells whether it succeeded.
pub fn connect_nonblocking(addr: SocketAddr) -> io::Result<TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let socket = socket(family, SockType::Stream, SockFlag::empty(), None)?;
    // Like std's sockets (and asyncio's), ours are not inherited by child processes.
    fcntl(&socket, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    let stream = TcpStream::from(socket);
    stream.set_nonblocking(true)?;
    match connect(stream.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(stream),
        Err(error) => Err(error.into()),
    }
}

/// Listens on `addr` with room for 1024 connections not yet accepted. std's listeners have
/// room for 128: when more clients connect at once, the others' handshakes are dropped and
/// retried a second later. A busy address says which one it is, and how to get a free one.
pub fn listen(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut error = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    for addr in addr.to_socket_addrs()? {
        match listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(failed) if failed.kind() == io::ErrorKind::AddrInUse => {
                let why = format!("{addr} is already in use (port 0 asks for a free one)");
                error = io::Error::new(failed.kind(), why);
            }
            Err(failed) => error = failed,
        }
    }
    Err(error)
}

fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let socket = socket(family, SockType::Stream, SockFlag::empty(), None)?;
    fcntl(&socket, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    // As std does: a port whose last connections are closing can be listened on again at once.
    setsockopt(&socket, sockopt::ReuseAddr, &true)?;
    bind(socket.as_raw_fd(), &SockaddrStorage::from(addr))?;
    nix::sys::socket::listen(&socket, Backlog::new(1024)?)?;
    Ok(TcpListener::from(socket))
}
