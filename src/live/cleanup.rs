//! `kvsim live --cleanup`: removes what a killed live run (SIGKILL, a crash, a power cut) left
//! behind, found by kvsim's own markers only, never by a broad name:
//! - etcd processes whose command line names a `kvsim-etcd-<pid>-<serial>` data directory;
//! - network namespaces `kvsim-<pid>-<serial>-n<id>`, bridges `kvb<pid>x<serial>` and the
//!   root FORWARD rule on such a bridge (netns.rs);
//! - data directories `$TMPDIR/kvsim-etcd-<pid>-<serial>` (etcd_process.rs).
//!
//! Only leftovers of a kvsim process that is no longer running are touched: a live run going on
//! beside the cleanup keeps its members.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one cleanup removed, one line each.
pub fn clean_up() -> Vec<String> {
    let mut removed = Vec::new();
    for (pid, cmdline) in processes() {
        if let Some(owner) = owner_in(&cmdline, "kvsim-etcd-") {
            if !alive(owner) {
                // SIGKILL: the process is an orphan member; its data goes below.
                let killed = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                if killed.is_ok_and(|status| status.success()) {
                    removed.push(format!("etcd process {pid} (of kvsim {owner})"));
                }
            }
        }
    }
    let ip = "ip";
    for namespace in lines_of(ip, &["netns", "list"]) {
        let name = namespace
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        if let Some(owner) = owner_in(&name, "kvsim-").filter(|_| name.starts_with("kvsim-")) {
            if !alive(owner) && run(ip, &["netns", "delete", &name]) {
                removed.push(format!("network namespace {name}"));
            }
        }
    }
    for rule in lines_of("iptables", &["-S", "FORWARD"]) {
        let Some(bridge) = rule
            .split_whitespace()
            .skip_while(|word| *word != "-i")
            .nth(1)
            .filter(|bridge| bridge_owner(bridge).is_some_and(|owner| !alive(owner)))
        else {
            continue;
        };
        let deletion = rule.replacen("-A", "-D", 1);
        let args: Vec<&str> = deletion.split_whitespace().collect();
        if run("iptables", &args) {
            removed.push(format!("iptables FORWARD rule on {bridge}"));
        }
    }
    for link in lines_of(ip, &["-o", "link", "show", "type", "bridge"]) {
        // `7: kvb123x0: <BROADCAST,...`
        let Some(name) = link.split(": ").nth(1) else {
            continue;
        };
        if bridge_owner(name).is_some_and(|owner| !alive(owner))
            && run(ip, &["link", "delete", name])
        {
            removed.push(format!("bridge {name}"));
        }
    }
    for dir in data_dirs(&std::env::temp_dir()) {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let owner = name.as_deref().and_then(|n| owner_in(n, "kvsim-etcd-"));
        if owner.is_some_and(|owner| !alive(owner)) && std::fs::remove_dir_all(&dir).is_ok() {
            removed.push(format!("data directory {}", dir.display()));
        }
    }
    removed
}

/// The kvsim pid in a marker: the digits after `marker` up to the next `-`
/// (`kvsim-etcd-4242-0` → 4242).
fn owner_in(text: &str, marker: &str) -> Option<u32> {
    let start = text.find(marker)? + marker.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let rest = &text[start + digits.len()..];
    (rest.starts_with('-') && !digits.is_empty())
        .then(|| digits.parse().ok())
        .flatten()
}

/// `kvb<pid>x<serial>` → pid.
fn bridge_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("kvb")?;
    let (pid, serial) = rest.split_once('x')?;
    (!serial.is_empty() && serial.chars().all(|c| c.is_ascii_digit()))
        .then(|| pid.parse().ok())
        .flatten()
}

fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Every process with its command line (arguments joined by spaces).
fn processes() -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&raw).replace('\0', " ")))
        })
        .collect()
}

fn data_dirs(temp: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("kvsim-etcd-")
        })
        .map(|entry| entry.path())
        .collect()
}

fn lines_of(program: &str, args: &[&str]) -> Vec<String> {
    Command::new(program)
        .args(args)
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|output| output.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kvsim_markers_name_an_owner() {
        assert_eq!(
            owner_in("/tmp/kvsim-etcd-4242-0/n1", "kvsim-etcd-"),
            Some(4242)
        );
        assert_eq!(owner_in("kvsim-17-3-n2", "kvsim-"), Some(17));
        assert_eq!(owner_in("kvsim-etcd", "kvsim-etcd-"), None);
        assert_eq!(owner_in("my-kvsim-app", "kvsim-"), None);
        assert_eq!(bridge_owner("kvb4242x0"), Some(4242));
        assert_eq!(bridge_owner("kvbridge"), None);
        assert_eq!(bridge_owner("docker0"), None);
    }
}
