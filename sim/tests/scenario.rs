//! Scenario files: every shipped scenario parses, and bad input gives errors that name the file,
//! the line, the field and what is allowed.

use kvsim_sim::scenario::{FaultKind, Scenario};
use std::path::Path;

fn scenarios_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn error_of(source: &str) -> String {
    match Scenario::parse("scenarios/x.toml", source) {
        Ok(scenario) => panic!("expected an error, parsed {scenario:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn every_shipped_scenario_parses_and_validates() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(scenarios_dir()).expect("scenarios/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let scenario = Scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
            assert!(
                !scenario.description.is_empty(),
                "{} has a description",
                path.display()
            );
            names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "crashes",
            "default",
            "deposed-leader",
            "five-nodes",
            "leases",
            "live",
            "partitions",
            "power-loss",
            "recipes",
            "retries",
            "txn",
            "watch",
            "watch-progress"
        ]
    );
}

#[test]
fn default_file_spells_out_the_built_in_defaults() {
    let file = Scenario::load(&scenarios_dir().join("default.toml")).unwrap();
    let built_in = Scenario::parse("empty.toml", "").unwrap();
    assert_eq!(file.cluster, built_in.cluster);
    assert_eq!(file.workload, built_in.workload);
    assert_eq!(file.faults, built_in.faults);
    assert!(file.bugs.is_empty());
}

#[test]
fn bad_value_names_file_line_field_and_allowed_values() {
    let error = error_of("[cluster]\ntick_ms = 50\nnodes = 4\n");
    assert_eq!(
        error,
        "scenarios/x.toml:3: cluster.nodes = 4: expected one of 1, 3, 5, 7"
    );
}

#[test]
fn cross_field_constraints_are_checked() {
    let error = error_of("[cluster]\nheartbeat_tick = 5\nelection_tick = 5\n");
    assert!(
        error.contains("scenarios/x.toml:3: cluster.election_tick = 5"),
        "{error}"
    );
    let error = error_of("[faults]\nduration_min_ms = 10\nduration_max_ms = 5\n");
    assert!(
        error.contains("faults.duration_min_ms = 10: expected at most faults.duration_max_ms"),
        "{error}"
    );
    let error = error_of("[workload.mix]\nput = 0\nget = 0\nget_prefix = 0\nget_historic = 0\nget_serializable = 0\ndelete = 0\ntxn_create = 0\ntxn_cas = 0\ntxn_multi = 0\nlease_grant = 0\nlease_put = 0\nlease_keepalive = 0\nlease_revoke = 0\nlease_ttl = 0\ncompact = 0\n");
    assert!(
        error.contains("workload.mix = all 0: expected at least one weight above 0"),
        "{error}"
    );
    let error = error_of("[faults]\npacket_loss_rate = 1.0\n");
    assert!(
        error.contains("faults.packet_loss_rate = 1: expected 0 <= rate < 1"),
        "{error}"
    );
}

#[test]
fn unknown_key_is_an_error_with_its_line() {
    let error = error_of("[cluster]\nnodes = 3\n\n[workload]\nclient = 4\n");
    assert!(
        error.starts_with("scenarios/x.toml:5: workload.client: unknown field `client`"),
        "{error}"
    );
    assert!(error.contains("clients"), "lists the known fields: {error}");
    let error = error_of("[clusters]\nnodes = 3\n");
    assert!(
        error.starts_with("scenarios/x.toml:1: unknown field `clusters`"),
        "{error}"
    );
}

#[test]
fn wrong_type_and_syntax_errors_keep_line_numbers() {
    let error = error_of("[workload]\nclients = 2\nduration_ms = \"long\"\n");
    assert!(
        error.starts_with("scenarios/x.toml:3: workload.duration_ms: invalid type"),
        "names the field: {error}"
    );
    let error = error_of("[workload]\nclients = = 2\n");
    assert!(error.starts_with("scenarios/x.toml:2: "), "{error}");
    let error = error_of("[faults]\n[[faults.timeline]]\nat_ms = 10\nkind = \"meteor\"\n");
    assert!(
        error.starts_with("scenarios/x.toml:4: faults.timeline[0].kind: unknown variant `meteor`"),
        "{error}"
    );
    assert!(
        error.contains("crash_leader"),
        "lists the known kinds: {error}"
    );
}

