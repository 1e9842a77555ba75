//! Argument types and parsers every command shares, so one flag means one thing everywhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use kvsim_sim::bugs::Bug;
use kvsim_sim::scenario::Scenario;

/// The run a command starts from: a scenario, a seed and planted bugs. `run` and `shrink`
/// share it so the line one prints is the line the other takes.
#[derive(Args)]
pub struct SeedArgs {
    /// The scenario file (TOML; see scenarios/README.md).
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// The seed: everything random in the run is drawn from it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Switch on a planted bug in the simulated server (repeatable); adds to the scenario's [bugs].
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// The store under test (`raft-rs`, `openraft`); overrides the scenario's `target`.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    #[command(flatten)]
    pub invariants: InvariantArgs,
}

/// `--paranoid`, on every command that runs a simulation (run, fuzz, replay, shrink).
#[derive(Args, Clone, Copy)]
pub struct InvariantArgs {
    /// Also check the expensive invariants (O(n) scans of the store and the model on every
    /// step); slower, for hunting a store bug.
    #[arg(long)]
    pub paranoid: bool,
}

impl InvariantArgs {
    /// Switches the expensive invariants on for this process when `--paranoid` was given (the
    /// cheap ones are always on).
    pub fn apply(self) {
        if self.paranoid {
            kvsim_model::paranoid::enable();
        }
    }
}

/// `--json`, on every command that prints a result.
#[derive(Args, Clone, Copy)]
pub struct JsonArgs {
    /// Print the result as one JSON object on stdout when done: `command`, `status` where there
    /// is a verdict, `exit`, and what the command made (the verdict, the summary, the files
    /// written; docs/json-output.md lists the fields). The human lines go to stderr.
    #[arg(long)]
    pub json: bool,
}

impl JsonArgs {
    /// With `--json`, sends the human lines of [`crate::outln`] to stderr from now on.
    pub fn apply(self) {
        if self.json {
            crate::stdout::json_mode();
        }
    }
}

/// The linearizability check's budgets, the same on run, fuzz, replay, live and bugs.
#[derive(Args, Clone, Copy)]
pub struct CheckBudgetArgs {
    /// Time budget of each linearizability check (250ms, 90s, 5m; a bare number is seconds); a
    /// check not decided by then is `unknown`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub check_timeout: Duration,
    /// Memory budget of the linearizability search's memo (sizes like 512M, 2G); a search that
    /// would outgrow it ends `unknown` with the reason. Default: half the machine's memory
    /// divided by the checks run at once (--jobs), at most 3G.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub memory_max: Option<u64>,
}

impl CheckBudgetArgs {
    /// `--memory-max`, or the default share of one of `workers` concurrent checks.
    pub fn memory_max(self, workers: usize) -> u64 {
        self.memory_max
            .unwrap_or_else(|| crate::memory::default_memory_max(workers))
    }

    /// The search budget of one of `workers` concurrent checks.
    pub fn budget(self, workers: usize) -> kvsim_checker::Budget {
        crate::memory::budget(self.check_timeout, self.memory_max(workers))
    }
}

impl SeedArgs {
    /// The scenario file with the planted bugs switched on.
    pub fn load(&self) -> Result<Scenario> {
        load_scenario(&self.scenario, &self.bugs, self.target.as_deref())
    }

    /// The `kvsim run` line that reproduces this seed.
    pub fn reproduce_command(&self) -> String {
        reproduce_command(
            &self.scenario,
            self.seed,
            &self.bugs,
            self.target.as_deref(),
        )
    }
}

/// Loads `path`, switches on `bugs` in it and puts it on `target` (else the scenario's own);
/// errors name the file and what is wrong.
pub fn load_scenario(path: &Path, bugs: &[String], target: Option<&str>) -> Result<Scenario> {
    let scenario = Scenario::load(path).map_err(|error| anyhow::anyhow!("{error}"))?;
    with_flags(scenario, bugs, target)
}

