//! A private network for spawned etcd members, so live mode can partition them: each member in
//! its own network namespace with one address on a bridge in the root namespace, where kvsim's
//! clients run. A partition is a set of iptables DROP rules inside the members' namespaces, so
//! the client host keeps reaching every member and no rule touches the machine's own tables
//! (except one FORWARD accept for the bridge, for hosts whose FORWARD policy drops bridged
//! frames, as Docker's does when `br_netfilter` is loaded).
//!
//! Needs root, iproute2's `ip` and `iptables`. Everything created is named after the cluster
//! (`kvsim-<pid>-<serial>-n<id>` namespaces, `kvb<pid>x<serial>` bridge; interface names are at
//! most 15 characters) and removed on drop, also after a failed setup.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context, Result};

pub struct Network {
    /// Absolute paths of the tools (root's PATH may lack /usr/sbin).
    ip: String,
    iptables: String,
    bridge: String,
    /// `10.a.b.0/24`: members are `.1`..`.N`, the client host (the bridge) `.254`.
    subnet: [u8; 2],
    namespaces: Vec<String>,
    forward_rule: bool,
}

impl Network {
    /// Creates the bridge and one namespace per member `1..=n`. The error says what is missing
    /// (not root, no `ip`, no `iptables`, or the command that failed).
    pub fn create(n: usize, pid: u32, serial: u64) -> Result<Network> {
        if !is_root() {
            bail!("network namespaces need root (running as an unprivileged user)");
        }
        let [ip, iptables] = ["ip", "iptables"].map(which);
        let (Some(ip), Some(iptables)) = (ip, iptables) else {
            bail!("`ip` or `iptables` is not installed (Debian: iproute2, iptables)");
        };
        let mut network = Network {
            ip,
            iptables,
            bridge: format!("kvb{pid}x{serial}"),
            subnet: free_subnet(pid, serial)?,
            namespaces: Vec::new(),
            forward_rule: false,
        };
        // From here on, drop removes whatever was created.
        let bridge = network.bridge.clone();
        let (ip, iptables) = (network.ip.clone(), network.iptables.clone());
        let (ip, iptables) = (ip.as_str(), iptables.as_str());
        run(ip, &["link", "add", &bridge, "type", "bridge"])?;
        run(
            ip,
            &[
                "addr",
                "add",
                &format!("{}/24", network.host_ip()),
                "dev",
                &bridge,
            ],
        )?;
        run(ip, &["link", "set", &bridge, "up"])?;
        if run(
            iptables,
            &[
                "-I", "FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT",
            ],
        )
        .is_ok()
        {
            network.forward_rule = true;
        }
        for id in 1..=n as u64 {
            let namespace = format!("kvsim-{pid}-{serial}-n{id}");
            run(ip, &["netns", "add", &namespace])?;
            network.namespaces.push(namespace.clone());
            let host_end = format!("kv{pid}x{serial}h{id}");
            let member_end = format!("kv{pid}x{serial}m{id}");
            run(
                ip,
                &[
                    "link",
                    "add",
                    &host_end,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &member_end,
                ],
            )?;
            run(ip, &["link", "set", &host_end, "master", &bridge])?;
            run(ip, &["link", "set", &host_end, "up"])?;
            run(ip, &["link", "set", &member_end, "netns", &namespace])?;
            run(ip, &["-n", &namespace, "link", "set", "lo", "up"])?;
            let address = format!("{}/24", network.member_ip(id));
            run(
                ip,
                &[
                    "-n",
                    &namespace,
                    "addr",
                    "add",
                    &address,
                    "dev",
                    &member_end,
                ],
            )?;
            run(ip, &["-n", &namespace, "link", "set", &member_end, "up"])?;
            // Fails here rather than at the first partition if iptables cannot work in a netns.
            run(ip, &["netns", "exec", &namespace, iptables, "-F"])?;
        }
        Ok(network)
    }

    /// The `ip` binary, for `ip netns exec`.
    pub fn ip_bin(&self) -> &str {
        &self.ip
    }

    /// Member `id`'s address (1-based).
    pub fn member_ip(&self, id: u64) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet[0], self.subnet[1], id as u8)
    }

    fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet[0], self.subnet[1], 254)
    }

    /// Member `id`'s namespace, for `ip netns exec`.
    pub fn namespace(&self, id: u64) -> Result<&str> {
        self.namespaces
            .get(id as usize - 1)
            .map(String::as_str)
            .with_context(|| format!("no namespace for member n{id}"))
    }

    /// Drops every packet from `a` to `b` for each `(a, b)` in `links`, in addition to earlier
    /// cuts. The rule sits in the receiver's INPUT chain, so `a` still sends and only `b` stops
    /// hearing it; over TCP that also starves `b`'s own connections to `a` of acknowledgements,
    /// as in Jepsen's one-way partitions.
    pub fn cut(&self, links: &[(u64, u64)]) -> Result<()> {
        for &(from, to) in links {
            let namespace = self.namespace(to)?;
            let ip = self.member_ip(from).to_string();
            run(
                &self.ip,
                &[
                    "netns",
                    "exec",
                    namespace,
                    &self.iptables,
                    "-A",
                    "INPUT",
                    "-s",
                    &ip,
                    "-j",
                    "DROP",
                ],
            )?;
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<()> {
        for namespace in &self.namespaces {
            run(
                &self.ip,
                &["netns", "exec", namespace, &self.iptables, "-F"],
            )?;
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Best effort: deleting a namespace also destroys its veth pair.
        for namespace in &self.namespaces {
            run(&self.ip, &["netns", "delete", namespace]).ok();
        }
        if self.forward_rule {
            run(
                &self.iptables,
                &[
                    "-D",
                    "FORWARD",
                    "-i",
                    &self.bridge,
                    "-o",
                    &self.bridge,
                    "-j",
                    "ACCEPT",
                ],
            )
            .ok();
        }
        run(&self.ip, &["link", "delete", &self.bridge]).ok();
    }
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The absolute path of `tool` on PATH or in the sbin directories.
fn which(tool: &str) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(std::path::PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .map(|found| found.display().to_string())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A `10.a.b.0/24` no interface of this machine uses, derived from the pid and serial so
/// concurrent clusters start apart.
fn free_subnet(pid: u32, serial: u64) -> Result<[u8; 2]> {
    let used = Command::new(which("ip").unwrap_or_else(|| "ip".to_string()))
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let start = (pid as u64).wrapping_mul(31).wrapping_add(serial * 7);
    for step in 0..10_000u64 {
        let slot = (start + step) % (100 * 256);
        let subnet = [100 + (slot / 256) as u8, (slot % 256) as u8];
        if !used.contains(&format!(" 10.{}.{}.", subnet[0], subnet[1])) {
            return Ok(subnet);
        }
    }
    bail!("no free 10.x.y.0/24 subnet for the member network")
}
