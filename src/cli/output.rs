//! Terminal output helpers: colour, sizes, dates, progress bars, error reports.

use std::io::IsTerminal;
use std::sync::Mutex;

use dsv::progress::Progress;

/// A path for text output, quoted as git quotes it (`core.quotePath`, its default):
/// in double quotes with C and octal escapes when it holds a control byte, `"`, `\\`
/// or a byte from 0x7f up. The one function every command prints paths through
/// (`dsv::quote::path`; `--json` prints exact strings instead).
pub fn quote_path(path: impl AsRef<[u8]>) -> String {
    dsv::quote::path(path.as_ref()).into_owned()
}

/// Free text from a repository (commit message, author, class name, error) with
/// terminal control characters escaped (`dsv::quote::text`); newlines and tabs kept.
pub fn safe_text(s: &str) -> std::borrow::Cow<'_, str> {
    dsv::quote::text(s)
}

/// [`safe_text`] for a value inside one line: newlines and tabs escaped too.
pub fn safe_line(s: &str) -> std::borrow::Cow<'_, str> {
    dsv::quote::line(s)
}

/// Wraps `text` in an ANSI colour when `on`.
pub fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Human-readable byte size (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Formats a commit time like git (`Fri Nov 27 02:23:30 2026 +0000`).
pub fn git_date(secs: i64, tz_min: i32) -> String {
    let offset = jiff::tz::Offset::from_seconds(tz_min * 60).unwrap_or(jiff::tz::Offset::UTC);
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::fixed(offset))
            .strftime("%a %b %-d %H:%M:%S %Y %z")
            .to_string(),
        Err(_) => secs.to_string(),
    }
}

/// A message for stderr: URLs redacted (a client library's error may quote one with
/// its credentials) and terminal control characters escaped (it may quote a name).
pub fn safe_message(s: &str) -> String {
    safe_text(&dsv::redact::text(s)).into_owned()
}

/// A count per second for people: `850/s`, `3.3 k/s`, `1.2 M/s` (indicatif's
/// own `{per_sec}` prints `3348.8668/s`).
pub fn human_rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec < 0.0 {
        return "-".into();
    }
    if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else if per_sec < 1000.0 {
        format!("{per_sec:.0}/s")
    } else if per_sec < 1e6 {
        format!("{:.1} k/s", per_sec / 1e3)
    } else {
        format!("{:.1} M/s", per_sec / 1e6)
    }
}

/// The time left, once the rate means something: nothing in the first second
/// or before the first item (a rate from one early sample made clone say
/// "12h" for a one-second download).
fn eta_text(state: &indicatif::ProgressState) -> String {
    if state.pos() == 0 || state.elapsed() < std::time::Duration::from_secs(1) {
        return "eta -".into();
    }
    format!("eta {:#}", indicatif::HumanDuration(state.eta()))
}

/// A bar style with the `{rate}`, `{size}`, `{total_size}`, `{byte_rate}` and `{eta}` keys of [`human_rate`] and [`eta_text`].
fn bar_style(template: &str) -> Option<indicatif::ProgressStyle> {
    let style = indicatif::ProgressStyle::with_template(template).ok()?;
    Some(
        style
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&human_rate(s.per_sec()));
                },
            )
            .with_key(
                "size",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&human_bytes(s.pos()));
                },
            )
            .with_key(
                "total_size",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&human_bytes(s.len().unwrap_or(0)));
                },
            )
            .with_key(
                "byte_rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let r = s.per_sec();
                    let r = if r.is_finite() && r > 0.0 {
                        r as u64
                    } else {
                        0
                    };
                    let _ = write!(w, "{}/s", human_bytes(r));
                },
            )
            .with_key(
                "eta",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&eta_text(s));
                },
            )
            .progress_chars("=> "),
    )
}

/// Draws progress with indicatif when stderr is a terminal; always prints warnings.
pub struct CliProgress {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    enabled: bool,
}

impl CliProgress {
    /// A renderer; bars only when stderr is a terminal and not quiet.
    pub fn new(quiet: bool) -> Self {
        CliProgress {
            bar: Mutex::new(None),
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for CliProgress {
    fn start(&self, label: &str, total: Option<u64>) {
        if !self.enabled || total.is_some_and(|t| t < 200) {
            return;
        }
        let bar = match total {
            Some(t) => indicatif::ProgressBar::new(t),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let template = if total.is_some() {
            "{msg:>10} [{bar:30}] {human_pos}/{human_len} ({rate}, {eta})"
        } else {
            "{msg:>10} {spinner} {human_pos} ({rate})"
        };
        if let Some(style) = bar_style(template) {
            bar.set_style(style);
        }
        bar.set_message(label.to_string());
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(bar);
        }
    }
    fn start_bytes(&self, label: &str, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = match total {
            Some(t) => indicatif::ProgressBar::new(t),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let template = if total.is_some() {
            "{msg:>12} [{bar:30}] {size}/{total_size} ({byte_rate}, {eta})"
        } else {
            "{msg:>12} {spinner} {size} ({byte_rate})"
        };
        if let Some(style) = bar_style(template) {
            bar.set_style(style);
        }
        bar.set_message(label.to_string());
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(bar);
        }
    }
    fn inc(&self, n: u64) {
        if let Ok(b) = self.bar.lock()
            && let Some(b) = b.as_ref()
        {
            b.inc(n);
        }
    }
    fn finish(&self) {
        if let Ok(mut b) = self.bar.lock()
            && let Some(b) = b.take()
        {
            b.finish_and_clear();
        }
    }
    fn warn(&self, message: &str) {
        let line = format!("warning: {}", safe_message(message));
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
}

/// Writes JSON to stdout followed by a newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    // Streamed: the text of a large document (a polygon of a million points
    // pretty-printed is tens of bytes a number) is never held whole.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Writes command output to stdout, through a pager when stdout is a terminal
/// and `page` is set — like git: `DSV_PAGER`, else `PAGER`, else `less` with
/// `LESS=FRX` (quit if it fits on one screen, keep colours, no screen clear).
/// An empty pager setting or `cat` turns paging off.
pub fn write_paged(buf: &[u8], page: bool) -> anyhow::Result<()> {
    write_paged_parts(&[buf], page)
}

/// [`write_paged`] of the parts one after the other, without joining them
/// first (the text of a large label file is not copied).
pub fn write_paged_parts(parts: &[&[u8]], page: bool) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let stdout = std::io::stdout();
    let pager = std::env::var("DSV_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .unwrap_or_else(|_| "less".to_string());
    if page && stdout.is_terminal() && !pager.trim().is_empty() && pager.trim() != "cat" {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&pager)
            .stdin(std::process::Stdio::piped());
        if std::env::var_os("LESS").is_none() {
            cmd.env("LESS", "FRX");
        }
        if let Ok(mut child) = cmd.spawn() {
            if let Some(mut stdin) = child.stdin.take() {
                // The pager may quit before reading everything (user pressed q).
                for p in parts {
                    if stdin.write_all(p).is_err() {
                        break;
                    }
                }
            }
            let _ = child.wait();
            return Ok(());
        }
    }
    let mut lock = stdout.lock();
    for p in parts {
        lock.write_all(p)?;
    }
    lock.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::human_rate;

    #[test]
    fn rates_are_short_and_human() {
        assert_eq!(human_rate(3348.8668), "3.3 k/s");
        assert_eq!(human_rate(850.2), "850/s");
        assert_eq!(human_rate(2.26), "2.3/s");
        assert_eq!(human_rate(1_260_000.0), "1.3 M/s");
        assert_eq!(human_rate(f64::NAN), "-");
    }
}