/// `scenario` with the `--bug` and `--target` flags applied, checked again (the target must have
/// every feature and planted bug the scenario now asks for).
pub fn with_flags(
    mut scenario: Scenario,
    bugs: &[String],
    target: Option<&str>,
) -> Result<Scenario> {
    for bug in bugs {
        scenario
            .bugs
            .insert(parse_bug(bug)?.as_str().to_string(), true);
    }
    scenario
        .bugs()
        .map_err(|error| anyhow::anyhow!("--bug: {error}"))?;
    if let Some(target) = target {
        scenario.target = target.to_string();
    }
    scenario.validate().map_err(|invalid| {
        let flag = if invalid.field == "target" || invalid.field.starts_with("bugs.") {
            "--target/--bug: "
        } else {
            ""
        };
        anyhow::anyhow!(
            "{flag}{} = {}: {}",
            invalid.field,
            invalid.value,
            invalid.expected
        )
    })?;
    Ok(scenario)
}

/// A `--bug` value: a name of [`Bug::ALL`]. Names are snake_case like every name kvsim prints
/// (ARCHITECTURE.md, "Names"); the kebab-case spelling a flag-minded user may type
/// (`stale-read`) is accepted with a note on stderr.
pub fn parse_bug(name: &str) -> Result<Bug> {
    if let Ok(bug) = Bug::parse(name) {
        return Ok(bug);
    }
    let snake = name.replace('-', "_");
    match Bug::parse(&snake) {
        Ok(bug) => {
            eprintln!(
                "kvsim: note: --bug {name}: bug names are snake_case; read as {bug} (write it so, \
                 the kebab-case spelling may go)"
            );
            Ok(bug)
        }
        Err(unknown) => anyhow::bail!("--bug: {unknown}"),
    }
}

/// A `--property` value: a property name (`kvsim_checker::property::Property`), returned in its
/// snake_case spelling; the kebab-case rule names of earlier releases (`durability.lost-write`)
/// are read with a note on stderr.
pub fn parse_property(name: &str) -> Result<String, String> {
    use kvsim_checker::property::Property;
    let property = Property::parse(name)?;
    if Property::is_old_spelling(name) {
        eprintln!(
            "kvsim: note: --property {name}: property names are snake_case now; read as \
             {property}"
        );
    }
    Ok(property.to_string())
}

/// The scenario's short name: its file stem.
pub fn scenario_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string()
}

/// The one command line that reproduces `seed` of `scenario` with `bugs`.
pub fn reproduce_command(
    scenario: &Path,
    seed: u64,
    bugs: &[String],
    target: Option<&str>,
) -> String {
    let mut line = format!("kvsim run --scenario {} --seed {seed}", scenario.display());
    if let Some(target) = target {
        line.push_str(&format!(" --target {target}"));
    }
    for bug in bugs {
        line.push_str(&format!(" --bug {bug}"));
    }
    line
}

/// The largest duration any flag accepts: a week is longer than any campaign or check this
/// tool is meant for, and keeps `Instant + duration` far from overflow.
pub const DURATION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses every duration flag: `250ms`, `90s`, `5m`, `2h`, `1h30m` (components add up, each
/// may have a fraction: `1.5s`), or a bare number of seconds (`60`, `0.5`) as the float
/// `--timeout SECS` flags took before. Zero, `nan`, `inf`, negative numbers and anything over
/// [`DURATION_MAX`] are refused with the reason, never turned into a panic or a 1 ms budget.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let expected = || {
        format!(
            "expected a duration like 250ms, 90s, 5m or 1h30m (a bare number is seconds), got {text:?}"
        )
    };
    if trimmed.is_empty() {
        return Err(expected());
    }
    // Nanoseconds in f64: 53 bits hold a week in ns exactly enough (error < 1 µs).
    let mut total_ns = 0f64;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let value: f64 = match number.parse() {
            Ok(value) if number.bytes().any(|b| b.is_ascii_digit()) => value,
            _ => return Err(expected()),
        };
        let unit_ns = match unit {
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            // A bare number is seconds, but only alone: `1h30` is ambiguous.
            "" if number_len == trimmed.len() => 1e9,
            _ => return Err(expected()),
        };
        total_ns += value * unit_ns;
        rest = after;
    }
    assert!(
        total_ns.is_finite() && total_ns >= 0.0,
        "digits and dots only"
    );
    if total_ns < 1e6 {
        return Err(format!(
            "duration {text:?} is shorter than 1ms: expected a positive duration like 250ms or 90s"
        ));
    }
    if total_ns > DURATION_MAX.as_nanos() as f64 {
        return Err(format!(
            "duration {text:?} is longer than the maximum of 7 days (168h)"
        ));
    }
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

