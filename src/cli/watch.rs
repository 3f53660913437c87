//! `dsv watch REMOTE [--branch GLOB]... (--exec CMD | --webhook URL [--secret-env VAR])
//! [--interval SECS] [--once] [--from-start] [--timeout SECS]`: the CI-side trigger.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dsv::hooks::config::{Action, BodyFormat, DEFAULT_TIMEOUT};
use dsv::hooks::deliver::human_duration;
use dsv::hooks::outbox::{RetryPolicy, State, now_ms};
use dsv::hooks::watch::{RunOptions, WatchEvent, WatchSpec, Watcher};
use dsv::lock::Access;
use dsv::repo::Repository;

use super::Ctx;

/// Arguments of `watch`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["exec", "webhook"])))]
pub struct Args {
    /// The remote to watch (run inside a clone of it, e.g. `dsv clone --no-checkout`).
    remote: String,
    /// Watch only branches matching GLOB (repeatable; `*` stays within one `/` part,
    /// `**` crosses them). Default: every branch.
    #[arg(long = "branch", value_name = "GLOB")]
    branches: Vec<String>,
    /// Run CMD (`sh -c`, in the mirror's root) for each new commit: payload on stdin,
    /// DSV_COMMIT, DSV_BRANCH, DSV_EVENT=remote-commit, ... in the environment.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// POST the payload to URL for each new commit (`${NAME}` expands from the environment).
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Sign webhook bodies with the secret in environment variable VAR (X-Dsv-Signature-256).
    #[arg(long, value_name = "VAR", requires = "webhook")]
    secret_env: Option<String>,
    /// Seconds between polls (fractions allowed).
    #[arg(long, value_name = "SECS", default_value = "30")]
    interval: f64,
    /// Poll once, deliver (waiting out retries), and exit: for a cron job.
    #[arg(long)]
    once: bool,
    /// A branch seen for the first time fires for every commit in its history
    /// (default: only for commits that land after the mirror last saw it).
    #[arg(long)]
    from_start: bool,
    /// Time limit of one attempt, in seconds.
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Fire only for commits that change a path matching GLOB (repeatable; as
    /// `paths` in `[[hooks]]`: `labels/**` is everything under `labels/`).
    #[arg(long = "paths", value_name = "GLOB")]
    paths: Vec<String>,
    /// Fire only for commits that change a label file (as `labels_changed` in
    /// `[[hooks]]`).
    #[arg(long)]
    labels_changed: bool,
}

/// Set by SIGINT or SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

fn seconds(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        crate::usage!("{name} must be a number of seconds, not {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Runs `watch`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let interval = seconds("--interval", args.interval)?;
    let timeout = match args.timeout {
        Some(t) => seconds("--timeout", t)?,
        None => DEFAULT_TIMEOUT,
    };
    let action = match (args.exec, args.webhook) {
        (Some(command), _) => Action::Run { command },
        (None, Some(url)) => Action::Webhook {
            url,
            secret_env: args.secret_env,
            headers: Default::default(),
            format: BodyFormat::Dsv,
        },
        (None, None) => crate::usage!("give --exec CMD or --webhook URL"),
    };
    let spec = WatchSpec {
        remote: args.remote.clone(),
        branches: args.branches.clone(),
        action,
        timeout,
        from_start: args.from_start,
        filters: dsv::hooks::config::Filters::for_changes(&args.paths, args.labels_changed)?,
    };
    let root = Repository::locate(&ctx.cwd)?;
    let watcher = {
        let repo = ctx.repo(Access::Read)?;
        Watcher::new(&repo, spec)?
    };
    install_signal_handlers();
    if !ctx.quiet {
        let which = if args.branches.is_empty() {
            "every branch".to_string()
        } else {
            args.branches.join(", ")
        };
        if args.once {
            eprintln!("watch {}: {which}, one poll", args.remote);
        } else {
            eprintln!(
                "watch {}: {which}, every {}; Ctrl-C stops",
                args.remote,
                human_duration(interval)
            );
        }
    }
    let remote = args.remote.clone();
    let current = watcher.spec().action.redacted();
    let mut on_event = |e: WatchEvent| match e {
        WatchEvent::Polled(p) => {
            for s in &p.skipped {
                eprintln!(
                    "warning: remote '{remote}': branch '{}' not watched: {}",
                    s.branch, s.reason
                );
            }
            if ctx.quiet {
                return;
            }
            for b in &p.branches {
                let short = |c: &String| c.get(..12).unwrap_or(c).to_string();
                if b.started && b.fired.is_empty() && b.repeated.is_empty() {
                    eprintln!("{remote}/{}: watching from {}", b.branch, short(&b.new));
                    continue;
                }
                let mut line = format!(
                    "{remote}/{}: {} -> {}: {} new commit{}",
                    b.branch,
                    b.old.as_ref().map_or("(start)".to_string(), short),
                    short(&b.new),
                    b.fired.len(),
                    if b.fired.len() == 1 { "" } else { "s" }
                );
                if !b.repeated.is_empty() {
                    line.push_str(&format!(
                        " ({} already fired before a force-push)",
                        b.repeated.len()
                    ));
                }
                if !b.filtered.is_empty() {
                    line.push_str(&format!(
                        " ({} left out by --paths/--labels-changed)",
                        b.filtered.len()
                    ));
                }
                eprintln!("{line}");
            }
        }
        WatchEvent::Blocked(list) => {
            // Said even with --quiet: deliveries are not going out.
            for b in list {
                let d = &b.delivery;
                let short = d.commit.get(..12).unwrap_or(&d.commit);
                let on = d.branch.as_deref().unwrap_or("(no branch)");
                let why = d.last_error.as_deref().unwrap_or("failed");
                let action = if d.action != current {
                    format!(
                        "; it was recorded with another action ({}), which a retry runs again",
                        d.action.describe()
                    )
                } else {
                    String::new()
                };
                eprintln!(
                    "warning: deliveries for {remote}/{on} are blocked: delivery #{} ({short}) failed after {} attempts: {why}{action}; {} later one{} of {on} wait behind it (`dsv hooks retry {}` tries it again, `dsv hooks skip {}` gives it up); other branches are not held back",
                    d.seq,
                    d.attempts,
                    b.waiting,
                    if b.waiting == 1 { "" } else { "s" },
                    d.seq,
                    d.seq
                );
            }
        }
        WatchEvent::PollFailed(err) => {
            eprintln!("warning: poll failed (trying again next interval): {err}");
        }
        WatchEvent::Attempted(d, a) => {
            super::hooks::print_attempt(ctx, &d.hook, d.event, a);
            if !a.ok && !ctx.quiet {
                match d.state {
                    State::Failed => eprintln!(
                        "  delivery #{} failed {} times; gave up (dsv hooks retry {})",
                        d.seq, d.attempts, d.seq
                    ),
                    _ => eprintln!(
                        "  delivery #{} will be retried in {}",
                        d.seq,
                        human_duration(Duration::from_millis(
                            (d.next_attempt_ms - now_ms()).max(0) as u64
                        ))
                    ),
                }
            }
        }
    };
    let report = dsv::hooks::watch::run(
        &watcher,
        &mut || Repository::discover(&ctx.cwd, Access::Write, &ctx.open),
        &RunOptions {
            root,
            storage: std::sync::Arc::new(dsv::storage::OsStorage),
            interval,
            once: args.once,
            policy: RetryPolicy::from_settings(&ctx.open.settings),
            vars: ctx.open.settings.variables.clone(),
        },
        &ctx.progress(),
        &|| STOP.load(Ordering::SeqCst),
        &mut on_event,
    )?;
    if report.stopped && !ctx.quiet {
        eprintln!(
            "watch stopped; its cursor and outbox are saved (the next start goes on from there)"
        );
    }
    if report.undelivered > 0 {
        eprintln!(
            "error: {} not delivered: a failed one holds back the later ones of its branch (see `dsv hooks status`; `dsv hooks retry` tries them again, `dsv hooks skip ID` gives one up)",
            dsv::quote::count(report.undelivered, "delivery")
        );
        return Ok(1);
    }
    Ok(0)
}

/// Examples shown by `dsv watch --help`.
const EXAMPLES: &str = "\
Examples:
  dsv watch origin --exec ./train.sh --branch main
  dsv watch origin --webhook https://ci.example.com/hook --secret-env HOOK_SECRET --labels-changed
  dsv watch origin --exec ./check.sh --once";
