//! SQLite (rusqlite, bundled) under the comparison: a `WITHOUT ROWID` table of
//! blob keys and values, WAL journal, `synchronous=FULL` (the WAL is synced at
//! every commit). A SQLite connection is not shareable between threads, so
//! writes go through one connection behind a mutex and each reader borrows a
//! connection of its own from a pool; each connection's page cache gets the
//! shared budget (SQLite has no cache shared across connections in WAL mode).
//! A reader holds one read transaction, as redb's benchmark does for SQLite.
//! Compaction is a WAL checkpoint followed by `VACUUM`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use pool::Pool;
use rusqlite::{params, Connection, OptionalExtension};

use crate::engine::{dir_bytes, Engine, Pairs, Reader};

const GET: &str = "SELECT v FROM kv WHERE k = ?1";
const RANGE: &str = "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2";
const PUT: &str = "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)";
const DELETE: &str = "DELETE FROM kv WHERE k = ?1";

/// A small pool of read connections, so the harness's threads each read through
/// their own.
mod pool {
    use std::sync::Mutex;

    /// Connections waiting to be borrowed.
    pub struct Pool<T>(Mutex<Vec<T>>);

    impl<T> Pool<T> {
        pub fn new() -> Self {
            Pool(Mutex::new(Vec::new()))
        }
        pub fn take(&self) -> Option<T> {
            self.0.lock().ok()?.pop()
        }
        pub fn give(&self, item: T) {
            if let Ok(mut v) = self.0.lock() {
                v.push(item);
            }
        }
    }
}

/// An open database.
pub struct Sqlite {
    writer: std::sync::Mutex<Connection>,
    readers: Pool<Connection>,
    path: PathBuf,
    dir: PathBuf,
    cache_kib: usize,
}

fn connect(path: &Path, cache_kib: usize) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A negative cache_size is in KiB.
    conn.pragma_update(None, "cache_size", -(cache_kib as i64))?;
    Ok(conn)
}

impl Sqlite {
    /// Creates the database file in `dir`.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self> {
        let path = dir.join("data.sqlite");
        let cache_kib = (cache_bytes / 1024).max(1);
        let conn = connect(&path, cache_kib)?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")?;
        Ok(Sqlite { writer: std::sync::Mutex::new(conn), readers: Pool::new(), path, dir: dir.to_path_buf(), cache_kib })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.writer.lock().map_err(|_| anyhow::anyhow!("the writer connection is poisoned"))
    }

    fn write(&self, pairs: &Pairs<'_>, put: bool) -> Result<()> {
        let mut conn = self.writer()?;
        let txn = conn.transaction()?;
        {
            if put {
                let mut stmt = txn.prepare_cached(PUT)?;
                for (k, v) in pairs.iter() {
                    stmt.execute(params![&k[..], &v[..]])?;
                }
            } else {
                let mut stmt = txn.prepare_cached(DELETE)?;
                for k in pairs.keys() {
                    stmt.execute(params![&k[..]])?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

struct SqliteReader<'a> {
    conn: Option<Connection>,
    pool: &'a Pool<Connection>,
}

impl SqliteReader<'_> {
    fn conn(&self) -> Result<&Connection> {
        self.conn.as_ref().ok_or_else(|| anyhow::anyhow!("reader used after release"))
    }
}

impl Drop for SqliteReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Ends the read transaction; a connection that cannot end it is dropped, not reused.
            if conn.execute_batch("COMMIT").is_ok() {
                self.pool.give(conn);
            }
        }
    }
}

impl Reader for SqliteReader<'_> {
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(GET)?;
        let found = stmt
            .query_row(params![key], |row| {
                out.extend_from_slice(row.get_ref(0)?.as_blob()?);
                Ok(())
            })
            .optional()?;
        Ok(found.is_some())
    }

    fn range(&mut self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<usize> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(RANGE)?;
        let mut rows = stmt.query(params![start, count as i64])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            // Borrowed blobs, as the other adapters hand out slices.
            let k = row.get_ref(0)?.as_blob()?;
            let v = row.get_ref(1)?.as_blob()?;
            visit(k, v)?;
            n += 1;
        }
        Ok(n)
    }
}

impl Engine for Sqlite {
    fn bulk_load(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, true)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let conn = self.writer()?;
        conn.prepare_cached(PUT)?.execute(params![key, value])?;
        Ok(())
    }

    fn txn_durable(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, true)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        let conn = match self.readers.take() {
            Some(c) => c,
            None => connect(&self.path, self.cache_kib)?,
        };
        // One read transaction (a snapshot) for the reader's whole run.
        conn.execute_batch("BEGIN")?;
        Ok(Box::new(SqliteReader { conn: Some(conn), pool: &self.readers }))
    }

    fn remove_bulk(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, false)
    }

    fn disk_bytes(&self) -> Result<u64> {
        dir_bytes(&self.dir)
    }

    fn compact(&mut self) -> Result<bool> {
        let conn = self.writer()?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(true)
    }
}