#[test]
fn timeline_entries_are_validated_against_the_cluster() {
    let source = "[cluster]\nnodes = 3\n\n[[faults.timeline]]\nat_ms = 10\nkind = \"pause\"\nnodes = [2]\n\n\
                  [[faults.timeline]]\nat_ms = 20\nkind = \"crash_one\"\nnodes = [4]\n";
    let error = error_of(source);
    assert_eq!(
        error,
        "scenarios/x.toml:12: faults.timeline[1].nodes = 4: expected node ids in 1..=3"
    );
    let error = error_of("[[faults.timeline]]\nat_ms = 10\nkind = \"crash_one\"\nrate = 0.5\n");
    assert!(
        error.contains("faults.timeline[0].rate = 0.5: only allowed with kind = \"packet_loss\""),
        "{error}"
    );
    let error = error_of(
        "[workload]\nduration_ms = 1000\n[[faults.timeline]]\nat_ms = 5000\nkind = \"heal_all\"\n",
    );
    assert!(
        error.contains("faults.timeline[0].at_ms = 5000: expected at most workload.duration_ms"),
        "{error}"
    );
    let error =
        error_of("[[faults.timeline]]\nat_ms = 10\nkind = \"crash_majority\"\nnodes = [1]\n");
    assert!(
        error.contains("expected a majority of the cluster"),
        "{error}"
    );
    let error = error_of("[[faults.timeline]]\nat_ms = 10\nkind = \"crash_all\"\nnodes = [1]\n");
    assert!(
        error.contains(
            "faults.timeline[0].nodes = [1]: expected none: the fault crashes every member"
        ),
        "{error}"
    );
    let error = error_of("[workload]\nbalancer = \"nearest\"\n");
    assert!(
        error.contains("round_robin") && error.contains("leader"),
        "an unknown balancer names the known ones: {error}"
    );
}

#[test]
fn bugs_are_checked_against_the_bug_list() {
    let scenario =
        Scenario::parse("b.toml", "[bugs]\nstale_read = true\nlost_fsync = false\n").unwrap();
    let bugs = scenario.bugs().unwrap();
    assert!(bugs.stale_read && !bugs.lost_fsync);
    let error = error_of("[bugs]\nlost_write = true\n");
    assert!(
        error.contains("scenarios/x.toml:2: bugs.lost_write = true: unknown bug; expected one of"),
        "{error}"
    );
    assert!(error.contains("stale_read"), "{error}");
}

#[test]
fn fault_kind_names_match_the_file_syntax() {
    for kind in FaultKind::ALL {
        let source = format!(
            "[[faults.timeline]]\nat_ms = 1\nkind = \"{}\"\n",
            kind.name()
        );
        let scenario = Scenario::parse("k.toml", &source).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(scenario.faults.timeline[0].kind, kind);
    }
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let error = Scenario::load(Path::new("/nonexistent/kvsim.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("/nonexistent/kvsim.toml: cannot read:"),
        "{error}"
    );
}

#[test]
fn the_smallest_skew_is_refused_not_overflowed() {
    let error = error_of(
        "[[faults.timeline]]\nat_ms = 10\nkind = \"clock_skew\"\nskew_ms = -9223372036854775808\n",
    );
    assert!(
        error.contains(
            "faults.timeline[0].skew_ms = -9223372036854775808: expected -3600000..=3600000"
        ),
        "{error}"
    );
}

#[test]
fn invalid_utf8_names_its_line() {
    let path = std::env::temp_dir().join(format!("kvsim-utf8-{}.toml", std::process::id()));
    std::fs::write(&path, b"[workload]\nclients = 2\ndescription = \"\xff\"\n").unwrap();
    let error = Scenario::load(&path).unwrap_err().to_string();
    let _ = std::fs::remove_file(&path);
    assert!(error.contains(".toml:3: invalid UTF-8 at byte"), "{error}");
}

#[test]
fn a_second_timeline_entry_is_named_with_its_index() {
    let error = error_of(
        "[[faults.timeline]]\nat_ms = 10\nkind = \"pause\"\n[[faults.timeline]]\nat_ms = \"x\"\nkind = \"pause\"\n",
    );
    assert!(
        error.starts_with("scenarios/x.toml:5: faults.timeline[1].at_ms: invalid type"),
        "{error}"
    );
}
