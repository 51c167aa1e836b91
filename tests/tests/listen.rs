//! The listeners' rules: room for more than std's 128 waiting connections, and a busy address
//! that names itself.

use std::fs;
use std::net::TcpStream;
use std::time::Duration;

/// How many connections the kernel lets a listener queue at most, where the system says.
fn kernel_limit() -> Option<usize> {
    let limit = fs::read_to_string("/proc/sys/net/core/somaxconn").ok()?;
    limit.trim().parse().ok()
}

macro_rules! listen_tests {
    ($step:ident) => {
        mod $step {
            use super::*;

            #[test]
            fn more_than_128_clients_can_wait_to_be_accepted() {
                if kernel_limit().is_none_or(|limit| limit < 300) {
                    eprintln!("skipped: this system caps a listener's queue below 300");
                    return;
                }
                let listener = ::$step::listen("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                // Nobody accepts: every handshake must fit in the listener's queue. One that
                // does not is dropped, and its connect times out.
                let clients: Vec<TcpStream> = (0..300)
                    .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap())
                    .collect();
                assert_eq!(clients.len(), 300);
            }

            #[test]
            fn a_busy_address_says_which_one_it_is_and_how_to_get_a_free_one() {
                let taken = ::$step::listen("127.0.0.1:0").unwrap();
                let addr = taken.local_addr().unwrap();
                let error = ::$step::listen(addr).unwrap_err();
                assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
                assert_eq!(
                    error.to_string(),
                    format!("{addr} is already in use (port 0 asks for a free one)")
                );
            }
        }
    };
}

listen_tests!(step6_select);
listen_tests!(step7_tasks);
