//! The whole exchange under the simulator: several seeds with crashes of every service
//! (kills and filesystem crash points), torn and lost writes, packet loss and partitions;
//! after the liveness phase the recovered services equal the model fed UBSCore's committed
//! history, and a seed replays to the same trace hash.

#![cfg(madsim)]

use scenarios::simrun;

#[test]
fn the_exchange_survives_crashes_and_equals_the_model() {
    let mut kills = 0;
    for seed in 0..4 {
        let cfg = simrun::crash_world(seed, 600);
        let markets = cfg.markets.clone();
        let result = sim::world::run_world(cfg);
        kills += result.kills;
        eprintln!(
            "seed {seed}: sim {:?}, {} messages, {} kills, faults {:?}, {} trace lines, {} history",
            result.sim_time,
            result.messages,
            result.kills,
            result.faults,
            result.trace_lines,
            result.final_state.as_ref().map_or(0, |f| f.history.len())
        );
        if let Err(e) = simrun::check(&result, &markets) {
            for (node, lines) in &result.tails {
                eprintln!("--- {node}");
                for l in lines {
                    eprintln!("{l}");
                }
            }
            panic!("seed {seed}: {e}");
        }
        assert_eq!(result.acked.len(), 600 + 150, "every command acknowledged");
    }
    assert!(kills >= 4, "the services were crashed ({kills})");
}

#[test]
fn a_seed_replays_to_the_same_trace_hash() {
    let a = sim::world::run_world(simrun::crash_world(7, 300));
    let b = sim::world::run_world(simrun::crash_world(7, 300));
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.trace_lines, b.trace_lines);
    let c = sim::world::run_world(simrun::crash_world(8, 300));
    assert_ne!(a.trace_hash, c.trace_hash);
}
