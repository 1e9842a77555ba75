//! One-line texts for operations, answers and model states, as the report shows them.
//!
//! Short on purpose: a report embeds one input and one output text per operation, so its size is
//! O(ops) with a small constant, and a tooltip reads like a log line rather than like JSON.
//! Keys and values are printed with Rust's `{:?}` so control characters and quotes stay visible.

use std::fmt::Write as _;

use kvsim_model::mvcc::prefix_end;
use kvsim_model::mvcc::{
    Compare, CompareResult, CompareTarget, KeyValue, MvccModel, Op, RequestOp, Response,
    ResponseOp, Ret, FROM_KEY,
};

/// Longest text kept for one operation's input or output (in chars); the rest is cut with a note.
pub const TEXT_CHARS_MAX: usize = 2_000;
/// Keys listed in one model-state text before "... N more".
pub const STATE_KEYS_MAX: usize = 200;

/// The key ranges `op` reads or writes, as `[key, range_end]` with etcd's `range_end` convention
/// ("" one key, `FROM_KEY` every key from `key`): the report's per-key view finds the operations
/// on a violation's key with them. Transactions list their compares and every branch's requests
/// (either branch may have run); lease and compaction operations name no key.
pub fn op_key_ranges(op: &Op) -> Vec<(String, String)> {
    let mut ranges = Vec::new();
    match op {
        Op::Put(put) => ranges.push((put.key.clone(), String::new())),
        Op::Range(range) => ranges.push((range.key.clone(), range.range_end.clone())),
        Op::DeleteRange(delete) => ranges.push((delete.key.clone(), delete.range_end.clone())),
        Op::Txn(txn) => push_txn_ranges(&mut ranges, &RequestOp::Txn(txn.clone())),
        Op::LeaseGrant { .. }
        | Op::LeaseRevoke { .. }
        | Op::LeaseKeepAlive { .. }
        | Op::LeaseTimeToLive { .. }
        | Op::LeaseExpire { .. }
        | Op::Compact { .. } => {}
    }
    ranges.sort();
    ranges.dedup();
    ranges
}

fn push_txn_ranges(ranges: &mut Vec<(String, String)>, request: &RequestOp) {
    match request {
        RequestOp::Put(put) => ranges.push((put.key.clone(), String::new())),
        RequestOp::Range(range) => ranges.push((range.key.clone(), range.range_end.clone())),
        RequestOp::DeleteRange(delete) => {
            ranges.push((delete.key.clone(), delete.range_end.clone()))
        }
        RequestOp::Txn(txn) => {
            for compare in &txn.compare {
                ranges.push((compare.key.clone(), String::new()));
            }
            for nested in txn.success.iter().chain(&txn.failure) {
                push_txn_ranges(ranges, nested);
            }
        }
    }
}

/// Cuts `text` to at most `chars_max` chars (on a char boundary), saying how much was dropped.
pub fn capped(mut text: String, chars_max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(chars_max) {
        let dropped = text[cut..].chars().count();
        text.truncate(cut);
        let _ = write!(text, " … ({dropped} more chars)");
    }
    text
}

pub fn op_text(op: &Op) -> String {
    let mut out = String::new();
    write_op(&mut out, op);
    capped(out, TEXT_CHARS_MAX)
}

pub fn ret_text(ret: &Ret) -> String {
    let mut out = String::new();
    match ret {
        Ret::Ok(response) => write_response(&mut out, response),
        Ret::Err(error) => {
            let _ = write!(out, "error {error:?}");
        }
    }
    capped(out, TEXT_CHARS_MAX)
}

fn write_range(out: &mut String, key: &str, range_end: &str) {
    let _ = if range_end.is_empty() {
        write!(out, "{key:?}")
    } else if range_end == FROM_KEY {
        write!(out, "{key:?}..")
    } else if !key.is_empty() && range_end == prefix_end(key) {
        write!(out, "prefix {key:?}")
    } else {
        write!(out, "[{key:?}, {range_end:?})")
    };
}

