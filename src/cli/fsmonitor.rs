//! `dsv fsmonitor start|stop|status`: the file-system monitor daemon
//! (`core.fsmonitor = true`), and `ensure_running`, which status, add and commit
//! call when the monitor is enabled and no daemon answers.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dsv::repo::Repository;
use dsv::worktree::fsmonitor::{self, MonitorUse, daemon};

use super::Ctx;
use super::output::print_json;

/// Arguments of `fsmonitor`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Start the daemon for this repository (if none runs) and wait until it watches
    /// every directory.
    Start {
        /// Give up waiting after this many seconds (the daemon goes on starting).
        #[arg(long, value_name = "SECS", default_value = "60")]
        wait: u64,
    },
    /// Stop the daemon (the next status scans the whole tree and starts a new one).
    Stop,
    /// Say whether a daemon runs, and what it watches.
    Status {
        /// Machine-readable report.
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon in the foreground (what `start` runs in the background).
    #[command(hide = true)]
    Run,
}

const EXAMPLES: &str = "\
Examples:
  dsv config core.fsmonitor true     status, add -A and commit -a use the monitor
                                     (the first status starts the daemon)
  dsv fsmonitor start                start it now and wait until it is ready
  dsv fsmonitor status --json        pid, directories watched, overflows
  dsv fsmonitor stop

The daemon watches every directory of the working tree with inotify (one watch each:
see fs.inotify.max_user_watches) and exits after an hour without a question, or when
the repository goes away. Any doubt (overflow, restart, a renamed directory) makes the
next status scan the whole tree.";

/// The daemon's settings from the environment (for tests and measurements):
/// `DSV_FSMONITOR_IDLE_SECS`, `DSV_FSMONITOR_MAX_PATHS`.
fn daemon_options() -> daemon::DaemonOptions {
    let number = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let mut o = daemon::DaemonOptions::default();
    if let Some(s) = number("DSV_FSMONITOR_IDLE_SECS") {
        o.idle = Duration::from_secs(s);
    }
    if let Some(n) = number("DSV_FSMONITOR_MAX_PATHS") {
        o.max_paths = n.max(1) as usize;
    }
    o
}

/// Starts the daemon in the background, detached from this process's terminal and
/// output (a caller capturing our output must not wait for the daemon).
fn spawn(root: &Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    Command::new(exe)
        .arg("-C")
        .arg(root)
        .args(["fsmonitor", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

/// After a command that found no daemon although the monitor is enabled: start one
/// in the background for the next command. Best effort and silent.
pub fn ensure_running(root: &Path, usage: &MonitorUse) {
    if *usage == MonitorUse::NotRunning {
        let _ = spawn(root);
    }
    if std::env::var_os("DSV_TRACE_FSMONITOR").is_some() {
        eprintln!("fsmonitor: {usage}");
    }
}

/// Runs `fsmonitor`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let root = Repository::locate(&ctx.cwd)?;
    let dsv_dir = root.join(dsv::repo::DSV_DIR);
    match args.cmd {
        Sub::Run => {
            daemon::run(&root, &dsv_dir, daemon_options())?;
            Ok(0)
        }
        Sub::Start { wait } => {
            if fsmonitor::daemon_status(&dsv_dir)?.is_none() {
                spawn(&root)?;
            }
            let deadline = Instant::now() + Duration::from_secs(wait);
            loop {
                match fsmonitor::daemon_status(&dsv_dir)? {
                    Some(s) if s.state == "ready" => {
                        if !ctx.quiet {
                            eprintln!(
                                "fsmonitor: running (pid {}, {} directories watched)",
                                s.pid, s.watched_dirs
                            );
                        }
                        return Ok(0);
                    }
                    Some(s) if s.state.starts_with("failed") => {
                        anyhow::bail!("fsmonitor: {} (status falls back to a full scan)", s.state)
                    }
                    _ if Instant::now() > deadline => {
                        anyhow::bail!("fsmonitor: not ready after {wait} s")
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        Sub::Stop => {
            if !fsmonitor::stop_daemon(&dsv_dir) {
                if !ctx.quiet {
                    eprintln!("fsmonitor: not running");
                }
                return Ok(0);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while fsmonitor::daemon_status(&dsv_dir)?.is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !ctx.quiet {
                eprintln!("fsmonitor: stopped");
            }
            Ok(0)
        }
        Sub::Status { json } => {
            let s = fsmonitor::daemon_status(&dsv_dir)?;
            if json {
                print_json(&serde_json::json!({ "running": s.is_some(), "daemon": s }))?;
            } else {
                match s {
                    Some(s) => println!(
                        "running (pid {}): {}, {} directories watched, {} changed paths remembered, {} questions, {} overflows, {} rebuilds",
                        s.pid,
                        s.state,
                        s.watched_dirs,
                        s.changed_paths,
                        s.queries,
                        s.overflows,
                        s.rebuilds
                    ),
                    None => println!("not running"),
                }
            }
            Ok(0)
        }
    }
}
