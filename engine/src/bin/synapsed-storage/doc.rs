//! The `doc` commands: JSON documents in named collections (DESIGN.md, "CLI
//! contract"). Documents go out as one JSON line each; `query --explain` adds
//! a last line `{"explain": {"index": F|null, "examined": N, "returned": M}}`.
//! `import` reads JSON lines and commits them in atomic batches of
//! [`IMPORT_BATCH`] documents; a bad line stops it with `line N: ...` and
//! nothing of that line's batch is written.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::Db;

/// Documents per atomic import batch.
const IMPORT_BATCH: usize = 1000;
/// Longest accepted input line or stdin document.
const MAX_INPUT_BYTES: u64 = 16 << 20;

#[derive(Debug, Subcommand)]
pub(crate) enum DocCommand {
    /// Stores (replaces) one object; JSON "-" reads it from stdin. Its "_id" is set to ID.
    Put {
        /// Collection.
        coll: String,
        /// Document id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The object, or "-" for stdin.
        #[arg(allow_hyphen_values = true)]
        json: String,
    },
    /// Imports JSON lines, each an object with a string "_id"; prints "imported N".
    Import {
        /// Collection.
        coll: String,
        /// File of JSON lines ("-" or absent: stdin).
        file: Option<PathBuf>,
    },
    /// Prints the object as one JSON line; exits 1 if it is absent.
    Get {
        /// Collection.
        coll: String,
        /// Document id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Deletes a document (no error if it is absent).
    Delete {
        /// Collection.
        coll: String,
        /// Document id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Creates a secondary index on a field (dotted path), built over existing
    /// documents: ordered (equality, ranges, sort) unless --hashed or --text.
    Index {
        /// Collection.
        coll: String,
        /// Field path ("a.b").
        field: String,
        /// A full-text index ($text queries).
        #[arg(long, conflicts_with_all = ["hashed", "unique"])]
        text: bool,
        /// A blind index of keyed hashes: equality and $in only (docs/security.md).
        #[arg(long)]
        hashed: bool,
        /// Refuse two documents with the same value.
        #[arg(long)]
        unique: bool,
    },
    /// Prints the matching documents, one JSON object per line.
    Query {
        /// Collection.
        coll: String,
        /// Filter object, e.g. {"age": {"$gte": 30}}.
        #[arg(allow_hyphen_values = true)]
        filter: String,
        /// Sort field, ":desc" for descending.
        #[arg(long, value_name = "FIELD[:desc]")]
        sort: Option<String>,
        /// Print at most N documents.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Order by relevance to the $text words (best first).
        #[arg(long, conflicts_with = "sort")]
        rank: bool,
        /// Resume after an earlier page (the "next cursor:" line on stderr).
        #[arg(long, value_name = "C")]
        cursor: Option<String>,
        /// Adds a last line {"explain": {"index": F|null, "examined": N, "returned": M}}.
        #[arg(long)]
        explain: bool,
    },
}

fn read_limited(input: &mut dyn Read) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    input.take(MAX_INPUT_BYTES + 1).read_to_end(&mut buf).context("cannot read stdin")?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        bail!("document longer than {MAX_INPUT_BYTES} bytes");
    }
    Ok(buf)
}

/// Whether the command only reads.
pub(crate) fn read_only(command: &DocCommand) -> bool {
    matches!(command, DocCommand::Get { .. } | DocCommand::Query { .. })
}

