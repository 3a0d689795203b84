package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Flag values whose errors say what form is expected, wherever the value
// comes from: `--max-message-bytes abc`, KGATE_MAX_MESSAGE_BYTES=abc or a
// config file line all say "want a whole number of bytes, such as 1000000"
// rather than flag's bare "parse error".

// intFlag is an int, int64 or uint flag.
type intFlag[T int | int64 | uint] struct {
	p    *T
	what string // "a whole number of bytes", ...
	def  T      // for the example in errors
}

func (f *intFlag[T]) String() string {
	if f == nil || f.p == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*f.p), 10)
}

func (f *intFlag[T]) Set(s string) error {
	var v T
	var err error
	switch any(v).(type) {
	case uint:
		var u uint64
		u, err = strconv.ParseUint(s, 0, strconv.IntSize)
		v = T(u)
	case int:
		var i int64
		i, err = strconv.ParseInt(s, 0, strconv.IntSize)
		v = T(i)
	default:
		var i int64
		i, err = strconv.ParseInt(s, 0, 64)
		v = T(i)
	}
	if err != nil {
		return fmt.Errorf("want %s, such as %d", f.what, f.def)
	}
	*f.p = v
	return nil
}

func (f *intFlag[T]) typeName() string {
	if strings.Contains(f.what, "bytes") {
		return "bytes"
	}
	return "int"
}

// durationFlag is a time.Duration flag.
type durationFlag struct{ p *time.Duration }

func (f *durationFlag) String() string {
	if f == nil || f.p == nil {
		return "0s"
	}
	return f.p.String()
}

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration with its unit, such as 15s, 500ms or 2m")
	}
	*f.p = d
	return nil
}

func (f *durationFlag) typeName() string { return "duration" }

func (k *kafkaFlag) typeName() string { return "key=value" }

func intVar[T int | int64 | uint](fs *flag.FlagSet, p *T, name string, def T, what, usage string) {
	*p = def
	fs.Var(&intFlag[T]{p: p, what: what, def: def}, name, usage)
}

func durationVar(fs *flag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var(&durationFlag{p: p}, name, usage)
}

// printUsage prints every flag of fs, with its type and default, as
// flag.PrintDefaults does.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ := "string"
		if t, ok := f.Value.(interface{ typeName() string }); ok {
			typ = t.typeName()
		}
		fmt.Fprintf(w, "  --%s %s\n    \t%s", f.Name, typ, strings.ReplaceAll(f.Usage, "\n", "\n    \t"))
		switch {
		case f.DefValue == "":
		case typ == "string":
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		default:
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "\n    \t(environment: %s)\n", envName(f.Name))
	})
}

// envName is the environment variable of a flag: KGATE_ and the flag name
// in upper case with '_' for '-'.
func envName(flagName string) string {
	return "KGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// unknownEnv returns a warning for each KGATE_ variable of environ
// ("NAME=value" strings, as os.Environ returns) that names no flag of fs,
// with the nearest flag's variable when the name looks like a typo of it.
func unknownEnv(environ []string, fs *flag.FlagSet) []string {
	known := map[string]bool{}
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		known[envName(f.Name)] = true
		names = append(names, envName(f.Name))
	})
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "KGATE_") || known[name] {
			continue
		}
		w := fmt.Sprintf("environment variable %s names no setting of the gateway and is ignored", name)
		if near := nearest(name, names); near != "" {
			w += fmt.Sprintf("; did you mean %s?", near)
		} else {
			w += " (gateway --help lists the settings)"
		}
		warnings = append(warnings, w)
	}
	sort.Strings(warnings)
	return warnings
}

// nearest returns the name of names closest to s by edit distance, when it
// is close enough to be a typo (at most 2 edits, or 3 for long names).
func nearest(s string, names []string) string {
	best, bestD := "", 3
	if len(s) > 20 {
		bestD = 4
	}
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// environMap turns "NAME=value" strings into a map; a later entry wins.
func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if name, v, ok := strings.Cut(kv, "="); ok {
			m[name] = v
		}
	}
	return m
}
