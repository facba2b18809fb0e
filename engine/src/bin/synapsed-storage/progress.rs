//! Progress on stderr for commands that can run longer than a second, shown
//! only when stderr is a terminal and `--quiet` is off: scripts and pipes see
//! nothing of it.
//!
//! Three shapes: [`Activity`] (a spinner for work of unknown size),
//! [`Transfer`] (a bar of bytes done of a total, for backup and restore) and
//! [`Count`] (items done so far, for imports read from a stream).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// `--quiet` of this process, set once at start.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Records `--quiet` for every display of this process.
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether progress may be drawn: stderr is a terminal and `--quiet` is off.
pub(crate) fn wanted(quiet: bool) -> bool {
    !quiet && !QUIET.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// A bar with `template`, ticking by itself, or `None` unless [`wanted`].
fn bar(bar: ProgressBar, template: &str, message: &str) -> Option<ProgressBar> {
    if !wanted(false) {
        return None;
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// Bytes done of a total that the work reports as it goes (backup, restore);
/// cleared when dropped.
pub(crate) struct Transfer(Option<ProgressBar>);

impl Transfer {
    pub(crate) fn start(message: &str) -> Self {
        Transfer(bar(ProgressBar::new(0), "{msg} {bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}", message))
    }

    /// `done` of `total` bytes are through.
    pub(crate) fn update(&self, done: u64, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
            bar.set_position(done);
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// Items done so far, of a number not known ahead (lines of an import read
/// from a pipe); cleared when dropped.
pub(crate) struct Count(Option<ProgressBar>);

impl Count {
    pub(crate) fn start(message: &str) -> Self {
        Count(bar(ProgressBar::new_spinner(), "{spinner} {msg} {human_pos} ({per_sec}, {elapsed})", message))
    }

    /// `n` more items are done.
    pub(crate) fn add(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// A spinner with the elapsed time next to `message`, for work whose size is
/// not known ahead; cleared when dropped. Draws nothing unless [`wanted`].
pub(crate) struct Activity(Option<ProgressBar>);

impl Activity {
    pub(crate) fn start(quiet: bool, message: &str) -> Self {
        if !wanted(quiet) {
            return Activity(None);
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Activity(Some(bar))
    }

    /// Replaces the message (the step now running).
    pub(crate) fn step(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_string());
        }
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
