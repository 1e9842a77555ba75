//! kvsim's history files: JSON Lines, version 1 (specified in docs/history-format.md).
//!
//! ```text
//! {"kvsim_history":1,"model":"mvcc","meta":{...}}
//! {"type":"invoke","id":7,"client":2,"t_ns":1000,"input":{...}}
//! {"type":"ok","id":7,"t_ns":2000,"output":{...}}
//! {"type":"fail","id":8,"t_ns":2000,"error":"connection refused"}
//! {"type":"unknown","id":9,"t_ns":2000,"error":"timeout"}
//! {"type":"fault","t_ns":1500,"kind":"partition","nodes":["n1"],"detail":{...}}
//! {"type":"watch", ...}   <- watch, final_state, recipe, raft_invariant: kept verbatim in
//!                            History::other
//! ```
//!
//! Any other record type, and any field a record type does not have, is an error with its line
//! (see [`Strictness`]): a misspelt `"type":"OK"` would otherwise make an answered op unknown.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{quote, Dropped, FormatError, Strictness, KNOWN_MODELS};
use crate::history::{ClientId, FaultEvent, History, OpId, Operation, Outcome};

/// The format version this crate reads and writes.
pub const VERSION: u64 = 1;

/// The first line of a history file.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonlHeader {
    pub version: u64,
    /// One of [`KNOWN_MODELS`].
    pub model: String,
    /// Free-form run metadata (seed, scenario, knobs, ...), kept verbatim.
    pub meta: Value,
}

/// Reads only the header line, e.g. to choose the model before reading the rest.
pub fn read_jsonl_header(file: &str, text: &str) -> Result<JsonlHeader, FormatError> {
    let first = text.lines().next().unwrap_or("");
    let expected = "a header like {\"kvsim_history\":1,\"model\":\"mvcc\",\"meta\":{}}";
    let object = parse_object(file, 1, first, expected)?;
    let error = |expected: &str, found: String| FormatError::new(file, 1, expected, found);
    let version = match object.get("kvsim_history") {
        Some(Value::Number(number)) if number.as_u64() == Some(VERSION) => VERSION,
        Some(other) => {
            return Err(error(
                &format!("\"kvsim_history\": {VERSION} (the only version)"),
                other.to_string(),
            ))
        }
        None => return Err(error(expected, quote(first))),
    };
    let model = match object.get("model") {
        Some(Value::String(model)) if KNOWN_MODELS.contains(&model.as_str()) => model.clone(),
        Some(other) => {
            return Err(error(
                &format!("a \"model\" among {KNOWN_MODELS:?}"),
                other.to_string(),
            ))
        }
        None => return Err(error("a \"model\" field", quote(first))),
    };
    let meta = object
        .get("meta")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    Ok(JsonlHeader {
        version,
        model,
        meta,
    })
}

/// The record types besides operations and faults that kvsim writes and its checkers read,
/// kept verbatim in `History::other`.
pub const OTHER_RECORD_TYPES: [&str; 6] = [
    "watch",
    "final_state",
    "recipe",
    "raft_invariant",
    crate::history::SERVED_BY_RECORD,
    crate::history::LEADER_RECORD,
];

/// The fields each operation and fault record type has (`type` included); any other is an
/// error. A field added to the writer must be added here.
fn known_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "invoke" => &["type", "id", "client", "t_ns", "input"],
        "ok" => &["type", "id", "t_ns", "output"],
        "fail" | "unknown" => &["type", "id", "t_ns", "error"],
        "fault" => &["type", "t_ns", "kind", "nodes", "detail"],
        _ => return None,
    })
}

/// Reads a whole history of model `model` (the header must name it), strictly.
pub fn read_jsonl<I, O>(
    file: &str,
    text: &str,
    model: &str,
) -> Result<(JsonlHeader, History<I, O>), FormatError>
where
    I: DeserializeOwned,
    O: DeserializeOwned,
{
    read_jsonl_with(file, text, model, Strictness::Strict)
        .map(|(header, history, _)| (header, history))
}

