//! Posting lists: the slots holding a token or facet, in slot order.
//!
//! Slots only grow, so a new entry is appended at the end. A removed entry
//! leaves its slot in the lists as a dead item, counted and skipped; a list
//! whose items are more than half dead is compacted, so the work of
//! removals stays proportional to the items they add.

/// A posting: slot and weight (0 for facets).
pub type Posting = (u32, u32);

/// The slots holding one token or facet.
#[derive(Debug, Default)]
pub struct Postings {
    items: Vec<Posting>,
    dead: usize,
}

impl Postings {
    /// Items whose slot is alive.
    pub fn live_len(&self) -> usize {
        self.items.len() - self.dead
    }

    /// Every item, dead ones included, in slot order.
    pub fn items(&self) -> &[Posting] {
        &self.items
    }

    /// Adds `slot`, greater than every slot already in the list.
    pub fn push(&mut self, slot: u32, weight: u32) {
        debug_assert!(self.items.last().is_none_or(|(last, _)| *last < slot));
        self.items.push((slot, weight));
    }

    /// Counts one of the items as dead; compacts the list, keeping the slots
    /// for which `alive` holds, once more than half are dead.
    pub fn bury(&mut self, alive: impl Fn(u32) -> bool) {
        self.dead += 1;
        if self.dead * 2 > self.items.len() {
            self.items.retain(|(slot, _)| alive(*slot));
            self.dead = 0;
        }
    }
}

/// A cursor over a list that only moves forward, for intersections.
pub struct Cursor<'a> {
    items: &'a [Posting],
    at: usize,
    /// Jump by binary search instead of stepping (for lists much longer
    /// than the one driving the intersection).
    gallop: bool,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `postings`; `driver_len` is the length of
    /// the list whose slots will be looked up.
    pub fn new(postings: &'a Postings, driver_len: usize) -> Self {
        Self {
            items: postings.items(),
            at: 0,
            gallop: postings.items.len() > driver_len.saturating_mul(8),
        }
    }

    /// The weight of `slot` if the list holds it. Successive calls must ask
    /// for growing slots.
    pub fn seek(&mut self, slot: u32) -> Option<u32> {
        let rest = self.items.get(self.at..).unwrap_or_default();
        if self.gallop {
            self.at += rest.partition_point(|(s, _)| *s < slot);
        } else {
            self.at += rest.iter().take_while(|(s, _)| *s < slot).count();
        }
        match self.items.get(self.at) {
            Some((s, weight)) if *s == slot => Some(*weight),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_find_slots_stepping_or_galloping() {
        let mut long = Postings::default();
        (0..1000).for_each(|s| long.push(s * 2, s));
        for driver_len in [1000, 10] {
            let mut cursor = Cursor::new(&long, driver_len);
            assert_eq!(cursor.seek(3), None);
            assert_eq!(cursor.seek(4), Some(2));
            assert_eq!(cursor.seek(1998), Some(999));
            assert_eq!(cursor.seek(5000), None);
        }
    }

    #[test]
    fn compacts_when_more_than_half_is_dead() {
        let mut list = Postings::default();
        (0..4).for_each(|s| list.push(s, 1));
        let alive = |s: u32| s >= 3;
        list.bury(alive);
        list.bury(alive);
        assert_eq!((list.items().len(), list.live_len()), (4, 2));
        list.bury(alive);
        assert_eq!(list.items(), [(3, 1)]);
        assert_eq!(list.live_len(), 1);
    }
}
