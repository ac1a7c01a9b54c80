//! Runs one seeded simulation on a fresh thread with its own madsim runtime (several
//! runtimes on one thread would share HashMap seeding state; see MADSIM-NOTES.md).

use std::future::Future;
use std::time::Duration;

/// Runs `make()`'s future under a madsim runtime seeded with `seed`, on a new thread,
/// and returns its output. `time_limit` bounds simulated time.
pub fn run<F, Fut, T>(seed: u64, time_limit: Option<Duration>, make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name(format!("sim-{seed}"))
        .spawn(move || {
            let mut runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            // The simulated filesystem must be registered before any node exists.
            runtime.add_simulator::<crate::fs::SimFs>();
            if let Some(limit) = time_limit {
                runtime.set_time_limit(limit);
            }
            runtime.block_on(make())
        })
        .expect("spawning a simulation thread");
    match thread.join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn jittery() -> Vec<(u64, u128)> {
        // Draws from madsim's seeded RNG and sleeps in simulated time: both must repeat.
        let start = madsim::time::Instant::now();
        let mut out = Vec::new();
        for _ in 0..5 {
            let ms: u64 = 1 + madsim::rand::random::<u64>() % 99;
            madsim::time::sleep(Duration::from_millis(ms)).await;
            out.push((ms, start.elapsed().as_millis()));
        }
        out
    }

    #[test]
    fn a_seed_replays_exactly() {
        let a = run(42, None, jittery);
        let b = run(42, None, jittery);
        assert_eq!(a, b);
        let c = run(43, None, jittery);
        assert_ne!(a, c, "a different seed should draw differently");
    }
}
