//! What this host can inject, probed rather than assumed: a fault kind is offered only when the
//! tool and kernel support it is there, and the reason printed when it is not says what the
//! probe found (issue 13: "this machine does not have tc netem" was a hard-coded string).

use std::path::Path;
use std::process::{Command, Stdio};

/// The probe's findings, one `Result` per capability: `Err` says why it is missing.
#[derive(Clone, Debug)]
pub struct HostSupport {
    /// `tc` with the `netem` qdisc: packet loss and latency.
    pub netem: Result<(), String>,
    /// Time namespaces (Linux ≥ 5.6, `unshare --time`): per-member clocks for clock skew.
    pub clock_namespaces: Result<(), String>,
    /// `iptables` for partitions (also needs root and network namespaces, `netns.rs`).
    pub iptables: Result<(), String>,
}

/// Probes the host (cheap: a few `stat`s and `--version`-like runs).
pub fn probe() -> HostSupport {
    HostSupport {
        netem: probe_netem(),
        clock_namespaces: probe_clock_namespaces(),
        iptables: probe_tool("iptables", &["--version"]),
    }
}

fn probe_tool(program: &str, args: &[&str]) -> Result<(), String> {
    let ran = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match ran {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{program} {}` failed ({status})", args.join(" "))),
        Err(error) => Err(format!("`{program}` is not installed ({error})")),
    }
}

/// netem needs `tc` and the `sch_netem` kernel module (loaded, built in, or loadable).
fn probe_netem() -> Result<(), String> {
    probe_tool("tc", &["-V"])?;
    if Path::new("/sys/module/sch_netem").exists() {
        return Ok(());
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_string())
        .unwrap_or_default();
    let module_dir = Path::new("/lib/modules").join(&release);
    let built_in = std::fs::read_to_string(module_dir.join("modules.builtin"))
        .is_ok_and(|text| text.contains("sch_netem"));
    let loadable = std::fs::read_to_string(module_dir.join("modules.dep"))
        .is_ok_and(|text| text.contains("sch_netem"));
    if built_in || loadable {
        Ok(())
    } else {
        Err(format!(
            "the kernel ({release}) has no sch_netem module (not loaded, built in or in \
             /lib/modules/{release})"
        ))
    }
}

fn probe_clock_namespaces() -> Result<(), String> {
    if Path::new("/proc/self/ns/time").exists() {
        Ok(())
    } else {
        Err("the kernel has no time namespaces (/proc/self/ns/time is absent)".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named_in_the_reason() {
        let missing = probe_tool("kvsim-no-such-tool", &["--version"]);
        assert!(missing.unwrap_err().contains("kvsim-no-such-tool"));
    }
}
