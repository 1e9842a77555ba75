//! The kvsim library: everything the `kvsim` binary does, as code other programs and the tests can
//! call. The binary (`src/main.rs` and its `cmd_*.rs`) only parses arguments, calls in here, and
//! prints.
//!
//! - [`verdict`]: judging one history with every checker; [`check_file`]: judging one recorded
//!   history file (`kvsim check`); [`campaign`]: a fuzz campaign; [`catalogue`]: the planted bugs
//!   and their measurement; [`bugs_measure`]: `kvsim bugs`' selection and measurement summary;
//!   [`bench`]: the checker and simulator benchmarks; [`shrink`]: minimizing a failing seed;
//!   [`live`]: a scenario against real etcd; [`conformance`]: the differential test against real
//!   etcd; [`report`] and [`report_files`]: the HTML report; [`run_dir`]: a run's output
//!   directory; [`cli`]: the argument types every command shares; [`exit`]: the exit codes;
//!   [`stdout`]: output that survives a closed pipe, and `--json` mode; [`progress`]: the
//!   progress bar of long commands; [`history_files`]: the files `check` reads; [`memory`]: the
//!   `--memory-max` budget; [`interrupt`]: SIGINT / SIGTERM.

pub mod bench;
pub mod bugs_measure;
pub mod campaign;
pub mod catalogue;
pub mod check_file;
pub mod cli;
pub mod conformance;
pub mod exit;
pub mod history_files;
pub mod interrupt;
pub mod live;
pub mod memory;
pub mod panic_hook;
pub mod progress;
pub mod report;
pub mod report_files;
pub mod run_dir;
pub mod shrink;
pub mod stdout;
pub mod swarm;
pub mod verdict;
pub mod work_queue;
