//! A banking app's offline cache: transactions as documents with indexes for
//! the queries the app makes (by date range, by amount, by memo words), the
//! account balance as a time series downsampled per day, all kept across
//! restarts so the app works without the network.
//!
//! Run with `cargo run -p synapsed-storage --example banking`.

mod common;

use serde_json::json;
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{Aggregate, Credential, Db, Options};

const DAY_MS: i64 = 86_400_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let credential = Credential::passphrase("banking example passphrase");
    let db = Db::create(dir.path(), &credential, Options::default())?;
    let docs = db.docs();
    docs.create_index("tx", &IndexSpec::ordered("day"))?;
    docs.create_index("tx", &IndexSpec::ordered("amount"))?;
    docs.create_index("tx", &IndexSpec::text("memo"))?;

    // 30 days of history: a salary, rent, and small purchases.
    let mut balance = 1_000.0f64;
    let mut transactions = Vec::new();
    for day in 0..30i64 {
        let mut today = vec![(-4.5 - (day % 3) as f64, format!("coffee shop {day}"))];
        if day == 1 {
            today.push((2_500.0, "salary".to_string()));
        }
        if day == 2 {
            today.push((-950.0, "rent".to_string()));
        }
        for (n, (amount, memo)) in today.into_iter().enumerate() {
            balance += amount;
            transactions.push(json!({"_id": format!("tx-{day:03}-{n}"), "day": day, "amount": amount, "memo": memo}));
            db.time_series().append("balance", day * DAY_MS + n as i64 * 60_000, balance)?;
        }
    }
    let imported = docs.import("tx", &transactions)?;
    db.close()?;

    // Later, offline: the app opens its cache again.
    let db = Db::open(dir.path(), &credential, Options::default())?;
    let docs = db.docs();
    let week = docs.query("tx", &Query::new(json!({"day": {"$gte": 7, "$lt": 14}})))?;
    let large = docs.query("tx", &Query::new(json!({"amount": {"$lt": -100}})))?;
    let coffee = docs.query("tx", &Query::new(json!({"$text": "coffee"})).with_limit(5))?;
    let daily = db.time_series().downsample("balance", 0, 30 * DAY_MS, DAY_MS, Aggregate::Last)?;
    let latest = db.time_series().latest("balance")?;
    db.close()?;

    let checks = [
        ("every transaction imported", imported == 32),
        ("a week of transactions, by the day index", week.documents.len() == 7 && week.explain.index.as_deref() == Some("day")),
        ("the rent is the only large debit", large.documents.len() == 1 && large.documents[0]["memo"] == "rent"),
        ("coffee purchases page by five", coffee.documents.len() == 5 && coffee.next_cursor.is_some()),
        ("one closing balance per day", daily.points.len() == 30),
        ("the latest balance is the running total", latest.map(|p| p.value) == Some(balance)),
    ];
    println!("closing balance {balance:.2} after {imported} transactions");
    common::report("banking", &checks)
}
