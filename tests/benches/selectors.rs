//! What one round trip through step 6's loop costs on each selector, with 0, 500 and 5,000
//! idle connections beside it. `select` and `poll` hand the kernel every watched descriptor on
//! every wait, so their cost grows with the idle ones; epoll and kqueue keep the interest list
//! in the kernel and hand back only what is ready, so theirs stays flat.
//!
//! A round trip: one byte written on a socket pair, echoed by a reader callback on the other
//! end, read back by a reader callback on the first: two waits of the loop. Each measurement
//! makes up to 20,000 round trips, and stops after 0.2 s, since select and poll get slow with
//! many idle descriptors. The selectors are measured in turn, round after round, and the table
//! shows the median of the rounds, with the fastest and slowest below it.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use step6_select::{EventLoop, selectors};

const ROUND_TRIPS: u32 = 20_000;
const TIME_LIMIT: Duration = Duration::from_millis(200);
const ROUNDS: usize = 5;
const IDLE: [usize; 3] = [0, 500, 5_000];

fn main() {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("the limit on open files");
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("the soft limit can be raised");
    }
    let names = selectors::available();
    println!(
        "ns per round trip through step 6's loop (median of {ROUNDS} rounds; below it, min–max)"
    );
    print!("{:<8}", "idle");
    for name in &names {
        print!("{name:>20}");
    }
    println!();
    for idle in IDLE {
        let mut samples = vec![Vec::new(); names.len()];
        for _ in 0..ROUNDS {
            for (name, samples) in names.iter().zip(&mut samples) {
                samples.push(round_trip(name, idle, hard));
            }
        }
        let samples: Vec<Vec<f64>> = samples
            .into_iter()
            .map(|mut samples| {
                samples.sort_by(f64::total_cmp);
                samples
            })
            .collect();
        print!("{idle:<8}");
        for samples in &samples {
            match samples[ROUNDS / 2] {
                ns if ns.is_nan() => print!("{:>20}", "—"),
                ns => print!("{ns:>20.0}"),
            }
        }
        println!();
        print!("{:<8}", "");
        for samples in &samples {
            match (samples[0], samples[ROUNDS - 1]) {
                (min, _) if min.is_nan() => print!("{:>20}", ""),
                (min, max) => print!("{:>20}", format!("{min:.0}–{max:.0}")),
            }
        }
        println!();
    }
    println!("— : select cannot hold a descriptor numbered 1024 or more");
    if hard < 2 * 5_000 + 64 {
        println!("(the hard limit on open files, {hard}, is too low for 5,000 idle pairs)");
    }
}

/// Nanoseconds per round trip on the selector `name`, with `idle` socket pairs watched for
/// reading beside the busy one; NaN when the selector cannot hold that many.
fn round_trip(name: &str, idle: usize, limit: u64) -> f64 {
    if (2 * idle + 64) as u64 > limit {
        return f64::NAN;
    }
    let event_loop = EventLoop::with_selector(selectors::by_name(name).expect("a selector"));
    let mut quiet = Vec::new();
    for _ in 0..idle {
        let (ours, theirs) = UnixStream::pair().expect("a socket pair");
        if event_loop.add_reader(Rc::new(ours), || {}).is_err() {
            return f64::NAN;
        }
        quiet.push(theirs);
    }
    let (client, server) = UnixStream::pair().expect("a socket pair");
    let (client, server) = (Rc::new(client), Rc::new(server));
    for end in [&client, &server] {
        end.set_nonblocking(true).expect("non-blocking");
    }
    let echo = server.clone();
    let echoing = event_loop.add_reader(server, move || {
        let mut byte = [0];
        if (&*echo).read(&mut byte).is_ok() {
            (&*echo).write_all(&byte).expect("room for one byte");
        }
    });
    let done = Rc::new(Cell::new(0));
    let start = Instant::now();
    let (lp, back, count) = (event_loop.clone(), client.clone(), done.clone());
    let returning = event_loop.add_reader(client.clone(), move || {
        let mut byte = [0];
        match (&*back).read(&mut byte) {
            Err(error) if error.kind() == ErrorKind::WouldBlock => return,
            outcome => outcome.expect("the echo comes back"),
        };
        count.set(count.get() + 1);
        if count.get() == ROUND_TRIPS || start.elapsed() > TIME_LIMIT {
            lp.stop();
        } else {
            (&*back).write_all(&byte).expect("room for one byte");
        }
    });
    if echoing.is_err() || returning.is_err() {
        return f64::NAN;
    }
    (&*client).write_all(b"x").expect("room for one byte");
    event_loop.run_forever();
    let elapsed = start.elapsed();
    event_loop.close();
    elapsed.as_secs_f64() * 1e9 / f64::from(done.get())
}
