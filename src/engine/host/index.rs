//! The four-tuple index: which connection a received segment belongs to.
//!
//! A sorted `Vec` searched by bisection, with the last hit cached in front of it. A
//! download's frames come in runs of one connection (a receive batch is mostly one flow),
//! so the cache answers nearly every lookup with one comparison; with a few dozen
//! connections the bisection is a handful of comparisons with no hashing, and inserting or
//! removing (once per connection) moves a few hundred bytes.

use std::net::SocketAddr;

/// Our address and the peer's: RFC 9293 §3.3.4's identification of a connection (the
/// protocol is always TCP here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FourTuple {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// From four-tuples to values (connection handles).
#[derive(Debug)]
pub struct FourTupleIndex<V: Copy> {
    sorted: Vec<(FourTuple, V)>,
    last: Option<(FourTuple, V)>,
}

impl<V: Copy> Default for FourTupleIndex<V> {
    fn default() -> Self {
        FourTupleIndex {
            sorted: Vec::with_capacity(16),
            last: None,
        }
    }
}

impl<V: Copy> FourTupleIndex<V> {
    /// The value of `key`, if any.
    #[inline]
    pub fn get(&mut self, key: &FourTuple) -> Option<V> {
        if let Some((last, value)) = self.last
            && last == *key
        {
            return Some(value);
        }
        let found = self
            .sorted
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| self.sorted[i].1)?;
        self.last = Some((*key, found));
        Some(found)
    }

    /// Adds or replaces `key`.
    pub fn insert(&mut self, key: FourTuple, value: V) {
        match self.sorted.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.sorted[i].1 = value,
            Err(i) => self.sorted.insert(i, (key, value)),
        }
        self.last = None;
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &FourTuple) {
        if let Ok(i) = self.sorted.binary_search_by(|(k, _)| k.cmp(key)) {
            self.sorted.remove(i);
        }
        self.last = None;
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(local_port: u16, remote_port: u16) -> FourTuple {
        FourTuple {
            local: SocketAddr::from(([10, 0, 0, 1], local_port)),
            remote: SocketAddr::from(([10, 0, 0, 2], remote_port)),
        }
    }

    #[test]
    fn finds_what_was_inserted_and_forgets_what_was_removed() {
        let mut index = FourTupleIndex::default();
        for port in [61005u16, 61001, 61003, 61002, 61004] {
            index.insert(tuple(port, 80), port);
        }
        for port in 61001..=61005u16 {
            assert_eq!(index.get(&tuple(port, 80)), Some(port));
            // The cached answer is the same.
            assert_eq!(index.get(&tuple(port, 80)), Some(port));
        }
        assert_eq!(
            index.get(&tuple(61001, 443)),
            None,
            "the remote port counts"
        );
        index.remove(&tuple(61003, 80));
        assert_eq!(index.get(&tuple(61003, 80)), None, "no stale cache hit");
        assert_eq!(index.get(&tuple(61004, 80)), Some(61004));
        assert_eq!(index.len(), 4);
    }
}
