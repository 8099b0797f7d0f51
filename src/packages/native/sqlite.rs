//! Registering and unregistering a package in a SQLite rpmdb (`rpmdb.sqlite`), through
//! SQLite itself (rusqlite, bundled), with the statements and settings of rpm 4.18's
//! `lib/backend/sqlite.c`: `Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob)`, one
//! table per index (`key, hnum, idx`; TEXT keys for string tags, BLOB for the others, an
//! int32 key being its four bytes in host order), WAL journal, a 10 s busy time-out.
//!
//! Invariant: every change of one package is one SQLite transaction (begun and committed
//! by `register`): the caller commits only when the files are in place, and a failure
//! before then leaves the database as it was (SQLite's own rollback). Reading stays the
//! native reader's (`rpmdb::sqlite`).

use rusqlite::{params, Connection, OptionalExtension};

use super::index::{IndexKey, Key, INDEXES};

/// Opens the database file `path` (inside the container's root: the caller has chrooted)
/// for writing, as rpm does.
///
/// # Errors
/// SQLite's message.
pub fn open(path: &str) -> Result<Connection, String> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let c = Connection::open_with_flags(path, flags).map_err(|e| format!("{path}: {e}"))?;
    c.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    // rpm's SQLite runs without foreign key enforcement (SQLite's default; the bundled
    // library turns it on): its erase deletes the `Packages` row before the index rows.
    c.execute_batch(
        "PRAGMA foreign_keys = OFF; PRAGMA secure_delete = OFF; PRAGMA case_sensitive_like = ON;",
    )
    .map_err(|e| e.to_string())?;
    let _: String = c
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    Ok(c)
}

/// Before the transaction, as rpm's `rpmtsRun` does (`dbSetFSync(db, 0)`): no fsync for
/// each commit; the checkpoint after it syncs the database once.
pub fn no_fsync(c: &Connection) -> Result<(), String> {
    c.execute_batch("PRAGMA synchronous = OFF")
        .map_err(|e| e.to_string())
}

/// After the commit, as rpm ends a transaction and closes a database it wrote: fsync back
/// on, the WAL folded back into the file (synced) and emptied.
pub fn checkpoint(c: &Connection) {
    let _ = c.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA optimize; PRAGMA wal_checkpoint = TRUNCATE;",
    );
}

/// Creates an index table rpm would have created, when the database lacks it.
fn ensure_table(tx: &Connection, index: &str, text: bool) -> Result<(), String> {
    let exists: Option<String> = tx
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
            [index],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    if exists.is_none() {
        let ty = if text { "TEXT" } else { "BLOB" };
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS '{index}' (key '{ty}' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
             CREATE INDEX IF NOT EXISTS '{index}_key_idx' ON '{index}'(key ASC);"
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Adds `blob` to `Packages` and `keys` to their indexes; returns the header number.
///
/// # Errors
/// SQLite's message; the transaction is then rolled back by its drop.
pub fn add(tx: &Connection, blob: &[u8], keys: &[IndexKey]) -> Result<u32, String> {
    tx.execute("INSERT INTO 'Packages' VALUES(NULL, ?)", [blob])
        .map_err(|e| format!("Packages: {e}"))?;
    let hnum = u32::try_from(tx.last_insert_rowid())
        .map_err(|_| "Packages: header number over 32 bits".to_string())?;
    for (index, _) in INDEXES {
        let mine: Vec<&IndexKey> = keys.iter().filter(|k| k.index == index).collect();
        if mine.is_empty() {
            continue;
        }
        ensure_table(tx, index, matches!(mine[0].key, Key::Text(_)))?;
        let mut st = tx
            .prepare_cached(&format!("INSERT INTO '{index}' VALUES(?, ?, ?)"))
            .map_err(|e| format!("{index}: {e}"))?;
        for k in mine {
            let r = match &k.key {
                Key::Text(s) => st.execute(params![s, hnum, k.idx]),
                other => st.execute(params![other.bytes(), hnum, k.idx]),
            };
            r.map_err(|e| format!("{index}: {e}"))?;
        }
    }
    Ok(hnum)
}

/// Removes header `hnum` from `Packages` and from every index.
///
/// # Errors
/// SQLite's message.
pub fn remove(tx: &Connection, hnum: u32) -> Result<(), String> {
    let n = tx
        .execute("DELETE FROM 'Packages' WHERE hnum = ?", [hnum])
        .map_err(|e| format!("Packages: {e}"))?;
    if n != 1 {
        return Err(format!("header {hnum} is not in the database"));
    }
    let tables: Vec<String> = {
        let mut st = tx
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(|e| e.to_string())?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| e.to_string())?;
        rows.filter_map(Result::ok).collect()
    };
    for (index, _) in INDEXES {
        if tables.iter().any(|t| t == index) {
            tx.execute(&format!("DELETE FROM '{index}' WHERE hnum = ?"), [hnum])
                .map_err(|e| format!("{index}: {e}"))?;
        }
    }
    Ok(())
}
