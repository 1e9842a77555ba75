//! Jepsen etcd register logs, as in porcupine's test data (from Horn & Kroening's
//! linearizability-checker): `INFO  jepsen.util - <process>\t:<type>\t:<f>\t<value>`.
//!
//! - There are no timestamps: line order is real-time order, so line `n` is time `n`.
//! - `:invoke` starts an operation of that process; `:ok` completes it with a value (`nil` or an
//!   integer for reads); `:fail` means it did not take effect — for `:cas` that means the compare
//!   failed, recorded as the definite return `Cas { swapped: false }` (porcupine's etcd model
//!   does the same, and it is strictly more information than dropping the op); `:info` means the
//!   outcome is unknown, and Jepsen retires that process (its next op comes from a new process).
//! - Some files pad fields with spaces instead of tabs; an empty file is an empty history.
//! - A completion names the invoked function and, for `:write` and `:cas`, repeats the invoked
//!   value: one that differs (`:invoke :write 1` answered by `:ok :write 2`) is an error (see
//!   [`Strictness`]); `:info` / `:fail` may carry an error keyword (`:timed-out`) instead.
//! - `:nemesis` lines (`INFO  jepsen.util - :nemesis\t:info\t:start\tnil`) are the faults
//!   Jepsen injected: read as fault records of kind `nemesis:<f>` (`nemesis:start`), with the
//!   line's type and value in `detail`, shown in the report and never refused.

use std::collections::BTreeMap;

use kvsim_model::register::{RegisterOp, RegisterRet};

use super::{quote, Dropped, FormatError, Strictness};
use crate::history::{FaultEvent, History, Operation, Outcome};

/// Parses a whole Jepsen register log, strictly.
pub fn read_jepsen(
    file: &str,
    text: &str,
) -> Result<History<RegisterOp, RegisterRet>, FormatError> {
    read_jepsen_with(file, text, Strictness::Strict).map(|(history, _)| history)
}

/// [`read_jepsen`] with a choice of [`Strictness`]; returns what a lenient read dropped (a
/// mismatched completion is then taken as the invoke says).
pub fn read_jepsen_with(
    file: &str,
    text: &str,
    strictness: Strictness,
) -> Result<(History<RegisterOp, RegisterRet>, Dropped), FormatError> {
    let mut history = History::default();
    let mut dropped = Dropped::default();
    // process -> (index into ops, line of the invoke)
    let mut in_flight: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let error =
            |expected: &str, found: String| FormatError::new(file, line_number, expected, found);
        let t_ns = line_number as u64;
        if let Some(fault) = nemesis_line(line, t_ns) {
            history.faults.push(fault);
            continue;
        }
        let record = parse_line(line).map_err(|(expected, found)| error(&expected, found))?;
        match record.kind {
            Kind::Invoke => {
                if let Some(&(_, invoked_on)) = in_flight.get(&record.process) {
                    return Err(error(
                        &format!(
                            "a completion of process {}'s operation from line {invoked_on}",
                            record.process
                        ),
                        "a second :invoke".into(),
                    ));
                }
                let input = match record.f {
                    F::Read => RegisterOp::Read,
                    F::Write => RegisterOp::Write {
                        value: integer(record.value)
                            .map_err(|found| error("an integer to write", found))?,
                    },
                    F::Cas => {
                        let (from, to) =
                            pair(record.value).map_err(|found| error("'[from to]'", found))?;
                        RegisterOp::Cas { from, to }
                    }
                };
                in_flight.insert(record.process, (history.ops.len(), line_number));
                history.ops.push(Operation {
                    id: history.ops.len() as u64,
                    client: record.process,
                    call_ns: t_ns,
                    return_ns: None,
                    input,
                    outcome: Outcome::Unknown {
                        error: "no completion in the log".into(),
                    },
                });
            }
            Kind::Ok | Kind::Fail | Kind::Info => {
                let Some((op_index, _)) = in_flight.remove(&record.process) else {
                    return Err(error(
                        &format!(
                            "an :invoke of process {} before its completion",
                            record.process
                        ),
                        quote(line.trim()),
                    ));
                };
                let op = &mut history.ops[op_index];
                let invoked = match op.input {
                    RegisterOp::Read => F::Read,
                    RegisterOp::Write { .. } => F::Write,
                    RegisterOp::Cas { .. } => F::Cas,
                };
                if invoked != record.f {
                    return Err(error(
                        &format!("{} (the invoked function)", invoked.name()),
                        record.f.name().into(),
                    ));
                }
                let repeated = match op.input {
                    RegisterOp::Read => None,
                    RegisterOp::Write { value } => Some((
                        integer(record.value).ok().map(|v| v == value),
                        value.to_string(),
                    )),
                    RegisterOp::Cas { from, to } => Some((
                        pair(record.value).ok().map(|v| v == (from, to)),
                        format!("[{from} {to}]"),
                    )),
                };
                if let Some((same, invoked_value)) = repeated {
                    // :ok repeats the value; :fail and :info may carry an error keyword instead.
                    let mismatch = match same {
                        Some(same) => !same,
                        None => record.kind == Kind::Ok,
                    };
                    if mismatch {
                        dropped.note(
                            strictness,
                            "completion whose value differs from its invoke",
                            error(
                                &format!("{} {invoked_value} (the invoked value)", invoked.name()),
                                format!("{} {}", record.f.name(), quote(record.value.trim())),
                            ),
                        )?;
                    }
                }
                op.return_ns = Some(t_ns);
                op.outcome = match (record.kind, record.f) {
                    (Kind::Ok, F::Read) => {
                        let value = match record.value.trim() {
                            "nil" => None,
                            other => Some(
                                integer(other)
                                    .map_err(|found| error("nil or an integer read", found))?,
                            ),
                        };
                        Outcome::Ok {
                            output: RegisterRet::Read { value },
                        }
                    }
                    (Kind::Ok, F::Write) => Outcome::Ok {
                        output: RegisterRet::Write,
                    },
                    (Kind::Ok, F::Cas) => Outcome::Ok {
                        output: RegisterRet::Cas { swapped: true },
                    },
                    (Kind::Fail, F::Cas) => Outcome::Ok {
                        output: RegisterRet::Cas { swapped: false },
                    },
                    (Kind::Fail, _) => Outcome::Fail {
                        error: record.value.trim().to_string(),
                    },
                    (_, _) => Outcome::Unknown {
                        error: record.value.trim().to_string(),
                    },
                };
            }
        }
    }
    Ok((history, dropped))
}

