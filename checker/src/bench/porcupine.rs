//! porcupine beside kvsim: builds our Go harness (`tools/porcupine-bench`) against a checkout
//! of porcupine's Go module and asks it to check Jepsen register logs, one at a time, so that a
//! benchmark can alternate the two tools file by file in one run.
//!
//! The build is offline: the harness is copied to a scratch directory whose `go.mod` gets
//! `replace github.com/anishathalye/porcupine => DIR` (the Go module proxy may be unreachable),
//! with `GOPROXY=off`. Anything missing (no `go`, no DIR, a failed build) is an error whose text
//! says why, which the benchmark prints as the reason porcupine is skipped.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// porcupine's verdict on one log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PorcupineVerdict {
    Linearizable,
    NotLinearizable,
    /// porcupine's own timeout ran out.
    Unknown,
}

/// A running harness process.
pub struct Porcupine {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Porcupine {
    /// Builds the harness in `harness` (our `tools/porcupine-bench`) against porcupine's
    /// module in `module_dir` and starts it.
    pub fn start(harness: &Path, module_dir: &Path) -> Result<Self, String> {
        if !module_dir.join("go.mod").is_file() {
            return Err(format!(
                "{} has no go.mod: not a checkout of porcupine's Go module",
                module_dir.display()
            ));
        }
        let module_dir = module_dir
            .canonicalize()
            .map_err(|e| format!("{}: {e}", module_dir.display()))?;
        let scratch = std::env::temp_dir().join(format!("kvsim-porcupine-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        for file in ["main.go", "go.mod"] {
            std::fs::copy(harness.join(file), scratch.join(file))
                .map_err(|e| format!("{}: {e}", harness.join(file).display()))?;
        }
        let replace = format!(
            "-replace=github.com/anishathalye/porcupine={}",
            module_dir.display()
        );
        go(&scratch, &["mod", "edit", &replace])?;
        let binary: PathBuf = scratch.join("porcupine-bench");
        go(&scratch, &["build", "-o", &binary.to_string_lossy(), "."])?;
        let mut child = Command::new(&binary)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let stdin = child.stdin.take().ok_or("harness has no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("harness has no stdout")?);
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// porcupine's verdict on the Jepsen log at `path` and its check time in seconds.
    pub fn check(
        &mut self,
        path: &Path,
        timeout: Duration,
    ) -> Result<(PorcupineVerdict, f64), String> {
        writeln!(self.stdin, "{}\t{}", path.display(), timeout.as_millis())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("porcupine harness: {e}"))?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| format!("porcupine harness: {e}"))?;
        let fields: Vec<&str> = line.trim_end().split('\t').collect();
        let verdict = match fields.first().copied() {
            Some("ok") => PorcupineVerdict::Linearizable,
            Some("illegal") => PorcupineVerdict::NotLinearizable,
            Some("unknown") => PorcupineVerdict::Unknown,
            _ => return Err(format!("porcupine harness on {}: {line:?}", path.display())),
        };
        let seconds = fields
            .get(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("porcupine harness: no time in {line:?}"))?;
        Ok((verdict, seconds))
    }
}

impl Drop for Porcupine {
    fn drop(&mut self) {
        // Closing stdin ends the harness's loop; wait so that no zombie is left.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `go ARGS` in `dir`, offline.
fn go(dir: &Path, args: &[&str]) -> Result<(), String> {
    let output = Command::new("go")
        .args(args)
        .current_dir(dir)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOSUMDB", "off")
        .output()
        .map_err(|e| format!("cannot run `go` ({e}); install Go (apt-get install golang-go)"))?;
    if !output.status.success() {
        return Err(format!(
            "go {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}
