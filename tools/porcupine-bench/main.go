// porcupine-bench: porcupine's linearizability check of Jepsen cas-register logs, timed, for
// `kvsim bench check --porcupine DIR` (kvsim's side-by-side benchmark). Our own harness: the log
// reader and the register model are written here to read logs exactly as kvsim's importer
// (checker/src/format/jepsen.rs) does.
//
// Protocol: one request per stdin line, "PATH<TAB>TIMEOUT_MS"; one answer per stdout line,
// "VERDICT<TAB>SECONDS<TAB>OPS" with VERDICT ok, illegal or unknown (porcupine timed out), or
// "error<TAB>MESSAGE". SECONDS covers the check only, not reading the file (as on kvsim's side).
package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

type kind int

const (
	read kind = iota
	write
	cas
)

// input is what a process invoked: read, write(a), or cas(a -> b).
type input struct {
	f    kind
	a, b int64
}

// output is what came back. unknown: the outcome is unknown (:info), the op may or may not
// have taken effect; it is given a return at the end of time, so that porcupine may place it
// anywhere after its call, including after everything (= it never took effect).
type output struct {
	unknown bool
	isNil   bool
	value   int64 // reads
	swapped bool  // cas
}

// state is the register; set false is nil (never written).
type state struct {
	set   bool
	value int64
}

func step(s, in, out interface{}) (bool, interface{}) {
	st := s.(state)
	i := in.(input)
	o := out.(output)
	switch i.f {
	case read:
		if o.unknown {
			return true, st
		}
		if o.isNil {
			return !st.set, st
		}
		return st.set && st.value == o.value, st
	case write:
		return true, state{true, i.a}
	default:
		matches := st.set && st.value == i.a
		if o.unknown {
			if matches {
				return true, state{true, i.b}
			}
			return true, st
		}
		if o.swapped {
			return matches, state{true, i.b}
		}
		return !matches, st
	}
}

var register = porcupine.Model{
	Init: func() interface{} { return state{} },
	Step: step,
	Hash: func(s interface{}) uint64 {
		st := s.(state)
		if !st.set {
			return 0
		}
		return uint64(st.value)*0x9E3779B97F4A7C15 + 1
	},
}

// readLog reads a Jepsen etcd register log: line n is time n; :fail of a cas is a definite
// failed compare, :fail of anything else never happened, :info is an unknown outcome.
func readLog(path string) ([]porcupine.Operation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ops []porcupine.Operation
	keep := []bool{}
	inFlight := map[int]int{}
	for number, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 6 || fields[0] != "INFO" {
			return nil, fmt.Errorf("%s:%d: expected 'INFO jepsen.util - P :type :f value'", path, number+1)
		}
		process, err := strconv.Atoi(fields[3])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: process: %v", path, number+1, err)
		}
		t := int64(number + 1)
		value := strings.Join(fields[6:], " ")
		switch fields[4] {
		case ":invoke":
			var in input
			switch fields[5] {
			case ":read":
				in = input{f: read}
			case ":write":
				a, err := strconv.ParseInt(value, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: write value: %v", path, number+1, err)
				}
				in = input{f: write, a: a}
			case ":cas":
				pair := strings.Fields(strings.Trim(value, "[]"))
				if len(pair) != 2 {
					return nil, fmt.Errorf("%s:%d: expected [from to]", path, number+1)
				}
				a, err1 := strconv.ParseInt(pair[0], 10, 64)
				b, err2 := strconv.ParseInt(pair[1], 10, 64)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("%s:%d: expected [from to]", path, number+1)
				}
				in = input{f: cas, a: a, b: b}
			default:
				return nil, fmt.Errorf("%s:%d: unknown function %s", path, number+1, fields[5])
			}
			inFlight[process] = len(ops)
			ops = append(ops, porcupine.Operation{ClientId: process, Input: in, Call: t,
				Output: output{unknown: true}, Return: math.MaxInt64})
			keep = append(keep, true)
		case ":ok", ":fail", ":info":
			index, ok := inFlight[process]
			if !ok {
				return nil, fmt.Errorf("%s:%d: completion without invoke", path, number+1)
			}
			delete(inFlight, process)
			op := &ops[index]
			in := op.Input.(input)
			switch {
			case fields[4] == ":info":
				// Unknown: keep the return at the end of time.
			case fields[4] == ":fail" && in.f == cas:
				op.Output = output{swapped: false}
				op.Return = t
			case fields[4] == ":fail":
				keep[index] = false
			case in.f == read && value == "nil":
				op.Output = output{isNil: true}
				op.Return = t
			case in.f == read:
				v, err := strconv.ParseInt(value, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: read value: %v", path, number+1, err)
				}
				op.Output = output{value: v}
				op.Return = t
			default:
				op.Output = output{swapped: true}
				op.Return = t
			}
		default:
			return nil, fmt.Errorf("%s:%d: unknown type %s", path, number+1, fields[4])
		}
	}
	var kept []porcupine.Operation
	for i, op := range ops {
		if keep[i] {
			// porcupine's visualization wants zero-based client ids; the check ignores them.
			kept = append(kept, op)
		}
	}
	return kept, nil
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		request := strings.Split(in.Text(), "\t")
		if len(request) != 2 {
			fmt.Fprintf(out, "error\texpected PATH<TAB>TIMEOUT_MS\n")
			out.Flush()
			continue
		}
		timeoutMs, err := strconv.ParseInt(request[1], 10, 64)
		if err != nil {
			fmt.Fprintf(out, "error\ttimeout: %v\n", err)
			out.Flush()
			continue
		}
		ops, err := readLog(request[0])
		if err != nil {
			fmt.Fprintf(out, "error\t%v\n", err)
			out.Flush()
			continue
		}
		started := time.Now()
		result := porcupine.CheckOperationsTimeout(register, ops, time.Duration(timeoutMs)*time.Millisecond)
		seconds := time.Since(started).Seconds()
		verdict := map[porcupine.CheckResult]string{
			porcupine.Ok: "ok", porcupine.Illegal: "illegal", porcupine.Unknown: "unknown",
		}[result]
		fmt.Fprintf(out, "%s\t%.6f\t%d\n", verdict, seconds, len(ops))
		out.Flush()
	}
}
