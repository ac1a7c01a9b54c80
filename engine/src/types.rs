//! Domain types shared by the engine, the reference model and the checker.
//!
//! All quantities are integers in minor units (see SEMANTICS.md): `qty` in base units,
//! `price` in quote units per one whole base asset.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A user (account holder).
pub type UserId = u64;
/// An asset, e.g. BTC.
pub type AssetId = u32;
/// A trading pair, e.g. BTC_USDT.
pub type SymbolId = u32;
/// Client-chosen id of an order; also identifies the place command for de-duplication.
pub type OrderId = u64;
/// Client-chosen id of a deposit or withdrawal.
pub type RequestId = u64;
/// Quote minor units per one whole base asset.
pub type Price = u64;
/// Base minor units.
pub type Qty = u64;
/// Minor units of some asset.
pub type Amount = u64;
/// UBSCore's sequence number: dense, starting at 1, one per fresh client command.
pub type UbsSeq = u64;
/// Matching engine event id: dense, starting at 1, over all events of the ME.
pub type EventId = u64;
/// Trade id: dense, starting at 1, over all trades of the ME.
pub type TradeId = u64;

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    /// Bid: pays quote, receives base.
    Buy,
    /// Ask: pays base, receives quote.
    Sell,
}

impl Side {
    /// The side an order of this side matches against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// Lower-case name as used in CSV files (`buy` / `sell`).
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an order treats its unfilled remainder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrderKind {
    /// Limit, good till cancelled: the remainder rests on the book.
    Gtc,
    /// Limit, immediate or cancel: the remainder expires.
    Ioc,
    /// Market: an IOC whose price is the protection limit; locked and matched like an IOC.
    Market,
}

impl OrderKind {
    /// Whether an unfilled remainder rests on the book.
    pub fn rests(self) -> bool {
        matches!(self, OrderKind::Gtc)
    }
}

/// An asset with its number of decimals (one unit = 10^-decimals).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// Asset id.
    pub id: AssetId,
    /// Short code, e.g. `BTC`.
    pub code: String,
    /// Number of decimals of one minor unit.
    pub decimals: u8,
}

/// A trading pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    /// Symbol id.
    pub id: SymbolId,
    /// Name, e.g. `BTC_USDT`.
    pub name: String,
    /// Asset that is bought and sold; `qty` is in its minor units.
    pub base: AssetId,
    /// Asset that prices are expressed in.
    pub quote: AssetId,
    /// `10^base_decimals`: base minor units per whole base asset.
    pub qty_unit: u64,
}

/// Largest supported number of decimals: `10^19` still fits in a `u64`.
pub const MAX_DECIMALS: u8 = 19;

/// Why a market configuration is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarketsError {
    /// Two assets share an id.
    DuplicateAsset(AssetId),
    /// Two symbols share an id.
    DuplicateSymbol(SymbolId),
    /// A symbol names an asset that is not configured.
    UnknownAsset { symbol: SymbolId, asset: AssetId },
    /// A symbol's base and quote are the same asset.
    SameBaseAndQuote(SymbolId),
    /// An asset has more decimals than a `u64` can scale.
    TooManyDecimals { asset: AssetId, decimals: u8 },
}

impl fmt::Display for MarketsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarketsError::DuplicateAsset(a) => write!(f, "asset {a} is configured twice"),
            MarketsError::DuplicateSymbol(s) => write!(f, "symbol {s} is configured twice"),
            MarketsError::UnknownAsset { symbol, asset } => {
                write!(f, "symbol {symbol} names unknown asset {asset}")
            }
            MarketsError::SameBaseAndQuote(s) => {
                write!(f, "symbol {s} has the same base and quote asset")
            }
            MarketsError::TooManyDecimals { asset, decimals } => {
                write!(f, "asset {asset} has {decimals} decimals (at most {MAX_DECIMALS} supported)")
            }
        }
    }
}

impl std::error::Error for MarketsError {}

/// The configured assets and symbols; immutable once built.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Markets {
    assets: BTreeMap<AssetId, Asset>,
    symbols: BTreeMap<SymbolId, Symbol>,
    /// Whether the matching engine logs order events: `Rested` when an order rests (market
    /// data builds its book from them), `Rejected` when UBSCore refused a place (the audit
    /// trail's end of it). Off by default.
    order_events: bool,
}

impl Markets {
    /// Builds a configuration, validating ids and decimals. `symbols` are
    /// `(id, name, base, quote)`; `qty_unit` is derived from the base asset.
    pub fn new(
        assets: Vec<Asset>,
        symbols: Vec<(SymbolId, String, AssetId, AssetId)>,
    ) -> Result<Markets, MarketsError> {
        let mut markets = Markets::default();
        for asset in assets {
            if asset.decimals > MAX_DECIMALS {
                return Err(MarketsError::TooManyDecimals { asset: asset.id, decimals: asset.decimals });
            }
            if markets.assets.insert(asset.id, asset.clone()).is_some() {
                return Err(MarketsError::DuplicateAsset(asset.id));
            }
        }
        for (id, name, base, quote) in symbols {
            if base == quote {
                return Err(MarketsError::SameBaseAndQuote(id));
            }
            let base_decimals = match markets.assets.get(&base) {
                Some(a) => a.decimals,
                None => return Err(MarketsError::UnknownAsset { symbol: id, asset: base }),
            };
            if !markets.assets.contains_key(&quote) {
                return Err(MarketsError::UnknownAsset { symbol: id, asset: quote });
            }
            let qty_unit = 10u64.pow(u32::from(base_decimals));
            let symbol = Symbol { id, name, base, quote, qty_unit };
            if markets.symbols.insert(id, symbol).is_some() {
                return Err(MarketsError::DuplicateSymbol(id));
            }
        }
        Ok(markets)
    }

    /// The asset with this id.
    pub fn asset(&self, id: AssetId) -> Option<&Asset> {
        self.assets.get(&id)
    }

    /// The symbol with this id.
    pub fn symbol(&self, id: SymbolId) -> Option<&Symbol> {
        self.symbols.get(&id)
    }

    /// All assets in id order.
    pub fn assets(&self) -> impl Iterator<Item = &Asset> {
        self.assets.values()
    }

    /// All symbols in id order.
    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.symbols.values()
    }

    /// The same markets, with order events logged (`true`) or not.
    pub fn with_order_events(mut self, on: bool) -> Markets {
        self.order_events = on;
        self
    }

    /// Whether the matching engine logs order events (`Rested`, `Rejected`).
    pub fn order_events(&self) -> bool {
        self.order_events
    }
}

/// Available and frozen (locked by open orders) minor units of one asset of one user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Free to withdraw or lock.
    pub avail: Amount,
    /// Locked by resting orders.
    pub frozen: Amount,
}

/// An order resting on a book, as exported by the engine and the model for comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RestingOrder {
    /// Order id.
    pub order_id: OrderId,
    /// Owner.
    pub user: UserId,
    /// Book.
    pub symbol: SymbolId,
    /// Bid or ask.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Quantity as placed.
    pub qty: Qty,
    /// Quantity filled so far.
    pub filled: Qty,
}
