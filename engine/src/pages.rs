//! An append-only list kept in fixed-size pages that a snapshot can share instead of copy.
//!
//! A push never moves what is stored (a vector doubling copies everything and touches every
//! page twice). [`Pages::share`] hands out a read-only [`Shared`] view in time proportional
//! to the number of pages, not of items; the first write to a shared page afterwards copies
//! that page alone (unless the view is gone by then). Pages the list owns alone are plain
//! vectors, so reads and writes cost no atomic operations.

use std::sync::Arc;

/// Items per page.
pub const PAGE: usize = 4096;

#[derive(Clone, Debug)]
enum Page<T> {
    /// Written in place.
    Owned(Vec<T>),
    /// Shared with a view: copied (or taken back, if the view is gone) before a write.
    Shared(Arc<Vec<T>>),
}

impl<T: Clone> Page<T> {
    fn items(&self) -> &[T] {
        match self {
            Page::Owned(v) => v,
            Page::Shared(a) => a,
        }
    }

    fn items_mut(&mut self) -> &mut Vec<T> {
        if let Page::Shared(a) = self {
            let a = std::mem::take(a);
            *self = Page::Owned(Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()));
        }
        match self {
            Page::Owned(v) => v,
            Page::Shared(_) => unreachable!("made owned just above"),
        }
    }
}

/// The list (see the module documentation).
#[derive(Clone, Debug)]
pub struct Pages<T> {
    pages: Vec<Page<T>>,
    len: usize,
}

impl<T> Default for Pages<T> {
    fn default() -> Self {
        Pages { pages: Vec::new(), len: 0 }
    }
}

impl<T: Clone> Pages<T> {
    /// An empty list with room for the page table of `n` items.
    pub fn with_capacity(n: usize) -> Self {
        Pages { pages: Vec::with_capacity(n.div_ceil(PAGE)), len: 0 }
    }

    /// Appends `item`; returns its place.
    pub fn push(&mut self, item: T) -> usize {
        if self.len % PAGE == 0 {
            self.pages.push(Page::Owned(Vec::with_capacity(PAGE)));
        }
        let last = self.pages.last_mut().expect("a page with room was just ensured").items_mut();
        debug_assert!(last.len() < PAGE);
        last.push(item);
        self.len += 1;
        self.len - 1
    }

    /// The item at place `i`.
    pub fn get(&self, i: usize) -> &T {
        &self.pages[i / PAGE].items()[i % PAGE]
    }

    /// The item at place `i`, for writing (its page copied first if a view shares it).
    pub fn get_mut(&mut self, i: usize) -> &mut T {
        &mut self.pages[i / PAGE].items_mut()[i % PAGE]
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every item, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.pages.iter().flat_map(|p| p.items().iter())
    }

    /// A read-only view of the items as they are now, sharing every page.
    pub fn share(&mut self) -> Shared<T> {
        let pages = (self.pages.iter_mut())
            .map(|p| {
                if let Page::Owned(v) = p {
                    *p = Page::Shared(Arc::new(std::mem::take(v)));
                }
                match p {
                    Page::Shared(a) => a.clone(),
                    Page::Owned(_) => unreachable!("made shared just above"),
                }
            })
            .collect();
        Shared { pages }
    }
}

/// The items of a [`Pages`] as they were when [`Pages::share`] was called.
#[derive(Clone, Debug)]
pub struct Shared<T> {
    pages: Vec<Arc<Vec<T>>>,
}

impl<T> Shared<T> {
    /// Every item, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.pages.iter().flat_map(|p| p.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_and_order_hold_across_pages() {
        let mut p = Pages::with_capacity(10);
        for i in 0..(2 * PAGE + 3) {
            assert_eq!(p.push(i), i);
        }
        assert_eq!(p.len(), 2 * PAGE + 3);
        assert_eq!((*p.get(0), *p.get(PAGE), *p.get(2 * PAGE + 2)), (0, PAGE, 2 * PAGE + 2));
        *p.get_mut(PAGE + 1) = 7;
        assert!(p.iter().copied().eq((0..(2 * PAGE + 3)).map(|i| if i == PAGE + 1 { 7 } else { i })));
        assert!(Pages::<u8>::default().is_empty());
    }

    #[test]
    fn a_shared_view_does_not_see_later_writes_and_pushes() {
        let mut p = Pages::default();
        for i in 0..(PAGE + 2) {
            p.push(i);
        }
        let view = p.share();
        *p.get_mut(0) = 99;
        *p.get_mut(PAGE + 1) = 98;
        p.push(5);
        assert!(view.iter().copied().eq(0..(PAGE + 2)), "the view is the list as it was");
        assert_eq!((*p.get(0), *p.get(PAGE + 1), p.len()), (99, 98, PAGE + 3));
        drop(view);
        let again = p.share();
        *p.get_mut(1) = 3;
        assert_eq!(again.iter().nth(1), Some(&1));
    }
}
