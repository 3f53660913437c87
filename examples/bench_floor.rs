//! Physical floors for `bench/status.py` and `bench/durable_add.py`: what the
//! machine can do at best, measured in the same run as dsv.
//!
//! - `walk DIR`: a parallel directory walk that only lstats every entry (no
//!   ignore files, no sorting, no index): the floor of a full `status`.
//! - `hash DIR`: the same walk, then every file read and BLAKE3-hashed in
//!   parallel: the floor of storing the files.
//! - `write FILE BYTES`: BYTES written to one new file in 1 MiB blocks, then one
//!   fsync: the floor of making packs of that size durable.
//!
//! Each prints one line: `<what> <count> <seconds>`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

/// Where a walk puts what it finds: the paths (for `hash`) or only a count.
struct Found {
    keep: bool,
    paths: Mutex<Vec<PathBuf>>,
    count: AtomicUsize,
}

/// Lists `dir` and stats its entries relative to the open directory, descending in
/// parallel.
fn walk<'s>(scope: &rayon::Scope<'s>, dir: PathBuf, top: bool, out: &'s Found) {
    let Ok(rd) = fs::read_dir(&dir) else { return };
    let mut local = Vec::new();
    let mut count = 0;
    for entry in rd.flatten() {
        let name = entry.file_name();
        if top && (name == ".dsv" || name == ".git") {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let path = entry.path();
            scope.spawn(move |s| walk(s, path, false, out));
        } else {
            count += 1;
            if out.keep {
                local.push(entry.path());
            }
        }
    }
    out.count.fetch_add(count, Ordering::Relaxed);
    if out.keep
        && let Ok(mut o) = out.paths.lock()
    {
        o.append(&mut local);
    }
}

fn list(root: &Path, keep: bool) -> (usize, Vec<PathBuf>) {
    let out = Found {
        keep,
        paths: Mutex::new(Vec::new()),
        count: AtomicUsize::new(0),
    };
    rayon::scope(|s| walk(s, root.to_path_buf(), true, &out));
    (
        out.count.into_inner(),
        out.paths.into_inner().unwrap_or_default(),
    )
}

fn hash_all(files: &[PathBuf]) -> u64 {
    files
        .par_iter()
        .map(|p| {
            let mut buf = Vec::new();
            if let Ok(mut f) = fs::File::open(p) {
                let _ = f.read_to_end(&mut buf);
            }
            let h = blake3::hash(&buf);
            u64::from(h.as_bytes()[0])
        })
        .sum()
}

fn write_synced(path: &Path, bytes: u64) -> std::io::Result<()> {
    // Pseudo-random bytes, so no layer below can compress or skip them.
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut f = fs::File::create(path)?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_floor walk DIR | hash DIR | write FILE BYTES";
    let Some(cmd) = args.get(1) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let t = Instant::now();
    match (cmd.as_str(), args.get(2), args.get(3)) {
        ("walk", Some(dir), None) => {
            let (n, _) = list(Path::new(dir), false);
            println!("walk {n} {:.6}", t.elapsed().as_secs_f64());
        }
        ("hash", Some(dir), None) => {
            let (_, files) = list(Path::new(dir), true);
            let check = hash_all(&files);
            println!(
                "hash {} {:.6} (check {check})",
                files.len(),
                t.elapsed().as_secs_f64()
            );
        }
        ("write", Some(file), Some(bytes)) => {
            let Ok(bytes) = bytes.parse::<u64>() else {
                eprintln!("{usage}");
                std::process::exit(2);
            };
            if let Err(e) = write_synced(Path::new(file), bytes) {
                eprintln!("writing {file}: {e}");
                std::process::exit(1);
            }
            println!("write {bytes} {:.6}", t.elapsed().as_secs_f64());
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
