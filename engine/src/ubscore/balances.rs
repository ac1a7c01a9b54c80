//! Per (user, asset) balances, with the per-asset total supply that bounds them.

use crate::command::RejectReason;
use crate::types::{Amount, AssetId, Balance, UserId};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A balance row's key.
type Key = (UserId, AssetId);

/// Rows by key.
type Rows = FxHashMap<Key, Balance>;

/// Balances of all users. Every row is bounded by its asset's supply, and deposits that
/// would push the supply past `u64::MAX` are rejected, so no credit can ever overflow.
///
/// A snapshot freezes the rows instead of copying them ([`Balances::share`]): they become
/// a shared, immutable `base`, and `rows` holds only what was written since (a row is
/// copied into it on its first write). Once the snapshot is written, [`Balances::reclaim`]
/// folds the rows written meanwhile back into the base. Without a snapshot in flight there
/// is no base, and a row costs one hash probe.
#[derive(Clone, Debug, Default)]
pub struct Balances {
    rows: Rows,
    base: Option<Arc<Rows>>,
    supply: BTreeMap<AssetId, Amount>,
}

/// The balances as they were when [`Balances::share`] was called.
#[derive(Clone, Debug)]
pub struct BalancesView {
    rows: Arc<Rows>,
    supply: BTreeMap<AssetId, Amount>,
}

impl BalancesView {
    /// Every row, sorted.
    pub fn rows_sorted(&self) -> Vec<(Key, Balance)> {
        sorted(self.rows.iter())
    }

    /// Σ (avail + frozen) per asset.
    pub fn supply(&self) -> &BTreeMap<AssetId, Amount> {
        &self.supply
    }
}

fn sorted<'a>(rows: impl Iterator<Item = (&'a Key, &'a Balance)>) -> Vec<(Key, Balance)> {
    let mut rows: Vec<_> = rows.map(|(k, b)| (*k, *b)).collect();
    rows.sort_unstable_by_key(|(k, _)| *k);
    rows
}

impl Balances {
    /// The rows as they are now, for a snapshot: frozen and shared, not copied (unless a
    /// previous snapshot still holds the base, when base and newer rows are merged into a
    /// new one).
    pub fn share(&mut self) -> BalancesView {
        self.reclaim();
        let base = match self.base.take() {
            None => Arc::new(std::mem::take(&mut self.rows)),
            Some(old) => {
                let mut merged = (*old).clone();
                merged.extend(self.rows.drain());
                Arc::new(merged)
            }
        };
        self.base = Some(base.clone());
        BalancesView { rows: base, supply: self.supply.clone() }
    }

    /// Folds the rows written since the last snapshot back into its base, once no snapshot
    /// holds the base any more (a pause as long as those rows are many); false while one does.
    pub fn reclaim(&mut self) -> bool {
        let Some(base) = self.base.take() else { return true };
        match Arc::try_unwrap(base) {
            Ok(mut rows) => {
                rows.extend(self.rows.drain());
                self.rows = rows;
                true
            }
            Err(shared) => {
                self.base = Some(shared);
                false
            }
        }
    }

    /// One balance (zero if the row does not exist).
    pub fn get(&self, user: UserId, asset: AssetId) -> Balance {
        let key = (user, asset);
        match (self.rows.get(&key), &self.base) {
            (Some(row), _) => *row,
            (None, Some(base)) => base.get(&key).copied().unwrap_or_default(),
            (None, None) => Balance::default(),
        }
    }

    /// The row of `key` for writing, if it exists (copied out of a frozen base first).
    fn row_mut(&mut self, key: Key) -> Option<&mut Balance> {
        self.thaw(key);
        self.rows.get_mut(&key)
    }

    /// The row of `key` for writing, made (zero) if it does not exist.
    fn row_or_new(&mut self, key: Key) -> &mut Balance {
        self.thaw(key);
        self.rows.entry(key).or_default()
    }

    /// Copies the row of `key` out of the frozen base, if there is one and it is not
    /// copied yet.
    #[inline]
    fn thaw(&mut self, key: Key) {
        if let Some(base) = &self.base
            && !self.rows.contains_key(&key)
            && let Some(row) = base.get(&key)
        {
            self.rows.insert(key, *row);
        }
    }