fn write_op(out: &mut String, op: &Op) {
    match op {
        Op::Put(put) => write_request(out, &RequestOp::Put(put.clone())),
        Op::Range(range) => write_request(out, &RequestOp::Range(range.clone())),
        Op::DeleteRange(delete) => write_request(out, &RequestOp::DeleteRange(delete.clone())),
        Op::Txn(txn) => write_request(out, &RequestOp::Txn(txn.clone())),
        Op::LeaseGrant { id, ttl_s } => {
            let _ = write!(out, "lease_grant {id} ttl {ttl_s}s");
        }
        Op::LeaseRevoke { id } => {
            let _ = write!(out, "lease_revoke {id}");
        }
        Op::LeaseKeepAlive { id } => {
            let _ = write!(out, "lease_keepalive {id}");
        }
        Op::LeaseTimeToLive { id, keys } => {
            let _ = write!(out, "lease_ttl {id}{}", if *keys { " keys" } else { "" });
        }
        Op::LeaseExpire { id } => {
            let _ = write!(out, "lease_expire {id}");
        }
        Op::Compact { revision, physical } => {
            let _ = write!(
                out,
                "compact {revision}{}",
                if *physical { " physical" } else { "" }
            );
        }
    }
}

fn write_request(out: &mut String, request: &RequestOp) {
    match request {
        RequestOp::Put(put) => {
            let _ = write!(out, "put {:?} = {:?}", put.key, put.value);
            if put.lease != 0 {
                let _ = write!(out, " lease {}", put.lease);
            }
            flag(out, put.prev_kv, "prev_kv");
            flag(out, put.ignore_value, "ignore_value");
            flag(out, put.ignore_lease, "ignore_lease");
        }
        RequestOp::Range(range) => {
            out.push_str("get ");
            write_range(out, &range.key, &range.range_end);
            if range.revision != 0 {
                let _ = write!(out, " @rev {}", range.revision);
            }
            if range.limit != 0 {
                let _ = write!(out, " limit {}", range.limit);
            }
            flag(out, range.count_only, "count_only");
            flag(out, range.keys_only, "keys_only");
            flag(out, range.serializable, "serializable");
        }
        RequestOp::DeleteRange(delete) => {
            out.push_str("delete ");
            write_range(out, &delete.key, &delete.range_end);
            flag(out, delete.prev_kv, "prev_kv");
        }
        RequestOp::Txn(txn) => {
            out.push_str("txn if (");
            for (index, compare) in txn.compare.iter().enumerate() {
                if index > 0 {
                    out.push_str(" && ");
                }
                write_compare(out, compare);
            }
            out.push_str(") then {");
            write_requests(out, &txn.success);
            out.push_str("} else {");
            write_requests(out, &txn.failure);
            out.push('}');
        }
    }
}

fn write_requests(out: &mut String, requests: &[RequestOp]) {
    for (index, request) in requests.iter().enumerate() {
        out.push_str(if index == 0 { " " } else { "; " });
        write_request(out, request);
    }
    if !requests.is_empty() {
        out.push(' ');
    }
}

fn write_compare(out: &mut String, compare: &Compare) {
    let relation = match compare.result {
        CompareResult::Equal => "==",
        CompareResult::NotEqual => "!=",
        CompareResult::Less => "<",
        CompareResult::Greater => ">",
    };
    let key = &compare.key;
    let _ = match &compare.target {
        CompareTarget::Value(value) => write!(out, "value({key:?}) {relation} {value:?}"),
        CompareTarget::Version(version) => write!(out, "version({key:?}) {relation} {version}"),
        CompareTarget::CreateRevision(rev) => write!(out, "create({key:?}) {relation} {rev}"),
        CompareTarget::ModRevision(rev) => write!(out, "mod({key:?}) {relation} {rev}"),
        CompareTarget::Lease(lease) => write!(out, "lease({key:?}) {relation} {lease}"),
    };
}

fn flag(out: &mut String, on: bool, name: &str) {
    if on {
        out.push(' ');
        out.push_str(name);
    }
}

/// `"k"="v" c3 m7 v2 lease 5`: create revision, mod revision, version, lease if any.
pub fn write_kv(out: &mut String, kv: &KeyValue) {
    let _ = write!(
        out,
        "{:?}={:?} c{} m{} v{}",
        kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version
    );
    if kv.lease != 0 {
        let _ = write!(out, " lease {}", kv.lease);
    }
}

fn write_kvs(out: &mut String, kvs: &[KeyValue]) {
    for (index, kv) in kvs.iter().enumerate() {
        out.push_str(if index == 0 { " [" } else { ", " });
        write_kv(out, kv);
    }
    if !kvs.is_empty() {
        out.push(']');
    }
}

