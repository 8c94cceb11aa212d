//! The response cache (`RESPONSE_CACHE_TTL_SECS`): successful, complete answers kept in memory under their
//! request's [`CacheKey`] for the TTL, within `RESPONSE_CACHE_MAX_MB` (the oldest go first), so an identical
//! request is answered without spending any quota. It keeps answers in the gateway's own shape (an OpenAI chat
//! completion, or an embeddings list) and counts hits and misses for `/metrics`. It must not know front doors'
//! shapes or the network; the pipeline looks up, replays and fills.

pub mod key;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::openai::chat::Usage;
use crate::platform::Platform;
pub use key::{Allowed, CacheKey, Scope};

/// What an entry costs beyond its answer's bytes (its key, bookkeeping, the model's name).
const ENTRY_OVERHEAD: usize = 128;

/// One kept answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// The answer in the gateway's shape.
    pub body: Bytes,
    /// Its usage, as it was reported (or estimated) when it was served.
    pub usage: Usage,
    /// Who served it.
    pub platform: Platform,
    /// The model that served it.
    pub model: Arc<str>,
}

impl Cached {
    fn size(&self) -> usize {
        self.body.len() + self.model.len() + ENTRY_OVERHEAD
    }
}

/// What `/metrics` shows of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests the cache could have answered and did not.
    pub misses: u64,
    /// Bytes kept now.
    pub bytes: u64,
    /// Answers kept now.
    pub entries: u64,
    /// Answers dropped to stay within the size bound.
    pub evictions: u64,
}

struct Entry {
    answer: Arc<Cached>,
    stored: Instant,
    /// Which insertion this is, so a replaced entry's old place in the order is recognised.
    seq: u64,
}

/// The entries and their order of insertion (the TTL is one for all, so the oldest also expire first).
#[derive(Default)]
struct Entries {
    map: HashMap<CacheKey, Entry>,
    order: VecDeque<(CacheKey, u64)>,
    bytes: usize,
    next_seq: u64,
    evictions: u64,
}

impl Entries {
    /// Drops the oldest place in the order (and its entry, unless that was replaced since).
    fn drop_oldest(&mut self) -> Option<Instant> {
        let (key, seq) = self.order.pop_front()?;
        match self.map.get(&key) {
            Some(entry) if entry.seq == seq => {
                let stored = entry.stored;
                self.forget(&key);
                Some(stored)
            }
            _ => None,
        }
    }

    fn forget(&mut self, key: &CacheKey) {
        if let Some(entry) = self.map.remove(key) {
            self.bytes -= entry.answer.size();
        }
    }

    fn expire(&mut self, ttl: Duration, now: Instant) {
        while let Some((key, seq)) = self.order.front().copied() {
            match self.map.get(&key) {
                Some(entry) if entry.seq == seq && now.duration_since(entry.stored) < ttl => break,
                _ => {
                    self.drop_oldest();
                }
            }
        }
    }
}