    /// Every row, in no particular order.
    fn all(&self) -> impl Iterator<Item = (&Key, &Balance)> {
        let older = self.base.iter().flat_map(|b| b.iter()).filter(|(k, _)| !self.rows.contains_key(k));
        self.rows.iter().chain(older)
    }

    /// `avail += amount`, if the asset's supply stays within 64 bits.
    pub fn deposit(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), RejectReason> {
        let supply = self.supply.entry(asset).or_insert(0);
        *supply = supply.checked_add(amount).ok_or(RejectReason::Overflow)?;
        let row = self.row_or_new((user, asset));
        // Bounded by the supply checked above.
        row.avail += amount;
        Ok(())
    }

    /// `avail -= amount`, if available.
    pub fn withdraw(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), RejectReason> {
        let row = self.row_mut((user, asset)).ok_or(RejectReason::InsufficientBalance)?;
        row.avail = row.avail.checked_sub(amount).ok_or(RejectReason::InsufficientBalance)?;
        let supply = self.supply.get_mut(&asset).expect("a balance row implies a supply entry");
        *supply -= amount;
        Ok(())
    }

    /// Moves `amount` from avail to frozen, if available.
    pub fn lock(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<(), RejectReason> {
        let row = match self.row_mut((user, asset)) {
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
        let row = self.row_or_new((user, asset));
        row.avail = row
            .avail
            .checked_add(amount)
            .ok_or_else(|| format!("credit of {amount} overflows user {user} asset {asset}"))?;
        Ok(())
    }

    fn frozen_row(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Result<&mut Balance, String> {
        match self.row_mut((user, asset)) {
            Some(row) if row.frozen >= amount => Ok(row),
            row => {
                Err(format!("user {user} asset {asset}: frozen {} < {amount}", row.map_or(0, |r| r.frozen)))
            }
        }
    }

    /// Every row, sorted.
    pub fn rows_sorted(&self) -> Vec<((UserId, AssetId), Balance)> {
        sorted(self.all())
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
        Ok(Balances { rows: map, base: None, supply })
    }

    /// All rows with a non-zero balance, sorted.
    pub fn non_zero(&self) -> BTreeMap<(UserId, AssetId), Balance> {
        self.all().filter(|(_, b)| b.avail != 0 || b.frozen != 0).map(|(k, b)| (*k, *b)).collect()
    }

    /// Σ (avail + frozen) per asset: deposits minus withdrawals.
    pub fn supply(&self) -> &BTreeMap<AssetId, Amount> {
        &self.supply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_keeps_the_rows_it_saw_while_the_balances_go_on() {
        let mut b = Balances::default();
        let users = 100u64;
        for user in 0..users {
            b.deposit(user, 1, 10).expect("deposit");
        }
        let view = b.share();
        b.deposit(0, 1, 5).expect("a frozen row, written");
        b.lock(7, 1, 4).expect("another");
        b.deposit(users, 2, 7).expect("a new row");
        assert!(!b.reclaim(), "the view still holds the base");
        let before = view.rows_sorted();
        assert_eq!(before.len(), users as usize);
        assert!(
            before.iter().all(|(_, row)| *row == Balance { avail: 10, frozen: 0 }),
            "the view did not move"
        );
        assert_eq!(view.supply().get(&1), Some(&(10 * users)));
        assert_eq!(
            (b.get(0, 1).avail, b.get(7, 1), b.get(50, 1).avail),
            (15, Balance { avail: 6, frozen: 4 }, 10)
        );
        let live = b.rows_sorted();
        assert_eq!(live.len(), users as usize + 1);
        assert_eq!(b.non_zero().len(), users as usize + 1);
        let again = b.share();
        assert_eq!(again.rows_sorted(), live, "a second snapshot while the first holds its base");
        drop((view, again));
        assert!(b.reclaim());
        assert_eq!(b.rows_sorted(), live, "nothing lost folding back");
        let rebuilt = Balances::from_parts(b.rows_sorted(), b.supply().clone()).expect("consistent");
        assert_eq!(rebuilt.rows_sorted(), live);
    }
}
