//! Startup secrets: the ENCRYPTION_KEY (from the environment or a generated key file), the check that it opens
//! what is stored, and the unified API key. Verification happens before any write, so a wrong key changes nothing.

use std::io::Write;
use std::path::PathBuf;

use crate::catalog::Catalog;
use crate::chain_offers;
use crate::config::{parse_encryption_key, Config};
use crate::crypto::{generate_key, generate_unified_key, key_aad, Cipher};
use crate::hex;
use crate::store::{self, provider_keys, settings, Conn, StoreError};

const CANARY: &str = "encryption_canary";
const CANARY_AAD: &[u8] = b"freellmapi:canary";
const CANARY_TEXT: &str = "freellmapi";
const UNIFIED_KEY: &str = "unified_key";
const UNIFIED_AAD: &[u8] = b"freellmapi:unified_key";

/// What startup needs after the secrets are settled.
pub struct Prepared {
    /// Seals and opens provider keys.
    pub cipher: Cipher,
    /// The unified API key.
    pub unified_key: String,
    /// Whether the unified key was generated just now (and should be shown once).
    pub unified_key_created: bool,
    /// Where a newly generated encryption key file was written, if one was.
    pub generated_key_file: Option<PathBuf>,
}

/// The whole startup sequence: key → verify it against stored data (before any write; finishing a rotation
/// interrupted after its commit) → unified key → the chain offered the catalog models it has not seen.
pub fn prepare(conn: &mut Conn, config: &Config, catalog: &Catalog) -> Result<Prepared, String> {
    let (key, generated_key_file) = resolve_encryption_key(config)?;
    let mut cipher = Cipher::new(&key);
    if let Err(mismatch) = verify_cipher(conn, &cipher) {
        cipher = finish_interrupted_rotation(conn, config).ok_or(mismatch)?;
    }
    if config.encryption_key.is_none() {
        discard_stale_pending_key(config);
    }
    let (unified_key, unified_key_created) =
        unified_key(conn, &cipher, config.api_key.as_deref()).map_err(|e| e.to_string())?;
    chain_offers::join_chain(conn, catalog).map_err(|e| e.to_string())?;
    Ok(Prepared {
        cipher,
        unified_key,
        unified_key_created,
        generated_key_file,
    })
}

