package kafkatest

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BrokerProcess returns bootstrap servers for a test whose measurements
// must not include the broker: the external cluster, or kfake run as its
// own process (internal/kafkatest/brokerd, creating topics on first use
// with 3 partitions), stopped and waited for when the test ends.
func BrokerProcess(t testing.TB) string {
	t.Helper()
	if b, ok := External(); ok {
		return b
	}
	bin := filepath.Join(t.TempDir(), "brokerd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/kgate/kgate/internal/kafkatest/brokerd").CombinedOutput(); err != nil {
		t.Fatalf("building brokerd: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0")
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
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-exited:
		t.Fatalf("brokerd exited before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("brokerd did not print its address within 30s")
	}
	return ""
}
