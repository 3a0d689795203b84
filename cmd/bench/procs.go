package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTick = 100

// child is a process the bench started: the broker, a gateway, the no-op
// server. Every child is killed when the bench exits.
type child struct {
	name string
	cmd  *exec.Cmd
	pid  int
	addr string // what its ready line announced
	done chan struct{}

	mu   sync.Mutex
	tail []string // its last output lines, for error messages
	errs int      // lines with level=ERROR
}

var (
	childrenMu sync.Mutex
	children   []*child
)

// startChild runs bin with args and waits until a line of its stdout or
// stderr makes ready return an address. Lines after that are counted and
// the last ones kept; they never block the child.
func startChild(ctx context.Context, name, bin string, args []string, ready func(line string) (string, bool)) (*child, error) {
	cmd := exec.Command(bin, args...)
	// The kernel kills the child if the bench dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	childrenMu.Lock()
	children = append(children, c)
	childrenMu.Unlock()
	addrs := make(chan string, 2)
	var readers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			found := false
			for sc.Scan() {
				line := sc.Text()
				if !found {
					if a, ok := ready(line); ok {
						found = true
						addrs <- a
					}
				}
				c.mu.Lock()
				if strings.Contains(line, "level=ERROR") {
					c.errs++
				}
				c.tail = append(c.tail, line)
				if len(c.tail) > 80 {
					c.tail = c.tail[len(c.tail)-40:]
				}
				c.mu.Unlock()
			}
			_, _ = io.Copy(io.Discard, r)
		}()
	}
	go func() {
		readers.Wait()
		_ = cmd.Wait()
		close(c.done)
	}()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	select {
	case c.addr = <-addrs:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before it was ready: %v\n%s", name, cmd.ProcessState, c.output())
	case <-timeout.C:
		c.stop()
		return nil, fmt.Errorf("%s not ready after 60 s:\n%s", name, c.output())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// output is the child's last lines: from a panic on, when it panicked.
func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := c.tail
	for i, l := range lines {
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			lines = lines[i:]
			break
		}
	}
	return strings.Join(lines, "\n")
}

func (c *child) errorLines() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errs
}

// stop sends SIGTERM and, after 5 s, SIGKILL; it returns when the child
// has exited.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// stopChildren stops every child still running, the last started first.
func stopChildren() {
	childrenMu.Lock()
	cs := children
	children = nil
	childrenMu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i].stop()
	}
}

// cpuTime is the user+system CPU time of process pid, all threads, from
// /proc/PID/stat fields 14 and 15.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces and parentheses: the
	// fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// statusKB reads a "Name:   N kB" line of /proc/PID/status.
func statusKB(pid int, name string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// rssPeak samples VmRSS of pid every 50 ms until stopped (VmHWM cannot be
// reset between phases) and reports the largest sample in bytes.
type rssPeak struct {
	stopc chan struct{}
	done  chan struct{}
	peak  int64
}

func sampleRSS(pid int) *rssPeak {
	r := &rssPeak{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			r.peak = max(r.peak, statusKB(pid, "VmRSS")<<10)
			select {
			case <-r.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

func (r *rssPeak) stop() int64 {
	close(r.stopc)
	<-r.done
	return r.peak
}

// cpuMeter measures CPU time of the measured process, the bench itself
// and the broker between start and stop.
type cpuMeter struct {
	pids   [3]int // measured, client (self), broker (0: not ours)
	before [3]time.Duration
	after  [3]time.Duration
	rss    *rssPeak
	peak   int64
}

func newCPUMeter(measured, broker int) *cpuMeter {
	return &cpuMeter{pids: [3]int{measured, os.Getpid(), broker}}
}

func (m *cpuMeter) read(into *[3]time.Duration) {
	for i, pid := range m.pids {
		if pid == 0 {
			continue
		}
		into[i], _ = cpuTime(pid)
	}
}

func (m *cpuMeter) start() {
	m.rss = sampleRSS(m.pids[0])
	m.read(&m.before)
}

func (m *cpuMeter) stop() {
	m.read(&m.after)
	m.peak = m.rss.stop()
}

// perMsg returns the CPU µs per message of process i (0 measured, 1
// client, 2 broker), or -1 when unknown.
func (m *cpuMeter) perMsg(i int, msgs int64) float64 {
	if m.pids[i] == 0 || msgs <= 0 {
		return -1
	}
	return float64(m.after[i]-m.before[i]) / float64(time.Microsecond) / float64(msgs)
}
