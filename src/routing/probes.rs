//! When background key probes run, and what a probe's outcome means for a key's status.
//!
//! Probes of one round are spread over the whole interval, interleaved across platforms so one provider never
//! sees its keys probed back to back, with jitter so restarts do not synchronise them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::failure::FailureKind;
use crate::platform::Platform;
use crate::provider_key::{KeyId, KeyStatus};

/// The key status a probe outcome implies; a transport blip is `error`, never `invalid`.
pub fn status_after(outcome: Result<(), FailureKind>) -> KeyStatus {
    match outcome {
        Ok(()) => KeyStatus::Healthy,
        Err(FailureKind::InvalidKey) => KeyStatus::Invalid,
        Err(FailureKind::RateLimited { .. } | FailureKind::QuotaExhausted { .. }) => {
            KeyStatus::RateLimited
        }
        Err(_) => KeyStatus::Error,
    }
}

/// When, from the start of a round, each key is probed: platforms interleaved, evenly spaced over `interval`,
/// each slot jittered by up to half its width (from `seed`).
pub fn schedule(
    keys: &[(KeyId, Platform)],
    interval: Duration,
    seed: u64,
) -> Vec<(KeyId, Duration)> {
    let mut by_platform: BTreeMap<Platform, Vec<KeyId>> = BTreeMap::new();
    for &(id, platform) in keys {
        by_platform.entry(platform).or_default().push(id);
    }
    let mut order = Vec::with_capacity(keys.len());
    let mut round = 0;
    while order.len() < keys.len() {
        for ids in by_platform.values() {
            if let Some(&id) = ids.get(round) {
                order.push(id);
            }
        }
        round += 1;
    }
    let slot = interval / u32::try_from(order.len().max(1)).unwrap_or(u32::MAX);
    let mut state = seed | 1;
    order
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let jitter = slot.mul_f64((state % 1000) as f64 / 2000.0);
            (id, slot * u32::try_from(i).unwrap_or(u32::MAX) + jitter)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_statuses() {
        assert_eq!(status_after(Ok(())), KeyStatus::Healthy);
        assert_eq!(
            status_after(Err(FailureKind::InvalidKey)),
            KeyStatus::Invalid
        );
        assert_eq!(
            status_after(Err(FailureKind::RateLimited { retry_after: None })),
            KeyStatus::RateLimited
        );
        assert_eq!(status_after(Err(FailureKind::Timeout)), KeyStatus::Error);
        assert_eq!(status_after(Err(FailureKind::Transient)), KeyStatus::Error);
    }

    #[test]
    fn probes_are_spread_interleaved_and_jittered() {
        let keys = [
            (KeyId(1), Platform::Groq),
            (KeyId(2), Platform::Groq),
            (KeyId(3), Platform::Groq),
            (KeyId(4), Platform::Mistral),
        ];
        let interval = Duration::from_secs(400);
        let plan = schedule(&keys, interval, 42);
        let ids: Vec<i64> = plan.iter().map(|(id, _)| id.0).collect();
        assert_eq!(
            ids,
            [1, 4, 2, 3],
            "platforms alternate while both have keys left"
        );
        for (i, (_, at)) in plan.iter().enumerate() {
            let start = Duration::from_secs(100 * i as u64);
            assert!(
                *at >= start && *at < start + Duration::from_secs(50),
                "slot {i} at {at:?}"
            );
        }
        assert_ne!(
            schedule(&keys, interval, 7),
            plan,
            "another seed jitters differently"
        );
        assert!(schedule(&[], interval, 1).is_empty());
    }
}