fn write_response(out: &mut String, response: &Response) {
    match response {
        Response::Put(put) => write_response_op(out, &ResponseOp::Put(put.clone())),
        Response::Range(range) => write_response_op(out, &ResponseOp::Range(range.clone())),
        Response::DeleteRange(delete) => {
            write_response_op(out, &ResponseOp::DeleteRange(delete.clone()))
        }
        Response::Txn(txn) => write_response_op(out, &ResponseOp::Txn(txn.clone())),
        Response::LeaseGrant { header, id, ttl_s } => {
            let _ = write!(out, "rev {} granted {id} ttl {ttl_s}s", header.revision);
        }
        Response::LeaseRevoke { header } => {
            let _ = write!(out, "rev {} revoked", header.revision);
        }
        Response::LeaseKeepAlive { header, id, ttl_s } => {
            let _ = write!(out, "rev {} kept {id} ttl {ttl_s}s", header.revision);
        }
        Response::LeaseTimeToLive {
            header,
            id,
            ttl_s,
            granted_ttl_s,
            keys,
        } => {
            let _ = write!(
                out,
                "rev {} lease {id} ttl {ttl_s}s of {granted_ttl_s}s",
                header.revision
            );
            if !keys.is_empty() {
                let _ = write!(out, " keys {keys:?}");
            }
        }
        Response::Compact { header } => {
            let _ = write!(out, "rev {} compacted", header.revision);
        }
    }
}

fn write_response_op(out: &mut String, response: &ResponseOp) {
    match response {
        ResponseOp::Put(put) => {
            let _ = write!(out, "rev {}", put.header.revision);
            if let Some(prev) = &put.prev_kv {
                out.push_str(" prev ");
                write_kv(out, prev);
            }
        }
        ResponseOp::Range(range) => {
            let _ = write!(out, "rev {} count {}", range.header.revision, range.count);
            flag(out, range.more, "more");
            write_kvs(out, &range.kvs);
        }
        ResponseOp::DeleteRange(delete) => {
            let _ = write!(
                out,
                "rev {} deleted {}",
                delete.header.revision, delete.deleted
            );
            write_kvs(out, &delete.prev_kvs);
        }
        ResponseOp::Txn(txn) => {
            let branch = if txn.succeeded { "then" } else { "else" };
            let _ = write!(out, "rev {} {branch} {{", txn.header.revision);
            for (index, inner) in txn.responses.iter().enumerate() {
                out.push_str(if index == 0 { " " } else { "; " });
                write_response_op(out, inner);
            }
            out.push_str(" }");
        }
    }
}

/// The model state as a few lines: revision, compaction, live keys, leases.
pub fn state_text(model: &MvccModel) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "revision {} · compacted {}",
        model.revision(),
        model.compacted_revision()
    );
    let kvs = model.current_kvs();
    let _ = writeln!(out, "keys ({}):", kvs.len());
    for kv in kvs.iter().take(STATE_KEYS_MAX) {
        out.push_str("  ");
        write_kv(&mut out, kv);
        out.push('\n');
    }
    if kvs.len() > STATE_KEYS_MAX {
        let _ = writeln!(out, "  … {} more keys", kvs.len() - STATE_KEYS_MAX);
    }
    let leases = model.leases();
    let _ = writeln!(out, "leases ({}):", leases.len());
    for (id, ttl_s) in leases.iter().take(STATE_KEYS_MAX) {
        let _ = writeln!(out, "  {id} ttl {ttl_s}s keys {:?}", model.lease_keys(*id));
    }
    if leases.len() > STATE_KEYS_MAX {
        let _ = writeln!(out, "  … {} more leases", leases.len() - STATE_KEYS_MAX);
    }
    out
}

