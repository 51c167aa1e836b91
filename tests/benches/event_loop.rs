//! The talk's loop benchmarks, run on every step that has the feature: what one scheduled
//! callback, one timer, one `sleep(0)` future and one task cost. `just bench` runs them in
//! release mode; they print numbers and check nothing, since speed belongs here, not in tests.
//!
//! Steps 6 and 7 pay for a `select(2)` call per iteration, which steps 3 to 5 do not make:
//! the numbers show what waiting for I/O costs when nothing is waiting.

use std::time::{Duration, Instant};

/// Runs `work` (which does `count` operations) five times and prints the median time per
/// operation, with the fastest and slowest run.
fn report(step: &str, name: &str, count: u32, mut work: impl FnMut()) {
    let mut per_op: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed().as_secs_f64() * 1e9 / f64::from(count)
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    let (median, min, max) = (per_op[2], per_op[0], per_op[4]);
    println!("{step:<18} {name:<28} {median:>9.1} ns ({min:.1}–{max:.1})");
}

macro_rules! schedule_soon {
    ($step:ident) => {{
        let event_loop = $step::EventLoop::new();
        report(stringify!($step), "call_soon + run", 1_000_000, || {
            for _ in 0..1_000_000 {
                event_loop.call_soon(|| {});
            }
            let stopper = event_loop.clone();
            event_loop.call_soon(move || stopper.stop());
            event_loop.run_forever();
        });
    }};
}

macro_rules! schedule_later {
    ($step:ident) => {{
        let event_loop = $step::EventLoop::new();
        report(stringify!($step), "call_later(0) + run", 200_000, || {
            for _ in 0..200_000 {
                event_loop.call_later(Duration::ZERO, || {});
            }
            let stopper = event_loop.clone();
            event_loop.call_later(Duration::ZERO, move || stopper.stop());
            event_loop.run_forever();
        });
    }};
}

macro_rules! sleep_future {
    ($step:ident) => {{
        let event_loop = $step::EventLoop::new();
        report(
            stringify!($step),
            "run_until_complete(sleep(0))",
            20_000,
            || {
                for _ in 0..20_000 {
                    event_loop
                        .run_until_complete(&$step::sleep(&event_loop, Duration::ZERO))
                        .unwrap();
                }
            },
        );
    }};
}

fn main() {
    schedule_soon!(step3_callbacks);
    schedule_soon!(step4_timers);
    schedule_soon!(step5_futures);
    schedule_soon!(step6_select);
    schedule_soon!(step7_tasks);
    schedule_later!(step4_timers);
    schedule_later!(step5_futures);
    schedule_later!(step6_select);
    schedule_later!(step7_tasks);
    sleep_future!(step5_futures);
    sleep_future!(step6_select);
    let event_loop = step7_tasks::EventLoop::new();
    report(
        "step7_tasks",
        "run_until_complete(task(sleep(0)))",
        20_000,
        || {
            for _ in 0..20_000 {
                let task = event_loop.create_task(step7_tasks::sleep(Duration::ZERO));
                event_loop.run_until_complete(task).unwrap();
            }
        },
    );
    report(
        "step7_tasks",
        "create_task + run to the end",
        100_000,
        || {
            let mut tasks: Vec<_> = (0..100_000)
                .map(|i| event_loop.create_task(async move { i }))
                .collect();
            event_loop.run_until_complete(tasks.pop().unwrap()).unwrap();
        },
    );
}
