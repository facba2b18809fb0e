//! Progress on stderr for commands that can run longer than a second, shown
//! only when stderr is a terminal and `--quiet` is off: scripts and pipes see
//! nothing of it.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress may be drawn: stderr is a terminal and `--quiet` is off.
pub(crate) fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
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
