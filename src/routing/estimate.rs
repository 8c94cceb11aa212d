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
    let mut ascii = 0usize;
    let mut other = 0usize;
    for &b in body {
        if b < 0x80 {
            ascii += 1;
        } else if b >= 0xC0 {
            other += 1;
        }
    }
    u32::try_from(ascii / 4 + other + 8).unwrap_or(u32::MAX)
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
    fn reserve_is_capped() {
        assert_eq!(output_reserve(None), DEFAULT_OUTPUT_RESERVE);
        assert_eq!(output_reserve(Some(100)), 100);
        assert_eq!(output_reserve(Some(100_000)), MAX_OUTPUT_RESERVE);
    }
}
