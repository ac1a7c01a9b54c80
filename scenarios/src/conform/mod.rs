//! Conformance with the zero_x_infinity golden data sets: read their CSV inputs, run the
//! in-process pipeline, write our outputs in integer minor units.

mod decimal;
mod table;

pub use decimal::{parse_int, parse_units};
pub use table::{InputError, Table};

use engine::{
    Asset, AssetId, Command, Markets, MeEventKind, Order, OrderKind, Outcome, Pipeline, Side, SymbolId,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A fixture's inputs: the markets and the commands in file order.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Assets and symbols.
    pub markets: Markets,
    /// Initial deposits, then every order row, in order.
    pub commands: Vec<Command>,
    /// How many commands are initial deposits.
    pub deposits: usize,
}

/// The directory holding the input CSVs: `DIR/input` if it exists, else `DIR`.
pub fn input_dir(dir: &Path) -> PathBuf {
    let nested = dir.join("input");
    if nested.join("orders.csv").is_file() { nested } else { dir.to_path_buf() }
}

/// Reads `assets_config.csv`, `symbols_config.csv`, `balances_init.csv` and `orders.csv`.
pub fn load(dir: &Path) -> Result<Fixture, InputError> {
    let dir = input_dir(dir);
    let markets = load_markets(&dir)?;
    let mut commands = load_deposits(&dir.join("balances_init.csv"), &markets)?;
    let deposits = commands.len();
    load_orders(&dir.join("orders.csv"), &markets, &mut commands)?;
    Ok(Fixture { markets, commands, deposits })
}

fn load_markets(dir: &Path) -> Result<Markets, InputError> {
    let t = Table::read(&dir.join("assets_config.csv"))?;
    let (id, code, decimals) = (t.column("asset_id")?, t.column("asset")?, t.column("decimals")?);
    let mut assets = Vec::new();
    for row in t.rows() {
        let row = row?;
        assets.push(Asset {
            id: row.parse(id, parse_int)?,
            code: row.text(code).to_string(),
            decimals: row.parse(decimals, parse_int)?,
        });
    }
    let t2 = Table::read(&dir.join("symbols_config.csv"))?;
    let (sid, name, base, quote) = (
        t2.column("symbol_id")?,
        t2.column("symbol")?,
        t2.column("base_asset_id")?,
        t2.column("quote_asset_id")?,
    );
    let mut symbols = Vec::new();
    let mut last_line = 1;
    for row in t2.rows() {
        let row = row?;
        last_line = row.line;
        symbols.push((
            row.parse(sid, parse_int)?,
            row.text(name).to_string(),
            row.parse(base, parse_int)?,
            row.parse(quote, parse_int)?,
        ));
    }
    Markets::new(assets, symbols)
        .map_err(|e| t2.error(last_line, format!("invalid market configuration: {e}")))
}

fn load_deposits(path: &Path, markets: &Markets) -> Result<Vec<Command>, InputError> {
    let t = Table::read(path)?;
    let (user, asset, avail, frozen) =
        (t.column("user_id")?, t.column("asset_id")?, t.column("avail")?, t.column("frozen")?);
    let mut out = Vec::new();
    for row in t.rows() {
        let row = row?;
        let asset: AssetId = row.parse(asset, parse_int)?;
        if markets.asset(asset).is_none() {
            return Err(row.error(format!("unknown asset {asset}")));
        }
        if row.parse::<u64>(frozen, parse_int)? != 0 {
            return Err(row.error("initial frozen balances are not supported (frozen must be 0)"));
        }
        let amount = row.parse(avail, parse_int)?;
        if amount > 0 {
            let request_id = out.len() as u64 + 1;
            out.push(Command::Deposit { request_id, user: row.parse(user, parse_int)?, asset, amount });
        }
    }
    Ok(out)
}

