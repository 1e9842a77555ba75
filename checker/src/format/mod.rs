//! History files: kvsim's own JSON Lines format (`jsonl`, documented in docs/history-format.md)
//! and importers for the Jepsen etcd register logs and porcupine's kv logs.
//!
//! Every parser returns a [`FormatError`] naming the file, the line, what was expected and what
//! was found; none panics on any input (a seeded fuzz test throws random and mutated bytes at all
//! of them).

mod edn;
pub mod jepsen;
pub mod jsonl;
pub mod porcupine_kv;

use std::collections::BTreeMap;
use std::fmt;

/// The model names a history header may carry.
pub const KNOWN_MODELS: [&str; 3] = ["mvcc", "cas-register", "kv"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub file: String,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: usize,
    pub expected: String,
    pub found: String,
}

impl FormatError {
    pub(crate) fn new(
        file: &str,
        line: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_string(),
            line,
            expected: expected.into(),
            found: found.into(),
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: expected {}, found {}",
            self.file, self.line, self.expected, self.found
        )
    }
}

impl std::error::Error for FormatError {}

/// How a reader treats input it can parse but does not know: an unknown record type or field,
/// a completion that does not match its invoke, a duplicate key. Strict (the default) refuses it
/// with file and line: a misspelt `"type":"OK"` silently kept would turn an answered operation
/// into an unknown-outcome one and hide a violation. Lenient drops it and counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strictness {
    #[default]
    Strict,
    Lenient,
}

/// What a lenient read dropped, counted by what it was (`unknown record type "OK"`, ...), with
/// the first place each kind was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub counts: BTreeMap<String, (usize, FormatError)>,
}

impl Dropped {
    /// Under [`Strictness::Strict`] the error; under lenient, counts it under `what`.
    pub(crate) fn note(
        &mut self,
        strictness: Strictness,
        what: impl Into<String>,
        error: FormatError,
    ) -> Result<(), FormatError> {
        match strictness {
            Strictness::Strict => Err(error),
            Strictness::Lenient => {
                self.counts.entry(what.into()).or_insert((0, error)).0 += 1;
                Ok(())
            }
        }
    }

    pub fn total(&self) -> usize {
        self.counts.values().map(|(count, _)| count).sum()
    }

    /// One line per kind: `3 × unknown record type "OK" (first: file:4)`.
    pub fn summary(&self) -> Vec<String> {
        self.counts
            .iter()
            .map(|(what, (count, first))| {
                format!("{count} × {what} (first: {}:{})", first.file, first.line)
            })
            .collect()
    }
}

/// Quotes a piece of input for an error message, cut to a readable length.
pub(crate) fn quote(text: &str) -> String {
    const SHOWN_CHARS_MAX: usize = 60;
    if text.chars().count() <= SHOWN_CHARS_MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(SHOWN_CHARS_MAX).collect();
        format!("{cut:?}...")
    }
}

/// The input as UTF-8 text, or an error naming the line of the first invalid byte.
pub fn text_of<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, FormatError> {
    std::str::from_utf8(bytes).map_err(|error| {
        let valid = &bytes[..error.valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        FormatError::new(
            file,
            line,
            "UTF-8 text",
            format!("invalid byte at offset {}", error.valid_up_to()),
        )
    })
}

/// The history formats kvsim reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// kvsim's JSON Lines histories (any model; the header names it).
    Jsonl,
    /// Jepsen etcd register logs (`INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]`): cas-register.
    Jepsen,
    /// porcupine's kv logs (`{:process 0, :type :invoke, :f :get, :key "7", :value nil}`): kv.
    PorcupineKv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Jepsen => "jepsen",
            Format::PorcupineKv => "porcupine-kv",
        }
    }
}

/// Recognizes a history file from its first bytes; `path`'s extension decides only for an empty
/// file (`.log`: an empty Jepsen log, like porcupine's `etcd_095.log`; `.jsonl`).
pub fn detect_format(path: &str, first_bytes: &[u8]) -> Result<Format, FormatError> {
    let text = String::from_utf8_lossy(first_bytes);
    let first_line = text.lines().map(str::trim).find(|line| !line.is_empty());
    match first_line {
        Some(line) if line.starts_with('{') && line.contains("\"kvsim_history\"") => {
            Ok(Format::Jsonl)
        }
        Some(line) if line.starts_with("{:") => Ok(Format::PorcupineKv),
        Some(line) if line.starts_with("INFO") && line.contains("jepsen.util") => {
            Ok(Format::Jepsen)
        }
        Some(line) => Err(FormatError::new(
            path,
            1 + text
                .lines()
                .take_while(|candidate| candidate.trim().is_empty())
                .count(),
            "a kvsim JSONL header, a Jepsen log line or a porcupine kv EDN map",
            quote(line),
        )),
        None if path.ends_with(".log") => Ok(Format::Jepsen),
        None if path.ends_with(".jsonl") => Ok(Format::Jsonl),
        None => Err(FormatError::new(
            path,
            0,
            "a history (format unknown from an empty file)",
            "an empty file",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_and_refuses_to_guess() {
        let jsonl = br#"{"kvsim_history":1,"model":"mvcc","meta":{}}"#;
        assert_eq!(detect_format("h.jsonl", jsonl), Ok(Format::Jsonl));
        assert_eq!(
            detect_format("x", b"INFO  jepsen.util - 0\t:invoke\t:read\tnil\n"),
            Ok(Format::Jepsen)
        );
        assert_eq!(
            detect_format("x", b"\n{:process 0, :type :invoke}"),
            Ok(Format::PorcupineKv)
        );
        assert_eq!(detect_format("etcd_095.log", b""), Ok(Format::Jepsen));
        let error = detect_format("a.txt", b"\n\nhello").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(
            error
                .to_string()
                .starts_with("a.txt:3: expected a kvsim JSONL header"),
            "{error}"
        );
        assert!(detect_format("a.txt", b"  ").is_err());
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let error = text_of("f", b"ok\nbad \xff").unwrap_err();
        assert_eq!((error.line, error.expected.as_str()), (2, "UTF-8 text"));
        assert_eq!(text_of("f", b"fine"), Ok("fine"));
    }

    #[test]
    fn quotes_are_cut() {
        assert_eq!(quote("ab"), "\"ab\"");
        assert!(quote(&"x".repeat(200)).ends_with("..."));
    }
}
