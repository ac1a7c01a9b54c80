//! Per (user, asset) balances, with the per-asset total supply that bounds them.

use crate::command::RejectReason;
use crate::types::{Amount, AssetId, Balance, UserId};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Balances of all users. Every row is bounded by its asset's supply, and deposits that
/// would push the supply past `u64::MAX` are rejected, so no credit can ever overflow.
#[derive(Clone, Debug, Default)]
pub struct Balances {
    rows: FxHashMap<(UserId, AssetId), Balance>,
    supply: BTreeMap<AssetId, Amount>,
}

impl Balances {
    /// One balance (zero if the row does not exist).
    pub fn get(&self, user: UserId, asset: AssetId) -> Balance {
        self.rows.get(&(user, asset)).copied().unwrap_or_default()
    }

    /// `avail += amount`, if the asset's supply stays within 64 bits.
    pub fn deposit(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), RejectReason> {
        let supply = self.supply.entry(asset).or_insert(0);
        *supply = supply.checked_add(amount).ok_or(RejectReason::Overflow)?;
        let row = self.rows.entry((user, asset)).or_default();
        // Bounded by the supply checked above.
        row.avail += amount;
        Ok(())
    }

    /// `avail -= amount`, if available.
    pub fn withdraw(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), RejectReason> {
        let row = self.rows.get_mut(&(user, asset)).ok_or(RejectReason::InsufficientBalance)?;
        row.avail = row.avail.checked_sub(amount).ok_or(RejectReason::InsufficientBalance)?;
        let supply = self.supply.get_mut(&asset).expect("a balance row implies a supply entry");
        *supply -= amount;
        Ok(())
    }

    /// Moves `amount` from avail to frozen, if available.
    pub fn lock(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), RejectReason> {
        let row = match self.rows.get_mut(&(user, asset)) {
            Some(row) => row,
            // A zero lock on a missing row changes nothing and needs no row.
            None if amount == 0 => return Ok(()),
            None => return Err(RejectReason::InsufficientBalance),
        };
        row.avail = row.avail.checked_sub(amount).ok_or(RejectReason::InsufficientBalance)?;
        row.frozen += amount;
        Ok(())
    }

    /// Moves `amount` from frozen back to avail.
    pub fn unfreeze(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), String> {
        if amount == 0 {
            return Ok(());
        }
        let row = self.frozen_row(user, asset, amount)?;
        row.frozen -= amount;
        row.avail += amount;
        Ok(())
    }

    /// Removes `amount` from frozen (it leaves the user in a trade).
    pub fn spend_frozen(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), String> {
        if amount == 0 {
            return Ok(());
        }
        let row = self.frozen_row(user, asset, amount)?;
        row.frozen -= amount;
        Ok(())
    }

    /// Adds `amount` to avail (it enters the user in a trade).
    pub fn credit(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), String> {
        if amount == 0 {
            return Ok(());
        }
        let row = self.rows.entry((user, asset)).or_default();
        row.avail = row
            .avail
            .checked_add(amount)
            .ok_or_else(|| format!("credit of {amount} overflows user {user} asset {asset}"))?;
        Ok(())
    }

    fn frozen_row(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<&mut Balance, String> {
        match self.rows.get_mut(&(user, asset)) {
            Some(row) if row.frozen >= amount => Ok(row),
            row => {
                Err(format!("user {user} asset {asset}: frozen {} < {amount}", row.map_or(0, |r| r.frozen)))
            }
        }
    }

    /// Every row, sorted.
    pub fn rows_sorted(&self) -> Vec<((UserId, AssetId), Balance)> {
        let mut rows: Vec<_> = self.rows.iter().map(|(k, b)| (*k, *b)).collect();
        rows.sort_unstable_by_key(|(k, _)| *k);
        rows
    }

    /// Rebuilds balances from rows and supply, checking that they agree.
    pub fn from_parts(
        rows: Vec<((UserId, AssetId), Balance)>,
        supply: BTreeMap<AssetId, Amount>,
    ) -> Result<Balances, String> {
        let mut held: BTreeMap<AssetId, u128> = BTreeMap::new();
        let mut map = FxHashMap::with_capacity_and_hasher(rows.len(), Default::default());
        for (key, b) in rows {
            *held.entry(key.1).or_default() += u128::from(b.avail) + u128::from(b.frozen);
            if map.insert(key, b).is_some() {
                return Err(format!("balance row {key:?} appears twice"));
            }
        }
        for (asset, total) in &held {
            if u128::from(supply.get(asset).copied().unwrap_or(0)) != *total {
                return Err(format!("asset {asset}: rows hold {total}, supply says {:?}", supply.get(asset)));
            }
        }
        Ok(Balances { rows: map, supply })
    }

    /// All rows with a non-zero balance, sorted.
    pub fn non_zero(&self) -> BTreeMap<(UserId, AssetId), Balance> {
        self.rows.iter().filter(|(_, b)| b.avail != 0 || b.frozen != 0).map(|(k, b)| (*k, *b)).collect()
    }

    /// Σ (avail + frozen) per asset: deposits minus withdrawals.
    pub fn supply(&self) -> &BTreeMap<AssetId, Amount> {
        &self.supply
    }
}
