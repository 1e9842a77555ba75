//! Parity with porcupine's verdicts on its own test data (vendored in `checker/tests/data/porcupine`,
//! EXPECTED.tsv): 103 Jepsen etcd register logs and 6 kv logs (split per key and whole).
//!
//! The unsplit c50 kv logs are checked here too, with a budget: their verdict must be right or,
//! in a slow debug build, at worst `Unknown` — never wrong. The release benchmark times them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kvsim_checker::format::{detect_format, jepsen, porcupine_kv, Format};
use kvsim_checker::{check, Budget, CheckOptions, CheckResult};
use kvsim_model::kv::KvStore;
use kvsim_model::register::CasRegister;

fn anchors() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine");
    assert!(
        dir.join("EXPECTED.tsv").is_file(),
        "porcupine test data missing: expected {} (vendored in the repository)",
        dir.display()
    );
    dir
}

fn expectations() -> Vec<(String, bool)> {
    let dir = anchors();
    let table =
        std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("EXPECTED.tsv is readable");
    table
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "EXPECTED.tsv line {line:?}");
            let linearizable = match fields[2] {
                "linearizable" | "ok (empty history)" => true,
                "not linearizable" => false,
                other => panic!("unexpected verdict {other:?} in EXPECTED.tsv"),
            };
            (fields[0].to_string(), linearizable)
        })
        .collect()
}

fn verdict(result: &CheckResult) -> Option<bool> {
    match result {
        CheckResult::Linearizable => Some(true),
        CheckResult::NotLinearizable(_) => Some(false),
        CheckResult::Unknown(_) => None,
    }
}

#[test]
fn jepsen_register_logs_match_porcupine() {
    let dir = anchors();
    let mut checked = 0;
    for (file, expected) in expectations()
        .into_iter()
        .filter(|(file, _)| file.starts_with("jepsen/"))
    {
        let bytes = std::fs::read(dir.join(&file)).expect("anchor file is readable");
        assert_eq!(detect_format(&file, &bytes), Ok(Format::Jepsen), "{file}");
        let text = std::str::from_utf8(&bytes).expect("UTF-8");
        let history = jepsen::read_jepsen(&file, text).unwrap_or_else(|e| panic!("{e}"));
        let budget = Budget {
            timeout: Some(Duration::from_secs(60)),
            memo_entries_max: None,
        };
        let result = check(
            &history,
            CasRegister::default(),
            &budget,
            &CheckOptions::default(),
        );
        assert_eq!(verdict(&result), Some(expected), "{file}: {result:?}");
        checked += 1;
    }
    assert_eq!(checked, 103);
}

fn kv_logs(
    filter: impl Fn(&str) -> bool,
) -> Vec<(
    String,
    bool,
    kvsim_checker::history::History<kvsim_model::kv::KvOp, kvsim_model::kv::KvRet>,
)> {
    let dir = anchors();
    expectations()
        .into_iter()
        .filter(|(file, _)| file.starts_with("kv/") && filter(file))
        .map(|(file, expected)| {
            let bytes = std::fs::read(dir.join(&file)).expect("anchor file is readable");
            assert_eq!(
                detect_format(&file, &bytes),
                Ok(Format::PorcupineKv),
                "{file}"
            );
            let text = std::str::from_utf8(&bytes).expect("UTF-8");
            let history =
                porcupine_kv::read_porcupine_kv(&file, text).unwrap_or_else(|e| panic!("{e}"));
            (file, expected, history)
        })
        .collect()
}

#[test]
fn kv_logs_split_and_small_unsplit_match_porcupine() {
    let logs = kv_logs(|_| true);
    assert_eq!(logs.len(), 6);
    for (file, expected, history) in logs {
        let budget = Budget {
            timeout: Some(Duration::from_secs(60)),
            memo_entries_max: None,
        };
        let split = check(
            &history,
            KvStore::default(),
            &budget,
            &CheckOptions { partition: true },
        );
        assert_eq!(verdict(&split), Some(expected), "{file} split: {split:?}");
        if !file.contains("c50") {
            let whole = check(
                &history,
                KvStore::default(),
                &budget,
                &CheckOptions { partition: false },
            );
            assert_eq!(verdict(&whole), Some(expected), "{file} unsplit: {whole:?}");
        }
    }
}

#[test]
fn kv_c50_unsplit_is_right_or_unknown_within_budget() {
    for (file, expected, history) in kv_logs(|file| file.contains("c50")) {
        let budget = Budget {
            timeout: Some(Duration::from_secs(3)),
            memo_entries_max: Some(5_000_000),
        };
        let whole = check(
            &history,
            KvStore::default(),
            &budget,
            &CheckOptions { partition: false },
        );
        let got = verdict(&whole);
        assert!(
            got.is_none() || got == Some(expected),
            "{file} unsplit: {whole:?}"
        );
        eprintln!("{file} unsplit: {:?}", got);
    }
}
