//! Finding and reading the history files `kvsim check` is given: only regular files, each read
//! with a size limit, directories walked once each even through symlink cycles.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Reads `path`, refusing anything that is not a regular file (a FIFO would block forever, a
/// device like `/dev/zero` never ends) and any file over `size_max` bytes.
pub fn read_limited(path: &Path, size_max: u64) -> Result<Vec<u8>> {
    let name = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("{name}: cannot read"))?;
    if !meta.is_file() {
        bail!(
            "{name}: not a regular file ({}): expected a history file",
            kind_of(&meta.file_type())
        );
    }
    if meta.len() > size_max {
        bail!(
            "{name}: {} bytes, more than --file-size-max {size_max} bytes",
            meta.len()
        );
    }
    let file = std::fs::File::open(path).with_context(|| format!("{name}: cannot read"))?;
    // The file may grow between stat and read: the limit holds for what is read, too.
    let mut bytes = Vec::new();
    file.take(size_max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{name}: cannot read"))?;
    if bytes.len() as u64 > size_max {
        bail!("{name}: more than --file-size-max {size_max} bytes (it grew while read)");
    }
    Ok(bytes)
}

fn kind_of(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }
}

/// Files named on the command line, plus every history file below named directories (sorted, so
/// output order is stable). Hidden files and known non-history files (EXPECTED.tsv, README,
/// LICENSE) are skipped inside directories, as are non-regular files (FIFOs, sockets: noted on
/// stderr); a file named explicitly is always checked (and refused there if not regular). A
/// directory reached twice (a symlink cycle, or two links to one directory) is walked once.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut walked = BTreeSet::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{}: no such file or directory", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut files, &mut walked)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, walked: &mut BTreeSet<PathBuf>) -> Result<()> {
    let real = dir
        .canonicalize()
        .with_context(|| format!("{}: cannot resolve", dir.display()))?;
    if !walked.insert(real.clone()) {
        eprintln!(
            "kvsim: {}: directory {} already walked (a symlink cycle or a second link): not \
             followed again",
            dir.display(),
            real.display()
        );
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list directory", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("{}: cannot list directory", dir.display()))?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        // A dangling symlink has no metadata: skipped like any non-history entry.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, files, walked)?;
        } else if is_history_name(name) {
            if meta.is_file() {
                files.push(path);
            } else {
                eprintln!(
                    "kvsim: {}: {}, not read",
                    path.display(),
                    kind_of(&meta.file_type())
                );
            }
        }
    }
    Ok(())
}

fn is_history_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jsonl", ".log", ".txt", ".edn"]
        .iter()
        .any(|ext| lower.ends_with(ext))
        && !lower.starts_with("readme")
        && !lower.starts_with("license")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kvsim-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_symlink_cycle_is_walked_once() {
        let dir = scratch("cycle");
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/h.jsonl"), "").unwrap();
        std::os::unix::fs::symlink(&dir, dir.join("sub/loop")).unwrap();
        let files = collect(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(files, vec![dir.join("sub/h.jsonl")]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fifos_and_oversized_files_are_refused() {
        let dir = scratch("fifo");
        let fifo = dir.join("f.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(
            collect(std::slice::from_ref(&dir)).unwrap(),
            Vec::<PathBuf>::new()
        );
        let error = read_limited(&fifo, 1 << 20).unwrap_err().to_string();
        assert!(error.contains("a FIFO"), "{error}");
        let big = dir.join("big.jsonl");
        std::fs::write(&big, vec![b'x'; 100]).unwrap();
        assert!(read_limited(&big, 99)
            .unwrap_err()
            .to_string()
            .contains("--file-size-max"));
        assert_eq!(read_limited(&big, 100).unwrap().len(), 100);
        let error = read_limited(Path::new("/dev/zero"), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(error.contains("character device"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
