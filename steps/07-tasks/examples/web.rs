//! The talk's finale: "It can run a FastAPI server." Here, the talk's FastAPI app as an
//! [axum](https://docs.rs/axum) `Router`, served by [hyper](https://hyper.rs)'s HTTP/1.1 server,
//! on step 7's loop, with no tokio runtime in the process.
//!
//! `cargo run -p step7-tasks --example web` listens on 127.0.0.1:8000 (`-- --listen ADDR` to
//! change it). Then, from another terminal:
//!
//! ```text
//! curl http://127.0.0.1:8000/                      {"message":"Hello World"}
//! curl 'http://127.0.0.1:8000/items/42?q=pika'     {"item_id":42,"q":"pika"}
//! curl -H 'Content-Type: application/json' -d '{"name":"Eevee","price":9.5}' \
//!      http://127.0.0.1:8000/items                 {"name":"Eevee","price":9.5}
//! curl http://127.0.0.1:8000/sleep/500             after half a second, on our loop's timer
//! ```
//!
//! The glue is small: [`Io`] lets hyper read and write our sockets, [`LoopTimer`] gives hyper
//! our timers, [`on_loop`] lets a handler await our loop's futures, and [`serve`] accepts
//! connections and runs each on a task of its own.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::{Pin, pin};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::HttpBody as _;
use axum::extract::{Path, Query, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use futures::channel::oneshot;
use futures::io::{AsyncRead, AsyncWrite};
use hyper::rt::{Read, ReadBufCursor, Sleep, Timer, Write};
use hyper::server::conn::http1;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use step7_tasks::net::{TcpListener, TcpStream};
use step7_tasks::{TimerHandle, get_running_loop, run, say, sleep};

/// The talk's app, and a few of FastAPI's tutorial routes: a path parameter with a query, a
/// JSON body, and a handler that awaits our loop's `sleep`.
pub fn app() -> Router {
    Router::new()
        .route("/", get(root))
        .route("/items/{item_id}", get(read_item))
        .route("/items", post(create_item))
        .route("/sleep/{ms}", get(nap))
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// `@app.get("/")`, as on the slide.
async fn root() -> Json<Message> {
    Json(Message {
        message: "Hello World",
    })
}

#[derive(Deserialize)]
struct ItemQuery {
    q: Option<String>,
}

#[derive(Serialize)]
struct ItemFound {
    item_id: u32,
    q: Option<String>,
}

/// `@app.get("/items/{item_id}")`: a path parameter, and an optional query parameter.
async fn read_item(Path(item_id): Path<u32>, Query(query): Query<ItemQuery>) -> Json<ItemFound> {
    Json(ItemFound {
        item_id,
        q: query.q,
    })
}

/// A JSON body: a missing or mistyped field gets `422 Unprocessable Entity`, as in FastAPI.
#[derive(Deserialize, Serialize)]
struct Item {
    name: String,
    price: f64,
}

/// `@app.post("/items")`: the item, echoed.
async fn create_item(Json(item): Json<Item>) -> Json<Item> {
    Json(item)
}

#[derive(Serialize)]
struct Slept {
    slept_ms: u64,
}

/// A handler that waits on our loop: `asyncio.sleep` in a FastAPI handler.
async fn nap(Path(ms): Path<u64>) -> Json<Slept> {
    on_loop(sleep(Duration::from_millis(ms))).await;
    Json(Slept { slept_ms: ms })
}

/// Runs `future` as a task of the running loop and hands its output back through a channel.
///
/// axum wants every handler's future to be `Send`, ready to move between threads, as tokio's
/// work-stealing runtime may move it. Ours holds `Rc`s (the loop, our futures) and never
/// leaves its thread, so it is not `Send`. The task owns it; the handler only holds the
/// receiving end of a channel, which is.
///
/// hyper drops the handler of a client that left, and the receiving end with it: then the
/// task stops, dropping `future` and whatever it waits for (a timer, a socket), as asyncio
/// cancels the handler's task.
pub fn on_loop<F>(future: F) -> impl Future<Output = F::Output> + Send
where
    F: Future<Output: Send + 'static> + 'static,
{
    let (mut sender, receiver) = oneshot::channel();
    let event_loop = get_running_loop().expect("handlers run on our loop");
    event_loop.create_task(async move {
        let mut future = pin!(future);
        let output = poll_fn(|cx| match sender.poll_canceled(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => future.as_mut().poll(cx).map(Some),
        });
        if let Some(output) = output.await {
            drop(sender.send(output));
        }
    });
    async move { receiver.await.expect("the loop runs its tasks to the end") }
}

/// Serves `app` on `listener` until the loop stops: a task per connection, in which hyper
/// reads requests, calls the app, and writes answers, keeping the connection alive between
/// requests. A connection that fails or panics ends alone.
pub async fn serve(listener: TcpListener, app: Router) -> io::Result<()> {
    let event_loop = get_running_loop()?;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Usually no descriptor is left: wait a little for a connection to end.
            Err(error) => {
                eprintln!("accept failed: {error}");
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = http1::Builder::new()
            .timer(LoopTimer)
            .serve_connection(Io::new(stream), service);
        // A client that leaves, or sends garbage, ends its connection: nothing to report.
        event_loop.create_task(async move { drop(connection.await) });
    }
}

/// Our socket, as hyper reads and writes it. hyper's `Read` hands out a cursor over a buffer
/// it owns; filling it without a copy needs `unsafe` (`advance`), so we read into a buffer of
/// our own, made once per connection, and copy (`put_slice`).
pub struct Io {
    stream: TcpStream,
    buffer: Box<[u8]>,
}

impl Io {
    /// hyper's side of `stream`.
    pub fn new(stream: TcpStream) -> Self {
        Io {
            stream,
            buffer: vec![0; 8 * 1024].into_boxed_slice(),
        }
    }
}

impl Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let Io { stream, buffer } = self.get_mut();
        let wanted = buf.remaining().min(buffer.len());
        let read = ready!(Pin::new(&mut &*stream).poll_read(cx, &mut buffer[..wanted]))?;
        buf.put_slice(&buffer[..read]);
        Poll::Ready(Ok(()))
    }
}

