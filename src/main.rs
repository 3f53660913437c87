//! The `dsv` command-line interface: parses arguments and calls the library.

mod cli;

// Parsing large label sets and walking big trees allocate millions of small
// objects from several threads; mimalloc does that markedly cheaper than
// glibc's malloc (measured in docs/benchmarks.md).
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
    std::process::exit(cli::run());
}
