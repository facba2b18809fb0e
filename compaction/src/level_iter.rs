//! An iterator over one sorted level (L1 and deeper) that opens each table only
//! when the walk reaches it, so a short scan touches one or two tables however
//! many the level holds.

use std::sync::Arc;

use index::{Direction, EntryRef, InternalIterator, KeyRange, TableCache};

use crate::edit::FileMeta;

/// Concatenates the tables of one level, in key order (or reverse key order).
pub(crate) struct LevelIterator {
    tables: Arc<TableCache>,
    /// Tables still to visit, in the order of the walk.
    pending: std::vec::IntoIter<Arc<FileMeta>>,
    current: Option<Box<dyn InternalIterator>>,
    range: KeyRange,
    direction: Direction,
    done: bool,
}

impl LevelIterator {
    /// `files` are the level's tables overlapping `range`, sorted by key.
    pub(crate) fn new(tables: Arc<TableCache>, mut files: Vec<Arc<FileMeta>>, range: KeyRange, direction: Direction) -> Self {
        if direction == Direction::Reverse {
            files.reverse();
        }
        LevelIterator { tables, pending: files.into_iter(), current: None, range, direction, done: false }
    }
}

impl InternalIterator for LevelIterator {
    fn advance(&mut self) -> index::Result<bool> {
        if self.done {
            return Ok(false);
        }
        loop {
            if let Some(it) = self.current.as_mut() {
                match it.advance() {
                    Ok(true) => return Ok(true),
                    Ok(false) => self.current = None,
                    Err(e) => {
                        self.done = true;
                        self.current = None;
                        return Err(e);
                    }
                }
            }
            let Some(next) = self.pending.next() else {
                self.done = true;
                return Ok(false);
            };
            match self.tables.get(next.number) {
                Ok(reader) => self.current = Some(reader.iter(self.range.clone(), self.direction)),
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }

    fn current(&self) -> Option<EntryRef<'_>> {
        self.current.as_ref()?.current()
    }
}
