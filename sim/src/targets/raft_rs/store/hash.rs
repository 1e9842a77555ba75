//! FNV-1a 64: a fixed, seedless hash so that HashKV agrees across nodes and runs (etcd uses crc32;
//! any fixed function serves, what matters is that it is not `RandomState`).

pub struct Fnv1a {
    state: u64,
}

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fnv1a {
    pub fn new() -> Self {
        Fnv1a {
            state: OFFSET_BASIS,
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.state ^= u64::from(*byte);
            self.state = self.state.wrapping_mul(PRIME);
        }
    }

    pub fn write_i64(&mut self, value: i64) {
        self.write(&value.to_le_bytes());
    }

    /// Length-prefixed so that ("ab", "c") and ("a", "bc") hash differently.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_i64(bytes.len() as i64);
        self.write(bytes);
    }

    pub fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_fnv1a_vectors() {
        // Test vectors from the FNV reference (draft-eastlake-fnv): "" and "a".
        assert_eq!(Fnv1a::new().finish(), 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv1a::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
