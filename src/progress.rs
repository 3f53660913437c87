//! Progress reporting: the library calls a [`Progress`]; the CLI decides how to draw it.

/// Receives progress events from long operations.
pub trait Progress: Send + Sync {
    /// A new phase begins; `total` is the item count when known.
    fn start(&self, _label: &str, _total: Option<u64>) {}
    /// A new phase counted in bytes (a renderer shows sizes and a rate); `inc` adds bytes.
    fn start_bytes(&self, label: &str, total: Option<u64>) {
        self.start(label, total)
    }
    /// `n` more items are done.
    fn inc(&self, _n: u64) {}
    /// The phase ended.
    fn finish(&self) {}
    /// A warning to show the user (the library never prints).
    fn warn(&self, _message: &str) {}
}

/// Ignores all progress.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Collects warnings (for tests and callers that print them later).
#[derive(Debug, Default)]
pub struct CollectWarnings(pub std::sync::Mutex<Vec<String>>);

impl Progress for CollectWarnings {
    fn warn(&self, message: &str) {
        if let Ok(mut w) = self.0.lock() {
            w.push(message.to_string());
        }
    }
}
