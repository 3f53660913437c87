//! `dsv hooks list | test EVENT | log | status | retry [ID]` (and the hidden
//! `deliver`, the background worker), plus how commands hand their `post-*`
//! deliveries to a worker.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use dsv::hooks::deliver::{Attempt, Dispatch, human_duration, run_worker, spawn_worker};
use dsv::hooks::outbox::{Delivery, Outbox, Recorded, RetryPolicy, State, now_ms};
use dsv::hooks::{Event, FireReport, HookRun, HookSet};
use dsv::lock::Access;
use dsv::repo::{DSV_DIR, Repository};

use super::Ctx;

/// Arguments of `hooks`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// List the hooks (dsv.toml [[hooks]] and .dsv/hooks/ executables); checks dsv.toml.
    #[command(after_long_help = "\
Examples:
  dsv hooks list")]
    List,
    /// Run the hooks of EVENT now, as if it had happened (nothing is recorded).
    #[command(after_long_help = "\
Examples:
  dsv hooks test pre-commit
  dsv hooks test post-commit --commit HEAD~1")]
    Test {
        /// pre-commit, post-commit, post-checkout, pre-push, post-push or post-merge.
        event: String,
        /// The commit the event is about (default HEAD).
        #[arg(long, value_name = "REV")]
        commit: Option<String>,
    },
    /// Every recorded post-* delivery, newest first.
    #[command(after_long_help = "\
Examples:
  dsv hooks log -n 20
  dsv hooks log --json")]
    Log {
        /// Show at most N deliveries.
        #[arg(short = 'n', long, value_name = "N")]
        max_count: Option<usize>,
        /// Print JSON (one array) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Deliveries not done yet (pending and failed), with their last error.
    #[command(after_long_help = "\
Examples:
  dsv hooks status")]
    Status {
        /// Print JSON (one array) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Deliver again now: every pending and failed delivery, or the one named by ID.
    #[command(after_long_help = "\
Examples:
  dsv hooks retry                    every pending and failed delivery
  dsv hooks retry 12")]
    Retry {
        /// A delivery number (as `dsv hooks log` shows it) or delivery-id prefix.
        id: Option<String>,
    },
    /// Give up a delivery that cannot succeed as recorded (a failing command, a URL
    /// that is gone), so the later deliveries of its hook go ahead.
    #[command(after_long_help = "\
Examples:
  dsv hooks skip 12")]
    Skip {
        /// A delivery number (as `dsv hooks log` shows it) or delivery-id prefix.
        id: String,
    },
    /// Deliver what the outbox holds (commands start this in the background).
    #[command(hide = true)]
    Deliver,
}

/// Runs `hooks`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    match args.cmd {
        Sub::List => list(ctx),
        Sub::Test { event, commit } => test(ctx, &event, commit.as_deref()),
        Sub::Log { max_count, json } => log(ctx, max_count, json),
        Sub::Status { json } => status(ctx, json),
        Sub::Retry { id } => retry(ctx, id.as_deref()),
        Sub::Skip { id } => skip(ctx, &id),
        Sub::Deliver => {
            let root = Repository::locate(&ctx.cwd)?;
            deliver_now(ctx, &root)?;
            Ok(0)
        }
    }
}

fn list(ctx: &Ctx) -> anyhow::Result<i32> {
    let root = Repository::locate(&ctx.cwd)?;
    let set = HookSet::load(&root, &root.join(DSV_DIR))?;
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }
    if set.hooks.is_empty() {
        if !ctx.quiet {
            eprintln!(
                "no hooks (declare them with [[hooks]] in dsv.toml, or add executables to .dsv/hooks/)"
            );
        }
        return Ok(0);
    }
    let width = set.hooks.iter().map(|h| h.id.len()).max().unwrap_or(0);
    for h in &set.hooks {
        let origin = match h.origin {
            dsv::hooks::config::Origin::DsvToml { line } => format!("dsv.toml:{line}"),
            dsv::hooks::config::Origin::Local => ".dsv/hooks".to_string(),
        };
        println!(
            "{:width$}  {:13}  {}  [{}; timeout {}; {origin}]",
            h.id,
            h.event.name(),
            h.action.describe(),
            h.filters.describe(),
            human_duration(h.timeout),
        );
    }
    Ok(0)
}

