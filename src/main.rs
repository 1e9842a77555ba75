//! `kvsim`: deterministic simulation and consistency checking for Raft key-value stores.
//!
//! Exit codes, the same for every command: 0 all good, 1 a violation was found, 2 bad usage or
//! input, 3 inconclusive (a budget ran out before a verdict), 4 internal error (kvsim could not
//! write its output), 130 / 143 interrupted by SIGINT / SIGTERM (see `kvsim::exit`).

mod cmd_bench;
mod cmd_bugs;
mod cmd_check;
mod cmd_conformance;
mod cmd_fuzz;
mod cmd_live;
mod cmd_replay;
mod cmd_run;
mod cmd_shrink;
mod cmd_targets;

use clap::{Parser, Subcommand};

/// A simulation allocates and frees small objects at a high rate (messages, futures, history
/// records): glibc malloc was about a third of a seed's wall time, mimalloc makes a fuzz campaign
/// about 1.4× faster (see ARCHITECTURE.md, "Simulation speed"). Allocation order does not reach
/// the simulation's schedule, so determinism is unaffected.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use kvsim::exit::Exit;

#[derive(Parser)]
#[command(name = "kvsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check recorded histories for linearizability (kvsim JSONL, Jepsen register logs, porcupine kv logs).
    Check(cmd_check::CheckArgs),
    /// Run one seed of a scenario on the simulated cluster, write its history and verdict.
    Run(cmd_run::RunArgs),
    /// Run many seeds in parallel; write a report for every failing seed.
    Fuzz(cmd_fuzz::FuzzArgs),
    /// Re-run a failing seed from its report directory and confirm the history is byte-identical.
    Replay(cmd_replay::ReplayArgs),
    /// Measure the checker or the simulator.
    Bench(cmd_bench::BenchArgs),
    /// List the planted bugs with the scenario and property that catch each; --measure counts the seeds needed.
    Bugs(cmd_bugs::BugsArgs),
    /// Minimize a failing seed: fewer faults, clients, operations, nodes; writes a scenario that reproduces it.
    Shrink(cmd_shrink::ShrinkArgs),
    /// Differential test: one sequential workload covering the etcd API against real etcd, the
    /// simulated cluster and the model; exit 1 if any answer differs.
    Conformance(cmd_conformance::ConformanceArgs),
    /// Run a scenario's workload, faults and checkers against a real etcd cluster (spawned or existing).
    Live(cmd_live::LiveArgs),
    /// List the stores kvsim can simulate (`--target NAME`), with the features and planted bugs each has.
    Targets(cmd_targets::TargetsArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => cmd_check::main(args),
        Command::Run(args) => cmd_run::main(args),
        Command::Fuzz(args) => cmd_fuzz::main(args),
        Command::Replay(args) => cmd_replay::main(args),
        Command::Bench(args) => cmd_bench::main(args),
        Command::Bugs(args) => cmd_bugs::main(args),
        Command::Shrink(args) => cmd_shrink::main(args),
        Command::Conformance(args) => cmd_conformance::main(args),
        Command::Live(args) => cmd_live::main(args),
        Command::Targets(args) => cmd_targets::main(args),
    };
    let mut code = match result {
        Ok(exit) => exit,
        Err(error) => {
            let code = kvsim::exit::of_error(&error);
            let kind = if code == Exit::Internal {
                "internal error"
            } else {
                "error"
            };
            eprintln!("kvsim: {kind}: {error:#}");
            code
        }
    };
    kvsim::stdout::flush();
    if let Some(failure) = kvsim::stdout::failure() {
        eprintln!("kvsim: internal error: {failure}");
        code = code.worst(Exit::Internal);
    }
    std::process::exit(code as i32);
}
