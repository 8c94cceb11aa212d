//! Token estimates made before a request is sent, so budgets can be checked without a tokenizer.
//!
//! The estimate is deliberately a little pessimistic; budgets are reconciled with the provider's reported usage
//! after the answer.

/// Output tokens reserved when the client sets no cap.
pub const DEFAULT_OUTPUT_RESERVE: u32 = 512;
/// The most output tokens ever reserved up front, whatever cap the client set.
pub const MAX_OUTPUT_RESERVE: u32 = 4096;

/// Estimates prompt tokens from the raw request body (messages and tools included).
///
/// ASCII text averages about four bytes per token; each non-ASCII character (CJK, emoji) is counted as a token of
/// its own, which is what tokenizers roughly do for them.
pub fn prompt_tokens(body: &[u8]) -> u32 {
    text_tokens(body).saturating_add(8)
}

/// Estimates the tokens of a text by the same rule (an answer relayed so far, say).
pub fn text_tokens(text: &[u8]) -> u32 {
    let mut ascii = 0usize;
    let mut other = 0usize;
    for &b in text {
        if b < 0x80 {
            ascii += 1;
        } else if b >= 0xC0 {
            other += 1;
        }
    }
    u32::try_from(ascii / 4 + other).unwrap_or(u32::MAX)
}

/// Tokens reserved for the answer: the client's cap, bounded.
pub fn output_reserve(cap: Option<u32>) -> u32 {
    cap.unwrap_or(DEFAULT_OUTPUT_RESERVE)
        .min(MAX_OUTPUT_RESERVE)
}

/// Estimates completion tokens of a streamed answer whose usage the upstream never reported: streams carry
/// about one token per chunk.
pub fn completion_tokens_from_chunks(chunks: usize) -> u32 {
    u32::try_from(chunks).unwrap_or(u32::MAX)
}

/// What a request is expected to cost, estimated before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Estimated prompt tokens.
    pub prompt: u64,
    /// Tokens reserved for the answer.
    pub output: u64,
}

/// Recent prompt-estimate ratios kept per budget.
const CALIBRATION_SAMPLES: usize = 8;

/// Corrects prompt estimates by what one provider reported for recent requests, so reservations track its
/// tokenizer instead of a byte count. It uses the largest actual/estimated ratio of the last few, so the
/// correction errs high; with nothing reported yet the estimate stands.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    ratios: [f64; CALIBRATION_SAMPLES],
    len: usize,
    next: usize,
}

impl Calibration {
    /// Records one request's estimated and reported prompt tokens.
    pub fn observe(&mut self, estimated: u64, reported: u64) {
        if estimated == 0 || reported == 0 {
            return;
        }
        let ratio = (reported as f64 / estimated as f64).clamp(0.25, 4.0);
        self.ratios[self.next] = ratio;
        self.next = (self.next + 1) % CALIBRATION_SAMPLES;
        self.len = (self.len + 1).min(CALIBRATION_SAMPLES);
    }

    /// The tokens to reserve for a request of `cost`.
    pub fn reserve(&self, cost: Cost) -> u64 {
        let scale = self.ratios[..self.len]
            .iter()
            .copied()
            .reduce(f64::max)
            .unwrap_or(1.0);
        (cost.prompt as f64 * scale).round() as u64 + cost.output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_about_four_bytes_per_token() {
        let body = "a".repeat(4000);
        assert_eq!(prompt_tokens(body.as_bytes()), 1008);
    }

    #[test]
    fn non_ascii_counts_per_character() {
        let body = "漢".repeat(100);
        assert_eq!(prompt_tokens(body.as_bytes()), 108);
    }

    #[test]
    fn calibration_follows_the_provider_and_errs_high() {
        let cost = Cost {
            prompt: 124,
            output: 400,
        };
        let mut c = Calibration::default();
        assert_eq!(c.reserve(cost), 524, "nothing reported yet");
        c.observe(124, 100);
        assert_eq!(c.reserve(cost), 500);
        c.observe(124, 110);
        c.observe(124, 90);
        assert_eq!(c.reserve(cost), 510, "the largest recent ratio");
        for _ in 0..CALIBRATION_SAMPLES {
            c.observe(124, 62);
        }
        assert_eq!(c.reserve(cost), 462, "old samples age out");
        c.observe(0, 50);
        c.observe(50, 0);
        assert_eq!(c.reserve(cost), 462, "unknowns teach nothing");
    }

    #[test]
    fn reserve_is_capped() {
        assert_eq!(output_reserve(None), DEFAULT_OUTPUT_RESERVE);
        assert_eq!(output_reserve(Some(100)), 100);
        assert_eq!(output_reserve(Some(100_000)), MAX_OUTPUT_RESERVE);
    }
}
