//! A sliding one-minute counter in one-second buckets, exact enough to never exceed a per-minute limit.

/// Number of one-second buckets in the window.
const SLOTS: usize = 60;

/// Counts events (requests or tokens) over the last 60 seconds.
#[derive(Debug, Clone)]
pub struct MinuteWindow {
    counts: [u64; SLOTS],
    seconds: [i64; SLOTS],
}

impl Default for MinuteWindow {
    fn default() -> Self {
        MinuteWindow {
            counts: [0; SLOTS],
            seconds: [i64::MIN; SLOTS],
        }
    }
}

impl MinuteWindow {
    /// Adds `n` at second `now_sec` (Unix seconds).
    pub fn add(&mut self, now_sec: i64, n: u64) {
        let slot = now_sec.rem_euclid(SLOTS as i64) as usize;
        if self.seconds[slot] != now_sec {
            self.seconds[slot] = now_sec;
            self.counts[slot] = 0;
        }
        self.counts[slot] = self.counts[slot].saturating_add(n);
    }

    /// Removes up to `n` previously added at second `at_sec`, if that second is still in the window.
    pub fn remove(&mut self, at_sec: i64, n: u64) {
        let slot = at_sec.rem_euclid(SLOTS as i64) as usize;
        if self.seconds[slot] == at_sec {
            self.counts[slot] = self.counts[slot].saturating_sub(n);
        }
    }

    /// Total over the 60 seconds ending at `now_sec`.
    pub fn sum(&self, now_sec: i64) -> u64 {
        self.live(now_sec).map(|(_, c)| c).sum()
    }

    /// Seconds until the total drops to `target` or below as old buckets expire (0 if already there).
    pub fn secs_until_at_most(&self, now_sec: i64, target: u64) -> u64 {
        let mut live: Vec<(i64, u64)> = self.live(now_sec).collect();
        live.sort_unstable_by_key(|(s, _)| *s);
        let mut total: u64 = live.iter().map(|(_, c)| c).sum();
        for (second, count) in live {
            if total <= target {
                break;
            }
            total -= count;
            if total <= target {
                return u64::try_from(second + SLOTS as i64 - now_sec)
                    .unwrap_or(1)
                    .max(1);
            }
        }
        0
    }

    fn live(&self, now_sec: i64) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.seconds
            .iter()
            .zip(self.counts.iter())
            .filter(move |(s, c)| **c > 0 && **s > now_sec - SLOTS as i64 && **s <= now_sec)
            .map(|(s, c)| (*s, *c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_expire_after_sixty_seconds() {
        let mut w = MinuteWindow::default();
        w.add(1000, 2);
        w.add(1030, 3);
        assert_eq!(w.sum(1030), 5);
        assert_eq!(w.sum(1059), 5);
        assert_eq!(w.sum(1060), 3);
        assert_eq!(w.sum(1090), 0);
    }

    #[test]
    fn slot_reuse_resets_old_counts() {
        let mut w = MinuteWindow::default();
        w.add(1000, 5);
        w.add(1060, 1);
        assert_eq!(w.sum(1060), 1);
    }

    #[test]
    fn wait_until_room() {
        let mut w = MinuteWindow::default();
        w.add(1000, 2);
        w.add(1010, 1);
        assert_eq!(w.secs_until_at_most(1020, 3), 0);
        assert_eq!(w.secs_until_at_most(1020, 2), 40);
        assert_eq!(w.secs_until_at_most(1020, 0), 50);
    }

    #[test]
    fn remove_adjusts_only_live_bucket() {
        let mut w = MinuteWindow::default();
        w.add(1000, 10);
        w.remove(1000, 4);
        assert_eq!(w.sum(1000), 6);
        w.remove(940, 6);
        assert_eq!(w.sum(1000), 6);
    }
}
