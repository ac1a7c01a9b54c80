//! Conformance with the zero_x_infinity golden data sets, under the comparison rules of
//! `fixtures/zxi/README.md`: totals per (user, asset) equal, resting orders equal, trades
//! equal where given, trade counts equal. The expected files were produced by that
//! project, not by us; this test reads them with its own parser.

use exsim_tests::{fixture, read_csv, scratch_dir};
use scenarios::conform;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn num(s: &str) -> u128 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn col(header: &[String], name: &str) -> usize {
    header.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// (user, asset) → (avail, frozen).
fn balances(path: &Path) -> BTreeMap<(u128, u128), (u128, u128)> {
    let (h, rows) = read_csv(path);
    let (u, a, av, fr) = (col(&h, "user_id"), col(&h, "asset_id"), col(&h, "avail"), col(&h, "frozen"));
    rows.iter().map(|r| ((num(&r[u]), num(&r[a])), (num(&r[av]), num(&r[fr])))).collect()
}

/// The resting orders as (order_id, user_id, side, price, qty, filled_qty).
fn book(path: &Path) -> BTreeSet<(u128, u128, String, u128, u128, u128)> {
    let (h, rows) = read_csv(path);
    let c = ["order_id", "user_id", "side", "price", "qty", "filled_qty"].map(|n| col(&h, n));
    rows.iter()
        .map(|r| (num(&r[c[0]]), num(&r[c[1]]), r[c[2]].clone(), num(&r[c[3]]), num(&r[c[4]]), num(&r[c[5]])))
        .collect()
}

fn summary_trades(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("expected/t2_summary.txt")).expect("summary");
    let line = text.lines().find(|l| l.starts_with("Total Trades:")).expect("a Total Trades line");
    line["Total Trades:".len()..].trim().parse().expect("a trade count")
}

/// Runs one fixture end to end (as `exsim conform` does) and checks every rule.
fn check_fixture(name: &str, expected_trades: u64) {
    let dir = fixture(name);
    let out = scratch_dir(name);
    let fx = conform::load(&dir).expect("fixture loads");
    let pipeline = conform::run(&fx).expect("pipeline runs");
    let (tables, _) = conform::render(&pipeline);
    conform::write(&out, &tables).expect("outputs written");

    // Trade count: the figure, and the one in their summary.
    let (_, our_trades) = read_csv(&out.join("trades.csv"));
    assert_eq!(our_trades.len() as u64, expected_trades);
    assert_eq!(summary_trades(&dir), expected_trades);

    // Totals per (user, asset) equal; a missing row counts as zero.
    let ours = balances(&out.join("balances.csv"));
    let theirs = balances(&dir.join("expected/t2_balances_final.csv"));
    let keys: BTreeSet<_> = ours.keys().chain(theirs.keys()).collect();
    for k in keys {
        let (oa, of) = ours.get(k).copied().unwrap_or_default();
        let (ta, tf) = theirs.get(k).copied().unwrap_or_default();
        assert_eq!(
            oa + of,
            ta + tf,
            "total of user {} asset {} (ours {oa}+{of}, theirs {ta}+{tf})",
            k.0,
            k.1
        );
        // They leave rounding dust frozen and we release it: never more frozen than theirs.
        assert!(of <= tf, "user {} asset {}: our frozen {of} > their frozen {tf}", k.0, k.1);
    }

    // Our frozen equals our resting orders' remaining locks exactly; a sell holds exactly
    // its unfilled quantity, a buy at least the value of its unfilled quantity.
    let mut locked: BTreeMap<(u128, u128), u128> = BTreeMap::new();
    let resting = book(&out.join("orderbook.csv"));
    let ubs = pipeline.ubscore();
    assert_eq!(ubs.open_locks().len(), resting.len(), "open locks are exactly the resting orders");
    let symbol = fx.markets.symbols().next().expect("a symbol");
    for (id, user, side, price, qty, filled) in &resting {
        let lock = ubs.open_lock(*id as u64).unwrap_or_else(|| panic!("resting order {id} holds no lock"));
        assert_eq!(u128::from(lock.user), *user);
        let left = qty - filled;
        match side.as_str() {
            "sell" => assert_eq!(u128::from(lock.remaining_lock), left, "sell order {id}"),
            _ => assert!(
                u128::from(lock.remaining_lock) >= price * left / u128::from(symbol.qty_unit),
                "buy order {id}"
            ),
        }
        *locked.entry((*user, u128::from(lock.asset))).or_default() += u128::from(lock.remaining_lock);
    }
    for (k, (_, frozen)) in &ours {
        assert_eq!(*frozen, locked.get(k).copied().unwrap_or(0), "frozen of user {} asset {}", k.0, k.1);
    }

    // The resting orders equal theirs (first seven columns, order_type aside: all limit).
    let theirs_book = book(&dir.join("expected/t2_orderbook.csv"));
    assert_eq!(resting.len(), theirs_book.len());
    let missing: Vec<_> = theirs_book.difference(&resting).take(3).collect();
    let extra: Vec<_> = resting.difference(&theirs_book).take(3).collect();
    assert!(missing.is_empty() && extra.is_empty(), "book differs: missing {missing:?}, extra {extra:?}");

    // Trades in execution order, where given.
    let expected_trades_file = dir.join("expected/trades.csv");
    if expected_trades_file.exists() {
        let (h1, ours) = read_csv(&out.join("trades.csv"));
        let (h2, theirs) = read_csv(&expected_trades_file);
        assert_eq!(h1, h2);
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(o, t, "trade #{}", i + 1);
        }
        assert_eq!(ours.len(), theirs.len());
    }
}