fn parse_event(name: &str) -> anyhow::Result<Event> {
    match Event::from_name(name) {
        Some(e) => Ok(e),
        None => crate::usage!(
            "unknown event '{name}' (expected one of {})",
            Event::names()
        ),
    }
}

/// Prints one synchronous or delivered attempt and what the hook printed.
pub fn print_attempt(ctx: &Ctx, hook: &str, event: Event, a: &Attempt) {
    if ctx.quiet && a.ok {
        return;
    }
    // A receiver's answer is someone else's text: escaped like any other.
    let safe = super::output::safe_text;
    eprintln!(
        "{event} hook '{hook}': {} ({} ms)",
        safe(&a.detail),
        a.millis
    );
    for line in a.output.lines() {
        eprintln!("  | {}", safe(line));
    }
}

fn test(ctx: &Ctx, event: &str, rev: Option<&str>) -> anyhow::Result<i32> {
    let event = parse_event(event)?;
    let (prepared, root) = {
        let repo = ctx.repo(Access::Read)?;
        let set = dsv::hooks::load(&repo)?;
        let commit = dsv::ops::revparse::resolve(&repo, rev.unwrap_or("HEAD"))?;
        let branch = match repo.refs.head()? {
            dsv::refs::Head::Branch(b) => Some(b),
            dsv::refs::Head::Detached(_) => None,
        };
        let parent = dsv::object::Commit::load(&repo.store, &commit)?
            .parents
            .first()
            .copied();
        let p = match (event, branch) {
            // As if the branch had just moved to REV from its first parent.
            (Event::BranchUpdated, Some(b)) => dsv::hooks::prepare_update(
                &repo,
                &set,
                &dsv::ops::events::BranchMove {
                    branch: b,
                    old: parent,
                    new: commit,
                },
            )?,
            (Event::BranchUpdated, None) => {
                anyhow::bail!("branch-updated is about a branch: switch to one first")
            }
            (_, branch) => {
                let previous = (event == Event::PostCheckout).then_some(parent).flatten();
                dsv::hooks::prepare(&repo, &set, event, commit, branch, None, previous)?
            }
        };
        (p, repo.root().to_path_buf())
        // The repository is closed here: hooks may run dsv commands themselves.
    };
    for s in &prepared.skipped {
        eprintln!("{event} hook '{}': skipped: {}", s.hook, s.reason);
    }
    if prepared.hooks.is_empty() {
        eprintln!("no {event} hook applies");
        return Ok(0);
    }
    let vars = &ctx.open.settings.variables;
    let runs = dsv::hooks::run_now(&prepared, &root, vars, false, true, &mut |h, a| {
        print_attempt(ctx, &h.id, event, a);
    });
    Ok(if runs.iter().all(|r| r.attempt.ok) {
        0
    } else {
        1
    })
}

/// The outbox, written to directly: `DSV_FAULT` is for the command under test, and the
/// crash tests count its writes up to the end of the command's own work.
fn storage() -> std::sync::Arc<dyn dsv::storage::Storage> {
    std::sync::Arc::new(dsv::storage::OsStorage)
}

fn outbox(root: &Path) -> Outbox {
    Outbox::new(&root.join(DSV_DIR), storage())
}

fn ago(ms: i64) -> String {
    let d = (now_ms() - ms).max(0) / 1000;
    match d {
        0..60 => format!("{d}s ago"),
        60..3600 => format!("{}m ago", d / 60),
        3600..86400 => format!("{}h ago", d / 3600),
        _ => format!("{}d ago", d / 86400),
    }
}

fn line(d: &Delivery) -> String {
    let short = d.commit.get(..12).unwrap_or(&d.commit);
    let mut s = format!(
        "#{:<4} {:7}  {:13}  {}  {short}  {} attempt{}",
        d.seq,
        d.state.name(),
        d.event.name(),
        d.hook,
        d.attempts,
        if d.attempts == 1 { "" } else { "s" },
    );
    match d.state {
        State::Done => s.push_str(&format!(", delivered {}", ago(d.updated_ms))),
        State::Pending if d.attempts > 0 => {
            let wait = (d.next_attempt_ms - now_ms()).max(0) / 1000;
            s.push_str(&format!(", next in {wait}s"));
        }
        _ => {}
    }
    if d.state != State::Done
        && let Some(e) = &d.last_error
    {
        s.push_str(&format!(": {}", super::output::safe_line(e)));
    }
    s
}

