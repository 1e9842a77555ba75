//! `kvsim conformance`: the differential test against real etcd; the engine is
//! `kvsim::conformance`.

use anyhow::Result;

pub use kvsim::conformance::ConformanceArgs;
use kvsim::exit::Exit;

pub fn main(args: ConformanceArgs) -> Result<Exit> {
    kvsim::conformance::run(&args)
}
