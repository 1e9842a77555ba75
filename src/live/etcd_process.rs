//! Real etcd members as child processes: start an N-member cluster with its own ports and data
//! directories, wait until it is healthy, kill / restart / pause / resume members, and clean
//! everything up on drop (also when the caller errors out or panics).
//!
//! Members are named `n1`..`nN` like the simulated nodes, so histories name them alike. On
//! loopback ([`EtcdCluster::spawn`]) member `id` (1-based) listens for clients on
//! `base + 2 (id - 1)` and for peers on the next port. Isolated ([`EtcdCluster::spawn_isolated`])
//! each member runs in its own network namespace at its own address (ports 2379 / 2380), so the
//! cluster can be partitioned (`live/netns.rs`). `--pre-vote` is on (etcd's recommended setting;
//! without it a rejoining member disrupts the leader with a higher term).

use super::netns::Network;
use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a fresh cluster may take to elect a leader and answer on every member (`docs/facts.md`:
/// 1.5–2.5 s here; generous for a loaded CI machine).
const HEALTHY_WAIT_MS: u64 = 30_000;
/// Port bases tried when the caller does not pick one: each gets `PORTS_PER_CLUSTER` ports.
const PORT_BASE_MIN: u16 = 20_000;
const PORT_BASE_SLOTS: u32 = 2_000;
const PORTS_PER_CLUSTER: u16 = 16;
/// Spawn attempts on fresh ports when a member dies at start (a port taken in between).
const SPAWN_ATTEMPTS_MAX: u32 = 4;

/// Distinguishes the clusters one process starts (data directories, cluster tokens).
static CLUSTERS_STARTED: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
struct Member {
    id: u64,
    /// The address it listens on: 127.0.0.1, or its own in an isolated cluster.
    host: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

/// A running etcd cluster of child processes. Dropping it kills every member and removes the
/// data directories (and the member network of an isolated cluster).
pub struct EtcdCluster {
    etcd_bin: PathBuf,
    root: PathBuf,
    token: String,
    members: Vec<Member>,
    /// Dropped after the members are killed (fields drop after `Drop::drop`).
    network: Option<Network>,
}

impl EtcdCluster {
    /// Starts `n` members (1..=7) of `etcd_bin` and waits until every member answers with a
    /// leader. `base_port` `None` derives a base from the process id and skips ports in use, so
    /// concurrent test processes do not collide.
    pub async fn spawn(n: usize, etcd_bin: &Path, base_port: Option<u16>) -> Result<EtcdCluster> {
        if !(1..=7).contains(&n) {
            bail!("--spawn {n}: expected 1 to 7 members");
        }
        if !etcd_bin.is_file() {
            bail!(
                "etcd binary {} not found (install Debian's etcd-server or pass --etcd-bin)",
                etcd_bin.display()
            );
        }
        let mut last_error = None;
        for attempt in 0..SPAWN_ATTEMPTS_MAX {
            let base = match base_port {
                Some(base) => base,
                None => free_port_base(n, attempt)?,
            };
            let mut cluster = EtcdCluster::start_processes(n, etcd_bin, Some(base))?;
            match cluster.wait_healthy().await {
                Ok(()) => return Ok(cluster),
                // A member that exited at once most likely lost a port race: retry elsewhere.
                Err(error) if base_port.is_none() && cluster.any_exited() => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("etcd did not start")))
    }

    /// Starts `n` members (1..=7), each in its own network namespace on a private bridge, and
    /// waits until every member answers with a leader. Errors say why isolation is impossible
    /// here (not root, no `ip` / `iptables`, namespace setup refused); nothing is left behind.
    pub async fn spawn_isolated(n: usize, etcd_bin: &Path) -> Result<EtcdCluster> {
        if !(1..=7).contains(&n) {
            bail!("--spawn {n}: expected 1 to 7 members");
        }
        if !etcd_bin.is_file() {
            bail!(
                "etcd binary {} not found (install Debian's etcd-server or pass --etcd-bin)",
                etcd_bin.display()
            );
        }
        let mut cluster = EtcdCluster::start_processes(n, etcd_bin, None)?;
        cluster.wait_healthy().await?;
        Ok(cluster)
    }

    /// `base`: loopback ports from `base`; `None`: an isolated cluster.
    fn start_processes(n: usize, etcd_bin: &Path, base: Option<u16>) -> Result<EtcdCluster> {
        let serial = CLUSTERS_STARTED.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let network = match base {
            Some(_) => None,
            None => Some(Network::create(n, pid, serial)?),
        };
        let root = std::env::temp_dir().join(format!("kvsim-etcd-{pid}-{serial}"));
        if root.exists() {
            fs::remove_dir_all(&root)
                .with_context(|| format!("removing stale {}", root.display()))?;
        }
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let members = (1..=n as u64)
            .map(|id| {
                let (host, client_port, peer_port) = match (&network, base) {
                    (Some(network), _) => (network.member_ip(id).to_string(), 2379, 2380),
                    (None, base) => {
                        let port = base.unwrap_or(PORT_BASE_MIN) + 2 * (id as u16 - 1);
                        ("127.0.0.1".to_string(), port, port + 1)
                    }
                };
                Member {
                    id,
                    host,
                    client_port,
                    peer_port,
                    data_dir: root.join(format!("n{id}.etcd")),
                    log_path: root.join(format!("n{id}.log")),
                    child: None,
                }
            })
            .collect();
        let mut cluster = EtcdCluster {
            etcd_bin: etcd_bin.to_path_buf(),
            root,
            token: format!("kvsim-{pid}-{serial}"),
            members,
            network,
        };
        for id in 1..=n as u64 {
            cluster.start_member(id, "new")?;
        }
        Ok(cluster)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("n{}=http://{}:{}", m.id, m.host, m.peer_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn start_member(&mut self, id: u64, state: &str) -> Result<()> {
        let initial_cluster = self.initial_cluster();
        let (etcd_bin, token) = (self.etcd_bin.clone(), self.token.clone());
        let member = self.member(id)?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(&member.log_path)
            .with_context(|| format!("opening {}", member.log_path.display()))?;
        let client_url = format!("http://{}:{}", member.host, member.client_port);
        let peer_url = format!("http://{}:{}", member.host, member.peer_port);
        let mut command = match &self.network {
            // `ip netns exec` execs etcd in place: the child's pid is etcd's, so signals reach it.
            Some(network) => {
                let mut command = Command::new(network.ip_bin());
                command
                    .args(["netns", "exec", network.namespace(id)?])
                    .arg(&etcd_bin);
                command
            }
            None => Command::new(&etcd_bin),
        };
        let member = self.member_mut(id)?;
        let child = command
            .arg("--name")
            .arg(format!("n{id}"))
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &token])
            .arg("--pre-vote")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", etcd_bin.display()))?;
        member.child = Some(child);
        Ok(())
    }

    /// Waits until every running member reports a leader and serves a linearizable read.
    pub async fn wait_healthy(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_millis(HEALTHY_WAIT_MS);
        let running: Vec<u64> = self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| m.id)
            .collect();
        for id in running {
            loop {
                if let Some(status) = self.exited(id) {
                    bail!(
                        "etcd member n{id} exited at start ({status}); its log {}:\n{}",
                        self.member(id)?.log_path.display(),
                        self.log_tail(id)
                    );
                }
                if member_is_healthy(&self.endpoint(id)?).await {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "etcd member n{id} not healthy after {HEALTHY_WAIT_MS} ms; its log:\n{}",
                        self.log_tail(id)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// The client URL of member `id` (1-based).
    pub fn endpoint(&self, id: u64) -> Result<String> {
        let member = self.member(id)?;
        Ok(format!("http://{}:{}", member.host, member.client_port))
    }

    /// SIGKILL: the member dies at once, losing nothing it acknowledged (etcd fsyncs before it
    /// answers). Its data directory stays for [`EtcdCluster::restart`].
    pub fn kill(&mut self, id: u64) -> Result<()> {
        let member = self.member_mut(id)?;
        let Some(mut child) = member.child.take() else {
            bail!("member n{id} is not running");
        };
        child
            .kill()
            .with_context(|| format!("killing member n{id}"))?;
        child
            .wait()
            .with_context(|| format!("reaping member n{id}"))?;
        Ok(())
    }

    /// Starts a killed member again on its data directory (`--initial-cluster-state existing`);
    /// does not wait for it to rejoin.
    pub fn restart(&mut self, id: u64) -> Result<()> {
        if self.is_running(id) {
            bail!("member n{id} is already running");
        }
        self.start_member(id, "existing")
    }

    /// SIGSTOP: the process freezes (a GC pause, a stalled VM) with its connections open.
    pub fn pause(&mut self, id: u64) -> Result<()> {
        self.signal(id, "-STOP")
    }

    /// SIGCONT after [`EtcdCluster::pause`].
    pub fn resume(&mut self, id: u64) -> Result<()> {
        self.signal(id, "-CONT")
    }

    fn signal(&mut self, id: u64, signal: &str) -> Result<()> {
        if !self.is_running(id) {
            bail!("member n{id} is not running");
        }
        let pid = self
            .member(id)?
            .child
            .as_ref()
            .map(Child::id)
            .with_context(|| format!("member n{id} has no process"))?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .with_context(|| format!("running kill {signal} {pid}"))?;
        if !status.success() {
            bail!("kill {signal} {pid} (member n{id}) failed: {status}");
        }
        Ok(())
    }

    /// Whether member `id`'s process is alive (a paused one is).
    pub fn is_running(&mut self, id: u64) -> bool {
        self.exited(id).is_none() && self.member(id).is_ok_and(|m| m.child.is_some())
    }

    /// Drops every packet from `a` to `b` for each `(a, b)` in `links` (one-way cuts, added to
    /// earlier ones).
    pub fn cut_links(&mut self, links: &[(u64, u64)]) -> Result<()> {
        match &self.network {
            Some(network) => network.cut(links),
            None => bail!("the members run on loopback: start them isolated to partition them"),
        }
    }

    /// Removes every partition.
    pub fn heal_network(&mut self) -> Result<()> {
        match &self.network {
            Some(network) => network.heal(),
            None => Ok(()),
        }
    }

    /// Kills every member and removes the member network (namespaces, bridge, rules), after
    /// copying every member's log (stdout and stderr of each of its runs, restarts included) to
    /// `dir/n<id>.log`: what a user reads to see what etcd did, e.g. a resumed leader revoking
    /// leases. The data directories stay until [`Self::keep_data`] or [`Self::shutdown`]: only
    /// the verdict, which comes later, says whether they are worth keeping. Returns the copies
    /// made; a log that cannot be copied is an error after the members are stopped, which
    /// happens regardless.
    pub fn stop_keeping_logs(&mut self, dir: &Path) -> Result<Vec<PathBuf>> {
        self.kill_members();
        let copied = fs::create_dir_all(dir)
            .with_context(|| format!("creating {}", dir.display()))
            .and_then(|()| {
                self.members
                    .iter()
                    .filter(|member| member.log_path.is_file())
                    .map(|member| {
                        let copy = dir.join(format!("n{}.log", member.id));
                        fs::copy(&member.log_path, &copy)
                            .with_context(|| format!("copying {}", member.log_path.display()))?;
                        Ok(copy)
                    })
                    .collect::<Result<Vec<_>>>()
            });
        // Dropping the network deletes the namespaces, the veths and the bridge.
        self.network = None;
        copied
    }

    /// Moves every stopped member's data directory (its WAL and snapshots: what a violation's
    /// investigator replays with `etcdutl` or a patched etcd) to `dir/n<id>.etcd`, then
    /// [`Self::shutdown`]s. Returns the directories kept. The members must be stopped
    /// ([`Self::stop_keeping_logs`]): a running member's files change under the copy.
    pub fn keep_data(&mut self, dir: &Path) -> Result<Vec<PathBuf>> {
        assert!(
            self.members.iter().all(|member| member.child.is_none()),
            "keep_data needs stopped members"
        );
        let kept = fs::create_dir_all(dir)
            .with_context(|| format!("creating {}", dir.display()))
            .and_then(|()| {
                self.members
                    .iter()
                    .filter(|member| member.data_dir.is_dir())
                    .map(|member| {
                        let to = dir.join(format!("n{}.etcd", member.id));
                        move_dir(&member.data_dir, &to)?;
                        Ok(to)
                    })
                    .collect::<Result<Vec<_>>>()
            });
        self.shutdown();
        kept
    }

    fn kill_members(&mut self) {
        for member in self.members.iter_mut().rev() {
            if let Some(mut child) = member.child.take() {
                // SIGKILL also ends a stopped (paused) process.
                child.kill().ok();
                child.wait().ok();
            }
        }
    }

    /// Kills every member (followers first) and removes the data directories and the member
    /// network. Idempotent; also what dropping the cluster does.
    pub fn shutdown(&mut self) {
        self.kill_members();
        fs::remove_dir_all(&self.root).ok();
        // Dropping the network deletes the namespaces, the veths and the bridge.
        self.network = None;
    }

    /// Member ids, 1..=N.
    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// The last lines of member `id`'s log (stdout and stderr), for error messages.
    pub fn log_tail(&self, id: u64) -> String {
        let Ok(member) = self.member(id) else {
            return String::new();
        };
        let text = fs::read_to_string(&member.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn exited(&mut self, id: u64) -> Option<std::process::ExitStatus> {
        let member = self.member_mut(id).ok()?;
        let status = member.child.as_mut()?.try_wait().ok()??;
        member.child = None;
        Some(status)
    }

    fn any_exited(&mut self) -> bool {
        let ids = self.ids();
        ids.into_iter()
            .map(|id| self.exited(id).is_some())
            // Not `any`: every member must be polled, so each exited child is reaped.
            .fold(false, |any, exited| any | exited)
    }

    fn member(&self, id: u64) -> Result<&Member> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .with_context(|| format!("no member n{id} (cluster of {})", self.members.len()))
    }

    fn member_mut(&mut self, id: u64) -> Result<&mut Member> {
        let count = self.members.len();
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .with_context(|| format!("no member n{id} (cluster of {count})"))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        // Followers first, then the rest: stopping all at once makes members wait for each
        // other (`docs/facts.md`); SIGKILL makes the order matter little, but it costs nothing.
        self.shutdown();
    }
}

/// One member answers `status` with a leader and a linearizable read within a second.
async fn member_is_healthy(endpoint: &str) -> bool {
    let probe = async {
        let mut client = super::ops::connect(endpoint, Duration::from_secs(1))
            .await
            .ok()?;
        let status = client.status().await.ok()?;
        if status.leader() == 0 {
            return None;
        }
        client.get("kvsim-health", None).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Some(_))
    )
}

/// Renames `from` to `to`, or copies it file by file and removes it where a rename cannot (the
/// temporary directory is often another file system than the report's).
fn move_dir(from: &Path, to: &Path) -> Result<()> {
    if fs::rename(from, to).is_ok() {
        return Ok(());
    }
    copy_dir(from, to)?;
    fs::remove_dir_all(from).with_context(|| format!("removing {}", from.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// A port base whose `PORTS_PER_CLUSTER` ports are free now, derived from the process id so
/// concurrent processes start apart; `attempt` moves further along.
fn free_port_base(n: usize, attempt: u32) -> Result<u16> {
    debug_assert!(2 * n as u16 <= PORTS_PER_CLUSTER);
    let start = std::process::id()
        .wrapping_mul(7)
        .wrapping_add(attempt * 13);
    for step in 0..PORT_BASE_SLOTS {
        let slot = (start.wrapping_add(step)) % PORT_BASE_SLOTS;
        let base = PORT_BASE_MIN + (slot as u16) * PORTS_PER_CLUSTER;
        let all_free =
            (0..2 * n as u16).all(|offset| TcpListener::bind(("127.0.0.1", base + offset)).is_ok());
        if all_free {
            return Ok(base);
        }
    }
    bail!("no free range of {PORTS_PER_CLUSTER} loopback ports found from {PORT_BASE_MIN}")
}
