//! What a budget learned from its provider: limits stricter than the catalog's, and the refusals it did not
//! predict. Both are kept with the budget and saved, so a restart starts from what was learned.

use serde::{Deserialize, Serialize};

use crate::catalog::{Limits, Window};

/// How long a learned limit holds unless the provider states it again; afterwards the catalog's limit is tried
/// again, so a provider that raises its limits gets used fully, at the cost of at most one miss a day.
pub const LEARNED_FOR_MS: i64 = 24 * 3_600_000;

/// A limit the provider stated, or that a refusal revealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedLimit {
    /// Which window.
    pub window: Window,
    /// The limit.
    pub limit: u32,
    /// Until when it holds (Unix ms).
    pub until_ms: i64,
}

/// The learned limits of one budget: at most one per window, each only ever tightening the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Learned(Vec<LearnedLimit>);

impl Learned {
    /// Records a limit the provider stated for `window`, until `now_ms` + [`LEARNED_FOR_MS`]: it replaces what
    /// was known, since providers change their limits. Returns whether the limit changed.
    pub fn stated(&mut self, window: Window, limit: u32, now_ms: i64) -> bool {
        self.record(window, limit, now_ms, |_, new| new)
    }

    /// Records a limit a refusal revealed for `window`: an upper bound, so it only ever tightens what is known
    /// (and renews it). Returns whether the limit changed.
    pub fn revealed(&mut self, window: Window, limit: u32, now_ms: i64) -> bool {
        self.record(window, limit, now_ms, u32::min)
    }

    fn record(
        &mut self,
        window: Window,
        limit: u32,
        now_ms: i64,
        merge: impl Fn(u32, u32) -> u32,
    ) -> bool {
        let until_ms = now_ms + LEARNED_FOR_MS;
        match self.0.iter_mut().find(|l| l.window == window) {
            Some(known) => {
                let merged = merge(known.limit, limit);
                let changed = merged != known.limit;
                known.limit = merged;
                known.until_ms = until_ms;
                changed
            }
            None => {
                self.0.push(LearnedLimit {
                    window,
                    limit,
                    until_ms,
                });
                true
            }
        }
    }

    /// Forgets limits that have run out; returns whether any did.
    pub fn expire(&mut self, now_ms: i64) -> bool {
        let before = self.0.len();
        self.0.retain(|l| l.until_ms > now_ms);
        self.0.len() != before
    }

    /// The learned limits as [`Limits`] (windows not learned are `None`).
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        for l in &self.0 {
            limits.set(l.window, Some(l.limit));
        }
        limits
    }

    /// Every learned limit.
    pub fn iter(&self) -> impl Iterator<Item = &LearnedLimit> {
        self.0.iter()
    }
}

/// Refusals the budget did not predict: the provider said 429 while the budget had room.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Misses {
    /// How many so far.
    pub count: u64,
    /// When the last one happened (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ms: Option<i64>,
    /// The window the last one hit, as the provider named it or as inferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// The provider's words for the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_replace_revelations_tighten_and_both_run_out() {
        let mut learned = Learned::default();
        assert!(learned.revealed(Window::Rpm, 5, 0));
        assert!(
            !learned.revealed(Window::Rpm, 8, 1000),
            "a looser bound only renews"
        );
        assert!(learned.revealed(Window::Rpm, 3, 2000));
        assert_eq!(learned.limits().rpm, Some(3));
        assert!(
            learned.stated(Window::Rpm, 6, 3000),
            "the provider raised it"
        );
        assert_eq!(learned.limits().rpm, Some(6));
        assert!(!learned.expire(3000 + LEARNED_FOR_MS - 1));
        assert!(learned.expire(3000 + LEARNED_FOR_MS));
        assert_eq!(learned.limits(), Limits::default());
    }
}
