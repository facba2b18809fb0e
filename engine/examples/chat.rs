//! A chat app's store: messages in a keyspace keyed by conversation and
//! sequence number, full-text search over them through the document store, and
//! attachments as blobs. Every byte lands encrypted on disk.
//!
//! Run with `cargo run -p synapsed-storage --example chat`; it checks its own
//! results and exits non-zero if one is wrong.

mod common;

use std::io::{Read, Write};
use std::ops::Bound;

use serde_json::json;
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{Credential, Db, KeyspaceOptions, Options, WriteBatch};

fn message_key(chat: &str, seq: u32) -> Vec<u8> {
    format!("{chat}/{seq:08}").into_bytes()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let credential = Credential::passphrase("chat example passphrase");
    let db = Db::create(dir.path(), &credential, Options::default())?;
    let messages = db.create_keyspace("messages", KeyspaceOptions::default())?;
    let docs = db.docs();
    docs.create_index("search", &IndexSpec::text("text"))?;

    let conversation = [
        ("ana", "Are we still on for dinner tonight?"),
        ("ben", "Yes! The usual place at eight."),
        ("ana", "Great, I'll bring the photos from the trip."),
        ("ben", "Can't wait to see the trip photos."),
    ];
    for (seq, (from, text)) in conversation.iter().enumerate() {
        let seq = seq as u32 + 1;
        // The message and the conversation's last sequence number, atomically.
        let mut batch = WriteBatch::new();
        batch.put_in(&messages, message_key("chat-7", seq), serde_json::to_vec(&json!({"from": from, "text": text}))?);
        batch.put(b"chat-7/last", seq.to_be_bytes());
        db.write(batch)?;
        docs.put("search", &json!({"_id": format!("chat-7/{seq:08}"), "text": text}))?;
    }

    // An attachment, streamed in.
    let photo: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut writer = db.blobs()?.writer(b"chat-7/attachments/trip.jpg")?;
    for part in photo.chunks(64 * 1024) {
        writer.write_all(part)?;
    }
    writer.finish()?;

    // The thread in order.
    let start = message_key("chat-7", 0);
    let end = message_key("chat-7", u32::MAX);
    let thread: Vec<(Vec<u8>, Vec<u8>)> =
        db.range_in(&messages, Bound::Included(&start[..]), Bound::Excluded(&end[..]), false, None)?.collect::<Result<_, _>>()?;
    let first: serde_json::Value = serde_json::from_slice(&thread.first().ok_or("empty thread")?.1)?;
    // Search: both messages about the trip photos.
    let found = docs.query("search", &Query::new(json!({"$text": "trip photos"})))?;
    let found_ids: Vec<&str> = found.documents.iter().filter_map(|d| d["_id"].as_str()).collect();
    // The attachment, read back.
    let mut back = Vec::new();
    db.blobs()?.reader(b"chat-7/attachments/trip.jpg")?.ok_or("attachment missing")?.read_to_end(&mut back)?;
    db.close()?;

    // The same store, opened again.
    let db = Db::open(dir.path(), &credential, Options::default())?;
    let last = db.get(b"chat-7/last")?;
    db.close()?;

    let checks = [
        ("four messages in the thread", thread.len() == 4),
        ("the thread starts with ana's question", first["from"] == "ana"),
        ("search finds the two trip messages", found_ids == ["chat-7/00000003", "chat-7/00000004"]),
        ("the attachment reads back whole", back == photo),
        ("the last sequence number survives a reopen", last == Some(4u32.to_be_bytes().to_vec())),
    ];
    common::report("chat", &checks)
}