/// [`read_jsonl`] with a choice of [`Strictness`]; returns what a lenient read dropped.
pub fn read_jsonl_with<I, O>(
    file: &str,
    text: &str,
    model: &str,
    strictness: Strictness,
) -> Result<(JsonlHeader, History<I, O>, Dropped), FormatError>
where
    I: DeserializeOwned,
    O: DeserializeOwned,
{
    let header = read_jsonl_header(file, text)?;
    if header.model != model {
        return Err(FormatError::new(
            file,
            1,
            format!("a history of model {model:?}"),
            format!("model {:?}", header.model),
        ));
    }
    let mut reader = Reader::<I, O> {
        file,
        ops: Vec::new(),
        history: History::default(),
        strictness,
        ..Reader::default()
    };
    for (index, line) in text.lines().enumerate().skip(1) {
        if !line.trim().is_empty() {
            reader.record(index + 1, line)?;
        }
    }
    let dropped = std::mem::take(&mut reader.dropped);
    let mut history = reader.history;
    history.ops = reader
        .ops
        .into_iter()
        .map(|pending| Operation {
            id: pending.id,
            client: pending.client,
            call_ns: pending.call_ns,
            return_ns: pending.return_ns,
            input: pending.input,
            outcome: pending.outcome.unwrap_or_else(|| Outcome::Unknown {
                error: "no completion recorded".into(),
            }),
        })
        .collect();
    Ok((header, history, dropped))
}

struct Pending<I, O> {
    id: OpId,
    client: ClientId,
    call_ns: u64,
    return_ns: Option<u64>,
    input: I,
    outcome: Option<Outcome<O>>,
    line: usize,
}

struct Reader<'a, I, O> {
    file: &'a str,
    ops: Vec<Pending<I, O>>,
    history: History<I, O>,
    /// Lookups only (never iterated), so the hash order cannot reach the output.
    index_of: HashMap<OpId, usize>,
    in_flight: HashMap<ClientId, usize>,
    client_time: HashMap<ClientId, u64>,
    strictness: Strictness,
    dropped: Dropped,
}

impl<I, O> Default for Reader<'_, I, O> {
    fn default() -> Self {
        Self {
            file: "",
            ops: Vec::new(),
            history: History::default(),
            index_of: HashMap::new(),
            in_flight: HashMap::new(),
            client_time: HashMap::new(),
            strictness: Strictness::Strict,
            dropped: Dropped::default(),
        }
    }
}

