//! The checker benchmark (the same lines `kvsim bench check` prints), without building the
//! simulator:
//!
//! - `cargo run --release -p kvsim-checker --example bench_check [ANCHORS_DIR]`: porcupine's
//!   test data and generated MVCC histories;
//! - `... --example bench_check -- --registers [--porcupine DIR] [--files N] [--timeout-s S]
//!   [--family SUBSTRING] [--out DIR] [-v]`: the generated cas-register families, beside
//!   porcupine when `--porcupine` names a checkout of its Go module (the two tools alternate
//!   file by file, so the ratio is measured in one run).

use std::path::PathBuf;
use std::time::Duration;

use kvsim_checker::bench::porcupine::Porcupine;
use kvsim_checker::bench::register::bench_registers;
use kvsim_checker::bench::{bench_check, BenchConfig};
use kvsim_checker::generate::register::register_families;

/// The register benchmark's command line.
struct RegisterArgs {
    porcupine: Option<PathBuf>,
    files: usize,
    timeout_s: u64,
    family: Option<String>,
    out: PathBuf,
    verbose: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.iter().any(|arg| arg == "--registers") {
        parse_register_args(&args).and_then(|args| run_registers(&args))
    } else {
        run_anchors(args.first().map(PathBuf::from))
    };
    if let Err(error) = result {
        eprintln!("bench_check: {error}");
        std::process::exit(2);
    }
}

fn run_anchors(anchors: Option<PathBuf>) -> Result<(), String> {
    let anchors = anchors
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine"));
    bench_check(Some(&anchors), &BenchConfig::default(), |line| {
        println!("{line}")
    })
    .map(|_| ())
}

fn parse_register_args(args: &[String]) -> Result<RegisterArgs, String> {
    let mut parsed = RegisterArgs {
        porcupine: None,
        files: 10,
        timeout_s: 60,
        family: None,
        out: std::env::temp_dir().join("kvsim-bench-registers"),
        verbose: false,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--registers" => {}
            "--porcupine" => parsed.porcupine = Some(PathBuf::from(value(arg)?)),
            "--files" => parsed.files = value(arg)?.parse().map_err(|e| format!("--files: {e}"))?,
            "--timeout-s" => {
                parsed.timeout_s = value(arg)?
                    .parse()
                    .map_err(|e| format!("--timeout-s: {e}"))?;
            }
            "--family" => parsed.family = Some(value(arg)?),
            "--out" => parsed.out = PathBuf::from(value(arg)?),
            "-v" | "--verbose" => parsed.verbose = true,
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(parsed)
}

fn run_registers(args: &RegisterArgs) -> Result<(), String> {
    let mut porcupine = match &args.porcupine {
        None => {
            println!("porcupine skipped: no --porcupine DIR (a checkout of its Go module)");
            None
        }
        Some(dir) => {
            let harness =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/porcupine-bench");
            Some(Porcupine::start(&harness, dir)?)
        }
    };
    let families: Vec<_> = register_families()
        .into_iter()
        .filter(|shape| {
            args.family
                .as_ref()
                .is_none_or(|wanted| shape.name.contains(wanted.as_str()))
        })
        .collect();
    let mut budget = BenchConfig::default().budget;
    budget.timeout = Some(Duration::from_secs(args.timeout_s));
    let verbose = args.verbose;
    let lines = bench_registers(
        &families,
        args.files,
        &args.out,
        &budget,
        porcupine.as_mut(),
        |file| {
            if verbose {
                println!("{file}");
            }
        },
    )?;
    for line in &lines {
        println!("{line}");
    }
    Ok(())
}
