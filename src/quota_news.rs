//! What an upstream answer said about a key's quota, by window: the limit, what is left, when it resets, and for
//! a refusal which windows it may have hit. Providers read it off the wire (`providers::quota`); budgets learn
//! from it (`routing::budget`). Types only.

use std::time::Duration;

use crate::catalog::Window;

/// What an answer said about one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowReport {
    /// The limit the provider applies.
    pub limit: Option<u64>,
    /// What is left of it.
    pub remaining: Option<u64>,
    /// How long until it is whole again (or, for a sliding window, until the oldest use leaves it).
    pub reset: Option<Duration>,
}

/// What one upstream answer said about the key's quota.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotaNews {
    /// Reports by window, as the provider stated them.
    pub windows: Vec<(Window, WindowReport)>,
    /// For a refusal: the windows it may have hit, narrowest knowledge first; empty when it names none.
    pub exceeded: Vec<Window>,
    /// Whether the figures (and a refusal) are the key's, shared by all its models, rather than one model's:
    /// OpenRouter's `free-models-per-day`, for one.
    pub key_wide: bool,
}

impl QuotaNews {
    /// Whether the answer said nothing about quotas.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.exceeded.is_empty()
    }

    /// What was said about `window`.
    pub fn report(&self, window: Window) -> Option<&WindowReport> {
        self.windows
            .iter()
            .find(|(w, _)| *w == window)
            .map(|(_, r)| r)
    }

    /// Merges a report into what is known of its window (later statements fill gaps, never erase).
    pub fn add(&mut self, window: Window, report: WindowReport) {
        match self.windows.iter_mut().find(|(w, _)| *w == window) {
            Some((_, known)) => {
                known.limit = report.limit.or(known.limit);
                known.remaining = report.remaining.or(known.remaining);
                known.reset = report.reset.or(known.reset);
            }
            None => self.windows.push((window, report)),
        }
    }
}
