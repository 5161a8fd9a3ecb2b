//! Progress of long work on standard error (indicatif): a bar with rate and
//! ETA when the total is known, a counter with the rate otherwise. Only when
//! standard error is a terminal: piped or redirected, not a byte of it is
//! written. Errors printed while a bar is shown go through [`Progress::suspend`],
//! so they are not drawn over.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar, or nothing.
#[derive(Clone)]
pub struct Progress(Option<ProgressBar>);

/// Whether to show progress: standard error is a terminal, and standard
/// output does not write to the same terminal while the work goes on
/// (`printed_at_end`: it prints only when the work is done, as `--count`).
pub fn wanted(stderr_terminal: bool, stdout_terminal: bool, printed_at_end: bool) -> bool {
    stderr_terminal && (!stdout_terminal || printed_at_end)
}

/// [`wanted`] for this process's streams.
pub fn wanted_here(printed_at_end: bool) -> bool {
    wanted(
        std::io::stderr().is_terminal(),
        std::io::stdout().is_terminal(),
        printed_at_end,
    )
}

impl Progress {
    /// No progress shown.
    pub fn none() -> Progress {
        Progress(None)
    }

    /// Bytes of an input (`total`: its size, when known), with the records
    /// counted as the message.
    pub fn bytes(total: Option<u64>) -> Progress {
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            ),
            None => (
                ProgressBar::no_length(),
                "{spinner} {bytes} {bytes_per_sec} {msg}",
            ),
        };
        Progress::show(bar, template)
    }

    /// `total` items (sagas of `--inputs`).
    pub fn items(total: u64, what: &str) -> Progress {
        let template = format!("{{bar:30}} {{pos}}/{{len}} {what} {{per_sec}} ETA {{eta}}");
        Progress::show(ProgressBar::new(total), &template)
    }

    fn show(bar: ProgressBar, template: &str) -> Progress {
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress(Some(bar))
    }

    /// `n` more done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    /// The text after the bar (`120000 records`).
    pub fn message(&self, text: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(text);
        }
    }

    /// Run `f` (which prints to standard error) with the bar hidden.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// The work is done: the bar goes away.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_on_a_terminal_and_never_over_the_output() {
        // standard error piped or redirected: never
        assert!(!wanted(false, false, false));
        assert!(!wanted(false, true, true));
        // results going to a file or a pipe while the bar is on the terminal
        assert!(wanted(true, false, false));
        // results on the same terminal as they come: no bar between them
        assert!(!wanted(true, true, false));
        // a count printed at the end
        assert!(wanted(true, true, true));
    }
}
