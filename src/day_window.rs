//! When a provider's daily quota comes back: at midnight UTC, at midnight Pacific time, or 24 hours after each
//! use. Which one a model has is catalog data; this module only does the calendar arithmetic.

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::timefmt::{civil_from_days, days_from_civil, now_unix_ms};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How a provider's per-day limits reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DayWindow {
    /// Every use counts for 24 hours. The safe assumption where a provider does not say: it is never looser
    /// than a calendar reset.
    #[default]
    #[serde(rename = "rolling-24h")]
    Rolling24h,
    /// Everything resets at 00:00 UTC (Cloudflare, OpenRouter).
    MidnightUtc,
    /// Everything resets at midnight in Los Angeles, daylight saving included (Google).
    MidnightPacific,
}

impl DayWindow {
    /// The name the catalog and `/api/budgets` use.
    pub fn as_str(self) -> &'static str {
        match self {
            DayWindow::Rolling24h => "rolling-24h",
            DayWindow::MidnightUtc => "midnight-utc",
            DayWindow::MidnightPacific => "midnight-pacific",
        }
    }

    /// The instant (Unix ms) at which a use made at `at_ms` stops counting.
    pub fn expiry(self, at_ms: i64) -> i64 {
        match self {
            DayWindow::Rolling24h => at_ms.saturating_add(DAY_MS),
            DayWindow::MidnightUtc => (at_ms.div_euclid(DAY_MS) + 1) * DAY_MS,
            DayWindow::MidnightPacific => {
                let local_day = (at_ms + pacific_offset_ms(at_ms)).div_euclid(DAY_MS);
                pacific_midnight(local_day + 1)
            }
        }
    }

    /// How long until what is used now stops counting (the bench a daily-quota refusal earns).
    pub fn until_reset(self) -> Duration {
        let now = now_unix_ms();
        Duration::from_millis(u64::try_from(self.expiry(now) - now).unwrap_or(0))
    }
}

/// Milliseconds to add to UTC for the time in Los Angeles at `utc_ms`: −8 h, or −7 h under daylight saving.
fn pacific_offset_ms(utc_ms: i64) -> i64 {
    if pacific_daylight_saving(utc_ms) {
        -7 * HOUR_MS
    } else {
        -8 * HOUR_MS
    }
}

/// The UTC instant of 00:00 in Los Angeles on `local_day` (days since 1970-01-01 in local time).
fn pacific_midnight(local_day: i64) -> i64 {
    let standard = local_day * DAY_MS + 8 * HOUR_MS;
    if pacific_daylight_saving(standard) {
        standard - HOUR_MS
    } else {
        standard
    }
}

/// US daylight saving: from 02:00 PST on the second Sunday of March (10:00 UTC) to 02:00 PDT on the first Sunday
/// of November (09:00 UTC).
fn pacific_daylight_saving(utc_ms: i64) -> bool {
    let (year, _, _) = civil_from_days(utc_ms.div_euclid(DAY_MS));
    let starts = nth_sunday(year, 3, 2) * DAY_MS + 10 * HOUR_MS;
    let ends = nth_sunday(year, 11, 1) * DAY_MS + 9 * HOUR_MS;
    (starts..ends).contains(&utc_ms)
}

/// The `n`th Sunday of a month, in days since 1970-01-01.
fn nth_sunday(year: i64, month: u32, n: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    // 1970-01-01 was a Thursday: weekday 0 is Sunday.
    let weekday = (first + 4).rem_euclid(7);
    first + (7 - weekday) % 7 + 7 * (n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC date and time.
    fn utc(year: i64, month: u32, day: u32, hour: i64, minute: i64) -> i64 {
        days_from_civil(year, month, day) * DAY_MS + hour * HOUR_MS + minute * 60_000
    }

    #[test]
    fn utc_days_end_at_midnight_utc() {
        let at = utc(2026, 11, 30, 23, 59);
        assert_eq!(DayWindow::MidnightUtc.expiry(at), utc(2026, 12, 1, 0, 0));
        assert_eq!(
            DayWindow::MidnightUtc.expiry(utc(2026, 12, 1, 0, 0)),
            utc(2026, 12, 2, 0, 0)
        );
    }

    #[test]
    fn pacific_days_follow_daylight_saving() {
        let cases = [
            // Winter: midnight PST is 08:00 UTC.
            (utc(2026, 1, 15, 7, 59), utc(2026, 1, 15, 8, 0)),
            (utc(2026, 1, 15, 8, 0), utc(2026, 1, 16, 8, 0)),
            // Summer: midnight PDT is 07:00 UTC.
            (utc(2026, 7, 4, 6, 30), utc(2026, 7, 4, 7, 0)),
            (utc(2026, 7, 4, 7, 30), utc(2026, 7, 5, 7, 0)),
            // 2026-03-08 is the second Sunday of March: that day starts in PST and the next in PDT.
            (utc(2026, 3, 8, 12, 0), utc(2026, 3, 9, 7, 0)),
            (utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 8, 0)),
            // 2026-11-01 is the first Sunday of November: that day starts in PDT and the next in PST.
            (utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 7, 0)),
            (utc(2026, 11, 1, 12, 0), utc(2026, 11, 2, 8, 0)),
        ];
        for (at, reset) in cases {
            assert_eq!(DayWindow::MidnightPacific.expiry(at), reset, "used at {at}");
        }
    }

    #[test]
    fn rolling_days_last_24_hours_from_each_use() {
        let at = utc(2026, 11, 30, 13, 7);
        assert_eq!(DayWindow::Rolling24h.expiry(at), at + DAY_MS);
    }

    #[test]
    fn catalog_names_round_trip() {
        for window in [
            DayWindow::Rolling24h,
            DayWindow::MidnightUtc,
            DayWindow::MidnightPacific,
        ] {
            let json = serde_json::to_string(&window).unwrap();
            assert_eq!(json, format!("\"{}\"", window.as_str()));
            assert_eq!(serde_json::from_str::<DayWindow>(&json).unwrap(), window);
        }
    }
}
