package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
	"github.com/kgate/kgate/internal/kafkatest"
)

// TestGatewayShutdownWithTheBrokerStopped: with the broker process frozen
// (SIGSTOP: connections open, nothing answers) while a Subscribe stream
// holds records and publishes wait for acknowledgements, SIGTERM still
// makes the gateway exit within --shutdown-timeout plus a second, answer
// its callers, and say in its log what it could not commit.
func TestGatewayShutdownWithTheBrokerStopped(t *testing.T) {
	t.Parallel()
	broker := kafkatest.StartBrokerProcess(t)
	gateway := goBuild(t, t.TempDir(), "gateway", "github.com/kgate/kgate/cmd/gateway")
	const shutdownTimeout = 3 * time.Second
	gw, conn := startGatewayProc(t, gateway, "gateway", broker.Addr, "--shutdown-timeout", shutdownTimeout.String())
	topic := kafkatest.CreateTopic(t, broker.Addr, "hung", 2)
	pub := kgatev1.NewPublisherClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := &kgatev1.PublishRequest{Topic: topic}
	for i := 0; i < 20; i++ {
		req.Messages = append(req.Messages, &kgatev1.Message{Value: []byte("v")})
	}
	if _, err := pub.Publish(ctx, req); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	s := openSubStream(t, conn, "s", &kgatev1.SubscribeOpen{Topics: []string{topic}, Group: kafkatest.Name("g"), StartPosition: kgatev1.StartPosition_START_POSITION_EARLIEST})
	if !pollUntil(30*time.Second, func() bool { return s.count() == 20 }) {
		t.Fatalf("the stream got %d of 20 records", s.count())
	}

	broker.Stop(t)
	// A publish now waits for an acknowledgement that never comes.
	late := make(chan error, 1)
	go func() {
		_, err := pub.Publish(ctx, &kgatev1.PublishRequest{Topic: topic, Messages: []*kgatev1.Message{{Value: []byte("late")}}})
		late <- err
	}()
	time.Sleep(200 * time.Millisecond) // let that publish reach the gateway (its outcome is checked either way)
	start := time.Now()
	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := gw.wait(t, shutdownTimeout+10*time.Second)
	took := time.Since(start)
	t.Logf("exited %d after %v with the broker stopped", code, took.Round(time.Millisecond))
	if took > shutdownTimeout+2*time.Second { // the margin: the process's exit on a loaded machine
		t.Errorf("the gateway took %v to exit with the broker stopped; want at most --shutdown-timeout (%v) + 2 s", took, shutdownTimeout)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	select {
	case err := <-late:
		// Not written as far as the gateway knows: unknown or unavailable.
		if c := status.Code(err); c != codes.Unknown && c != codes.Unavailable && c != codes.DeadlineExceeded {
			t.Errorf("the publish in flight got %v, want UNKNOWN or UNAVAILABLE", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the publish in flight got no answer")
	}
	if err := s.waitEnd(t, 10*time.Second); status.Code(err) != codes.Unavailable {
		t.Errorf("the stream ended with %v, want UNAVAILABLE", err)
	}
	logs := gw.stderr.String()
	for _, want := range []string{"did not finish before the deadline", "stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %q:\n%s", want, grepLines(logs, "level=ERROR"))
		}
	}
}
