//! The instance lock: a running server holds an exclusive lock on `<database>.lock` for its lifetime, so
//! commands that must not run beside it (encryption-key rotation, a second server on the same file) can tell.
//! The kernel releases it when the process ends, however it ends.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// Held while this process owns the database; released on drop or exit.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    Held(PathBuf),
    /// The lock file could not be opened.
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held(path) => write!(
                f,
                "another freellmapi server is using this database ({} is locked); stop it first",
                path.display()
            ),
            LockError::Io(path, e) => {
                write!(f, "cannot open the lock file {}: {e}", path.display())
            }
        }
    }
}

impl InstanceLock {
    /// Takes the lock of the database at `database`, without waiting.
    pub fn acquire(database: &Path) -> Result<InstanceLock, LockError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = super::private::open_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LockError::Io(path.clone(), e))?;
        super::private::restrict(&path).map_err(|e| LockError::Io(path.clone(), e))?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held(path)),
            Err(TryLockError::Error(e)) => Err(LockError::Io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let db = TempDb::new();
        drop(db.conn());
        let first = InstanceLock::acquire(&db.path).unwrap();
        let second = InstanceLock::acquire(&db.path).unwrap_err();
        assert!(second.to_string().contains("stop it first"), "{second}");
        drop(first);
        assert!(InstanceLock::acquire(&db.path).is_ok());
    }
}