/// Runs one `doc` command on an open store.
pub(crate) fn run(db: &Db, command: &DocCommand, out: &mut dyn Write) -> anyhow::Result<bool> {
    let docs = db.docs();
    match command {
        DocCommand::Put { coll, id, json } => {
            let text = if json == "-" { read_limited(&mut std::io::stdin().lock())? } else { json.clone().into_bytes() };
            let mut doc: Value = serde_json::from_slice(&text).context("malformed JSON")?;
            let Some(object) = doc.as_object_mut() else { bail!("a document must be a JSON object") };
            match object.get("_id") {
                Some(Value::String(given)) if given != id => bail!("the document's \"_id\" {given:?} is not {id:?}"),
                Some(Value::String(_)) | None => {}
                Some(_) => bail!("document \"_id\" must be a string"),
            }
            object.insert("_id".into(), json!(id));
            docs.put(coll, &doc)?;
        }
        DocCommand::Import { coll, file } => {
            let mut input: Box<dyn BufRead> = match file {
                Some(p) if p.as_os_str() != "-" => {
                    Box::new(std::io::BufReader::new(std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?))
                }
                _ => Box::new(std::io::BufReader::new(std::io::stdin())),
            };
            let mut pending = Vec::new();
            let mut imported = 0usize;
            let progress = crate::progress::Count::start("documents imported");
            let mut line_no = 0u64;
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let read = (&mut input).take(MAX_INPUT_BYTES + 1).read_until(b'\n', &mut buf).context("cannot read input")?;
                if read == 0 {
                    break;
                }
                line_no += 1;
                if buf.len() as u64 > MAX_INPUT_BYTES {
                    bail!("line {line_no}: longer than {MAX_INPUT_BYTES} bytes; {imported} documents were imported before it");
                }
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let doc: Value = serde_json::from_slice(&buf)
                    .with_context(|| format!("line {line_no}: malformed JSON; {imported} documents were imported before its batch"))?;
                pending.push(doc);
                if pending.len() == IMPORT_BATCH {
                    imported += docs.import(coll, &pending).with_context(|| format!("batch ending at line {line_no}; {imported} documents were imported before it"))?;
                    progress.add(pending.len() as u64);
                    pending.clear();
                }
            }
            if !pending.is_empty() {
                imported += docs.import(coll, &pending).with_context(|| format!("batch ending at line {line_no}; {imported} documents were imported before it"))?;
            }
            drop(progress);
            writeln!(out, "imported {imported}")?;
        }
        DocCommand::Get { coll, id } => match docs.get(coll, id)? {
            Some(doc) => writeln!(out, "{doc}")?,
            None => return Ok(false),
        },
        DocCommand::Delete { coll, id } => {
            docs.delete(coll, id)?;
        }
        DocCommand::Index { coll, field, text, hashed, unique } => {
            let spec = if *text {
                IndexSpec::text(field.as_str())
            } else if *hashed {
                IndexSpec::hashed(field.as_str())
            } else {
                IndexSpec::ordered(field.as_str())
            };
            let _activity = crate::progress::Activity::start(false, "building the index");
            docs.create_index(coll, &spec.with_unique(*unique))?;
        }
        DocCommand::Query { coll, filter, sort, limit, rank, cursor, explain } => {
            let filter: Value = serde_json::from_str(filter).context("malformed filter JSON")?;
            let mut query = Query::new(filter).with_rank(*rank);
            if let Some(sort) = sort {
                let (field, desc) = match sort.rsplit_once(':') {
                    Some((f, "desc")) => (f, true),
                    Some((f, "asc")) => (f, false),
                    _ => (sort.as_str(), false),
                };
                query = query.with_sort(field, desc);
            }
            if let Some(limit) = limit {
                query = query.with_limit(*limit);
            }
            if let Some(cursor) = cursor {
                query = query.with_cursor(cursor.as_str());
            }
            let result = docs.query(coll, &query)?;
            for doc in &result.documents {
                writeln!(out, "{doc}")?;
            }
            if *explain {
                let e = &result.explain;
                // Spelled as the contract writes it, keys in its order.
                let index = json!(e.index);
                writeln!(out, "{{\"explain\": {{\"index\": {index}, \"examined\": {}, \"returned\": {}}}}}", e.examined, e.returned)?;
            }
            if let Some(next) = result.next_cursor {
                eprintln!("next cursor: {next}");
            }
        }
    }
    Ok(true)
}
