//! The database side of a native transaction, whatever its format: SQLite (`sqlite`, one
//! SQLite transaction committed after the files are in place) or ndb (`ndb`, each change
//! its own commit, with its own rollback on error). BerkeleyDB is never written (rpm itself
//! only reads it now).
//!
//! Order, and what a failure leaves: for SQLite the rows change inside a transaction that
//! the caller commits once the files are renamed into place; for ndb the change is made when
//! asked (before the renames of an install, before the removals of an erase), and an update
//! adds the new header before it removes the old one, putting the new one away again when
//! the removal fails.

use std::os::fd::{AsFd, OwnedFd};

use rusqlite::Connection;

use super::apply::Installed;
use super::index::{index_keys, IndexKey};
use super::{ndb, sqlite};
use crate::rootfs::Root;
use crate::rpmdb::Format;

/// An open database, being changed.
pub enum Register {
    /// A connection with a transaction begun.
    Sqlite(Connection),
    /// The database directory.
    Ndb(OwnedFd),
}

impl Register {
    /// Opens the database `db` was read from, for writing.
    ///
    /// # Errors
    /// Why it cannot be written (BerkeleyDB, SQLite's or the file system's message).
    pub fn open(root: &Root, db: &Installed) -> Result<Register, String> {
        match db.format {
            Format::Sqlite => {
                let c = sqlite::open(&db.sqlite_path())?;
                sqlite::no_fsync(&c)?;
                c.execute_batch("BEGIN IMMEDIATE")
                    .map_err(|e| e.to_string())?;
                Ok(Register::Sqlite(c))
            }
            Format::Ndb => {
                use rustix::fs::OFlags;
                let dir = root
                    .resolve(db.dir.as_bytes(), OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(|e| format!("{}: {e}", db.dir))?;
                Ok(Register::Ndb(dir))
            }
            Format::BerkeleyDb => Err(format!(
                "{} is a BerkeleyDB database, which the native path does not write",
                db.dir
            )),
        }
    }

    /// Adds the header `blob` with its `keys`, removing installed instance `old` (an
    /// update) in the same change; returns the new header number.
    ///
    /// # Errors
    /// The database's message; nothing of the change remains.
    pub fn replace(
        &mut self,
        db: &Installed,
        old: Option<u32>,
        blob: &[u8],
        keys: &[IndexKey],
    ) -> Result<u32, String> {
        match self {
            Register::Sqlite(c) => {
                if let Some(i) = old {
                    sqlite::remove(c, i)?;
                }
                sqlite::add(c, blob, keys)
            }
            Register::Ndb(dir) => {
                let old_keys = old.map(|i| stored_keys(db, i)).transpose()?;
                let hnum = ndb::add(dir.as_fd(), blob, keys)?;
                if let (Some(i), Some(k)) = (old, old_keys) {
                    if let Err(e) = ndb::remove(dir.as_fd(), i, &k) {
                        let _ = ndb::remove(dir.as_fd(), hnum, keys);
                        return Err(e);
                    }
                }
                Ok(hnum)
            }
        }
    }

    /// Removes installed instance `instance` and its index keys.
    ///
    /// # Errors
    /// The database's message; nothing of the change remains.
    pub fn remove(&mut self, db: &Installed, instance: u32) -> Result<(), String> {
        match self {
            Register::Sqlite(c) => sqlite::remove(c, instance),
            Register::Ndb(dir) => ndb::remove(dir.as_fd(), instance, &stored_keys(db, instance)?),
        }
    }

    /// Makes the change durable (SQLite: the commit; ndb: it already is).
    ///
    /// # Errors
    /// SQLite's message; the change is then rolled back.
    pub fn commit(self) -> Result<(), String> {
        match &self {
            Register::Sqlite(c) => c.execute_batch("COMMIT").map_err(|e| e.to_string()),
            Register::Ndb(_) => Ok(()),
        }
    }
}

impl Drop for Register {
    /// SQLite: a transaction not committed is rolled back; a committed one is folded back
    /// from the WAL into the file, as rpm does when it closes a database it wrote.
    fn drop(&mut self) {
        if let Register::Sqlite(c) = self {
            if c.is_autocommit() {
                sqlite::checkpoint(c);
            } else {
                let _ = c.execute_batch("ROLLBACK");
            }
        }
    }
}

/// The index keys of an installed header, from the blob the database stores.
fn stored_keys(db: &Installed, instance: u32) -> Result<Vec<IndexKey>, String> {
    index_keys(&db.blob(instance)?).map_err(|e| format!("header {instance}: {e}"))
}