impl<I: DeserializeOwned, O: DeserializeOwned> Reader<'_, I, O> {
    fn record(&mut self, line_number: usize, line: &str) -> Result<(), FormatError> {
        let object = parse_object(self.file, line_number, line, "a JSON object record")?;
        let error = |expected: &str, found: String| {
            FormatError::new(self.file, line_number, expected, found)
        };
        let kind = match object.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(other) => return Err(error("a string \"type\"", other.to_string())),
            None => return Err(error("a \"type\" field", quote(line))),
        };
        match known_fields(kind) {
            Some(fields) => {
                if let Some(unknown) = object.keys().find(|key| !fields.contains(&key.as_str())) {
                    let expected = format!(
                        "only the fields {} in a \"{kind}\" record",
                        fields.join(", ")
                    );
                    let found = format!("the field {unknown:?}");
                    let what = format!("unknown field {unknown:?} of \"{kind}\" records");
                    let strictness = self.strictness;
                    self.dropped
                        .note(strictness, what, error(&expected, found))?;
                }
            }
            None if OTHER_RECORD_TYPES.contains(&kind) => {}
            None => {
                let expected = format!(
                    "a record \"type\" of invoke, ok, fail, unknown, fault, {}",
                    OTHER_RECORD_TYPES.join(", ")
                );
                let what = format!("record of unknown type {kind:?}");
                let strictness = self.strictness;
                return self
                    .dropped
                    .note(strictness, what, error(&expected, format!("{kind:?}")));
            }
        }
        let uint = |name: &str| -> Result<u64, FormatError> {
            match object.get(name) {
                Some(value) => value.as_u64().ok_or_else(|| {
                    error(
                        &format!("a non-negative integer \"{name}\""),
                        value.to_string(),
                    )
                }),
                None => Err(error(&format!("a \"{name}\" field"), quote(line))),
            }
        };
        let text_field = |name: &str| -> Result<String, FormatError> {
            match object.get(name) {
                None => Ok(String::new()),
                Some(Value::String(text)) => Ok(text.clone()),
                Some(other) => Err(error(&format!("a string \"{name}\""), other.to_string())),
            }
        };
        match kind {
            "invoke" => {
                let (id, client, t_ns) = (uint("id")?, uint("client")?, uint("t_ns")?);
                let input = object
                    .get("input")
                    .ok_or_else(|| error("an \"input\" field", quote(line)))?;
                let input: I = serde_json::from_value(input.clone()).map_err(|e| {
                    error(
                        "an \"input\" of this model",
                        format!("{} ({e})", quote(&input.to_string())),
                    )
                })?;
                if let Some(&earlier) = self.index_of.get(&id) {
                    return Err(error(
                        &format!(
                            "a fresh op id (id {id} was invoked on line {})",
                            self.ops[earlier].line
                        ),
                        id.to_string(),
                    ));
                }
                if let Some(&open) = self.in_flight.get(&client) {
                    let open = &self.ops[open];
                    return Err(error(
                        &format!("one op in flight per client (client {client}'s op {} from line {} has not completed)", open.id, open.line),
                        format!("another invoke on client {client}"),
                    ));
                }
                self.check_time(line_number, client, t_ns)?;
                self.index_of.insert(id, self.ops.len());
                self.in_flight.insert(client, self.ops.len());
                self.ops.push(Pending {
                    id,
                    client,
                    call_ns: t_ns,
                    return_ns: None,
                    input,
                    outcome: None,
                    line: line_number,
                });
            }
            "ok" | "fail" | "unknown" => {
                let id = uint("id")?;
                let t_ns = if kind == "unknown" && !object.contains_key("t_ns") {
                    None
                } else {
                    Some(uint("t_ns")?)
                };
                let outcome = match kind {
                    "ok" => {
                        let output = object
                            .get("output")
                            .ok_or_else(|| error("an \"output\" field", quote(line)))?;
                        let output: O = serde_json::from_value(output.clone()).map_err(|e| {
                            error(
                                "an \"output\" of this model",
                                format!("{} ({e})", quote(&output.to_string())),
                            )
                        })?;
                        Outcome::Ok { output }
                    }
                    "fail" => Outcome::Fail {
                        error: text_field("error")?,
                    },
                    _ => Outcome::Unknown {
                        error: text_field("error")?,
                    },
                };
                let Some(&index) = self.index_of.get(&id) else {
                    return Err(error(
                        &format!("an earlier invoke of op {id}"),
                        format!("a \"{kind}\" completion"),
                    ));
                };
                if self.ops[index].outcome.is_some() {
                    return Err(error(
                        &format!("one completion of op {id}"),
                        format!("a second completion (\"{kind}\")"),
                    ));
                }
                let client = self.ops[index].client;
                if let Some(t_ns) = t_ns {
                    self.check_time(line_number, client, t_ns)?;
                }
                self.in_flight.remove(&client);
                let op = &mut self.ops[index];
                op.return_ns = t_ns;
                op.outcome = Some(outcome);
            }
            "fault" => {
                let fault: FaultEvent = serde_json::from_value(Value::Object(object.clone()))
                    .map_err(|e| {
                        error(
                            "a fault record (t_ns, kind, nodes, detail)",
                            format!("{} ({e})", quote(line)),
                        )
                    })?;
                self.history.faults.push(fault);
            }
            crate::history::SERVED_BY_RECORD | crate::history::LEADER_RECORD => {
                let mut fields = object.clone();
                fields.remove("type");
                let fields = Value::Object(fields);
                let (parsed, expected) = if kind == crate::history::SERVED_BY_RECORD {
                    (
                        serde_json::from_value::<crate::history::ServedBy>(fields).err(),
                        "a served_by record (id, t_ns, node, raft_term, role: leader, follower, candidate or pre_candidate)",
                    )
                } else {
                    (
                        serde_json::from_value::<crate::history::LeaderElected>(fields).err(),
                        "a leader record (t_ns, node, term)",
                    )
                };
                if let Some(e) = parsed {
                    let what = format!("malformed \"{kind}\" record");
                    let strictness = self.strictness;
                    return self.dropped.note(
                        strictness,
                        what,
                        error(expected, format!("{} ({e})", quote(line))),
                    );
                }
                self.history.other.push(Value::Object(object.clone()));
            }
            _ => self.history.other.push(Value::Object(object.clone())),
        }
        Ok(())
    }

    fn check_time(
        &mut self,
        line_number: usize,
        client: ClientId,
        t_ns: u64,
    ) -> Result<(), FormatError> {
        let last = self.client_time.entry(client).or_insert(0);
        if t_ns < *last {
            return Err(FormatError::new(
                self.file,
                line_number,
                format!(
                    "t_ns >= {} (client {client}'s time must not go backwards)",
                    *last
                ),
                t_ns.to_string(),
            ));
        }
        *last = t_ns;
        Ok(())
    }
}