/// `5m`, `90s`, `250ms`, `1h30m`: a duration in the form the flags take.
pub fn humanize(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms % 1000 != 0 || ms == 0 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut text = String::new();
    if h > 0 {
        text.push_str(&format!("{h}h"));
    }
    if m > 0 {
        text.push_str(&format!("{m}m"));
    }
    if s > 0 {
        text.push_str(&format!("{s}s"));
    }
    text
}

/// Seeds `start..end` (end excluded), the one form every `--seeds` range takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    pub end: u64,
}

impl SeedRange {
    /// How many seeds the range holds; u64 because `0..u64::MAX` is a valid range.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// `A..B` (B excluded) or a single seed `A`.
pub fn parse_seed_range(text: &str) -> Result<SeedRange, String> {
    let parse = |part: &str| {
        part.trim().parse::<u64>().map_err(|_| {
            format!(
                "expected A..B or A with whole numbers 0..={}, got {text:?}",
                u64::MAX
            )
        })
    };
    match text.split_once("..") {
        Some((a, b)) => {
            let (start, end) = (parse(a)?, parse(b)?);
            if start >= end {
                return Err(format!("empty seed range {text:?}: expected A < B"));
            }
            Ok(SeedRange { start, end })
        }
        None => {
            let start = parse(text)?;
            Ok(SeedRange {
                start,
                end: start
                    .checked_add(1)
                    .ok_or_else(|| format!("seed {start} too large: the range end is excluded"))?,
            })
        }
    }
}

/// A `--seeds A..B` of `bugs` and `bench sim`, where a bare number `N` once meant "seeds 0..N": it
/// is refused with that hint instead of being read as the single seed N (what `fuzz --seeds N`
/// means), so an old command line cannot silently measure something else.
pub fn parse_seed_span(text: &str) -> Result<SeedRange, String> {
    if !text.contains("..") {
        return Err(format!(
            "expected a seed range A..B, got {text:?} (for the first N seeds write 0..N; a bare \
             count is no longer accepted here)"
        ));
    }
    parse_seed_range(text)
}

/// One of N disjoint slices of a seed range (`I/N`, 1-based): seed ≡ start + I-1 (mod N).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let error = || format!("expected I/N with 1 <= I <= N, got {text:?}");
    let (index, count) = text.split_once('/').ok_or_else(error)?;
    let index: u64 = index.trim().parse().map_err(|_| error())?;
    let count: u64 = count.trim().parse().map_err(|_| error())?;
    if index == 0 || index > count {
        return Err(error());
    }
    Ok(Shard { index, count })
}

/// The seeds a campaign runs, in order, produced one at a time: `0..u64::MAX` costs nothing
/// until a seed is taken.
pub fn campaign_seeds(range: SeedRange, shard: Option<Shard>) -> impl Iterator<Item = u64> + Send {
    let (offset, step) = match shard {
        Some(shard) => (shard.index - 1, shard.count),
        None => (0, 1),
    };
    let first = range.start.checked_add(offset).filter(|&s| s < range.end);
    std::iter::successors(first, move |&seed| {
        seed.checked_add(step).filter(|&next| next < range.end)
    })
}

/// How many seeds [`campaign_seeds`] yields, without iterating.
pub fn campaign_seed_count(range: SeedRange, shard: Option<Shard>) -> u64 {
    match shard {
        None => range.len(),
        Some(shard) => {
            let offset = shard.index - 1;
            if offset >= range.len() {
                0
            } else {
                (range.len() - offset - 1) / shard.count + 1
            }
        }
    }
}

