//! The seeded workload generator: a realistic command stream (many users, several
//! symbols, a drifting mid price, cancels, IOC and market orders, rejections, retries,
//! deposits and withdrawals), drawn from the seed's workload stream.

use engine::{Asset, Command, Markets, Order, OrderId, OrderKind, Side};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Parameters of a generated workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Number of commands after the initial deposits.
    pub commands: usize,
    /// Number of users (each gets initial deposits of every asset).
    pub users: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig { commands: 10_000, users: 100 }
    }
}

/// The default markets: BTC (8 decimals), USDT (2), ETH (8); BTC_USDT = 0, ETH_USDT = 1
/// (the zero_x_infinity configuration).
pub fn default_markets() -> Markets {
    let asset = |id, code: &str, decimals| Asset { id, code: code.into(), decimals };
    Markets::new(
        vec![asset(1, "BTC", 8), asset(2, "USDT", 2), asset(3, "ETH", 8)],
        vec![(0, "BTC_USDT".into(), 1, 2), (1, "ETH_USDT".into(), 3, 2)],
    )
    .expect("the default markets are valid")
}

/// Mid prices (in cents) the generator starts from, per symbol of [`default_markets`].
const START_MID: [u64; 2] = [8_500_000, 300_000];

/// Generates the initial deposits and `config.commands` commands.
pub fn generate(rng: &mut ChaCha8Rng, config: &WorkloadConfig) -> Vec<Command> {
    generate_narrowed(rng, config, 1)
}

/// [`generate`] with the orders' distance from the mid divided by `narrow` (from the same
/// draws): most places cross, so that a short workload trades often (explore's 30 commands
/// would otherwise make two or three trades).
pub fn generate_narrowed(rng: &mut ChaCha8Rng, config: &WorkloadConfig, narrow: u64) -> Vec<Command> {
    assert!(narrow >= 1, "narrow divides the orders' distance from the mid");
    let users = config.users.max(1);
    let mut out = Vec::with_capacity(config.commands + users as usize * 3);
    let mut request_id = 0u64;
    for user in 0..users {
        for (asset, amount) in [(1, 100_000_000_000), (2, 1_000_000_000_000), (3, 1_000_000_000_000)] {
            request_id += 1;
            out.push(Command::Deposit { request_id, user, asset, amount });
        }
    }
    let mut mid = START_MID;
    let mut next_order: OrderId = 1;
    // Recent places, to draw cancels (of own and others' orders) and retries from.
    let mut recent: Vec<Order> = Vec::new();
    for _ in 0..config.commands {
        let roll = rng.gen_range(0..100);
        let command = match roll {
            0..=2 => {
                request_id += 1;
                Command::Deposit {
                    request_id,
                    user: rng.gen_range(0..users),
                    asset: rng.gen_range(1..=3),
                    amount: rng.gen_range(0..10_000_000_000),
                }
            }
            3..=5 => {
                request_id += 1;
                Command::Withdraw {
                    request_id,
                    user: rng.gen_range(0..users),
                    asset: rng.gen_range(1..=3),
                    amount: rng.gen_range(0..50_000_000_000),
                }
            }
            6..=17 if !recent.is_empty() => {
                let target = recent[rng.gen_range(0..recent.len())];
                // Mostly the owner cancels; sometimes someone else tries.
                let user = if rng.gen_bool(0.9) { target.user } else { rng.gen_range(0..users) };
                Command::Cancel { order_id: target.order_id, user }
            }
            18..=19 if !recent.is_empty() => Command::Place(recent[rng.gen_range(0..recent.len())]),
            _ => {
                let symbol = rng.gen_range(0..2u32);
                let m = &mut mid[symbol as usize];
                // A slow random walk keeps both sides of the book busy.
                *m = (*m as i64 + rng.gen_range(-(*m as i64) / 2000..=(*m as i64) / 2000)).max(100) as u64;
                let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
                let offset = rng.gen_range(0..*m / 200) / narrow;
                let price = match side {
                    Side::Buy => m.saturating_sub(offset).max(1) + rng.gen_range(0..*m / 400),
                    Side::Sell => {
                        (m.saturating_add(offset)).saturating_sub(rng.gen_range(0..*m / 400)).max(1)
                    }
                };
                let kind = match rng.gen_range(0..100) {
                    0..=79 => OrderKind::Gtc,
                    80..=91 => OrderKind::Ioc,
                    _ => OrderKind::Market,
                };
                let qty = if rng.gen_bool(0.01) { 0 } else { rng.gen_range(1..200_000_000) };
                let order = Order {
                    order_id: next_order,
                    user: rng.gen_range(0..users),
                    symbol,
                    side,
                    kind,
                    price,
                    qty,
                };
                next_order += 1;
                if recent.len() == 256 {
                    recent.swap_remove(rng.gen_range(0..256));
                }
                recent.push(order);
                Command::Place(order)
            }
        };
        out.push(command);
    }
    out
}
