//! The servers, each in a process of its own: this same program started with `--serve-echo` or
//! `--serve-web`, or `loops.py` for Python's. A server prints its port, then answers each line
//! on its stdin with its CPU time so far: the bench asks before and after a measured window,
//! while the server is idle, and a side thread that sleeps in between costs it nothing.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::Duration;

use futures::io::{AsyncReadExt as _, AsyncWriteExt as _};
use nix::sys::resource::{UsageWho, getrusage};
use step7_tasks::get_running_loop;
use step7_tasks::net::{TcpListener, TcpStream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::web;

/// What real servers read into. A read that fills less than its buffer has emptied the socket,
/// and tokio then waits for the selector before it reads again; with a buffer as small as the
/// message (64 bytes), every read fills it, and every server reads once more to find out.
const READ_BUFFER: usize = 64 * 1024;

/// `--serve-echo ours`: a task per connection that writes back what it reads.
pub fn serve_echo_on_ours() {
    step7_tasks::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        announce(listener.local_addr().expect("its address"));
        let event_loop = get_running_loop().expect("run's loop");
        loop {
            let (stream, _) = listener.accept().await.expect("a connection");
            event_loop.create_task(echo_on_ours(stream));
        }
    })
}

async fn echo_on_ours(stream: TcpStream) {
    let mut buffer = vec![0; READ_BUFFER];
    while let Ok(read @ 1..) = (&stream).read(&mut buffer).await {
        if (&stream).write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
}

/// `--serve-echo tokio`: the same, on tokio's current-thread runtime.
pub fn serve_echo_on_tokio() {
    serve_on_tokio(echo_on_tokio);
}

async fn echo_on_tokio(mut stream: tokio::net::TcpStream) {
    let mut buffer = vec![0; READ_BUFFER];
    while let Ok(read @ 1..) = stream.read(&mut buffer).await {
        if stream.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
}

/// `--serve-web ours`: the web example, as `cargo run --example web` serves it.
pub fn serve_web_on_ours() {
    step7_tasks::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        announce(listener.local_addr().expect("its address"));
        web::serve(listener, web::app()).await
    })
    .expect("the server runs until killed");
}

/// `--serve-web tokio`: the same app on tokio's current-thread runtime, with hyper's tokio glue.
pub fn serve_web_on_tokio() {
    serve_on_tokio(|stream| async move {
        let service = hyper_util::service::TowerToHyperService::new(web::app());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        drop(connection.await);
    });
}

/// Listens on tokio's current-thread runtime, prints the port, and serves each connection in
/// a task of its own, with no delay on its writes, as ours.
fn serve_on_tokio<F>(serve: impl Fn(tokio::net::TcpStream) -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    crate::current_thread().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        announce(listener.local_addr().expect("its address"));
        loop {
            let (stream, _) = listener.accept().await.expect("a connection");
            stream.set_nodelay(true).expect("no delay, as ours");
            tokio::spawn(serve(stream));
        }
    })
}

/// Prints the port, then answers each line on stdin with this process's CPU time, user then
/// total, in ns; exits when stdin closes, that is when the bench ends.
fn announce(addr: SocketAddr) {
    println!("{}", addr.port());
    thread::spawn(|| {
        for _ in io::stdin().lines() {
            let (user, total) = cpu_time();
            println!("{} {}", user.as_nanos(), total.as_nanos());
        }
        std::process::exit(0);
    });
}

/// This process's CPU time (all its threads): user, and user plus system.
fn cpu_time() -> (Duration, Duration) {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("the process's usage");
    let time = |time: nix::sys::time::TimeVal| {
        Duration::from_secs(time.tv_sec() as u64) + Duration::from_micros(time.tv_usec() as u64)
    };
    let user = time(usage.user_time());
    (user, user + time(usage.system_time()))
}

/// CPU time a server spent, as it reports it.
#[derive(Clone, Copy)]
pub struct Usage {
    pub user: Duration,
    pub total: Duration,
}

/// A server started by the bench: its address, its process, and the pipe that asks it for its
/// CPU time.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
    ask: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `command` on `cpu`, if given, and reads the port it prints.
    pub fn start(mut command: Command, cpu: Option<usize>) -> io::Result<Server> {
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = crate::pinning::spawn_on(cpu, command)?;
        let ask = child.stdin.take().expect("a pipe to its stdin");
        let mut answers = BufReader::new(child.stdout.take().expect("a pipe from its stdout"));
        let mut port = String::new();
        answers.read_line(&mut port)?;
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("the server said {port:?}, not its port")))?;
        Ok(Server {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            ask,
            answers,
        })
    }

    /// The process id, for perf or strace.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's CPU time so far, as it measures it.
    pub fn usage(&mut self) -> Usage {
        writeln!(self.ask).expect("the server reads its stdin");
        let mut line = String::new();
        self.answers
            .read_line(&mut line)
            .expect("the server answers");
        let mut ns = line
            .split_whitespace()
            .map(|field| Duration::from_nanos(field.parse().expect("a number of ns")));
        let (Some(user), Some(total)) = (ns.next(), ns.next()) else {
            panic!("the server answered {line:?}, not its CPU time");
        };
        Usage { user, total }
    }

    /// Waits until the server is idle (for a second at most): what is left of one measure,
    /// such as closing 5,000 connections, must not fall into the next server's, on its CPU.
    pub fn settle(&mut self) {
        for _ in 0..50 {
            let before = self.usage().total;
            thread::sleep(Duration::from_millis(20));
            if self.usage().total - before < Duration::from_millis(1) {
                return;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

/// `cargo bench` with `--serve-echo`: which server this process is.
pub fn serve(mode: &str, kind: &str) {
    match (mode, kind) {
        ("--serve-echo", "ours") => serve_echo_on_ours(),
        ("--serve-echo", "tokio") => serve_echo_on_tokio(),
        ("--serve-web", "ours") => serve_web_on_ours(),
        ("--serve-web", "tokio") => serve_web_on_tokio(),
        _ => panic!("{mode} takes ours or tokio, not {kind}"),
    }
}

/// An echo or web server on our loop or tokio's, as a command that starts it.
pub fn command(mode: &str, kind: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this program's path"));
    command.args([mode, kind]);
    command
}