/// Parses a size in bytes: `4096`, `512K`, `64M`, `2G` (binary units: KiB, MiB, GiB; `KiB`,
/// `MB`-style suffixes are read the same way). Zero and sizes over 1 TiB are refused.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let expected = || format!("expected a size like 4096, 512M or 2G (binary units), got {text:?}");
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let number: u64 = number.parse().map_err(|_| expected())?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(expected()),
    };
    let bytes = number
        .checked_mul(1u64 << shift)
        .filter(|&bytes| bytes <= 1 << 40)
        .ok_or_else(|| format!("size {text:?} is more than the maximum of 1T"))?;
    if bytes == 0 {
        return Err(format!("size {text:?}: expected more than zero bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1t"), Ok(1 << 40));
        for text in [
            "",
            "0",
            "0G",
            "2T",
            "-1",
            "1.5G",
            "1X",
            "99999999999999999999",
        ] {
            assert!(parse_bytes(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn durations_in_every_unit_and_bare_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("40m"), Ok(Duration::from_secs(2400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("1m30s500ms"),
            Ok(Duration::from_millis(90_500))
        );
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("168h"), Ok(DURATION_MAX));
    }

    #[test]
    fn durations_out_of_range_or_malformed_are_refused() {
        for text in [
            "",
            "0",
            "0s",
            "0ms",
            "0.0001",
            "nan",
            "NaN",
            "inf",
            "-5",
            "-5s",
            "1e20",
            "1e3",
            "5x",
            "1h30",
            "169h",
            "99999999999999999999999h",
            "s",
            ".",
            "1..2s",
            "5 m",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} accepted");
        }
        assert!(parse_duration("0")
            .unwrap_err()
            .contains("shorter than 1ms"));
        assert!(parse_duration("1000h").unwrap_err().contains("maximum"));
        assert!(parse_duration("inf")
            .unwrap_err()
            .contains("expected a duration"));
    }

    #[test]
    fn humanize_round_trips() {
        for text in ["250ms", "90s", "5m", "1h30m", "2h"] {
            let duration = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&humanize(duration)), Ok(duration), "{text}");
        }
        assert_eq!(humanize(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn seed_ranges_and_shards() {
        assert_eq!(parse_seed_range("3..7"), Ok(SeedRange { start: 3, end: 7 }));
        assert_eq!(parse_seed_range("5"), Ok(SeedRange { start: 5, end: 6 }));
        assert!(parse_seed_range("7..3").is_err() && parse_seed_range("3..3").is_err());
        assert!(parse_seed_range("a..b").is_err() && parse_seed_range("-1..3").is_err());
        assert!(parse_seed_range("18446744073709551615").is_err());
        assert!(parse_seed_range("0..18446744073709551616").is_err());
        assert_eq!(parse_shard("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(
            parse_shard("0/4").is_err() && parse_shard("5/4").is_err() && parse_shard("x").is_err()
        );
        let range = SeedRange { start: 10, end: 20 };
        let mut union: Vec<u64> = (1..=3)
            .flat_map(|i| campaign_seeds(range, Some(Shard { index: i, count: 3 })))
            .collect();
        union.sort();
        assert_eq!(
            union,
            (10..20).collect::<Vec<_>>(),
            "shards are disjoint and cover the range"
        );
        let first: Vec<u64> = campaign_seeds(range, Some(Shard { index: 1, count: 3 })).collect();
        assert_eq!(first, vec![10, 13, 16, 19]);
        for (range, shard) in [
            (range, None),
            (range, Some(Shard { index: 3, count: 3 })),
            (
                SeedRange { start: 0, end: 2 },
                Some(Shard { index: 5, count: 7 }),
            ),
        ] {
            assert_eq!(
                campaign_seed_count(range, shard),
                campaign_seeds(range, shard).count() as u64
            );
        }
    }

    #[test]
    fn the_largest_seed_range_is_iterated_lazily() {
        let range = parse_seed_range("0..18446744073709551615").unwrap();
        assert_eq!(campaign_seed_count(range, None), u64::MAX);
        let mut seeds = campaign_seeds(
            range,
            Some(Shard {
                index: 2,
                count: u64::MAX,
            }),
        );
        assert_eq!(seeds.next(), Some(1));
        assert_eq!(seeds.next(), None, "no overflow past the end");
        let tail: Vec<u64> = campaign_seeds(
            SeedRange {
                start: u64::MAX - 2,
                end: u64::MAX,
            },
            None,
        )
        .collect();
        assert_eq!(tail, vec![u64::MAX - 2, u64::MAX - 1]);
    }
}
