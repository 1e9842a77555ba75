//! `kvsim targets`: the stores kvsim can simulate, with the features and planted bugs each has
//! (docs/bring-your-own-store.md adds one).

use anyhow::Result;
use clap::Args;
use kvsim::exit::Exit;
use kvsim::outln;
use kvsim_sim::target::Feature;

#[derive(Args)]
pub struct TargetsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: TargetsArgs) -> Result<Exit> {
    let targets = kvsim_sim::targets::all();
    if args.json {
        let list: Vec<serde_json::Value> = targets
            .iter()
            .map(|t| {
                let capabilities = t.capabilities();
                serde_json::json!({
                    "name": t.name(),
                    "default": t.name() == kvsim_sim::targets::DEFAULT,
                    "features": Feature::ALL.iter().filter(|f| f.present_in(&capabilities)).map(|f| f.name()).collect::<Vec<_>>(),
                    "missing": capabilities.missing().iter().map(|f| f.name()).collect::<Vec<_>>(),
                    "planted_bugs": t.planted_bugs(),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(Exit::Ok);
    }
    for target in targets {
        let capabilities = target.capabilities();
        let missing = capabilities.missing();
        let default = if target.name() == kvsim_sim::targets::DEFAULT {
            " (default)"
        } else {
            ""
        };
        outln!("{}{default}", target.name());
        outln!(
            "  lacks:        {}",
            if missing.is_empty() {
                "nothing kvsim tests".to_string()
            } else {
                missing
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        let planted: Vec<&str> = target
            .planted_bugs()
            .iter()
            .map(|bug| bug.as_str())
            .collect();
        outln!("  planted bugs: {}", planted.join(", "));
    }
    Ok(Exit::Ok)
}
