package kafkatest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// leakMarkers are frames that only goroutines of kgate, librdkafka's Go
// wrapper, gRPC servers and kfake have. A goroutine still running one after
// every test ended was not stopped by its owner.
var leakMarkers = []string{
	"github.com/kgate/kgate/",
	"github.com/confluentinc/confluent-kafka-go/",
	"google.golang.org/grpc.(*Server)",
	"github.com/twmb/franz-go/pkg/kfake.",
}

// Main runs the tests, then fails the package if a goroutine of kgate,
// confluent-kafka-go, a gRPC server or kfake is still running 30 s after
// the last test ended. Use it as: func TestMain(m *testing.M) { kafkatest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitLeaks(30 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "FAIL: goroutines still running after the tests ended (an owner did not stop them):\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func waitLeaks(timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		leaked := leakedGoroutines()
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func leakedGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "kafkatest.leakedGoroutines") || strings.Contains(g, "testing.(*M).") {
			continue
		}
		for _, mk := range leakMarkers {
			if strings.Contains(g, mk) {
				leaked = append(leaked, g)
				break
			}
		}
	}
	return strings.Join(leaked, "\n\n")
}
