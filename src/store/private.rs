//! Owner-only files: the database, its write-ahead log and shared-memory files, the instance lock and the key
//! files hold secrets or what protects them, so they are created readable by their owner alone (0600, in a 0700
//! directory when the gateway creates it), and files an older version left open to others are closed on start.
//! This module only sets permissions; it never reads or writes contents.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents, owner-only (0700); an existing directory is left as it is, since the
/// user may have chosen its permissions (a shared volume, say).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Options that create a file owner-only (0600); an existing file keeps its mode (see [`restrict`]).
pub fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Takes group and other access away from an existing file; a file that does not exist is fine.
pub fn restrict(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(meta) => meta.permissions().mode(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    Ok(())
}

/// The database file and the files SQLite keeps beside it (`-wal`, `-shm`, `-journal`), owner-only. SQLite
/// creates its side files with the database file's mode, so a private database keeps them private.
pub fn restrict_database(database: &Path) -> io::Result<()> {
    if !database.exists() {
        open_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(database)?;
    }
    restrict(database)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = database.as_os_str().to_owned();
        side.push(suffix);
        restrict(Path::new(&side))?;
    }
    Ok(())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_database_and_an_old_open_one_end_up_owner_only() {
        let dir = std::env::temp_dir().join(format!("freellmapi-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        create_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        let db = data.join("x.db");
        restrict_database(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let wal = data.join("x.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o664)).unwrap();
        restrict_database(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).unwrap();
        restrict(&db).unwrap();
        assert_eq!(mode(&db), 0o400, "a stricter mode is kept");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
