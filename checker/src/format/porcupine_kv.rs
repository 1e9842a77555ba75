//! porcupine's kv logs: one EDN map per line,
//! `{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}`.
//!
//! No timestamps: line order is real-time order (line `n` is time `n`). `:ok` completes the
//! process's operation (`get` carries the value read, `nil` read as `""`); `:fail` means it did
//! not happen; `:info` means unknown outcome. An invoke never completed is unknown too.
//! A key given twice in one map (`{:type :invoke, :type :ok}`) is an error (see [`Strictness`]):
//! which one a reader takes is a guess.

use std::collections::BTreeMap;

use kvsim_model::kv::{KvOp, KvRet};

use super::edn::{self, Value};
use super::{quote, Dropped, FormatError, Strictness};
use crate::history::{History, Operation, Outcome};

/// Parses a whole porcupine kv log, strictly.
pub fn read_porcupine_kv(file: &str, text: &str) -> Result<History<KvOp, KvRet>, FormatError> {
    read_porcupine_kv_with(file, text, Strictness::Strict).map(|(history, _)| history)
}

/// [`read_porcupine_kv`] with a choice of [`Strictness`]; a lenient read takes the first of
/// duplicate keys and counts the rest as dropped.
pub fn read_porcupine_kv_with(
    file: &str,
    text: &str,
    strictness: Strictness,
) -> Result<(History<KvOp, KvRet>, Dropped), FormatError> {
    let mut history: History<KvOp, KvRet> = History::default();
    let mut dropped = Dropped::default();
    let mut in_flight: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let error =
            |expected: &str, found: String| FormatError::new(file, line_number, expected, found);
        let pairs = edn::parse_map(line).map_err(|(expected, found)| error(&expected, found))?;
        for (index, (key, _)) in pairs.iter().enumerate() {
            if pairs[..index].iter().any(|(earlier, _)| earlier == key) {
                dropped.note(
                    strictness,
                    format!("duplicate key :{key}"),
                    error("each key once in a map", format!(":{key} a second time")),
                )?;
            }
        }
        let field = |name: &str| -> Result<&Value, FormatError> {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value)
                .ok_or_else(|| error(&format!("a :{name} entry"), quote(line.trim())))
        };
        let process = match field("process")? {
            Value::Int(process) if *process >= 0 => *process as u64,
            other => return Err(error("a process number", other.describe())),
        };
        let kind = match field("type")? {
            Value::Keyword(kind) if ["invoke", "ok", "fail", "info"].contains(&kind.as_str()) => {
                kind.as_str()
            }
            other => {
                return Err(error(
                    "':invoke', ':ok', ':fail' or ':info'",
                    other.describe(),
                ))
            }
        };
        let f = match field("f")? {
            Value::Keyword(f) if ["get", "put", "append"].contains(&f.as_str()) => f.as_str(),
            other => return Err(error("':get', ':put' or ':append'", other.describe())),
        };
        let key = match field("key")? {
            Value::Str(key) => key.clone(),
            other => return Err(error("a string key", other.describe())),
        };
        let value = match pairs
            .iter()
            .find(|(name, _)| name == "value")
            .map(|(_, value)| value)
        {
            None | Some(Value::Nil) => None,
            Some(Value::Str(value)) => Some(value.clone()),
            Some(other) => return Err(error("a string value or nil", other.describe())),
        };
        let t_ns = line_number as u64;
        if kind == "invoke" {
            if let Some(&(_, invoked_on)) = in_flight.get(&process) {
                return Err(error(
                    &format!(
                        "a completion of process {process}'s operation from line {invoked_on}"
                    ),
                    "a second :invoke".into(),
                ));
            }
            let input = match f {
                "get" => KvOp::Get { key },
                "put" => KvOp::Put {
                    key,
                    value: value.ok_or_else(|| error("a string value to put", "nil".into()))?,
                },
                _ => KvOp::Append {
                    key,
                    value: value.ok_or_else(|| error("a string value to append", "nil".into()))?,
                },
            };
            in_flight.insert(process, (history.ops.len(), line_number));
            history.ops.push(Operation {
                id: history.ops.len() as u64,
                client: process,
                call_ns: t_ns,
                return_ns: None,
                input,
                outcome: Outcome::Unknown {
                    error: "no completion in the log".into(),
                },
            });
            continue;
        }
        let Some((op_index, _)) = in_flight.remove(&process) else {
            return Err(error(
                &format!("an :invoke of process {process} before its completion"),
                quote(line.trim()),
            ));
        };
        let op = &mut history.ops[op_index];
        let (invoked_f, invoked_key) = match &op.input {
            KvOp::Get { key } => ("get", key),
            KvOp::Put { key, .. } => ("put", key),
            KvOp::Append { key, .. } => ("append", key),
        };
        if invoked_f != f || *invoked_key != key {
            return Err(error(
                &format!(
                    ":{invoked_f} of key {} (the invoked operation)",
                    quote(invoked_key)
                ),
                format!(":{f} of key {}", quote(&key)),
            ));
        }
        op.return_ns = Some(t_ns);
        op.outcome = match (kind, f) {
            ("ok", "get") => Outcome::Ok {
                output: KvRet::Get {
                    value: value.unwrap_or_default(),
                },
            },
            ("ok", "put") => Outcome::Ok { output: KvRet::Put },
            ("ok", _) => Outcome::Ok {
                output: KvRet::Append,
            },
            ("fail", _) => Outcome::Fail {
                error: "fail".into(),
            },
            _ => Outcome::Unknown {
                error: "info".into(),
            },
        };
    }
    Ok((history, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_log() {
        let log = r#"{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :invoke, :f :get, :key "0", :value nil}
{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :ok, :f :get, :key "0", :value "x 0 0 y"}
{:process 2, :type :invoke, :f :put, :key "1", :value "z"}
"#;
        let history = read_porcupine_kv("kv.txt", log).unwrap();
        assert_eq!(history.ops.len(), 3);
        assert_eq!(
            history.ops[0].input,
            KvOp::Append {
                key: "0".into(),
                value: "x 0 0 y".into()
            }
        );
        assert_eq!(
            (history.ops[1].call_ns, history.ops[1].return_ns),
            (2, Some(4))
        );
        assert_eq!(
            history.ops[1].outcome,
            Outcome::Ok {
                output: KvRet::Get {
                    value: "x 0 0 y".into()
                }
            }
        );
        assert!(matches!(history.ops[2].outcome, Outcome::Unknown { .. }));
    }

    #[test]
    fn errors_name_line_and_expectation() {
        let bad_type = "\n{:process 0, :type :oops, :f :get, :key \"0\", :value nil}";
        let error = read_porcupine_kv("kv.txt", bad_type).unwrap_err();
        assert_eq!(
            error.to_string(),
            "kv.txt:2: expected ':invoke', ':ok', ':fail' or ':info', found :oops"
        );
        let missing = "{:process 0, :type :invoke, :f :get}";
        assert_eq!(
            read_porcupine_kv("k", missing).unwrap_err().expected,
            "a :key entry"
        );
        let other_key = "{:process 0, :type :invoke, :f :get, :key \"0\"}\n{:process 0, :type :ok, :f :get, :key \"1\"}";
        assert!(read_porcupine_kv("k", other_key)
            .unwrap_err()
            .expected
            .contains("invoked"));
        let nil_put = "{:process 0, :type :invoke, :f :put, :key \"0\", :value nil}";
        assert!(read_porcupine_kv("k", nil_put).is_err());
        assert!(
            read_porcupine_kv("k", "{:process -1, :type :invoke, :f :get, :key \"0\"}").is_err()
        );
        assert!(read_porcupine_kv("k", "not edn").is_err());
    }

    #[test]
    fn a_duplicate_key_is_an_error_unless_lenient() {
        let log = "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n\
                   {:process 0, :type :ok, :type :fail, :f :get, :key \"1\", :value \"x\"}\n";
        let error = read_porcupine_kv("kv.log", log).unwrap_err();
        assert_eq!(
            error.to_string(),
            "kv.log:2: expected each key once in a map, found :type a second time"
        );
        let (history, dropped) =
            read_porcupine_kv_with("kv.log", log, Strictness::Lenient).unwrap();
        assert_eq!(history.ops.len(), 1);
        assert_eq!(
            dropped.summary(),
            vec!["1 × duplicate key :type (first: kv.log:2)"]
        );
    }
}
