//! Every parser on random and mutated bytes: it must return Ok or a FormatError, never panic.
//! Mutations start from the real anchor files (porcupine's Jepsen and kv logs) and from a kvsim
//! JSONL history, so most inputs are nearly valid and reach deep into the parsers. Seeded.

use std::path::Path;

use kvsim_checker::format::{detect_format, jepsen, jsonl, porcupine_kv, text_of};
use kvsim_model::kv::{KvOp, KvRet};
use kvsim_model::mvcc::{Op, Ret};
use kvsim_model::register::{RegisterOp, RegisterRet};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const JSONL_SAMPLE: &str = r#"{"kvsim_history":1,"model":"cas-register","meta":{"seed":1}}
{"type":"invoke","id":0,"client":1,"t_ns":10,"input":{"f":"write","value":3}}
{"type":"invoke","id":1,"client":2,"t_ns":12,"input":{"f":"cas","from":3,"to":4}}
{"type":"fault","t_ns":15,"kind":"partition","nodes":["n1"],"detail":{"sides":[["n1"],["n2","n3"]]}}
{"type":"ok","id":0,"t_ns":20,"output":{"f":"write"}}
{"type":"unknown","id":1,"t_ns":30,"error":"timeout"}
{"type":"invoke","id":2,"client":1,"t_ns":31,"input":{"f":"read"}}
{"type":"ok","id":2,"t_ns":40,"output":{"f":"read","value":4}}
{"type":"watch","events":[]}
"#;

fn seeds() -> Vec<Vec<u8>> {
    let anchors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine");
    assert!(
        anchors.is_dir(),
        "porcupine anchor data missing: expected {}",
        anchors.display()
    );
    let mut seeds = vec![
        JSONL_SAMPLE.as_bytes().to_vec(),
        JSONL_SAMPLE.replace("cas-register", "mvcc").into_bytes(),
    ];
    for file in [
        "jepsen/etcd_000.log",
        "jepsen/etcd_100.log",
        "kv/c01-ok.txt",
        "kv/c01-bad.txt",
    ] {
        let bytes = std::fs::read(anchors.join(file)).expect("anchor file is readable");
        // The first few KB keep each case fast while covering every line shape.
        seeds.push(bytes[..bytes.len().min(3000)].to_vec());
    }
    seeds
}

fn mutate(rng: &mut SmallRng, input: &mut Vec<u8>) {
    const INTERESTING: &[&[u8]] = &[
        b"\n",
        b"\t",
        b" ",
        b"{",
        b"}",
        b"\"",
        b":",
        b",",
        b"[",
        b"]",
        b"-1",
        b"nil",
        b":info",
        b"99999999999999999999",
        b"\\",
        b"\xff",
    ];
    for _ in 0..rng.gen_range(1..=8) {
        let at = if input.is_empty() {
            0
        } else {
            rng.gen_range(0..input.len())
        };
        match rng.gen_range(0..5) {
            0 if !input.is_empty() => input[at] = rng.gen(),
            1 if !input.is_empty() => {
                let end = (at + rng.gen_range(1..40)).min(input.len());
                input.drain(at..end);
            }
            2 => {
                let token = INTERESTING[rng.gen_range(0..INTERESTING.len())];
                input.splice(at..at, token.iter().copied());
            }
            3 if !input.is_empty() => {
                // Duplicate a chunk: repeated ids, repeated invokes.
                let end = (at + rng.gen_range(1..200)).min(input.len());
                let chunk = input[at..end].to_vec();
                let to = rng.gen_range(0..=input.len());
                input.splice(to..to, chunk);
            }
            _ => input.truncate(at),
        }
    }
}

fn parse_everything(bytes: &[u8]) {
    let _ = detect_format("fuzz.log", bytes);
    let text = match text_of("fuzz", bytes) {
        Ok(text) => text.to_string(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    let _ = jepsen::read_jepsen("fuzz", &text);
    let _ = porcupine_kv::read_porcupine_kv("fuzz", &text);
    let _ = jsonl::read_jsonl_header("fuzz", &text);
    let _ = jsonl::read_jsonl::<RegisterOp, RegisterRet>("fuzz", &text, "cas-register");
    let _ = jsonl::read_jsonl::<KvOp, KvRet>("fuzz", &text, "kv");
    let _ = jsonl::read_jsonl::<Op, Ret>("fuzz", &text, "mvcc");
}

#[test]
fn parsers_never_panic_on_mutated_files() {
    let seeds = seeds();
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    for case in 0..3000 {
        let mut input = seeds[case % seeds.len()].clone();
        mutate(&mut rng, &mut input);
        let result = std::panic::catch_unwind(|| parse_everything(&input));
        assert!(
            result.is_ok(),
            "case {case} panicked on input {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn parsers_never_panic_on_random_bytes() {
    let mut rng = SmallRng::seed_from_u64(0xb17e5);
    let alphabet = b"{}[]\":,.-0123456789 \t\nabcdefINFOjepsen.util:invoke:ok:fail:info\\\xff\xc3";
    for case in 0..3000 {
        let len = rng.gen_range(0..200);
        let input: Vec<u8> = (0..len)
            .map(|_| {
                if rng.gen_bool(0.8) {
                    alphabet[rng.gen_range(0..alphabet.len())]
                } else {
                    rng.gen()
                }
            })
            .collect();
        let result = std::panic::catch_unwind(|| parse_everything(&input));
        assert!(result.is_ok(), "case {case} panicked on input {input:?}");
    }
}

#[test]
fn valid_sample_parses() {
    let (header, history) =
        jsonl::read_jsonl::<RegisterOp, RegisterRet>("sample", JSONL_SAMPLE, "cas-register")
            .unwrap();
    assert_eq!(header.model, "cas-register");
    assert_eq!(
        (history.ops.len(), history.faults.len(), history.other.len()),
        (3, 1, 1)
    );
}
