//! Blocking versus async, as a ratio: the same batch of concurrent requests through step 1's
//! one-at-a-time proxy and step 7's async proxy. The blocking proxy serves them in turn (about
//! one origin delay each), the async one all together (about one origin delay in all).

use std::time::Duration;

use step7_tasks::compare::compare;

#[test]
fn the_async_proxy_serves_a_batch_many_times_faster_than_the_blocking_one() {
    // 12 clients leave room for a ratio of 3 on a loaded machine (at best it is 12); 30 ms is
    // still far above the async proxy's own cost per batch.
    let comparison = compare(12, Duration::from_millis(30)).expect("both proxies serve the batch");
    // Expected near 20; a slow, loaded machine slows the async side most, so leave room.
    assert!(
        comparison.ratio() >= 3.0,
        "blocking took {:?}, async {:?}: only {:.1}x",
        comparison.blocking,
        comparison.asynchronous,
        comparison.ratio()
    );
    assert!(
        comparison.blocking >= comparison.origin_delay * 12,
        "one at a time means one origin delay per request"
    );
}