/// The outbox's deliveries, secrets masked: recorded ones never hold any, but an
/// outbox written by an older dsv may.
fn deliveries(root: &Path) -> anyhow::Result<Vec<Delivery>> {
    let mut all = outbox(root).list()?;
    for d in &mut all {
        d.action = d.action.redacted();
        d.last_error = d.last_error.as_deref().map(dsv::redact::text);
    }
    Ok(all)
}

fn log(ctx: &Ctx, max: Option<usize>, json: bool) -> anyhow::Result<i32> {
    let root = Repository::locate(&ctx.cwd)?;
    let mut all = deliveries(&root)?;
    all.reverse();
    if let Some(n) = max {
        all.truncate(n);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(0);
    }
    for d in &all {
        println!("{}", line(d));
    }
    Ok(0)
}

fn status(ctx: &Ctx, json: bool) -> anyhow::Result<i32> {
    let root = Repository::locate(&ctx.cwd)?;
    let all = deliveries(&root)?;
    let total = all.len();
    let open: Vec<Delivery> = all
        .into_iter()
        .filter(|d| !matches!(d.state, State::Done | State::Skipped))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&open)?);
        return Ok(0);
    }
    // Where each `dsv watch` of this mirror has fired up to.
    for (remote, branch, commit) in outbox(&root).cursors()? {
        let short = commit.get(..12).unwrap_or(&commit);
        println!("watch {remote}/{branch}: fired up to {short}");
    }
    if open.is_empty() {
        println!(
            "nothing pending ({}, all done)",
            dsv::quote::count(total, "delivery")
        );
        return Ok(0);
    }
    for d in &open {
        println!("{}", line(d));
    }
    if open.iter().any(|d| d.state == State::Failed) {
        println!(
            "failed deliveries hold back later ones of the same hook and branch; `dsv hooks retry` tries them again, `dsv hooks skip ID` gives one up"
        );
    }
    Ok(0)
}

fn skip(ctx: &Ctx, id: &str) -> anyhow::Result<i32> {
    let root = Repository::locate(&ctx.cwd)?;
    let seq = outbox(&root).skip(id)?;
    if !ctx.quiet {
        eprintln!(
            "skipped #{seq}: it will not be attempted again (`dsv hooks retry {seq}` revives it); later deliveries of its hook go ahead"
        );
    }
    // The deliveries it held back are due now.
    dispatch(ctx, &root)?;
    Ok(0)
}

fn retry(ctx: &Ctx, id: Option<&str>) -> anyhow::Result<i32> {
    let root = Repository::locate(&ctx.cwd)?;
    let ob = outbox(&root);
    let seqs = ob.retry(id)?;
    if seqs.is_empty() {
        // Staged deliveries (a command died before confirming them) are settled by a worker.
        let staged = ob.list()?.iter().any(|d| d.state == State::Staged);
        if staged {
            dispatch(ctx, &root)?;
        } else if !ctx.quiet {
            eprintln!("nothing to retry");
        }
        return Ok(0);
    }
    if !ctx.quiet {
        let list: Vec<String> = seqs.iter().map(|s| format!("#{s}")).collect();
        eprintln!("retrying {}", list.join(", "));
    }
    dispatch(ctx, &root)?;
    Ok(0)
}

/// Runs the delivery worker in this process, printing each attempt.
fn deliver_now(ctx: &Ctx, root: &Path) -> anyhow::Result<()> {
    let r = run_worker(
        root,
        &root.join(DSV_DIR),
        storage(),
        &RetryPolicy::from_settings(&ctx.open.settings),
        &ctx.open.settings.variables,
        &mut |d, a| {
            print_attempt(ctx, &d.hook, d.event, a);
            if !a.ok && !ctx.quiet {
                match d.state {
                    State::Failed => eprintln!(
                        "  delivery #{} failed {} times; gave up (dsv hooks retry {})",
                        d.seq, d.attempts, d.seq
                    ),
                    _ => eprintln!(
                        "  delivery #{} will be retried in {}",
                        d.seq,
                        human_duration(std::time::Duration::from_millis(
                            (d.next_attempt_ms - now_ms()).max(0) as u64
                        ))
                    ),
                }
            }
        },
    )?;
    if !r.ran && !ctx.quiet {
        eprintln!("another dsv process is delivering hooks for this repository");
    }
    Ok(())
}