#[test]
fn with_cancel_small_matches_zero_x_infinity() {
    check_fixture("with_cancel_small", 616);
}

#[test]
fn default_100k_matches_zero_x_infinity() {
    check_fixture("default_100k", 47_886);
}

/// Copies a fixture's inputs into a scratch directory with one file replaced.
fn broken_fixture(name: &str, file: &str, contents: &str) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    let src = fixture("with_cancel_small").join("input");
    for f in ["assets_config.csv", "symbols_config.csv", "balances_init.csv", "orders.csv"] {
        std::fs::copy(src.join(f), dir.join(f)).expect("copy");
    }
    std::fs::write(dir.join(file), contents).expect("write");
    dir
}

#[test]
fn malformed_inputs_name_file_and_line() {
    let orders = "order_id,user_id,action,side,price,qty\n1,81,place,buy,85251.66,0.007813\n";
    let cases = [
        (
            "bad-number",
            "orders.csv",
            format!("{orders}2,86,place,buy,84x68.35,0.230128\n"),
            "orders.csv:3:",
            "price",
        ),
        (
            "bad-side",
            "orders.csv",
            format!("{orders}2,86,place,hold,84968.35,0.230128\n"),
            "orders.csv:3:",
            "unknown side `hold`",
        ),
        (
            "too-precise",
            "orders.csv",
            format!("{orders}2,86,place,buy,84968.351,0.230128\n"),
            "orders.csv:3:",
            "3 decimals",
        ),
        (
            "qty-precise",
            "orders.csv",
            format!("{orders}2,86,place,buy,1.00,0.123456789\n"),
            "orders.csv:3:",
            "9 decimals, the asset allows 8",
        ),
        (
            "missing-column",
            "orders.csv",
            "order_id,user_id,side,qty\n1,2,buy,1\n".to_string(),
            "orders.csv:1:",
            "missing column `price`",
        ),
        ("short-row", "orders.csv", format!("{orders}2,86,place\n"), "orders.csv:3:", "3 fields"),
        (
            "bad-action",
            "orders.csv",
            format!("{orders}2,86,amend,buy,1,1\n"),
            "orders.csv:3:",
            "unknown action",
        ),
        (
            "bad-balance",
            "balances_init.csv",
            "user_id,asset_id,avail,frozen,version\n1,2,-5,0,0\n".to_string(),
            "balances_init.csv:2:",
            "avail",
        ),
        (
            "unknown-asset",
            "balances_init.csv",
            "user_id,asset_id,avail,frozen,version\n1,9,5,0,0\n".to_string(),
            "balances_init.csv:2:",
            "unknown asset 9",
        ),
        ("empty", "assets_config.csv", String::new(), "assets_config.csv:1:", "header"),
    ];
    for (name, file, contents, location, message) in cases {
        let dir = broken_fixture(name, file, &contents);
        let err = conform::load(&dir).expect_err(name).to_string();
        assert!(err.contains(location) && err.contains(message), "{name}: got `{err}`");
    }
    let err = conform::load(&scratch_dir("nothing")).expect_err("no files").to_string();
    assert!(err.contains("orders.csv") || err.contains("assets_config.csv"), "{err}");
}
