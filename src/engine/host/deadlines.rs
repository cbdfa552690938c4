//! The deadline queue: when each connection, session or task next needs the host.
//!
//! A min-heap of `(instant, key)` with lazy invalidation, the usual shape of an event
//! loop's timer queue. The owner of a key remembers the one instant it queued for it; an
//! entry whose instant is not the remembered one is stale and skipped when it reaches the
//! top. Two rules keep the heap about one entry per key:
//!
//! - a key is pushed again only when its new deadline is *earlier* than the queued one;
//! - a later deadline leaves the early entry in place: it fires early, the owner finds its
//!   real deadline not yet reached and queues that one (one spurious wake-up per change,
//!   never a missed one).
//!
//! So a connection whose retransmission timer moves forward on every ACK costs nothing
//! here until the timer's old instant comes, and the heap never grows with stale entries.

use core::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::time::Instant;

/// Instants keyed by `K`, earliest first.
#[derive(Debug)]
pub struct DeadlineQueue<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord> Default for DeadlineQueue<K> {
    fn default() -> Self {
        DeadlineQueue {
            heap: BinaryHeap::with_capacity(64),
        }
    }
}

impl<K: Ord + Copy> DeadlineQueue<K> {
    /// Queues `key` at `at`. The caller records `at` as the key's queued instant.
    pub fn push(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest entry that `is_current` accepts, dropping stale ones on the way.
    pub fn next(&mut self, mut is_current: impl FnMut(K, Instant) -> bool) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.heap.peek().copied() {
            if is_current(key, at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the earliest current entry due at `now` (its instant ≤ `now`), if any. The
    /// caller forgets the key's queued instant: it is no longer in the queue.
    pub fn pop_due(
        &mut self,
        now: Instant,
        mut is_current: impl FnMut(K, Instant) -> bool,
    ) -> Option<K> {
        while let Some(Reverse((at, key))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if is_current(key, at) {
                return Some(key);
            }
        }
        None
    }

    /// The earliest instant in the heap, stale or not: a wake-up that may come early (the
    /// owner then re-queues), never late.
    pub fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Entries in the heap, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;
    use std::collections::HashMap;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    /// The owner's side: the one instant queued per key, and the push-only-if-earlier rule.
    #[derive(Default)]
    struct Owner {
        queue: DeadlineQueue<u32>,
        queued: HashMap<u32, Instant>,
    }

    impl Owner {
        fn schedule(&mut self, key: u32, deadline: Instant) {
            if self.queued.get(&key).is_none_or(|&q| deadline < q) {
                self.queued.insert(key, deadline);
                self.queue.push(deadline, key);
            }
        }

        fn due(&mut self, now: Instant) -> Vec<u32> {
            let mut due = Vec::new();
            let queued = &mut self.queued;
            while let Some(key) = self
                .queue
                .pop_due(now, |k, when| queued.get(&k) == Some(&when))
            {
                queued.remove(&key);
                due.push(key);
            }
            due
        }

        fn next(&mut self) -> Option<Instant> {
            let queued = &self.queued;
            self.queue.next(|k, when| queued.get(&k) == Some(&when))
        }
    }

    #[test]
    fn earliest_first_and_only_when_due() {
        let mut owner = Owner::default();
        owner.schedule(1, at(30));
        owner.schedule(2, at(10));
        owner.schedule(3, at(20));
        assert_eq!(owner.next(), Some(at(10)));
        assert_eq!(owner.due(at(5)), Vec::<u32>::new());
        assert_eq!(owner.due(at(20)), vec![2, 3]);
        assert_eq!(owner.next(), Some(at(30)));
        assert_eq!(owner.due(at(100)), vec![1]);
        assert_eq!(owner.next(), None);
    }

    #[test]
    fn an_earlier_deadline_replaces_the_queued_one() {
        let mut owner = Owner::default();
        owner.schedule(7, at(50));
        owner.schedule(7, at(10));
        assert_eq!(owner.next(), Some(at(10)));
        assert_eq!(
            owner.due(at(60)),
            vec![7],
            "the stale 50 ms entry fires nothing"
        );
        assert!(owner.queue.is_empty());
    }

    #[test]
    fn a_later_deadline_fires_early_once_and_the_heap_stays_small() {
        let mut owner = Owner::default();
        owner.schedule(1, at(10));
        // A retransmission timer pushed forward on every ACK: never re-queued.
        for ms in 11..1000 {
            owner.schedule(1, at(ms));
        }
        assert_eq!(owner.queue.len(), 1, "one entry, not one per change");
        // It fires at the old instant; the owner then queues its real deadline.
        assert_eq!(owner.due(at(10)), vec![1]);
        owner.schedule(1, at(999));
        assert_eq!(owner.next(), Some(at(999)));
    }

    #[test]
    fn keys_removed_by_their_owner_are_skipped() {
        let mut owner = Owner::default();
        owner.schedule(1, at(10));
        owner.schedule(2, at(20));
        owner.queued.remove(&1);
        assert_eq!(owner.next(), Some(at(20)));
        assert_eq!(owner.due(at(30)), vec![2]);
    }
}