/// A `:nemesis` line as a fault record, or None if the line is not one.
fn nemesis_line(line: &str, t_ns: u64) -> Option<FaultEvent> {
    let mut tokens = line.split_whitespace();
    for literal in ["INFO", "jepsen.util", "-", ":nemesis"] {
        if tokens.next()? != literal {
            return None;
        }
    }
    let kind = tokens.next().unwrap_or("");
    let f = tokens.next().unwrap_or(":unknown");
    let value: Vec<&str> = tokens.collect();
    Some(FaultEvent {
        t_ns,
        kind: format!("nemesis:{}", f.trim_start_matches(':')),
        nodes: Vec::new(),
        detail: serde_json::json!({ "type": kind, "value": value.join(" ") }),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum F {
    Read,
    Write,
    Cas,
}

impl F {
    fn name(self) -> &'static str {
        match self {
            F::Read => ":read",
            F::Write => ":write",
            F::Cas => ":cas",
        }
    }
}

struct Record<'a> {
    process: u64,
    kind: Kind,
    f: F,
    value: &'a str,
}

/// Splits `INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]` on any whitespace (tabs or padding).
fn parse_line(line: &str) -> Result<Record<'_>, (String, String)> {
    let mut rest = line.trim();
    let mut field = |expected: &str| -> Result<&str, (String, String)> {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        rest = tail.trim_start();
        if token.is_empty() {
            return Err((expected.to_string(), "the end of the line".to_string()));
        }
        Ok(token)
    };
    for literal in ["INFO", "jepsen.util", "-"] {
        let token = field(&format!("'{literal}'"))?;
        if token != literal {
            return Err((format!("'{literal}'"), quote(token)));
        }
    }
    let token = field("a process number")?;
    let process = token
        .parse::<u64>()
        .map_err(|_| ("a process number".to_string(), quote(token)))?;
    let token = field("':invoke', ':ok', ':fail' or ':info'")?;
    let kind = match token {
        ":invoke" => Kind::Invoke,
        ":ok" => Kind::Ok,
        ":fail" => Kind::Fail,
        ":info" => Kind::Info,
        other => {
            return Err((
                "':invoke', ':ok', ':fail' or ':info'".into(),
                format!("'{other}'"),
            ))
        }
    };
    let token = field("':read', ':write' or ':cas'")?;
    let f = match token {
        ":read" => F::Read,
        ":write" => F::Write,
        ":cas" => F::Cas,
        other => return Err(("':read', ':write' or ':cas'".into(), format!("'{other}'"))),
    };
    Ok(Record {
        process,
        kind,
        f,
        value: rest,
    })
}

fn integer(text: &str) -> Result<i64, String> {
    text.trim().parse::<i64>().map_err(|_| quote(text.trim()))
}

