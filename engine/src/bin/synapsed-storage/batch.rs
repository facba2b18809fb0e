//! The `batch` command: a line protocol on stdin for scripts and other processes.
//!
//! ```text
//! put KEY VALUE      VALUE is the rest of the line after the space that ends KEY
//! delete KEY
//! commit             applies the pending operations atomically and durably,
//!                    then prints "committed N" (N counts from 1) and flushes stdout
//! ```
//! Blank lines are ignored and one trailing `\r` is dropped. Any other line stops
//! the command with `line N: ...` and the pending operations are discarded, so a
//! script error never commits half of what it meant; earlier commits stay. Input
//! that ends with operations still pending is also an error, for the same reason.
//! Lines are read one at a time, so a producer can wait for each acknowledgement.
//! With `--hex`, KEY and VALUE are hex digits.

use std::io::{BufRead, Read, Write};

use anyhow::{bail, Context};
use synapsed_storage::{Db, Keyspace, Replica, WriteBatch};

/// Longest accepted input line; a bigger one is refused before it is buffered whole.
const MAX_LINE_BYTES: u64 = 512 << 20;

/// One parsed input line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    Blank,
    Put { key: &'a str, value: &'a str },
    Delete { key: &'a str },
    Commit,
}

/// Parses one line (without its `\n`).
pub(crate) fn parse_line(line: &str) -> Result<Line<'_>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(Line::Blank);
    }
    let (command, rest) = match line.split_once(' ') {
        Some((c, r)) => (c, Some(r)),
        None => (line, None),
    };
    match command {
        "put" => {
            let Some((key, value)) = rest.and_then(|r| r.split_once(' ')) else {
                return Err("expected \"put KEY VALUE\"".into());
            };
            if key.is_empty() {
                return Err("empty key (keys are separated by exactly one space)".into());
            }
            Ok(Line::Put { key, value })
        }
        "delete" => match rest {
            Some(key) if !key.is_empty() && !key.contains(' ') => Ok(Line::Delete { key }),
            Some(key) if key.contains(' ') => Err("expected \"delete KEY\": unexpected text after the key".into()),
            _ => Err("expected \"delete KEY\"".into()),
        },
        "commit" if rest.unwrap_or("").trim().is_empty() => Ok(Line::Commit),
        "commit" => Err("\"commit\" takes no arguments".into()),
        other => Err(format!("unknown command {other:?} (expected put, delete or commit)")),
    }
}

/// Runs the protocol until end of input.
pub(crate) fn run(
    db: &Db,
    replicated: Option<&(Replica<'_>, Keyspace)>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    kv: crate::kvtext::KvText,
) -> anyhow::Result<()> {
    // (key, new value or None for a delete), in input order.
    let mut pending: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let mut commits = 0u64;
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let read = (&mut *input).take(MAX_LINE_BYTES + 1).read_until(b'\n', &mut buf).context("cannot read stdin")?;
        if read == 0 {
            break;
        }
        line_no += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() as u64 > MAX_LINE_BYTES {
            bail!("line {line_no}: longer than {MAX_LINE_BYTES} bytes; nothing of the pending batch was committed");
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            bail!("line {line_no}: not valid UTF-8; nothing of the pending batch was committed");
        };
        match parse_line(text) {
            Ok(Line::Blank) => {}
            Ok(Line::Put { key, value }) => {
                let key = kv.parse("KEY", key).map_err(|e| anyhow::anyhow!("line {line_no}: {e}; nothing of the pending batch was committed"))?;
                let value = kv.parse("VALUE", value).map_err(|e| anyhow::anyhow!("line {line_no}: {e}; nothing of the pending batch was committed"))?;
                pending.push((key, Some(value)));
            }
            Ok(Line::Delete { key }) => {
                let key = kv.parse("KEY", key).map_err(|e| anyhow::anyhow!("line {line_no}: {e}; nothing of the pending batch was committed"))?;
                pending.push((key, None));
            }
            Ok(Line::Commit) => {
                if !pending.is_empty() {
                    let ops = std::mem::take(&mut pending);
                    commit(db, replicated, ops).with_context(|| format!("line {line_no}: commit failed"))?;
                }
                commits += 1;
                writeln!(out, "committed {commits}")?;
                out.flush()?;
            }
            Err(reason) => bail!("line {line_no}: {reason}; nothing of the pending batch was committed"),
        }
    }
    if !pending.is_empty() {
        bail!(
            "input ended with {} uncommitted operation(s), which were discarded (end a batch with \"commit\")",
            pending.len()
        );
    }
    Ok(())
}

/// Applies `ops` atomically: versioned when the default keyspace is
/// replicated (so sync carries them), else as one plain batch.
fn commit(db: &Db, replicated: Option<&(Replica<'_>, Keyspace)>, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> synapsed_storage::Result<()> {
    if let Some((replica, keyspace)) = replicated {
        return replica.write_many(keyspace, &ops);
    }
    let mut batch = WriteBatch::new();
    for (key, value) in ops {
        match value {
            Some(value) => batch.put(key, value),
            None => batch.delete(key),
        };
    }
    db.write(batch).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn parses_the_three_commands() {
        assert_eq!(parse_line("put k v"), Ok(Line::Put { key: "k", value: "v" }));
        assert_eq!(parse_line("put k two words "), Ok(Line::Put { key: "k", value: "two words " }));
        assert_eq!(parse_line("put k "), Ok(Line::Put { key: "k", value: "" }));
        assert_eq!(parse_line("put k\tx v\r"), Ok(Line::Put { key: "k\tx", value: "v" }));
        assert_eq!(parse_line("delete user:1"), Ok(Line::Delete { key: "user:1" }));
        assert_eq!(parse_line("commit"), Ok(Line::Commit));
        assert_eq!(parse_line("commit\r"), Ok(Line::Commit));
        assert_eq!(parse_line(""), Ok(Line::Blank));
        assert_eq!(parse_line("   \t"), Ok(Line::Blank));
    }

    #[test]
    fn refuses_malformed_lines() {
        for bad in
            ["put", "put k", "put  v", "delete", "delete ", "delete a b", "commit now", "PUT k v", "get k", " put k v"]
        {
            assert!(parse_line(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