fn load_orders(path: &Path, markets: &Markets, out: &mut Vec<Command>) -> Result<(), InputError> {
    let t = Table::read(path)?;
    let (order_id, user, side, price, qty) = (
        t.column("order_id")?,
        t.column("user_id")?,
        t.column("side")?,
        t.column("price")?,
        t.column("qty")?,
    );
    let action = if t.has("action") { Some(t.column("action")?) } else { None };
    let symbol_col = if t.has("symbol_id") { Some(t.column("symbol_id")?) } else { None };
    // Without a symbol column every order is on the first configured symbol.
    let default_symbol = markets.symbols().next().map(|s| s.id);
    for row in t.rows() {
        let row = row?;
        let order_id = row.parse(order_id, parse_int)?;
        let user = row.parse(user, parse_int)?;
        let act = action.map_or("place", |a| row.text(a));
        match act {
            "cancel" => out.push(Command::Cancel { order_id, user }),
            "place" => {
                let symbol: SymbolId = match symbol_col {
                    Some(c) => row.parse(c, parse_int)?,
                    None => default_symbol.ok_or_else(|| row.error("no symbol is configured"))?,
                };
                let sym =
                    markets.symbol(symbol).ok_or_else(|| row.error(format!("unknown symbol {symbol}")))?;
                let decimals = |asset| markets.asset(asset).map_or(0, |a: &Asset| a.decimals);
                let side = row.parse(side, |s| match s {
                    "buy" => Ok(Side::Buy),
                    "sell" => Ok(Side::Sell),
                    other => Err(format!("unknown side `{other}` (expected buy or sell)")),
                })?;
                let price = row.parse(price, |s| parse_units(s, decimals(sym.quote)))?;
                let qty = row.parse(qty, |s| parse_units(s, decimals(sym.base)))?;
                out.push(Command::Place(Order {
                    order_id,
                    user,
                    symbol,
                    side,
                    kind: OrderKind::Gtc,
                    price,
                    qty,
                }));
            }
            other => {
                return Err(row
                    .error(format!("column `action`: unknown action `{other}` (expected place or cancel)")));
            }
        }
    }
    Ok(())
}

/// Counts of one conformance run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Order rows (places and cancels).
    pub orders: usize,
    /// Places accepted by UBSCore.
    pub accepted: usize,
    /// Places rejected by UBSCore, plus cancels the ME rejected.
    pub rejected: usize,
    /// Trades executed.
    pub trades: usize,
    /// Orders resting at the end.
    pub resting: usize,
}

/// Runs the fixture through the pipeline (with logs, for the trade and reject files).
pub fn run(fixture: &Fixture) -> Result<Pipeline, engine::PipelineError> {
    let mut pipeline = Pipeline::with_logs(fixture.markets.clone());
    for command in &fixture.commands {
        pipeline.submit(*command)?;
    }
    Ok(pipeline)
}

/// The four output tables as CSV text: balances, orderbook, trades, rejected.
pub fn render(pipeline: &Pipeline) -> ([String; 4], Summary) {
    let mut summary = Summary::default();
    let mut balances = String::from("user_id,asset_id,avail,frozen\n");
    for ((user, asset), b) in pipeline.ubscore().balances() {
        let _ = writeln!(balances, "{user},{asset},{},{}", b.avail, b.frozen);
    }
    let mut resting: Vec<_> = pipeline.matching().all_orders().into_values().flatten().collect();
    resting.sort_by_key(|o| o.order_id);
    summary.resting = resting.len();
    let mut book = String::from("order_id,user_id,side,price,qty,filled_qty\n");
    for o in &resting {
        let _ = writeln!(book, "{},{},{},{},{},{}", o.order_id, o.user, o.side, o.price, o.qty, o.filled);
    }
    let mut trades = String::from("trade_id,buyer_user_id,seller_user_id,qty,quote_amount\n");
    for t in pipeline.settlement().ledger() {
        let _ = writeln!(trades, "{},{},{},{},{}", t.trade_id, t.buyer, t.seller, t.qty, t.value);
    }
    summary.trades = pipeline.settlement().ledger().len();
    let mut rejected: Vec<(u64, &str)> = Vec::new();
    for r in pipeline.history() {
        match (r.command, r.outcome) {
            (Command::Place(o), Outcome::Rejected(reason)) => rejected.push((o.order_id, reason.as_str())),
            (Command::Place(_), Outcome::Accepted) => summary.accepted += 1,
            _ => {}
        }
        if matches!(r.command, Command::Place(_) | Command::Cancel { .. }) {
            summary.orders += 1;
        }
    }
    for e in pipeline.events() {
        if let MeEventKind::CancelRejected { order_id, reason, .. } = e.kind {
            rejected.push((order_id, reason.as_str()));
        }
    }
    rejected.sort();
    summary.rejected = rejected.len();
    let mut rej = String::from("order_id,reason\n");
    for (id, reason) in rejected {
        let _ = writeln!(rej, "{id},{reason}");
    }
    ([balances, book, trades, rej], summary)
}

/// The output file names, in the order [`render`] returns them.
pub const OUTPUT_FILES: [&str; 4] = ["balances.csv", "orderbook.csv", "trades.csv", "rejected.csv"];

/// Writes the outputs into `out` (created if needed).
pub fn write(out: &Path, tables: &[String; 4]) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for (name, text) in OUTPUT_FILES.iter().zip(tables) {
        std::fs::write(out.join(name), text)?;
    }
    Ok(())
}