/// `[from to]`, with any spacing.
fn pair(text: &str) -> Result<(i64, i64), String> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| quote(text.trim()))?;
    let mut numbers = inner.split_whitespace().map(str::parse::<i64>);
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Ok(from)), Some(Ok(to)), None) => Ok((from, to)),
        _ => Err(quote(text.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 1   :invoke :cas    [1 2]
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - 1\t:fail\t:cas\t[1 2]
INFO  jepsen.util - 2\t:invoke\t:write\t3
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 2\t:info\t:write\t:timed-out
INFO  jepsen.util - 0\t:fail\t:read\t:timed-out
INFO  jepsen.util - 7\t:invoke\t:write\t4
";

    #[test]
    fn reads_outcomes_and_times() {
        let history = read_jepsen("log", LOG).unwrap();
        let ops = &history.ops;
        assert_eq!(ops.len(), 5);
        assert_eq!((ops[0].call_ns, ops[0].return_ns), (1, Some(3)));
        assert_eq!(
            ops[0].outcome,
            Outcome::Ok {
                output: RegisterRet::Read { value: None }
            }
        );
        assert_eq!(ops[1].input, RegisterOp::Cas { from: 1, to: 2 });
        assert_eq!(
            ops[1].outcome,
            Outcome::Ok {
                output: RegisterRet::Cas { swapped: false }
            }
        );
        assert_eq!(
            ops[2].outcome,
            Outcome::Unknown {
                error: ":timed-out".into()
            }
        );
        assert!(matches!(ops[3].outcome, Outcome::Fail { .. }));
        assert_eq!((ops[4].client, ops[4].return_ns), (7, None));
        assert!(matches!(ops[4].outcome, Outcome::Unknown { .. }));
        assert_eq!(read_jepsen("empty", "").unwrap(), History::default());
    }

    #[test]
    fn errors_name_line_and_expectation() {
        let error = read_jepsen("x.log", "\nINFO  jepsen.util - 0\t:foo\t:read\tnil").unwrap_err();
        assert_eq!(
            error.to_string(),
            "x.log:2: expected ':invoke', ':ok', ':fail' or ':info', found ':foo'"
        );
        let twice = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:read\tnil";
        assert!(read_jepsen("x", twice)
            .unwrap_err()
            .expected
            .contains("line 1"));
        let orphan = "INFO  jepsen.util - 0\t:ok\t:read\tnil";
        assert!(read_jepsen("x", orphan)
            .unwrap_err()
            .expected
            .contains(":invoke"));
        let mismatch =
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:write\t1";
        assert_eq!(read_jepsen("x", mismatch).unwrap_err().found, ":write");
        assert!(read_jepsen("x", "INFO  jepsen.util - 0\t:invoke\t:cas\t[1]").is_err());
        assert!(read_jepsen("x", "INFO  jepsen.util - 0\t:invoke\t:write\tx").is_err());
        assert!(read_jepsen("x", "INFO  jepsen.util - -1\t:invoke\t:read\tnil").is_err());
        assert!(read_jepsen("x", "DEBUG whatever").is_err());
        assert!(read_jepsen("x", "INFO  jepsen.util -").is_err());
    }

    #[test]
    fn a_completion_must_repeat_the_invoked_value() {
        let mismatch =
            "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t2";
        let error = read_jepsen("x.log", mismatch).unwrap_err();
        assert_eq!(error.line, 2);
        assert_eq!(
            error.to_string(),
            "x.log:2: expected :write 1 (the invoked value), found :write \"2\""
        );
        let cas = "INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]\nINFO  jepsen.util - 0\t:fail\t:cas\t[1 3]";
        assert!(read_jepsen("x", cas).is_err());
        let (history, dropped) = read_jepsen_with("x", mismatch, Strictness::Lenient).unwrap();
        assert_eq!(history.ops[0].input, RegisterOp::Write { value: 1 });
        assert_eq!(dropped.total(), 1);
        // Error keywords instead of the value stay fine.
        let timed_out = "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:info\t:write\t:timed-out";
        assert!(read_jepsen("x", timed_out).is_ok());
    }

    #[test]
    fn nemesis_lines_are_fault_records() {
        let log = "INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - :nemesis\t:info\t:start\t[:isolated {\"n1\" #{\"n2\"}}]
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - :nemesis\t:info\t:stop\tnil
";
        let history = read_jepsen("x", log).unwrap();
        assert_eq!(history.ops.len(), 1);
        let kinds: Vec<(u64, &str)> = history
            .faults
            .iter()
            .map(|fault| (fault.t_ns, fault.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, "nemesis:start"),
                (3, "nemesis:start"),
                (5, "nemesis:stop")
            ]
        );
        assert_eq!(
            history.faults[1].detail["value"],
            "[:isolated {\"n1\" #{\"n2\"}}]"
        );
    }
}
