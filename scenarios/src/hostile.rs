//! Hostile commands mixed into a seeded workload: every way a client can send something
//! the exchange must refuse or treat at an edge (zero and unknown fields, overflowing
//! amounts and locks, strangers without balances, ids reused with other content, cancels of
//! orders that never existed, trades worth zero). The plain workload never sends them, so
//! without this mix the durable paths of a rejection (logged, replayed, de-duplicated,
//! snapshotted) ran only for the few reasons a realistic stream produces.

use engine::{Command, Order, OrderKind, Side};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One whole base asset in base units on both default symbols (BTC and ETH: 8 decimals).
const QTY_UNIT: u64 = 100_000_000;

/// The kinds of hostile command, in the order [`hostile_command`] draws them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hostile {
    /// A deposit or withdrawal of 0.
    ZeroAmount,
    /// A deposit or withdrawal of an asset no market has.
    UnknownAsset,
    /// A deposit that would take the asset's supply past `u64::MAX`.
    SupplyOverflow,
    /// A withdrawal of more than anyone holds.
    HugeWithdrawal,
    /// A withdrawal or a sell by a user who never deposited.
    Stranger,
    /// An order for a symbol that does not exist.
    UnknownSymbol,
    /// An order at price 0.
    ZeroPrice,
    /// A buy whose lock does not fit in `u64`.
    LockOverflow,
    /// An order id reused with other content (`DuplicateId`).
    ReusedOrderId,
    /// A request id reused with another amount (`DuplicateId`).
    ReusedRequestId,
    /// A cancel of an order id never placed.
    UnknownCancel,
    /// A tiny order at a recent order's price, on the other side: its trades are worth 0.
    DustTrade,
}

/// Every hostile kind.
pub const ALL: [Hostile; 12] = [
    Hostile::ZeroAmount,
    Hostile::UnknownAsset,
    Hostile::SupplyOverflow,
    Hostile::HugeWithdrawal,
    Hostile::Stranger,
    Hostile::UnknownSymbol,
    Hostile::ZeroPrice,
    Hostile::LockOverflow,
    Hostile::ReusedOrderId,
    Hostile::ReusedRequestId,
    Hostile::UnknownCancel,
    Hostile::DustTrade,
];

/// What the mixer knows of the workload so far.
struct Seen {
    users: u64,
    orders: Vec<Order>,
    deposits: Vec<Command>,
    next_request: u64,
    next_order: u64,
}

impl Seen {
    fn of(commands: &[Command], users: u64) -> Seen {
        let mut seen = Seen {
            users: users.max(1),
            orders: Vec::new(),
            deposits: Vec::new(),
            next_request: 1,
            next_order: 1,
        };
        for command in commands {
            match *command {
                Command::Deposit { request_id, .. } | Command::Withdraw { request_id, .. } => {
                    seen.next_request = seen.next_request.max(request_id + 1);
                }
                Command::Place(order) => seen.next_order = seen.next_order.max(order.order_id + 1),
                Command::Cancel { .. } => {}
            }
        }
        seen
    }

    fn note(&mut self, command: &Command) {
        match *command {
            Command::Place(order) if self.orders.len() < 256 => self.orders.push(order),
            Command::Place(order) => {
                let at = order.order_id as usize % 256;
                self.orders[at] = order;
            }
            Command::Deposit { .. } | Command::Withdraw { .. } if self.deposits.len() < 256 => {
                self.deposits.push(*command);
            }
            _ => {}
        }
    }
}

/// `commands` with a hostile command after each one with probability `percent` / 100,
/// drawn from `rng` (the commands themselves are kept, in order). `users` is the workload's
/// user count: strangers get ids above it. Fresh ids come after every id of `commands`.
pub fn mix(rng: &mut ChaCha8Rng, commands: Vec<Command>, users: u64, percent: u32) -> Vec<Command> {
    assert!(percent <= 100, "a percentage of commands: {percent}");
    let mut seen = Seen::of(&commands, users);
    let mut out = Vec::with_capacity(commands.len() + commands.len() * percent as usize / 100 + 1);
    for command in commands {
        seen.note(&command);
        out.push(command);
        if rng.gen_range(0..100) < percent {
            let kind = ALL[rng.gen_range(0..ALL.len())];
            if let Some(hostile) = hostile_command(rng, &mut seen, kind) {
                seen.note(&hostile);
                out.push(hostile);
            }
        }
    }
    out
}

