//! The Python package's suite (`python/tests/`, pytest) as part of `cargo test`: the
//! extension is built with maturin into a virtualenv under `target/py-venv` (made
//! by `tests/python/install-venv.sh` when missing: maturin, pytest, pyarrow, moto,
//! and PyTorch, which the DataLoader tests run for real),
//! in its own target directory (`target/py-build`), since the `cargo test` that
//! runs this holds the lock of the main one. The az:// tests run Azurite, found
//! (and installed when missing) as the Rust tests do (`common/azurite.rs`). It fails, saying why, when python3,
//! venv or PyPI is missing: the suite is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn venv() -> PathBuf {
    root().join("target/py-venv")
}

fn run(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("the Python suite needs {what}: cannot run it ({e})"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_package_suite_passes() {
    let venv = venv();
    run(
        "tests/python/install-venv.sh (python3 with venv, and PyPI)",
        Command::new("sh")
            .arg(root().join("tests/python/install-venv.sh"))
            .arg(&venv),
    );
    run(
        "maturin develop (building the extension)",
        Command::new(venv.join("bin/maturin"))
            .args(["develop", "--locked", "-m"])
            .arg(root().join("python/Cargo.toml"))
            .env("VIRTUAL_ENV", &venv)
            .env("CARGO_TARGET_DIR", root().join("target/py-build"))
            .env("CARGO_INCREMENTAL", "0"),
    );
    run(
        "pytest python/tests",
        Command::new(venv.join("bin/pytest"))
            .args(["-q", "-p", "no:cacheprovider"])
            .arg(root().join("python/tests"))
            .env("DSV_BIN", env!("CARGO_BIN_EXE_dsv"))
            // az:// is tested against Azurite, installed here as for the Rust tests.
            .env("DSV_AZURITE_BLOB", crate::common::azurite::find_azurite())
            .env("PATH", {
                let mut p = std::ffi::OsString::from(venv.join("bin"));
                p.push(":");
                p.push(std::env::var_os("PATH").unwrap_or_default());
                p
            }),
    );
}
