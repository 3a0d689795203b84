package kafkatest

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BrokerProcess returns bootstrap servers for a test whose measurements
// must not include the broker: the external cluster, or kfake run as its
// own process (see StartBrokerProcess).
func BrokerProcess(t testing.TB) string {
	t.Helper()
	if b, ok := External(); ok {
		t.Logf("using the external cluster %s=%s", EnvBrokers, b)
		return b
	}
	return StartBrokerProcess(t).Addr
}

// Broker is kfake running as its own process (internal/kafkatest/brokerd).
type Broker struct {
	// Addr is its bootstrap server, host:port.
	Addr string
	cmd  *exec.Cmd
}

// Stop freezes the broker process (SIGSTOP): it keeps its connections open
// and answers nothing, like a broker host that hangs. The broker is
// continued, if need be, when the test ends.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP to brokerd: %v", err)
	}
}

// Continue lets a stopped broker process run again (SIGCONT).
func (b *Broker) Continue(t testing.TB) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT to brokerd: %v", err)
	}
}

// StartBrokerProcess runs kfake as its own process for the test, even when
// an external cluster is configured: the test needs the process itself (to
// stop it, or to measure the gateway alone). It listens on 127.0.0.1 and
// creates topics on first use with 3 partitions. When the test ends it is
// continued, stopped with SIGTERM and waited for; it must then exit
// cleanly.
func StartBrokerProcess(t testing.TB) *Broker {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "brokerd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/kgate/kgate/internal/kafkatest/brokerd").CombinedOutput(); err != nil {
		t.Fatalf("building brokerd: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0")
	var stderr SyncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting brokerd: %v", err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "BROKER "); ok {
				addr <- a
			}
		}
		exited <- cmd.Wait()
	}()
	ready := false
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process acts on SIGTERM only once continued
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil && ready {
				t.Errorf("brokerd on SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("brokerd did not exit within 10s of SIGTERM\n%s", stderr.String())
		}
	})
	select {
	case a := <-addr:
		ready = true
		return &Broker{Addr: a, cmd: cmd}
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("brokerd exited before it was ready: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("brokerd did not print its address within 30s")
	}
	return nil
}

// SyncBuffer collects a child process's output, written by exec's copying
// goroutine while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *SyncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *SyncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
