//! The `dsv` command-line interface: parses arguments and calls the library.

mod cli;

// Parsing large label sets and walking big trees allocate millions of small
// objects from several threads; mimalloc does that markedly cheaper than
// glibc's malloc (measured in docs/benchmarks.md). Built without transparent
// huge pages (`no_thp`): with them every fresh 2 MiB region is zeroed whole on
// first touch, and a cold query spent a quarter of its CPU time in the kernel
// doing that (1.1 s less system time, 0.35 GB less peak memory).
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
    // Walks over trees recurse once per directory level, up to
    // `tree::MAX_DEPTH` (1,024) levels, some of them on rayon's threads: give
    // every thread room for that (address space only; pages are touched as used).
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(STACK / 4)
        .build_global();
    let code = std::thread::Builder::new()
        .name("main".into())
        .stack_size(STACK)
        .spawn(cli::run)
        .map(|t| t.join().unwrap_or(101))
        .unwrap_or_else(|_| cli::run());
    std::process::exit(code);
}

/// Stack size of the command's threads.
const STACK: usize = 256 << 20;