/// The ENCRYPTION_KEY from the environment, else `<data dir>/encryption.key`, else a new one written there (0600).
pub fn resolve_encryption_key(config: &Config) -> Result<([u8; 32], Option<PathBuf>), String> {
    if let Some(key) = config.encryption_key {
        return Ok((key, None));
    }
    let path = config.data_dir().join("encryption.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = parse_encryption_key(text.trim())
                .map_err(|e| format!("{} does not hold a valid key: {e}", path.display()))?;
            Ok((key, None))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate_key();
            write_key_file(&path, &hex::encode(&key)).map_err(|e| {
                format!(
                    "cannot write {}: {e}. Make the data directory writable, set DATABASE_URL elsewhere, or set \
                     ENCRYPTION_KEY (generate one with `freellmapi gen-key`).",
                    path.display()
                )
            })?;
            Ok((key, Some(path)))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Where a rotation writes the new key before its commit: `<data dir>/encryption.key.new`.
pub fn pending_key_file(config: &Config) -> PathBuf {
    config.data_dir().join("encryption.key.new")
}

/// After a rotation committed but before it replaced the key file (a crash in between), the stored data opens
/// only with the pending key: adopt it and finish the rotation.
fn finish_interrupted_rotation(conn: &mut Conn, config: &Config) -> Option<Cipher> {
    if config.encryption_key.is_some() {
        return None;
    }
    let pending = pending_key_file(config);
    let text = std::fs::read_to_string(&pending).ok()?;
    let cipher = Cipher::new(&parse_encryption_key(text.trim()).ok()?);
    verify_cipher(conn, &cipher).ok()?;
    let current = config.data_dir().join("encryption.key");
    match std::fs::rename(&pending, &current) {
        Ok(()) => log::warn!(
            "finished an interrupted encryption-key rotation: {} now holds the new key",
            current.display()
        ),
        Err(e) => log::warn!(
            "the stored keys are sealed with {} but it could not replace {}: {e}",
            pending.display(),
            current.display()
        ),
    }
    Some(cipher)
}

/// A pending key left by a rotation that never committed (the stored data opened with the current key).
fn discard_stale_pending_key(config: &Config) {
    let pending = pending_key_file(config);
    if pending.exists() {
        match std::fs::remove_file(&pending) {
            Ok(()) => log::info!(
                "removed {} left by an encryption-key rotation that did not complete; the old key stays",
                pending.display()
            ),
            Err(e) => log::warn!("could not remove {}: {e}", pending.display()),
        }
    }
}

/// Writes a key file (mode 0600), replacing any file of that name, and syncs it to disk.
pub fn write_key_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        store::private::create_dir(dir)?;
    }
    let mut file = store::private::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    store::private::restrict(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn mismatch() -> String {
    "ENCRYPTION_KEY does not match the key that encrypted the stored provider keys. Restore the original \
     ENCRYPTION_KEY (or its data/encryption.key file); nothing was modified."
        .to_owned()
}

/// Checks that the cipher opens what is stored; creates the canary on a fresh database.
pub fn verify_cipher(conn: &mut Conn, cipher: &Cipher) -> Result<(), String> {
    match settings::get(conn, CANARY).map_err(|e| e.to_string())? {
        Some(stored) => {
            let (nonce, ciphertext) = split_sealed(&stored).ok_or_else(mismatch)?;
            match cipher.open(&nonce, &ciphertext, CANARY_AAD) {
                Ok(text) if text == CANARY_TEXT => Ok(()),
                _ => Err(mismatch()),
            }
        }
        None => {
            if let Some(row) = provider_keys::list(conn)
                .map_err(|e| e.to_string())?
                .first()
            {
                cipher
                    .open(&row.nonce, &row.ciphertext, &key_aad(row.id, &row.platform))
                    .map_err(|_| mismatch())?;
            }
            let sealed = cipher.seal(CANARY_TEXT.as_bytes(), CANARY_AAD);
            settings::set(
                conn,
                CANARY,
                &join_sealed(&sealed.nonce, &sealed.ciphertext),
            )
            .map_err(|e| e.to_string())
        }
    }
}

/// The unified key: the fixed one if configured (and stored), else the stored one, else a new one.
pub fn unified_key(
    conn: &mut Conn,
    cipher: &Cipher,
    fixed: Option<&str>,
) -> Result<(String, bool), StoreError> {
    if let Some(fixed) = fixed {
        store_unified_key(conn, cipher, fixed)?;
        return Ok((fixed.to_owned(), false));
    }
    if let Some(stored) = settings::get(conn, UNIFIED_KEY)? {
        let opened = split_sealed(&stored).and_then(|(n, c)| cipher.open(&n, &c, UNIFIED_AAD).ok());
        return opened.map(|k| (k, false)).ok_or_else(|| {
            StoreError::Invalid("the stored unified key cannot be decrypted".to_owned())
        });
    }
    let key = generate_unified_key();
    store_unified_key(conn, cipher, &key)?;
    Ok((key, true))
}

/// Replaces the unified key with a new one and returns it.
pub fn rotate_unified_key(conn: &mut Conn, cipher: &Cipher) -> Result<String, StoreError> {
    let key = generate_unified_key();
    store_unified_key(conn, cipher, &key)?;
    Ok(key)
}

fn store_unified_key(conn: &mut Conn, cipher: &Cipher, key: &str) -> Result<(), StoreError> {
    let sealed = cipher.seal(key.as_bytes(), UNIFIED_AAD);
    settings::set(
        conn,
        UNIFIED_KEY,
        &join_sealed(&sealed.nonce, &sealed.ciphertext),
    )
}

/// Re-seals every stored secret (provider keys, the unified key, the canary) from `old` to `new`. Run it inside
/// one transaction: any failure leaves everything sealed under `old`.
pub fn reseal_all(conn: &mut Conn, old: &Cipher, new: &Cipher) -> Result<usize, String> {
    let rows = provider_keys::list(conn).map_err(|e| e.to_string())?;
    for row in &rows {
        let aad = key_aad(row.id, &row.platform);
        let secret = old.open(&row.nonce, &row.ciphertext, &aad).map_err(|_| {
            format!(
                "provider key {} cannot be decrypted with the current key; nothing was changed",
                row.id
            )
        })?;
        provider_keys::reseal(conn, row.id, &new.seal(secret.as_bytes(), &aad))
            .map_err(|e| e.to_string())?;
    }
    if settings::get(conn, UNIFIED_KEY)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        let (unified, _) = unified_key(conn, old, None).map_err(|e| e.to_string())?;
        store_unified_key(conn, new, &unified).map_err(|e| e.to_string())?;
    }
    let sealed = new.seal(CANARY_TEXT.as_bytes(), CANARY_AAD);
    settings::set(
        conn,
        CANARY,
        &join_sealed(&sealed.nonce, &sealed.ciphertext),
    )
    .map_err(|e| e.to_string())?;
    Ok(rows.len())
}

fn join_sealed(nonce: &[u8], ciphertext: &[u8]) -> String {
    format!("{}:{}", hex::encode(nonce), hex::encode(ciphertext))
}

fn split_sealed(text: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (nonce, ciphertext) = text.split_once(':')?;
    Some((hex::decode(nonce)?, hex::decode(ciphertext)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn config_for(db: &TempDb, key: Option<&str>) -> Config {
        db.config(key)
    }

    #[test]
    fn first_start_generates_a_private_key_file_and_reuses_it() {
        let db = TempDb::new();
        let mut conn = db.conn();
        let catalog = Catalog::embedded().unwrap();
        let first = prepare(&mut conn, &config_for(&db, None), &catalog).unwrap();
        let path = first.generated_key_file.clone().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(first.unified_key_created);
        let second = prepare(&mut conn, &config_for(&db, None), &catalog).unwrap();
        assert!(second.generated_key_file.is_none());
        assert!(!second.unified_key_created);
        assert_eq!(second.unified_key, first.unified_key);
        assert!(!crate::store::chain::list(&mut conn).unwrap().is_empty());
    }

    #[test]
    fn wrong_key_refuses_and_changes_nothing() {
        let db = TempDb::new();
        let catalog = Catalog::embedded().unwrap();
        let mut conn = db.conn();
        prepare(
            &mut conn,
            &config_for(&db, Some(&"11".repeat(32))),
            &catalog,
        )
        .unwrap();
        drop(conn);
        let before = std::fs::read(&db.path).unwrap();
        let mut conn = db.conn();
        let err = prepare(
            &mut conn,
            &config_for(&db, Some(&"22".repeat(32))),
            &catalog,
        )
        .err()
        .unwrap();
        assert!(err.contains("ENCRYPTION_KEY does not match"), "{err}");
        drop(conn);
        assert_eq!(std::fs::read(&db.path).unwrap(), before);
    }

    #[test]
    fn fixed_unified_key_wins_and_rotation_replaces_it() {
        let db = TempDb::new();
        let mut conn = db.conn();
        let cipher = Cipher::new(&[7; 32]);
        let (k, created) =
            unified_key(&mut conn, &cipher, Some("freellmapi-fixedfixedfixed00")).unwrap();
        assert_eq!(
            (k.as_str(), created),
            ("freellmapi-fixedfixedfixed00", false)
        );
        let rotated = rotate_unified_key(&mut conn, &cipher).unwrap();
        assert_eq!(unified_key(&mut conn, &cipher, None).unwrap().0, rotated);
    }
}
