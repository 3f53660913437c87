//! Phase timings for performance work: the library marks where time goes,
//! a sink installed by the caller (the CLI, when `DSV_TRACE_PERF` is set)
//! receives them. Without a sink a mark costs one atomic load.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Receives a phase name and how long it took.
pub type Sink = Box<dyn Fn(&str, Duration) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the sink for this process; later calls are ignored.
pub fn install(sink: Sink) {
    let _ = SINK.set(sink);
}

/// Times consecutive phases of one operation: each [`Phases::mark`] reports
/// the time since the previous mark (or since [`Phases::start`]).
pub struct Phases {
    scope: &'static str,
    last: Option<Instant>,
}

impl Phases {
    /// Starts timing the phases of `scope`.
    pub fn start(scope: &'static str) -> Phases {
        Phases {
            scope,
            last: SINK.get().map(|_| Instant::now()),
        }
    }

    /// Ends the phase `name`, begun at the previous mark.
    pub fn mark(&mut self, name: &str) {
        let (Some(sink), Some(last)) = (SINK.get(), self.last) else {
            return;
        };
        let now = Instant::now();
        sink(&format!("{}.{name}", self.scope), now - last);
        self.last = Some(now);
    }
}