fn parse_object(
    file: &str,
    line_number: usize,
    line: &str,
    expected: &str,
) -> Result<Map<String, Value>, FormatError> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(FormatError::new(
            file,
            line_number,
            expected,
            quote(&other.to_string()),
        )),
        Err(e) if line.trim().is_empty() => Err(FormatError::new(
            file,
            line_number,
            expected,
            format!("an empty line ({e})"),
        )),
        Err(e) => Err(FormatError::new(
            file,
            line_number,
            expected,
            format!("{} ({e})", quote(line)),
        )),
    }
}

#[derive(Serialize)]
struct HeaderRecord<'a> {
    kvsim_history: u64,
    model: &'a str,
    meta: &'a Value,
}

#[derive(Serialize)]
struct InvokeRecord<'a, I> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: OpId,
    client: ClientId,
    t_ns: u64,
    input: &'a I,
}

#[derive(Serialize)]
struct OkRecord<'a, O> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: OpId,
    t_ns: u64,
    output: &'a O,
}

#[derive(Serialize)]
struct ErrorRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: OpId,
    #[serde(skip_serializing_if = "Option::is_none")]
    t_ns: Option<u64>,
    error: &'a str,
}

#[derive(Serialize)]
struct FaultRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    fault: &'a FaultEvent,
}

