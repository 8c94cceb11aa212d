//! Masking secrets in text the gateway keeps or shows. An upstream's error message reaches the client's answer,
//! the key's status, the request log, the server log and the database, and an upstream may echo the key it was
//! sent, whole or in part. Every run of text that contains a piece of a known secret at least [`FRAGMENT`]
//! characters long is replaced with [`MARK`]. This module never shortens or otherwise edits text: callers redact
//! first and cut afterwards, so a cut can never leave part of a secret unmasked.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

/// The shortest piece of a secret that is masked: long enough that ordinary text never matches one by chance
/// (8 random key characters are over 40 bits), short enough that no useful part of a key survives.
pub const FRAGMENT: usize = 8;
/// Secrets shorter than [`FRAGMENT`] but at least this long are masked where they appear whole.
const SHORTEST_SECRET: usize = 4;
/// What stands in for a masked run.
pub const MARK: &str = "[redacted]";

/// Pieces of secrets, as the windows of [`FRAGMENT`] bytes they hold.
#[derive(Default)]
struct Pieces {
    windows: HashSet<u64>,
    short: Vec<Box<str>>,
}

impl Pieces {
    fn add(&mut self, secret: &str) {
        let bytes = secret.as_bytes();
        if bytes.len() >= FRAGMENT {
            self.windows.extend(bytes.windows(FRAGMENT).map(window));
        } else if bytes.len() >= SHORTEST_SECRET && !self.short.iter().any(|s| &**s == secret) {
            self.short.push(secret.into());
        }
    }

    /// Marks in `covered` every byte of `text` inside a piece of a secret.
    fn cover(&self, text: &str, covered: &mut [bool]) {
        if !self.windows.is_empty() {
            for (at, bytes) in text.as_bytes().windows(FRAGMENT).enumerate() {
                if self.windows.contains(&window(bytes)) {
                    covered[at..at + FRAGMENT].fill(true);
                }
            }
        }
        for secret in &self.short {
            for (at, _) in text.match_indices(&**secret) {
                covered[at..at + secret.len()].fill(true);
            }
        }
    }
}

fn window(bytes: &[u8]) -> u64 {
    let mut word = [0u8; FRAGMENT];
    word.copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

/// The secrets this process knows (provider keys, the unified key), shared by everything that keeps or shows
/// upstream text. Cheap to clone; learning a secret is seen by every clone.
#[derive(Clone, Default)]
pub struct Redactor {
    known: Arc<RwLock<Pieces>>,
}

impl Redactor {
    /// Adds a secret; it stays known for the life of the process (a removed or rotated key is still masked).
    pub fn learn(&self, secret: &str) {
        self.known
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .add(secret);
    }

    /// `text` with every piece of a known secret, or of one of `also` (a request's own secrets, which may be
    /// newer than what this process learned), masked.
    pub fn redact(&self, text: &str, also: &[String]) -> String {
        let mut covered = vec![false; text.len()];
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .cover(text, &mut covered);
        if !also.is_empty() {
            let mut extra = Pieces::default();
            for secret in also {
                extra.add(secret);
            }
            extra.cover(text, &mut covered);
        }
        mask(text, &mut covered)
    }
}

/// `text` with each run of covered bytes, widened to whole characters, replaced by [`MARK`].
fn mask(text: &str, covered: &mut [bool]) -> String {
    if !covered.contains(&true) {
        return text.to_owned();
    }
    for (at, c) in text.char_indices() {
        let bytes = &mut covered[at..at + c.len_utf8()];
        if bytes.contains(&true) {
            bytes.fill(true);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let masked = covered[at];
        let end = covered[at..]
            .iter()
            .position(|c| *c != masked)
            .map_or(text.len(), |n| at + n);
        out.push_str(if masked { MARK } else { &text[at..end] });
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "gsk_7Hq2vN9pLw4Zr8Tk1Bx6Jm3Fd5Yc0Ae";

    fn knowing(secrets: &[&str]) -> Redactor {
        let redactor = Redactor::default();
        for s in secrets {
            redactor.learn(s);
        }
        redactor
    }

    #[test]
    fn a_whole_key_and_any_long_piece_of_it_are_masked() {
        let r = knowing(&[KEY]);
        assert_eq!(
            r.redact(&format!("bad key {KEY}."), &[]),
            "bad key [redacted]."
        );
        let pieces = format!("starts {} ends {}", &KEY[..10], &KEY[25..]);
        assert_eq!(r.redact(&pieces, &[]), "starts [redacted] ends [redacted]");
        assert_eq!(
            r.redact(&format!("x{}y", &KEY[3..3 + FRAGMENT]), &[]),
            "x[redacted]y"
        );
        let short = &KEY[5..5 + FRAGMENT - 1];
        assert_eq!(
            r.redact(&format!("x{short}y"), &[]),
            format!("x{short}y"),
            "a piece shorter than a fragment is ordinary text"
        );
    }

    #[test]
    fn a_requests_own_secret_is_masked_without_being_learned() {
        let r = Redactor::default();
        assert_eq!(
            r.redact(&format!("{KEY}!"), &[KEY.to_owned()]),
            "[redacted]!"
        );
        assert_eq!(r.redact(&format!("{KEY}!"), &[]), format!("{KEY}!"));
    }

    #[test]
    fn short_secrets_are_masked_only_whole() {
        let r = knowing(&["k1", "abcdef"]);
        assert_eq!(r.redact("k1 abcdef abcde", &[]), "k1 [redacted] abcde");
    }

    #[test]
    fn text_around_masks_keeps_its_characters() {
        let r = knowing(&[KEY]);
        let text = format!("é{KEY}ü and ✓{}", &KEY[..9]);
        assert_eq!(r.redact(&text, &[]), "é[redacted]ü and ✓[redacted]");
        assert_eq!(r.redact("", &[]), "");
        assert_eq!(r.redact("short", &[]), "short");
    }

    #[test]
    fn a_secret_with_multibyte_characters_masks_whole_characters() {
        let secret = "clé-secrète-très-longue";
        let r = knowing(&[secret]);
        let masked = r.redact(&format!("«{}»", &secret[4..]), &[]);
        assert!(!masked.contains("secrète"), "{masked}");
        assert!(masked.starts_with('«') && masked.ends_with('»'), "{masked}");
    }
}