/// What changed from `before` to `after`: revision, then every key and lease that differs.
pub fn state_change_text(before: &MvccModel, after: &MvccModel) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "revision {} · compacted {}",
        after.revision(),
        after.compacted_revision()
    );
    let old = before.current_kvs();
    let new = after.current_kvs();
    let mut lines = Vec::new();
    for kv in &new {
        match old.iter().find(|o| o.key == kv.key) {
            Some(o) if o == kv => {}
            Some(_) => lines.push(("changed", kv.clone())),
            None => lines.push(("created", kv.clone())),
        }
    }
    for kv in &old {
        if !new.iter().any(|n| n.key == kv.key) {
            lines.push(("deleted", kv.clone()));
        }
    }
    let old_leases = before.leases();
    let new_leases = after.leases();
    if lines.is_empty() && old_leases == new_leases && before.revision() == after.revision() {
        out.push_str("(unchanged)\n");
        return out;
    }
    for (what, kv) in lines.iter().take(STATE_KEYS_MAX) {
        let _ = write!(out, "  {what} ");
        write_kv(&mut out, kv);
        out.push('\n');
    }
    if lines.len() > STATE_KEYS_MAX {
        let _ = writeln!(out, "  … {} more keys", lines.len() - STATE_KEYS_MAX);
    }
    for (id, ttl_s) in &new_leases {
        if !old_leases.contains(&(*id, *ttl_s)) {
            let _ = writeln!(out, "  lease {id} granted ttl {ttl_s}s");
        }
    }
    for (id, _) in &old_leases {
        if !new_leases.iter().any(|(n, _)| n == id) {
            let _ = writeln!(out, "  lease {id} gone");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvsim_model::mvcc::{
        PutRequest, PutResponse, RangeRequest, RangeResponse, ResponseHeader, TxnRequest,
    };

    #[test]
    fn ops_read_like_log_lines() {
        let put = Op::Put(PutRequest {
            key: "k1".into(),
            value: "v\"1".into(),
            lease: 7,
            prev_kv: true,
            ..PutRequest::default()
        });
        assert_eq!(op_text(&put), r#"put "k1" = "v\"1" lease 7 prev_kv"#);
        let prefix = Op::Range(RangeRequest {
            key: "k".into(),
            range_end: prefix_end("k"),
            revision: 4,
            serializable: true,
            ..RangeRequest::default()
        });
        assert_eq!(op_text(&prefix), r#"get prefix "k" @rev 4 serializable"#);
        let txn = Op::Txn(TxnRequest {
            compare: vec![Compare {
                key: "a".into(),
                result: CompareResult::Equal,
                target: CompareTarget::ModRevision(0),
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: "a".into(),
                value: "x".into(),
                ..PutRequest::default()
            })],
            failure: vec![],
        });
        assert_eq!(
            op_text(&txn),
            r#"txn if (mod("a") == 0) then { put "a" = "x" } else {}"#
        );
    }

    #[test]
    fn answers_name_revision_and_kvs() {
        let kv = KeyValue {
            key: "a".into(),
            value: "1".into(),
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            lease: 0,
        };
        let range = Ret::Ok(Response::Range(RangeResponse {
            header: ResponseHeader { revision: 5 },
            kvs: vec![kv],
            more: false,
            count: 1,
        }));
        assert_eq!(ret_text(&range), r#"rev 5 count 1 ["a"="1" c2 m3 v2]"#);
        let put = Ret::Ok(Response::Put(PutResponse {
            header: ResponseHeader { revision: 6 },
            prev_kv: None,
        }));
        assert_eq!(ret_text(&put), "rev 6");
        assert_eq!(
            ret_text(&Ret::Err(kvsim_model::mvcc::EtcdError::Compacted)),
            "error Compacted"
        );
    }

    #[test]
    fn long_texts_are_capped_on_a_char_boundary() {
        let text = capped("é".repeat(10), 4);
        assert_eq!(text, "éééé … (6 more chars)");
        assert_eq!(capped("short".into(), 5), "short");
    }

    #[test]
    fn state_change_lists_only_what_differs() {
        let mut before = MvccModel::default();
        before.apply(&Op::Put(PutRequest {
            key: "a".into(),
            value: "1".into(),
            ..PutRequest::default()
        }));
        let mut after = before.clone();
        assert!(state_change_text(&before, &after).contains("(unchanged)"));
        after.apply(&Op::Put(PutRequest {
            key: "b".into(),
            value: "2".into(),
            ..PutRequest::default()
        }));
        let change = state_change_text(&before, &after);
        assert!(change.starts_with("revision 3"), "{change}");
        assert!(change.contains(r#"created "b"="2" c3 m3 v1"#), "{change}");
        assert!(!change.contains(r#""a""#), "{change}");
        let state = state_text(&after);
        assert!(state.contains("keys (2):"), "{state}");
    }
}
