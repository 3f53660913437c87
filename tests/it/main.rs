//! Every integration test, in one binary: each suite is a module, the shared
//! helpers are `common`. One binary links dsv and its dependencies once (twenty
//! did it twenty times). `cargo test --test it remote::` runs one suite,
//! `cargo test --test it NAME` one test.
//!
//! The suites share one process: a test must not change process-wide state
//! (environment variables, the current directory, the umask) and must not count
//! on what the process sees as a whole. Memory in particular: `RUSAGE_CHILDREN`
//! holds the children of every suite, and even one child's peak starts at this
//! process's; measure dsv with `TestRepo::exit_and_peak_rss_in`.
//!
//! A new suite is a module here (`tests/it/NAME.rs`), not a new file directly in
//! `tests/`, which would be a binary of its own.

mod common;

mod blame;
mod box_convention;
mod cli;
mod corruption;
mod crash;
mod differential;
mod export;
mod export_handoff;
mod frame_attributes;
mod fsmonitor;
mod git_integration;
mod git_verbs;
mod help;
mod hooks;
mod hostile_remote;
mod html_review;
mod labels;
mod merge;
mod python;
mod query;
mod quoting;
mod refs;
mod remote;
mod remote_gc;
mod remote_refs;
mod secrets;
mod select;
mod shapes;
mod sparse;
mod stats_delta;
mod status_index;
mod summary_counts;
mod watch;