impl Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &self.stream).poll_write(cx, buf)
    }

    /// hyper hands an answer's head and body as separate buffers: one `writev(2)` sends both,
    /// where without it hyper copies them into one buffer first.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &self.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &self.stream).poll_close(cx)
    }
}

/// hyper's clock, on our loop's timers: hyper times out a client that is slow to send its
/// request head (30 s), and needs a timer for it.
///
/// hyper wants its sleeps `Send` and `Sync`, and our `TimerHandle` is neither. A sleep keeps its
/// handle in a table of the loop's thread, by number, and cancels the timer when dropped: every
/// request starts a 30 s timer and drops it when the head has arrived, and a dropped timer that
/// stayed in the heap for its 30 s would make memory grow with every request.
#[derive(Clone, Copy, Debug)]
pub struct LoopTimer;

impl Timer for LoopTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(LoopSleep::until(deadline))
    }
}

thread_local! {
    /// The timers of this thread's `LoopSleep`s, by number.
    static TIMERS: std::cell::RefCell<HashMap<u64, TimerHandle>> =
        std::cell::RefCell::new(HashMap::new());
}

/// A sleep that hyper can hold: a number for its timer, and what the timer sets.
struct LoopSleep {
    timer: u64,
    rung: Arc<Rung>,
}

/// What the timer's callback sets when the deadline comes, and whom it wakes.
#[derive(Default)]
struct Rung {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl LoopSleep {
    fn until(deadline: Instant) -> Self {
        static TIMERS_MADE: AtomicU64 = AtomicU64::new(0);
        let rung = Arc::new(Rung::default());
        let ring = rung.clone();
        let event_loop = get_running_loop().expect("hyper's timers run on our loop");
        let handle = event_loop.call_at(deadline, move || {
            ring.done.store(true, Ordering::Release);
            let waker = ring
                .waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        let timer = TIMERS_MADE.fetch_add(1, Ordering::Relaxed);
        TIMERS.with_borrow_mut(|timers| timers.insert(timer, handle));
        LoopSleep { timer, rung }
    }
}

impl Future for LoopSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The waker is stored before the flag is checked, so a ring in between is not lost.
        let mut waker = self
            .rung
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *waker = Some(cx.waker().clone());
        drop(waker);
        if self.rung.done.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Sleep for LoopSleep {}

impl Drop for LoopSleep {
    fn drop(&mut self) {
        let handle = TIMERS.with_borrow_mut(|timers| timers.remove(&self.timer));
        if let Some(handle) = handle {
            handle.cancel();
        }
    }
}

/// Prints a line per request as its answer leaves, as the proxy does: what was asked, the status,
/// the body's size, and how long the app took.
async fn log_request(request: Request, next: Next) -> Response {
    let (method, uri, started) = (
        request.method().clone(),
        request.uri().clone(),
        Instant::now(),
    );
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let size = response.body().size_hint().exact();
    let size = size.map_or("-".to_string(), |bytes| bytes.to_string());
    let seconds = started.elapsed().as_secs_f64();
    say!("{method} {uri} {status} {size} B {seconds:.2} s");
    response
}

const USAGE: &str = "usage: web [--listen ADDR]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match &args[..] {
        [] => "127.0.0.1:8000".to_string(),
        [flag, addr] if flag == "--listen" => addr.clone(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let served = run(async move {
        let listener = TcpListener::bind(&addr)?;
        say!(
            "serving the talk's app on http://{}",
            listener.local_addr()?
        );
        serve(listener, app().layer(middleware::from_fn(log_request))).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("web: {error}");
            ExitCode::FAILURE
        }
    }
}
