//! The `dsv` command-line interface: parses arguments and calls the library.

mod cli;

// Parsing large label sets and walking big trees allocate millions of small
// objects from several threads; mimalloc does that markedly cheaper than
// glibc's malloc (measured in docs/benchmarks.md). Built without transparent
// huge pages (`no_thp`): with them every fresh 2 MiB region is zeroed whole on
// first touch, and a cold query spent a quarter of its CPU time in the kernel
// doing that (1.1 s less system time, 0.35 GB less peak memory).
// Without the `mimalloc` feature (on by default) the system allocator stays:
// the build a heap profiler can see into.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Die quietly on a closed pipe (`dsv ls-tree -r HEAD | head`) like other Unix
    // tools, instead of panicking in `println!`.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // TLS for remotes: rustls with the ring provider, installed once before any client.
    dsv::remote::install_crypto();
    std::panic::set_hook(Box::new(panic_hook));
    // Walks over trees recurse once per directory level, up to
    // `tree::MAX_DEPTH` (1,024) levels, some of them on rayon's threads: give
    // every thread room for that (address space only; pages are touched as used).
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(STACK / 4)
        .build_global();
    let run = || std::panic::catch_unwind(cli::run);
    let result = std::thread::Builder::new()
        .name("main".into())
        .stack_size(STACK)
        .spawn(run)
        .map(|t| t.join().unwrap_or_else(Err))
        .unwrap_or_else(|_| run());
    let code = match result {
        Ok(code) => code,
        Err(_) => {
            if REDB_PANIC.load(std::sync::atomic::Ordering::SeqCst) {
                report_damaged_database();
            }
            1
        }
    };
    std::process::exit(code);
}

/// Set when redb panicked (on a damaged page).
static REDB_PANIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// No panic reaches the user as a backtrace. redb's panics on a damaged page are
/// caught by the library, which names the file (`dsv::db::contain`), and so are the
/// CEL parser's on some malformed queries (`dsv::query::parsing_cel`): they stay
/// quiet here; any other is a bug, reported in one line.
fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    if dsv::query::parsing_cel() {
        return;
    }
    let location = info.location();
    if location.is_some_and(|l| l.file().contains("/redb-")) {
        REDB_PANIC.store(true, std::sync::atomic::Ordering::SeqCst);
        return;
    }
    let message = dsv::db::panic_message(info.payload());
    match location {
        Some(l) => eprintln!(
            "error: internal error: {message} (at {}:{}; please report this dsv bug)",
            l.file(),
            l.line()
        ),
        None => eprintln!("error: internal error: {message} (please report this dsv bug)"),
    }
}

/// A redb panic the library did not contain: find and name the damaged file.
fn report_damaged_database() {
    let found = std::env::current_dir()
        .ok()
        .and_then(|cwd| dsv::Repository::locate(&cwd).ok())
        .and_then(|root| dsv::ops::repair::diagnose(&root.join(dsv::repo::DSV_DIR)));
    match found {
        Some(e) => eprintln!("error: {e}"),
        None => eprintln!(
            "error: a repository database (.dsv/objects.redb or .dsv/index.redb) is damaged; run 'dsv repair'"
        ),
    }
}

/// Stack size of the command's threads.
const STACK: usize = 256 << 20;
