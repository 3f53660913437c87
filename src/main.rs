//! The `dsv` command-line interface: parses arguments and calls the library.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
