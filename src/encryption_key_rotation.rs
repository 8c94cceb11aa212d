//! `freellmapi rotate-encryption-key`: re-seals every stored secret under a new ENCRYPTION_KEY in one
//! transaction, with the server stopped.
//!
//! With a key file, the new key is written beside it (`encryption.key.new`) before the commit and renamed over it
//! after; a crash before the commit leaves the old state (the stray file is removed at the next start), a crash
//! after it is finished by the next start. With ENCRYPTION_KEY from the environment, the new key must be given
//! (`--new-key`), since only the operator can put it into the environment.

use std::path::PathBuf;

use diesel::Connection;

use crate::config::Config;
use crate::crypto::{generate_key, Cipher};
use crate::store::lock::InstanceLock;
use crate::{hex, startup_secrets, store};

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// Provider keys re-sealed.
    pub keys: usize,
    /// The key file now holding the new key, when the key lives in a file.
    pub key_file: Option<PathBuf>,
}

/// Rotates to `new_key` (or a generated one, when the key lives in a file).
pub fn rotate(config: &Config, new_key: Option<[u8; 32]>) -> Result<Rotation, String> {
    let _lock = InstanceLock::acquire(&config.database_path).map_err(|e| {
        format!(
            "{e}: a running server keeps the old key in memory, so rotate only while it is stopped"
        )
    })?;
    let (old_key, from_file) = match config.encryption_key {
        Some(key) => (key, false),
        None => {
            let path = config.data_dir().join("encryption.key");
            if !path.exists() {
                return Err(format!(
                    "there is no key to rotate: ENCRYPTION_KEY is unset and {} does not exist",
                    path.display()
                ));
            }
            (startup_secrets::resolve_encryption_key(config)?.0, true)
        }
    };
    let new_key = match (new_key, from_file) {
        (Some(key), _) => key,
        (None, true) => generate_key(),
        (None, false) => {
            return Err("ENCRYPTION_KEY comes from the environment, so give the new key: make one with \
                 `freellmapi gen-key`, keep it, run `freellmapi rotate-encryption-key --new-key <it>`, then set \
                 ENCRYPTION_KEY to it"
                .to_owned())
        }
    };
    if new_key == old_key {
        return Err("the new key is the current key".to_owned());
    }
    let mut conn = store::open(&config.database_path).map_err(|e| e.to_string())?;
    let old = Cipher::new(&old_key);
    startup_secrets::verify_cipher(&mut conn, &old)?;
    let pending = startup_secrets::pending_key_file(config);
    if from_file {
        startup_secrets::write_key_file(&pending, &hex::encode(&new_key)).map_err(|e| {
            format!(
                "cannot write {}: {e}; nothing was changed",
                pending.display()
            )
        })?;
    }
    let new = Cipher::new(&new_key);
    let resealed = conn
        .transaction(|conn| startup_secrets::reseal_all(conn, &old, &new).map_err(RotationFailed));
    let keys = match resealed {
        Ok(keys) => keys,
        Err(RotationFailed(why)) => {
            if from_file {
                let _ = std::fs::remove_file(&pending);
            }
            return Err(why);
        }
    };
    let key_file = if from_file {
        let current = config.data_dir().join("encryption.key");
        std::fs::rename(&pending, &current).map_err(|e| {
            format!(
                "the keys are re-sealed with the key in {}, but it could not replace {}: {e}. Move it there by hand.",
                pending.display(),
                current.display()
            )
        })?;
        Some(current)
    } else {
        None
    };
    Ok(Rotation { keys, key_file })
}

/// A failed re-seal, carried out of the transaction (which it rolls back).
struct RotationFailed(String);

