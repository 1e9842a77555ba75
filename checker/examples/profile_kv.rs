//! Checks one porcupine kv log, split or whole, and prints time and search steps: the smallest
//! program to run under a profiler (`valgrind --tool=callgrind`) when tuning the search.
//!
//! `cargo run --release -p kvsim-checker --example profile_kv -- FILE [split|whole] [REPEAT]`

use std::time::{Duration, Instant};

use kvsim_checker::format::porcupine_kv::read_porcupine_kv;
use kvsim_checker::{check_with_stats, Budget, CheckOptions, CheckResult};
use kvsim_model::kv::KvStore;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: profile_kv FILE [split|whole] [REPEAT]");
        std::process::exit(2);
    };
    let partition = args.get(2).is_none_or(|mode| mode != "whole");
    let repeat: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{path}: {error}");
            std::process::exit(2);
        }
    };
    let history = match read_porcupine_kv(path, &text) {
        Ok(history) => history,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let budget = Budget {
        timeout: Some(Duration::from_secs(60)),
        memo_entries_max: Some(50_000_000),
    };
    for _ in 0..repeat {
        let started = Instant::now();
        let (result, stats) = check_with_stats(
            &history,
            KvStore::default(),
            &budget,
            &CheckOptions { partition },
        );
        let verdict = match result {
            CheckResult::Linearizable => "linearizable".to_string(),
            CheckResult::NotLinearizable(violation) => format!("{violation}"),
            CheckResult::Unknown(why) => format!("unknown: {why}"),
        };
        println!(
            "{:.3} s, {} steps, memo {}: {verdict}",
            started.elapsed().as_secs_f64(),
            stats.steps,
            stats.memo_entries_max
        );
    }
}
