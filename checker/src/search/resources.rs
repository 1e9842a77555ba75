//! Resources whose existence answers prove (`Spec::resources`; etcd: leases), as the search
//! keeps count of them.
//!
//! An answered op that needs resource r is valid only where r exists. Once an op that ends r
//! is linearized, r exists again only after an op that starts it. So at a node where some
//! answered op needing r is still to be placed and no op that may start r is, linearizing an
//! op that ends r leaves that answered op no valid place: the whole subtree fails. `may_end`
//! refuses such a step before the model runs it. Without it, a lease's expiry (an
//! unknown-outcome op free to go anywhere after its lower bound) placed a few seconds too
//! early is only undone after every order of everything in between has failed.

use kvsim_model::{ResourceUse, Spec};

const NONE: u32 = u32::MAX;

/// Per op, what it does to resources (numbered densely), and per resource, how many ops that
/// need or may start it are still to be linearized.
pub(super) struct Resources {
    /// Per op, the resources its answer needs (answered ops only).
    needs: Vec<Vec<u32>>,
    /// Per op, the resource it ends (`NONE`: none).
    ends: Vec<u32>,
    /// Per op, the resources it may start.
    starts: Vec<Vec<u32>>,
    /// Per resource, the answered ops still to be linearized that need it.
    needs_left: Vec<u32>,
    /// Per resource, the ops still to be linearized that may start it.
    starts_left: Vec<u32>,
}

impl Resources {
    /// The search's ops, each with its answer (`None`: unknown outcome), indexed as the
    /// search indexes them; nothing linearized yet.
    pub(super) fn new<'a, S>(
        ops: impl ExactSizeIterator<Item = (&'a S::Op, Option<&'a S::Ret>)>,
    ) -> Self
    where
        S: Spec + 'a,
        S::Op: Clone + std::fmt::Debug,
        S::Ret: Clone + std::fmt::Debug,
    {
        let count = ops.len();
        let mut ids: std::collections::BTreeMap<u128, u32> = std::collections::BTreeMap::new();
        let mut id_of = |name: u128| {
            let next = ids.len() as u32;
            *ids.entry(name).or_insert(next)
        };
        let mut uses = Vec::new();
        let mut resources = Resources {
            needs: Vec::with_capacity(count),
            ends: Vec::with_capacity(count),
            starts: Vec::with_capacity(count),
            needs_left: Vec::new(),
            starts_left: Vec::new(),
        };
        for (input, ret) in ops {
            uses.clear();
            S::resources(input, ret, &mut uses);
            let (mut needs, mut ends, mut starts) = (Vec::new(), NONE, Vec::new());
            for &resource_use in &uses {
                match resource_use {
                    ResourceUse::Needs(name) => {
                        assert!(ret.is_some(), "resources: only answers need a resource");
                        needs.push(id_of(name));
                    }
                    ResourceUse::Ends(name) => {
                        assert_eq!(ends, NONE, "resources: an op ends one resource at most");
                        ends = id_of(name);
                    }
                    ResourceUse::Starts(name) => starts.push(id_of(name)),
                }
            }
            resources.needs.push(needs);
            resources.ends.push(ends);
            resources.starts.push(starts);
        }
        resources.needs_left = vec![0; ids.len()];
        resources.starts_left = vec![0; ids.len()];
        for index in 0..count {
            resources.count(index as u32, 1);
        }
        resources
    }

    /// Whether linearizing op `index` next can still lead to a full linearization, as far as
    /// resources tell: it ends no resource, or none that an answered op still to be placed
    /// (other than itself) needs, or one that an op still to be placed (other than itself)
    /// may start again.
    pub(super) fn may_end(&self, index: u32) -> bool {
        let resource = self.ends[index as usize];
        if resource == NONE {
            return true;
        }
        let own = |uses: &[u32]| uses.iter().filter(|&&r| r == resource).count() as u32;
        let needs_left = self.needs_left[resource as usize] - own(&self.needs[index as usize]);
        let starts_left = self.starts_left[resource as usize] - own(&self.starts[index as usize]);
        needs_left == 0 || starts_left > 0
    }

    /// Op `index` is linearized.
    pub(super) fn lift(&mut self, index: u32) {
        self.count(index, -1);
    }

    /// Op `index` is taken back.
    pub(super) fn unlift(&mut self, index: u32) {
        self.count(index, 1);
    }

    fn count(&mut self, index: u32, delta: i32) {
        for &resource in &self.needs[index as usize] {
            let left = &mut self.needs_left[resource as usize];
            *left = left
                .checked_add_signed(delta)
                .expect("resources: lifts and unlifts pair up");
        }
        for &resource in &self.starts[index as usize] {
            let left = &mut self.starts_left[resource as usize];
            *left = left
                .checked_add_signed(delta)
                .expect("resources: lifts and unlifts pair up");
        }
    }
}