/// One hostile command of `kind`, or `None` when the kind needs history there is not yet
/// (an id to reuse, an order to trade against).
fn hostile_command(rng: &mut ChaCha8Rng, seen: &mut Seen, kind: Hostile) -> Option<Command> {
    let user = rng.gen_range(0..seen.users);
    let asset = rng.gen_range(1..=3);
    let command = match kind {
        Hostile::ZeroAmount => money(seen, rng.gen_bool(0.5), user, asset, 0),
        Hostile::UnknownAsset => {
            let asset = [0, 4, u32::MAX][rng.gen_range(0..3)];
            money(seen, rng.gen_bool(0.5), user, asset, rng.gen_range(1..1_000_000))
        }
        Hostile::SupplyOverflow => money(seen, true, user, asset, u64::MAX - rng.gen_range(0..1_000)),
        Hostile::HugeWithdrawal => money(seen, false, user, asset, rng.gen_range(u64::MAX / 2..=u64::MAX)),
        Hostile::Stranger => {
            let stranger = seen.users + rng.gen_range(0..4);
            if rng.gen_bool(0.5) {
                money(seen, false, stranger, asset, rng.gen_range(1..1_000_000))
            } else {
                let price = rng.gen_range(1..10_000_000);
                order(seen, stranger, 0, Side::Sell, OrderKind::Gtc, price, rng.gen_range(1..1_000_000))
            }
        }
        Hostile::UnknownSymbol => {
            let symbol = [2, 7, u32::MAX][rng.gen_range(0..3)];
            order(seen, user, symbol, Side::Buy, OrderKind::Gtc, 100, 100)
        }
        Hostile::ZeroPrice => {
            let kind = [OrderKind::Gtc, OrderKind::Ioc, OrderKind::Market][rng.gen_range(0..3)];
            order(seen, user, rng.gen_range(0..2), Side::Buy, kind, 0, rng.gen_range(1..1_000_000))
        }
        Hostile::LockOverflow => {
            // floor(price * qty / 10^8) > u64::MAX needs price * qty > ~1.8e27.
            let price = rng.gen_range(u64::MAX / 4..=u64::MAX);
            order(
                seen,
                user,
                rng.gen_range(0..2),
                Side::Buy,
                OrderKind::Gtc,
                price,
                rng.gen_range(1u64 << 40..u64::MAX),
            )
        }
        Hostile::ReusedOrderId => {
            let first = *pick(rng, &seen.orders)?;
            Command::Place(Order {
                price: first.price.saturating_add(1),
                qty: first.qty.max(1).saturating_mul(2),
                ..first
            })
        }
        Hostile::ReusedRequestId => match *pick(rng, &seen.deposits)? {
            Command::Deposit { request_id, user, asset, amount } => {
                Command::Deposit { request_id, user, asset, amount: amount.wrapping_add(1) }
            }
            Command::Withdraw { request_id, user, asset, amount } => {
                Command::Withdraw { request_id, user, asset, amount: amount.wrapping_add(1) }
            }
            _ => return None,
        },
        Hostile::UnknownCancel => {
            Command::Cancel { order_id: seen.next_order + 1_000_000 + rng.gen_range(0..1_000), user }
        }
        Hostile::DustTrade => {
            let maker = *pick(rng, &seen.orders)?;
            let side = if maker.side == Side::Buy { Side::Sell } else { Side::Buy };
            // Worth less than one quote unit at the maker's price: floor(price * qty / unit) = 0.
            let price = maker.price.max(1);
            let qty = ((QTY_UNIT - 1) / price).clamp(1, 100);
            order(seen, user, maker.symbol, side, OrderKind::Ioc, price, rng.gen_range(1..=qty))
        }
    };
    Some(command)
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, from: &'a [T]) -> Option<&'a T> {
    if from.is_empty() { None } else { Some(&from[rng.gen_range(0..from.len())]) }
}

/// A fresh deposit (`deposit`) or withdrawal.
fn money(seen: &mut Seen, deposit: bool, user: u64, asset: u32, amount: u64) -> Command {
    let request_id = seen.next_request;
    seen.next_request += 1;
    if deposit {
        Command::Deposit { request_id, user, asset, amount }
    } else {
        Command::Withdraw { request_id, user, asset, amount }
    }
}

/// A fresh order.
fn order(
    seen: &mut Seen,
    user: u64,
    symbol: u32,
    side: Side,
    kind: OrderKind,
    price: u64,
    qty: u64,
) -> Command {
    let order_id = seen.next_order;
    seen.next_order += 1;
    Command::Place(Order { order_id, user, symbol, side, kind, price, qty })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{WorkloadConfig, generate};
    use rand::SeedableRng;

    /// The mix keeps every command of the workload in order, adds about `percent` in 100,
    /// and gives its fresh commands ids no workload command has.
    #[test]
    fn the_mix_keeps_the_workload_and_adds_fresh_hostile_commands() {
        let workload =
            generate(&mut ChaCha8Rng::seed_from_u64(3), &WorkloadConfig { commands: 2_000, users: 20 });
        let mixed = mix(&mut ChaCha8Rng::seed_from_u64(4), workload.clone(), 20, 10);
        let (mut kept, mut added) = (0, Vec::new());
        for c in &mixed {
            if kept < workload.len() && *c == workload[kept] {
                kept += 1;
            } else {
                added.push(c);
            }
        }
        assert_eq!(kept, workload.len(), "every workload command is kept, in order");
        let expected = (workload.len() / 10) as f64;
        assert!(
            (added.len() as f64 - expected).abs() < expected * 0.3,
            "{} added of ~{expected}",
            added.len()
        );
        let ids = |c: &Command| match *c {
            Command::Deposit { request_id, .. } | Command::Withdraw { request_id, .. } => (0, request_id),
            Command::Place(o) => (1, o.order_id),
            Command::Cancel { order_id, .. } => (2, order_id),
        };
        let workload_ids: std::collections::BTreeSet<_> = workload.iter().map(ids).collect();
        let reused = added.iter().filter(|c| workload_ids.contains(&ids(c))).count();
        let cancels = added.iter().filter(|c| matches!(c, Command::Cancel { .. })).count();
        // Only the two reuse kinds take a workload id (cancels of nothing take fresh ones).
        assert!(reused > 0 && reused < added.len() / 4, "{reused} of {} reuse an id", added.len());
        assert!(cancels > 0 && added.iter().all(|c| !matches!(c, Command::Cancel { order_id, .. } if workload_ids.contains(&(1, *order_id)))));
    }

    /// Each kind is drawn, and produces the command its name promises.
    #[test]
    fn every_kind_makes_its_command() {
        let workload =
            generate(&mut ChaCha8Rng::seed_from_u64(5), &WorkloadConfig { commands: 300, users: 10 });
        let mut seen = Seen::of(&workload, 10);
        workload.iter().for_each(|c| seen.note(c));
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for kind in ALL {
            let c = hostile_command(&mut rng, &mut seen, kind).expect("the workload gives history to reuse");
            let ok = match (kind, c) {
                (Hostile::ZeroAmount, Command::Deposit { amount, .. } | Command::Withdraw { amount, .. }) => {
                    amount == 0
                }
                (Hostile::UnknownAsset, Command::Deposit { asset, .. } | Command::Withdraw { asset, .. }) => {
                    !(1..=3).contains(&asset)
                }
                (Hostile::SupplyOverflow, Command::Deposit { amount, .. }) => amount > u64::MAX - 1_000,
                (Hostile::HugeWithdrawal, Command::Withdraw { amount, .. }) => amount >= u64::MAX / 2,
                (Hostile::Stranger, c) => c.user() >= 10,
                (Hostile::UnknownSymbol, Command::Place(o)) => o.symbol >= 2,
                (Hostile::ZeroPrice, Command::Place(o)) => o.price == 0,
                (Hostile::LockOverflow, Command::Place(o)) => {
                    u128::from(o.price) * u128::from(o.qty) / 100_000_000 > u128::from(u64::MAX)
                }
                (Hostile::ReusedOrderId, Command::Place(o)) => workload
                    .iter()
                    .any(|w| matches!(w, Command::Place(p) if p.order_id == o.order_id && *p != o)),
                (Hostile::ReusedRequestId, c @ (Command::Deposit { .. } | Command::Withdraw { .. })) => {
                    workload.iter().any(|w| w.key() == c.key() && *w != c)
                }
                (Hostile::UnknownCancel, Command::Cancel { order_id, .. }) => order_id > seen.next_order,
                (Hostile::DustTrade, Command::Place(o)) => {
                    o.kind == OrderKind::Ioc && u128::from(o.price) * u128::from(o.qty) < u128::from(QTY_UNIT)
                }
                _ => false,
            };
            assert!(ok, "{kind:?} made {c:?}");
        }
    }
}
