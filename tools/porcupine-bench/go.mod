module kvsim/porcupine-bench

go 1.16

require github.com/anishathalye/porcupine v1.3.0

// `kvsim bench check --porcupine DIR` builds a copy of this directory with
// `replace github.com/anishathalye/porcupine => DIR`, so it builds offline.
