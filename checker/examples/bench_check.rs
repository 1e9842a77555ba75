//! `cargo run --release -p kvsim-checker --example bench_check [ANCHORS_DIR]`: the checker
//! benchmark (the same lines `kvsim bench check` prints).

use std::path::PathBuf;

use kvsim_checker::bench::{bench_check, BenchConfig};

fn main() {
    let anchors = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine"));
    if let Err(error) = bench_check(Some(&anchors), &BenchConfig::default(), |line| {
        println!("{line}")
    }) {
        eprintln!("bench_check: {error}");
        std::process::exit(2);
    }
}
