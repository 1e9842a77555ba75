//! A compare-and-set register (Jepsen's etcd register test): read / write / cas.
//!
//! The register starts as nil (`None`). `read` returns the value, `write(v)` replaces it,
//! `cas(from, to)` swaps iff the value equals `from` and says whether it swapped. Jepsen logs a
//! failed compare as `:fail`; importers record it as a definite `Cas { swapped: false }` (the
//! compare was evaluated and came out false), which is what porcupine's etcd model checks too.

use serde::{Deserialize, Serialize};

use crate::{SequentialSpec, Spec};

/// One register operation, as histories record it: `{"f":"cas","from":1,"to":2}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum RegisterOp {
    Read,
    Write { value: i64 },
    Cas { from: i64, to: i64 },
}

/// What a register operation returned: `{"f":"read","value":null}`, `{"f":"cas","swapped":true}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum RegisterRet {
    Read { value: Option<i64> },
    Write,
    Cas { swapped: bool },
}

/// The register's state; `None` is nil (never written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CasRegister {
    pub value: Option<i64>,
}

impl SequentialSpec for CasRegister {
    type Op = RegisterOp;
    type Ret = RegisterRet;

    fn invoke(&mut self, op: &RegisterOp) -> RegisterRet {
        match *op {
            RegisterOp::Read => RegisterRet::Read { value: self.value },
            RegisterOp::Write { value } => {
                self.value = Some(value);
                RegisterRet::Write
            }
            RegisterOp::Cas { from, to } => {
                let swapped = self.value == Some(from);
                if swapped {
                    self.value = Some(to);
                }
                RegisterRet::Cas { swapped }
            }
        }
    }
}

impl Spec for CasRegister {
    const NAME: &'static str = "cas-register";
    /// A write of v and a successful cas to v leave v; a cas swaps only in state `from`.
    const STATE_IS_LAST_WRITE: bool = true;

    /// Exact, not hashed: nil and every i64 map to distinct 128-bit values, so no collision.
    fn fingerprint(&self) -> u128 {
        match self.value {
            None => 0,
            Some(value) => (1u128 << 64) | u128::from(value as u64),
        }
    }

    fn step(&self, op: &RegisterOp, ret: &RegisterRet) -> Option<Self> {
        let mut next = *self;
        (next.invoke(op) == *ret).then_some(next)
    }

    fn is_read_only(op: &RegisterOp, ret: &RegisterRet) -> bool {
        matches!(
            (op, ret),
            (RegisterOp::Read, _) | (RegisterOp::Cas { .. }, RegisterRet::Cas { swapped: false })
        )
    }

    /// A read of v is valid only in state v, which only a write of v or a cas to v makes; the
    /// tag is the state's fingerprint, so a read of nil needs tag 0, which nothing writes.
    fn read_needs_tag(op: &RegisterOp, ret: &RegisterRet) -> Option<u128> {
        match (op, ret) {
            (RegisterOp::Read, RegisterRet::Read { value }) => {
                Some(CasRegister { value: *value }.fingerprint())
            }
            _ => None,
        }
    }

    fn written_tag(op: &RegisterOp) -> Option<u128> {
        match *op {
            RegisterOp::Read => None,
            RegisterOp::Write { value } | RegisterOp::Cas { to: value, .. } => {
                Some(CasRegister { value: Some(value) }.fingerprint())
            }
        }
    }

    /// A read of v needs state v; a successful cas from v too (a read of nil needs tag 0, which
    /// nothing writes: only the initial state is nil).
    fn observes_tag(op: &RegisterOp, ret: &RegisterRet) -> Option<u128> {
        match (op, ret) {
            (RegisterOp::Read, _) => Self::read_needs_tag(op, ret),
            (RegisterOp::Cas { from, .. }, RegisterRet::Cas { swapped: true }) => {
                Some(CasRegister { value: Some(*from) }.fingerprint())
            }
            _ => None,
        }
    }

    /// A write always answers ok; a cas that changes the state swapped.
    fn effect_ret(op: &RegisterOp) -> Option<RegisterRet> {
        match op {
            RegisterOp::Read => None,
            RegisterOp::Write { .. } => Some(RegisterRet::Write),
            RegisterOp::Cas { .. } => Some(RegisterRet::Cas { swapped: true }),
        }
    }

    /// A write and a successful cas always set the value they write; a failed cas and a read
    /// leave the state as it was, whatever it was.
    fn leaves_tag(op: &RegisterOp, ret: &RegisterRet) -> Option<u128> {
        match (op, ret) {
            (RegisterOp::Write { .. }, RegisterRet::Write)
            | (RegisterOp::Cas { .. }, RegisterRet::Cas { swapped: true }) => Self::written_tag(op),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_nil_and_cas_swaps_only_on_match() {
        let mut register = CasRegister::default();
        assert_eq!(
            register.invoke(&RegisterOp::Read),
            RegisterRet::Read { value: None }
        );
        assert_eq!(
            register.invoke(&RegisterOp::Cas { from: 0, to: 1 }),
            RegisterRet::Cas { swapped: false },
            "nil never equals a number"
        );
        register.invoke(&RegisterOp::Write { value: 3 });
        assert_eq!(
            register.invoke(&RegisterOp::Cas { from: 3, to: 4 }),
            RegisterRet::Cas { swapped: true }
        );
        assert_eq!(
            register.invoke(&RegisterOp::Read),
            RegisterRet::Read { value: Some(4) }
        );
    }

    #[test]
    fn step_rejects_wrong_returns_and_fingerprints_are_exact() {
        let register = CasRegister { value: Some(-1) };
        assert!(register
            .step(&RegisterOp::Read, &RegisterRet::Read { value: None })
            .is_none());
        assert!(register
            .step(
                &RegisterOp::Cas { from: -1, to: 2 },
                &RegisterRet::Cas { swapped: false }
            )
            .is_none());
        let next = register.step(
            &RegisterOp::Cas { from: -1, to: 2 },
            &RegisterRet::Cas { swapped: true },
        );
        assert_eq!(next, Some(CasRegister { value: Some(2) }));
        assert_ne!(
            CasRegister { value: None }.fingerprint(),
            CasRegister { value: Some(0) }.fingerprint()
        );
        assert_ne!(
            register.fingerprint(),
            CasRegister { value: Some(0) }.fingerprint()
        );
    }

    #[test]
    fn read_only_hint() {
        assert!(CasRegister::is_read_only(
            &RegisterOp::Read,
            &RegisterRet::Read { value: None }
        ));
        assert!(CasRegister::is_read_only(
            &RegisterOp::Cas { from: 1, to: 2 },
            &RegisterRet::Cas { swapped: false }
        ));
        assert!(!CasRegister::is_read_only(
            &RegisterOp::Cas { from: 1, to: 2 },
            &RegisterRet::Cas { swapped: true }
        ));
        assert!(!CasRegister::is_read_only(
            &RegisterOp::Write { value: 1 },
            &RegisterRet::Write
        ));
    }

    #[test]
    fn serde_shapes() {
        let op = serde_json::to_string(&RegisterOp::Cas { from: 1, to: 2 }).unwrap();
        assert_eq!(op, r#"{"f":"cas","from":1,"to":2}"#);
        let ret = serde_json::to_string(&RegisterRet::Read { value: None }).unwrap();
        assert_eq!(ret, r#"{"f":"read","value":null}"#);
    }
}