impl From<diesel::result::Error> for RotationFailed {
    fn from(e: diesel::result::Error) -> Self {
        RotationFailed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_admin::{self, NewKey};
    use crate::provider_key::KeyId;
    use crate::store::test_db::TempDb;

    fn config(db: &TempDb, key: Option<&str>) -> Config {
        db.config(key)
    }

    fn add_key(db: &TempDb, cipher: &Cipher, secret: &str) -> KeyId {
        let new = NewKey {
            platform: "groq".into(),
            key: secret.into(),
            label: None,
            base_url: None,
            models: vec![],
        };
        key_admin::add(&mut db.conn(), cipher, new).unwrap().id
    }

    fn secret_of(db: &TempDb, cipher: &Cipher, id: KeyId) -> Result<String, String> {
        let row = store::provider_keys::get(&mut db.conn(), id)
            .unwrap()
            .unwrap();
        cipher
            .open(
                &row.nonce,
                &row.ciphertext,
                &crate::crypto::key_aad(id, &row.platform),
            )
            .map_err(|_| "cannot open".to_owned())
    }

    #[test]
    fn env_key_rotation_reseals_everything_and_needs_the_new_key() {
        let db = TempDb::new();
        let old_hex = "11".repeat(32);
        let cfg = config(&db, Some(&old_hex));
        let catalog = crate::catalog::Catalog::embedded().unwrap();
        let prepared = startup_secrets::prepare(&mut db.conn(), &cfg, &catalog).unwrap();
        let id = add_key(&db, &prepared.cipher, "gsk_secret_value_1234");

        let refused = rotate(&cfg, None).unwrap_err();
        assert!(refused.contains("--new-key"), "{refused}");

        let new_key = [0x22; 32];
        let done = rotate(&cfg, Some(new_key)).unwrap();
        assert_eq!((done.keys, done.key_file), (1, None));
        let new = Cipher::new(&new_key);
        assert_eq!(secret_of(&db, &new, id).unwrap(), "gsk_secret_value_1234");
        assert!(secret_of(&db, &prepared.cipher, id).is_err());
        assert!(
            startup_secrets::prepare(&mut db.conn(), &cfg, &catalog).is_err(),
            "the old key no longer opens"
        );
        let after = startup_secrets::prepare(
            &mut db.conn(),
            &config(&db, Some(&"22".repeat(32))),
            &catalog,
        )
        .unwrap();
        assert_eq!(
            after.unified_key, prepared.unified_key,
            "the unified key is kept"
        );
    }

    #[test]
    fn a_failed_rotation_changes_nothing_and_a_running_server_blocks_it() {
        let db = TempDb::new();
        let cfg = config(&db, Some(&"11".repeat(32)));
        let catalog = crate::catalog::Catalog::embedded().unwrap();
        let prepared = startup_secrets::prepare(&mut db.conn(), &cfg, &catalog).unwrap();
        let good = add_key(&db, &prepared.cipher, "gsk_good_key_5678");
        let broken = add_key(&db, &prepared.cipher, "gsk_broken_key_9012");
        let damaged = crate::crypto::Sealed {
            nonce: [7; 12],
            ciphertext: vec![1, 2, 3],
        };
        store::provider_keys::reseal(&mut db.conn(), broken, &damaged).unwrap();

        let error = rotate(&cfg, Some([0x33; 32])).unwrap_err();
        assert!(error.contains(&format!("provider key {broken}")), "{error}");
        assert_eq!(
            secret_of(&db, &prepared.cipher, good).unwrap(),
            "gsk_good_key_5678",
            "rolled back: still sealed under the old key"
        );
        assert!(startup_secrets::prepare(&mut db.conn(), &cfg, &catalog).is_ok());

        store::provider_keys::delete(&mut db.conn(), broken).unwrap();
        let server = InstanceLock::acquire(&db.path).unwrap();
        let blocked = rotate(&cfg, Some([0x33; 32])).unwrap_err();
        assert!(blocked.contains("stopped"), "{blocked}");
        drop(server);
        assert!(rotate(&cfg, Some([0x33; 32])).is_ok());
    }

    #[test]
    fn key_file_rotation_replaces_the_file_and_recovers_from_a_crash_after_commit() {
        let db = TempDb::new();
        let cfg = config(&db, None);
        let catalog = crate::catalog::Catalog::embedded().unwrap();
        let prepared = startup_secrets::prepare(&mut db.conn(), &cfg, &catalog).unwrap();
        let id = add_key(&db, &prepared.cipher, "csk_file_mode_key_42");
        let key_file = cfg.data_dir().join("encryption.key");
        let before = std::fs::read_to_string(&key_file).unwrap();

        let done = rotate(&cfg, None).unwrap();
        assert_eq!(done.key_file.as_deref(), Some(key_file.as_path()));
        let after = std::fs::read_to_string(&key_file).unwrap();
        assert_ne!(before, after);
        assert!(!startup_secrets::pending_key_file(&cfg).exists());
        let reopened = startup_secrets::prepare(&mut db.conn(), &cfg, &catalog).unwrap();
        assert_eq!(
            secret_of(&db, &reopened.cipher, id).unwrap(),
            "csk_file_mode_key_42"
        );

        // A crash between the commit and the rename: the old key file is back, the new key is pending.
        std::fs::write(startup_secrets::pending_key_file(&cfg), &after).unwrap();
        std::fs::write(&key_file, &before).unwrap();
        let recovered = startup_secrets::prepare(&mut db.conn(), &cfg, &catalog).unwrap();
        assert_eq!(
            secret_of(&db, &recovered.cipher, id).unwrap(),
            "csk_file_mode_key_42"
        );
        assert_eq!(std::fs::read_to_string(&key_file).unwrap(), after);
        assert!(!startup_secrets::pending_key_file(&cfg).exists());

        // A crash before the commit: the pending key is stale and is discarded.
        std::fs::write(startup_secrets::pending_key_file(&cfg), &before).unwrap();
        assert!(startup_secrets::prepare(&mut db.conn(), &cfg, &catalog).is_ok());
        assert!(!startup_secrets::pending_key_file(&cfg).exists());
        assert_eq!(std::fs::read_to_string(&key_file).unwrap(), after);
    }
}