/// Starts delivery of what the outbox holds: in this process when
/// `DSV_HOOKS_FOREGROUND` is set, else in a detached `dsv hooks deliver`.
/// Call it after the repository is closed, so hooks can run dsv commands.
pub fn dispatch(ctx: &Ctx, root: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("dsv"));
    match Dispatch::from_settings(&ctx.open.settings, exe) {
        Dispatch::Foreground => deliver_now(ctx, root),
        Dispatch::Background { exe } => {
            spawn_worker(&exe, root, &root.join(DSV_DIR))?;
            Ok(())
        }
        Dispatch::Manual => Ok(()),
    }
}

/// Prints what a fired event did (pre hooks' output, queued deliveries).
pub fn report(ctx: &Ctx, event: Event, r: &FireReport) {
    for HookRun { hook, attempt } in &r.ran {
        print_attempt(ctx, hook, event, attempt);
    }
    if ctx.quiet {
        return;
    }
    let new: Vec<&Recorded> = r.queued.iter().filter(|q| q.new).collect();
    let background = matches!(
        Dispatch::from_settings(&ctx.open.settings, PathBuf::new()),
        Dispatch::Background { .. }
    );
    if !new.is_empty() && background {
        let ids: Vec<&str> = new.iter().map(|q| q.hook.as_str()).collect();
        eprintln!(
            "{event}: queued {} (delivered in the background; see `dsv hooks status`)",
            ids.join(", ")
        );
    }
}

/// Fires the hooks of what an operation did, as its result's `events` list it
/// ([`dsv::hooks::fire_events`] maps them to hook events), then releases the
/// repository and starts the deliveries ([`after_events`]). Every command whose
/// operation can move a branch, HEAD or the worktree ends here with its events, so
/// which hooks fire is decided by what the operation did, never by the command;
/// `done` says what stands if firing fails.
pub fn fire(
    ctx: &Ctx,
    repo: dsv::Repository,
    events: &[dsv::ops::events::OpEvent],
    command: &str,
    done: &str,
) -> anyhow::Result<i32> {
    let fired = dsv::hooks::fire_events(&repo, events, command);
    after_events(ctx, repo, fired, done)
}

/// After a command fired a `post-*` event: release the repository (deliveries run
/// without its lock, so hooks can use dsv themselves), print, then hand the
/// deliveries to a worker. A failure to record is reported as an error, the
/// operation itself stands.
pub fn after_post(
    ctx: &Ctx,
    event: Event,
    repo: dsv::Repository,
    fired: dsv::Result<FireReport>,
    done: &str,
) -> anyhow::Result<i32> {
    let root = repo.root().to_path_buf();
    drop(repo);
    let root = root.as_path();
    match fired {
        Ok(r) => {
            report(ctx, event, &r);
            if !r.queued.is_empty()
                && let Err(e) = dispatch(ctx, root)
            {
                eprintln!(
                    "error: {done} and its {event} deliveries are recorded, but they could not be started: {e} (run `dsv hooks retry`)"
                );
                return Ok(1);
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!(
                "error: {done}, but its {event} hooks were not started: {e} (`dsv hooks retry` starts any that were recorded)"
            );
            Ok(1)
        }
    }
}

/// After a command fired the hooks of what it did ([`dsv::hooks::fire_events`]):
/// like [`after_post`], for several events at once.
pub fn after_events(
    ctx: &Ctx,
    repo: dsv::Repository,
    fired: dsv::Result<Vec<(Event, FireReport)>>,
    done: &str,
) -> anyhow::Result<i32> {
    let root = repo.root().to_path_buf();
    drop(repo);
    match fired {
        Ok(list) => {
            for (event, r) in &list {
                report(ctx, *event, r);
            }
            if list.iter().any(|(_, r)| !r.queued.is_empty())
                && let Err(e) = dispatch(ctx, &root)
            {
                eprintln!(
                    "error: {done} and its hook deliveries are recorded, but they could not be started: {e} (run `dsv hooks retry`)"
                );
                return Ok(1);
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!(
                "error: {done}, but its hooks were not started: {e} (`dsv hooks retry` starts any that were recorded)"
            );
            Ok(1)
        }
    }
}

/// Examples shown by `dsv hooks --help`.
const EXAMPLES: &str = "\
Examples:
  dsv hooks list                     what runs on which event
  dsv hooks test pre-commit          run a hook now, as if the event happened
  dsv hooks status                   deliveries not done yet
  dsv hooks retry";
