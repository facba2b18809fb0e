//! What the examples share: printing their checks and failing when one fails.

/// Prints each check as `ok` or `FAIL` and returns an error naming `example`
/// if any failed, so `cargo run --example` exits non-zero.
pub fn report(example: &str, checks: &[(&str, bool)]) -> Result<(), Box<dyn std::error::Error>> {
    for (what, passed) in checks {
        println!("{} {what}", if *passed { "ok  " } else { "FAIL" });
    }
    if checks.iter().all(|(_, passed)| *passed) {
        Ok(())
    } else {
        Err(format!("the {example} example found a problem").into())
    }
}