/// Writes `history` as a version-1 JSON Lines file. Records are in time order (at equal times:
/// completions, then faults, then invokes, so that one client's consecutive ops read back in
/// order); `History::other` records follow at the end. Reading the output gives `history` back
/// when its ops and faults are sorted by time, as recorded histories are.
pub fn write_jsonl<W, I, O>(
    w: &mut W,
    model: &str,
    meta: &Value,
    history: &History<I, O>,
) -> io::Result<()>
where
    W: Write,
    I: Serialize,
    O: Serialize,
{
    serde_json::to_writer(
        &mut *w,
        &HeaderRecord {
            kvsim_history: VERSION,
            model,
            meta,
        },
    )?;
    w.write_all(b"\n")?;

    // An unknown outcome without a time is written just before the client's next invoke (or at
    // the end), so that the file still shows one op in flight per client.
    let mut next_call_of_client: HashMap<ClientId, u64> = HashMap::new();
    let mut completion_time_ns = vec![u64::MAX; history.ops.len()];
    for (index, op) in history.ops.iter().enumerate().rev() {
        completion_time_ns[index] = match (op.return_ns, &op.outcome) {
            (Some(t_ns), _) => t_ns,
            (None, Outcome::Unknown { .. }) => next_call_of_client
                .get(&op.client)
                .copied()
                .unwrap_or(u64::MAX),
            (None, _) => op.call_ns,
        };
        next_call_of_client.insert(op.client, op.call_ns);
    }
    // (time, rank, sequence, what): rank 0 completion, 1 fault, 2 invoke.
    let mut events: Vec<(u64, u8, usize, Event)> =
        Vec::with_capacity(history.ops.len() * 2 + history.faults.len());
    for (index, op) in history.ops.iter().enumerate() {
        events.push((op.call_ns, 2, index, Event::Invoke(index)));
        events.push((completion_time_ns[index], 0, index, Event::Complete(index)));
    }
    for (index, fault) in history.faults.iter().enumerate() {
        events.push((fault.t_ns, 1, index, Event::Fault(index)));
    }
    events.sort_by_key(|&(time, rank, sequence, _)| (time, rank, sequence));

    for (_, _, _, event) in events {
        match event {
            Event::Invoke(index) => {
                let op = &history.ops[index];
                let record = InvokeRecord {
                    kind: "invoke",
                    id: op.id,
                    client: op.client,
                    t_ns: op.call_ns,
                    input: &op.input,
                };
                serde_json::to_writer(&mut *w, &record)?;
            }
            Event::Complete(index) => {
                let op = &history.ops[index];
                match &op.outcome {
                    Outcome::Ok { output } => {
                        let t_ns = op.return_ns.unwrap_or(op.call_ns);
                        serde_json::to_writer(
                            &mut *w,
                            &OkRecord {
                                kind: "ok",
                                id: op.id,
                                t_ns,
                                output,
                            },
                        )?;
                    }
                    Outcome::Fail { error } => {
                        let t_ns = Some(op.return_ns.unwrap_or(op.call_ns));
                        serde_json::to_writer(
                            &mut *w,
                            &ErrorRecord {
                                kind: "fail",
                                id: op.id,
                                t_ns,
                                error,
                            },
                        )?;
                    }
                    Outcome::Unknown { error } => {
                        let record = ErrorRecord {
                            kind: "unknown",
                            id: op.id,
                            t_ns: op.return_ns,
                            error,
                        };
                        serde_json::to_writer(&mut *w, &record)?;
                    }
                }
            }
            Event::Fault(index) => {
                serde_json::to_writer(
                    &mut *w,
                    &FaultRecord {
                        kind: "fault",
                        fault: &history.faults[index],
                    },
                )?;
            }
        }
        w.write_all(b"\n")?;
    }
    for other in &history.other {
        serde_json::to_writer(&mut *w, other)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Event {
    Invoke(usize),
    Complete(usize),
    Fault(usize),
}

#[cfg(test)]
mod tests {
    use kvsim_model::register::{RegisterOp, RegisterRet};
    use serde_json::json;

    use super::*;

    type RegisterHistory = History<RegisterOp, RegisterRet>;

    fn sample() -> RegisterHistory {
        let op = |id, client, call_ns, return_ns, input, outcome| Operation {
            id,
            client,
            call_ns,
            return_ns,
            input,
            outcome,
        };
        History {
            ops: vec![
                op(
                    0,
                    1,
                    10,
                    Some(20),
                    RegisterOp::Write { value: 3 },
                    Outcome::Ok {
                        output: RegisterRet::Write,
                    },
                ),
                op(
                    1,
                    2,
                    15,
                    Some(40),
                    RegisterOp::Read,
                    Outcome::Ok {
                        output: RegisterRet::Read { value: Some(3) },
                    },
                ),
                op(
                    2,
                    1,
                    20,
                    Some(30),
                    RegisterOp::Cas { from: 3, to: 4 },
                    Outcome::Fail {
                        error: "refused".into(),
                    },
                ),
                op(
                    3,
                    1,
                    30,
                    Some(50),
                    RegisterOp::Write { value: 5 },
                    Outcome::Unknown {
                        error: "timeout".into(),
                    },
                ),
                op(
                    4,
                    3,
                    35,
                    None,
                    RegisterOp::Write { value: 6 },
                    Outcome::Unknown {
                        error: "crashed".into(),
                    },
                ),
                op(
                    5,
                    3,
                    60,
                    Some(70),
                    RegisterOp::Read,
                    Outcome::Ok {
                        output: RegisterRet::Read { value: Some(6) },
                    },
                ),
            ],
            faults: vec![FaultEvent {
                t_ns: 20,
                kind: "partition".into(),
                nodes: vec!["n1".into()],
                detail: json!({"sides": [["n1"], ["n2", "n3"]]}),
            }],
            other: vec![json!({"type": "watch", "events": [1, 2]})],
        }
    }

    fn write(history: &RegisterHistory) -> String {
        let mut bytes = Vec::new();
        write_jsonl(&mut bytes, "cas-register", &json!({"seed": 7}), history).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn round_trips() {
        let history = sample();
        let text = write(&history);
        let (header, back) =
            read_jsonl::<RegisterOp, RegisterRet>("h.jsonl", &text, "cas-register").unwrap();
        assert_eq!(
            header,
            JsonlHeader {
                version: 1,
                model: "cas-register".into(),
                meta: json!({"seed": 7})
            }
        );
        assert_eq!(back, history);
        assert_eq!(write(&back), text, "writing is deterministic");
        let first_lines: Vec<&str> = text.lines().take(3).collect();
        assert_eq!(
            first_lines[0],
            r#"{"kvsim_history":1,"model":"cas-register","meta":{"seed":7}}"#
        );
        assert_eq!(
            first_lines[1],
            r#"{"type":"invoke","id":0,"client":1,"t_ns":10,"input":{"f":"write","value":3}}"#
        );
        assert!(
            text.contains(r#"{"type":"unknown","id":4,"error":"crashed"}"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"{"type":"fault","t_ns":20,"kind":"partition","nodes":["n1"],"detail":"#
            ),
            "{text}"
        );
    }

    fn error_of(body: &str) -> FormatError {
        let text =
            format!("{{\"kvsim_history\":1,\"model\":\"cas-register\",\"meta\":{{}}}}\n{body}");
        read_jsonl::<RegisterOp, RegisterRet>("h.jsonl", &text, "cas-register").unwrap_err()
    }

    const INVOKE_0: &str = r#"{"type":"invoke","id":0,"client":1,"t_ns":10,"input":{"f":"read"}}"#;

    #[test]
    fn validates_records() {
        let duplicate = format!("{INVOKE_0}\n{{\"type\":\"ok\",\"id\":0,\"t_ns\":11,\"output\":{{\"f\":\"read\",\"value\":null}}}}\n{INVOKE_0}");
        let error = error_of(&duplicate);
        assert_eq!(error.line, 4);
        assert!(error.expected.contains("fresh op id"), "{error}");
        let orphan = error_of(r#"{"type":"ok","id":9,"t_ns":11,"output":{"f":"write"}}"#);
        assert!(
            orphan.expected.contains("earlier invoke of op 9"),
            "{orphan}"
        );
        let two_in_flight = error_of(&format!(
            "{INVOKE_0}\n{}",
            INVOKE_0.replace("\"id\":0", "\"id\":1")
        ));
        assert!(
            two_in_flight
                .expected
                .contains("one op in flight per client"),
            "{two_in_flight}"
        );
        let backwards = error_of(&format!(
            "{INVOKE_0}\n{{\"type\":\"unknown\",\"id\":0,\"t_ns\":5}}"
        ));
        assert_eq!(
            backwards.to_string(),
            "h.jsonl:3: expected t_ns >= 10 (client 1's time must not go backwards), found 5"
        );
        let bad_input =
            error_of(r#"{"type":"invoke","id":0,"client":1,"t_ns":10,"input":{"f":"jump"}}"#);
        assert!(bad_input.expected.contains("input"), "{bad_input}");
        assert!(error_of("[1]").expected.contains("JSON object"));
        assert!(error_of("{\"id\":1}").expected.contains("\"type\""));
        assert!(
            error_of(r#"{"type":"invoke","id":-1,"client":1,"t_ns":10,"input":{"f":"read"}}"#)
                .expected
                .contains("non-negative")
        );
        let twice = error_of(&format!("{INVOKE_0}\n{{\"type\":\"fail\",\"id\":0,\"t_ns\":11}}\n{{\"type\":\"fail\",\"id\":0,\"t_ns\":11}}"));
        assert!(twice.expected.contains("one completion"), "{twice}");
        assert!(error_of(r#"{"type":"fault","t_ns":"x","kind":"crash"}"#)
            .expected
            .contains("fault"));
    }

    #[test]
    fn validates_header() {
        let read = |text: &str| {
            read_jsonl::<RegisterOp, RegisterRet>("h", text, "cas-register").unwrap_err()
        };
        assert!(read("").expected.contains("header"));
        assert!(read(r#"{"kvsim_history":2,"model":"kv"}"#)
            .expected
            .contains("only version"));
        assert!(read(r#"{"kvsim_history":1,"model":"queue"}"#)
            .expected
            .contains("\"model\" among"));
        let other_model = read(r#"{"kvsim_history":1,"model":"kv","meta":{}}"#);
        assert_eq!(
            other_model.to_string(),
            "h:1: expected a history of model \"cas-register\", found model \"kv\""
        );
        let header = read_jsonl_header("h", r#"{"kvsim_history":1,"model":"mvcc"}"#).unwrap();
        assert_eq!(header.meta, json!({}));
    }

    #[test]
    fn missing_completion_is_unknown_and_other_records_are_kept() {
        let body = format!("{INVOKE_0}\n{{\"type\":\"final_state\",\"kvs\":[]}}\n\n");
        let text =
            format!("{{\"kvsim_history\":1,\"model\":\"cas-register\",\"meta\":{{}}}}\n{body}");
        let (_, history) =
            read_jsonl::<RegisterOp, RegisterRet>("h", &text, "cas-register").unwrap();
        assert!(matches!(history.ops[0].outcome, Outcome::Unknown { .. }));
        assert_eq!(history.ops[0].return_ns, None);
        assert_eq!(
            history.other,
            vec![json!({"type": "final_state", "kvs": []})]
        );
    }

    #[test]
    fn documented_mvcc_example_reads() {
        // The example in docs/history-format.md.
        let text = r#"{"kvsim_history":1,"model":"mvcc","meta":{"seed":42,"scenario":"partition-leader"}}
{"type":"invoke","id":7,"client":2,"t_ns":1000,"input":{"op":"put","key":"k1","value":"v7"}}
{"type":"ok","id":7,"t_ns":2000,"output":{"ok":{"op":"put","header":{"revision":5}}}}
{"type":"invoke","id":8,"client":3,"t_ns":1500,"input":{"op":"range","key":"k1"}}
{"type":"unknown","id":8,"t_ns":51500,"error":"timeout"}
{"type":"fault","t_ns":1800,"kind":"partition","nodes":["n1"],"detail":{"sides":[["n1"],["n2","n3"]]}}
"#;
        let (header, history) =
            read_jsonl::<kvsim_model::mvcc::Op, kvsim_model::mvcc::Ret>("doc", text, "mvcc")
                .unwrap();
        assert_eq!(header.meta["seed"], 42);
        assert_eq!(history.ops.len(), 2);
        assert!(matches!(history.ops[0].outcome, Outcome::Ok { .. }));
        assert_eq!(history.ops[1].return_ns, Some(51_500));
        assert_eq!(history.faults[0].kind, "partition");
    }

    #[test]
    fn served_by_and_leader_records_are_read_typed_and_malformed_ones_are_errors() {
        let header = "{\"kvsim_history\":1,\"model\":\"cas-register\",\"meta\":{}}";
        let good = format!(
            "{header}\n{INVOKE_0}\n{{\"type\":\"ok\",\"id\":0,\"t_ns\":11,\"output\":{{\"f\":\"read\",\"value\":null}}}}\n\
             {{\"type\":\"served_by\",\"id\":0,\"t_ns\":11,\"node\":\"n2\",\"raft_term\":3,\"role\":\"leader\"}}\n\
             {{\"type\":\"leader\",\"t_ns\":5,\"node\":\"n1\",\"term\":4}}\n"
        );
        let (_, history) =
            read_jsonl::<RegisterOp, RegisterRet>("h.jsonl", &good, "cas-register").unwrap();
        let served = history.served_by();
        assert_eq!(served[&0].node, "n2");
        assert_eq!(served[&0].role, Some(crate::history::MemberRole::Leader));
        assert_eq!(history.leaders_elected()[0].term, 4);
        let bad_role = good.replace("\"leader\"}", "\"boss\"}");
        let error = read_jsonl::<RegisterOp, RegisterRet>("h.jsonl", &bad_role, "cas-register")
            .unwrap_err();
        assert_eq!(error.line, 4);
        assert!(error.to_string().contains("a served_by record"), "{error}");
        let no_term = good.replace(",\"term\":4", "");
        let error =
            read_jsonl::<RegisterOp, RegisterRet>("h.jsonl", &no_term, "cas-register").unwrap_err();
        assert_eq!(error.line, 5);
        assert!(error.to_string().contains("a leader record"), "{error}");
    }

    #[test]
    fn unknown_record_types_and_fields_are_errors_unless_lenient() {
        let header = "{\"kvsim_history\":1,\"model\":\"cas-register\",\"meta\":{}}";
        let misspelt = format!(
            "{header}\n{INVOKE_0}\n{{\"type\":\"OK\",\"id\":0,\"t_ns\":11,\"output\":{{\"f\":\"read\",\"value\":null}}}}\n"
        );
        let error = read_jsonl::<RegisterOp, RegisterRet>("h.jsonl", &misspelt, "cas-register")
            .unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.to_string().contains("found \"OK\""), "{error}");
        let (_, history, dropped) = read_jsonl_with::<RegisterOp, RegisterRet>(
            "h.jsonl",
            &misspelt,
            "cas-register",
            Strictness::Lenient,
        )
        .unwrap();
        assert!(history.other.is_empty(), "dropped, not kept");
        assert_eq!(dropped.total(), 1);
        assert!(dropped.summary()[0].contains("unknown type \"OK\" (first: h.jsonl:3)"));

        let extra_field = format!(
            "{header}\n{{\"type\":\"invoke\",\"id\":0,\"client\":1,\"t_ns\":10,\"input\":{{\"f\":\"read\"}},\"okay\":true}}\n"
        );
        let error = read_jsonl::<RegisterOp, RegisterRet>("h.jsonl", &extra_field, "cas-register")
            .unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.to_string().contains("the field \"okay\""), "{error}");
        let (_, history, dropped) = read_jsonl_with::<RegisterOp, RegisterRet>(
            "h.jsonl",
            &extra_field,
            "cas-register",
            Strictness::Lenient,
        )
        .unwrap();
        assert_eq!((history.ops.len(), dropped.total()), (1, 1));
    }
}