/// Kept answers, shared by every worker.
pub struct ResponseCache {
    ttl: Duration,
    max_bytes: usize,
    /// Whether client keys read and fill the owner's entries (otherwise each client has its own).
    shared: bool,
    entries: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ResponseCache {
    /// A cache keeping answers for `ttl` within `max_bytes`; `shared` lets client keys use one set of entries.
    pub fn new(ttl: Duration, max_bytes: usize, shared: bool) -> ResponseCache {
        ResponseCache {
            ttl,
            max_bytes,
            shared,
            entries: Mutex::new(Entries::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The entries a client key (`None`: the owner) reads and fills.
    pub fn scope(&self, client: Option<i64>) -> Scope {
        match client {
            Some(id) if !self.shared => Scope::Client(id),
            _ => Scope::Shared,
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        // Every change keeps the entries consistent before anything could panic; a poisoned lock is usable.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer kept for `key`, if it is younger than the TTL; counts a hit or a miss.
    pub fn get(&self, key: &CacheKey, now: Instant) -> Option<Arc<Cached>> {
        let found = {
            let mut entries = self.entries();
            entries.expire(self.ttl, now);
            entries.map.get(key).map(|entry| entry.answer.clone())
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Counts a request that could not be answered from the cache without looking (its client said so).
    pub fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps `answer` under `key` (replacing what was there), dropping the oldest answers until it fits. An
    /// answer larger than the whole bound is not kept.
    pub fn put(&self, key: CacheKey, answer: Cached, now: Instant) {
        let size = answer.size();
        if size > self.max_bytes {
            return;
        }
        let mut entries = self.entries();
        entries.expire(self.ttl, now);
        entries.forget(&key);
        while entries.bytes + size > self.max_bytes && !entries.order.is_empty() {
            if entries.drop_oldest().is_some() {
                entries.evictions += 1;
            }
        }
        let seq = entries.next_seq;
        entries.next_seq += 1;
        entries.bytes += size;
        entries.order.push_back((key, seq));
        entries.map.insert(
            key,
            Entry {
                answer: Arc::new(answer),
                stored: now,
                seq,
            },
        );
    }

    /// Counts and sizes, for `/metrics`.
    pub fn stats(&self) -> CacheStats {
        let entries = self.entries();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes: entries.bytes as u64,
            entries: entries.map.len() as u64,
            evictions: entries.evictions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey::of(
            "/v1/chat/completions",
            Scope::Shared,
            format!("{{\"n\":{n}}}").as_bytes(),
        )
        .unwrap()
    }

    fn answer(body_len: usize) -> Cached {
        Cached {
            body: Bytes::from(vec![b'x'; body_len]),
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
            },
            platform: Platform::Groq,
            model: Arc::from("m"),
        }
    }

    #[test]
    fn an_answer_is_kept_for_the_ttl_and_counted() {
        let cache = ResponseCache::new(Duration::from_secs(60), 1 << 20, false);
        let t0 = Instant::now();
        assert!(cache.get(&key(1), t0).is_none());
        cache.put(key(1), answer(10), t0);
        assert_eq!(
            *cache.get(&key(1), t0 + Duration::from_secs(59)).unwrap(),
            answer(10)
        );
        assert!(cache.get(&key(2), t0).is_none());
        assert!(
            cache.get(&key(1), t0 + Duration::from_secs(60)).is_none(),
            "expired"
        );
        let stats = cache.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.entries, stats.bytes),
            (1, 3, 0, 0)
        );
    }

    #[test]
    fn the_bound_drops_the_oldest_first() {
        let one = answer(1000).size();
        let cache = ResponseCache::new(Duration::from_secs(60), one * 3, false);
        let t0 = Instant::now();
        for n in 1..=3 {
            cache.put(key(n), answer(1000), t0);
        }
        assert_eq!(cache.stats().bytes, (one * 3) as u64);
        cache.put(key(4), answer(1000), t0);
        assert!(cache.get(&key(1), t0).is_none(), "the oldest went");
        for n in 2..=4 {
            assert!(cache.get(&key(n), t0).is_some());
        }
        // A replaced entry takes its new place in the order; its old place is skipped.
        cache.put(key(2), answer(1000), t0);
        cache.put(key(5), answer(1000), t0);
        assert!(cache.get(&key(3), t0).is_none());
        assert!(cache.get(&key(2), t0).is_some());
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.evictions), (3, 2));
        assert_eq!(stats.bytes, (one * 3) as u64);
        // Too large for the whole bound: not kept, nothing dropped for it.
        cache.put(key(6), answer(one * 3), t0);
        assert!(cache.get(&key(6), t0).is_none());
        assert_eq!(cache.stats().entries, 3);
    }

    #[test]
    fn clients_have_their_own_entries_unless_shared() {
        let own = ResponseCache::new(Duration::from_secs(1), 1, false);
        assert_eq!(own.scope(None), Scope::Shared);
        assert_eq!(own.scope(Some(7)), Scope::Client(7));
        let shared = ResponseCache::new(Duration::from_secs(1), 1, true);
        assert_eq!(shared.scope(Some(7)), Scope::Shared);
    }
}
