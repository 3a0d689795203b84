// Command brokerd runs franz-go's kfake as its own process, for tests that
// point a gateway process at "an external broker". It prints
// "BROKER <host:port>" on stdout when ready and stops on SIGTERM or SIGINT.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "listen address")
	partitions := flag.Int("partitions", 3, "partitions of auto-created topics")
	autoCreate := flag.Bool("auto-create", true, "create topics on first use")
	produceRate := flag.Int("produce-rate", 0, "records per second the broker accepts, like a cluster at the limit of its disks (0: no limit); produce requests beyond it wait")
	flag.Parse()
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(*partitions),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, *addr) }),
	}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "brokerd: %v\n", err)
		os.Exit(1)
	}
	if *produceRate > 0 {
		throttleProduce(c, *produceRate)
	}
	fmt.Printf("BROKER %s\n", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
}

// throttleProduce makes the cluster accept at most rate records per second:
// each produce request is answered once the records before it and its own
// fit the rate. Waiting requests yield to the rest of the cluster.
func throttleProduce(c *kfake.Cluster, rate int) {
	var mu sync.Mutex
	next := time.Now()
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		n := 0
		for _, t := range kr.(*kmsg.ProduceRequest).Topics {
			for _, p := range t.Partitions {
				n += recordCount(p.Records)
			}
		}
		mu.Lock()
		now := time.Now()
		if next.Before(now) {
			next = now
		}
		next = next.Add(time.Duration(n) * time.Second / time.Duration(rate))
		wake := next
		mu.Unlock()
		if d := time.Until(wake); d > 0 {
			c.SleepControl(func() { time.Sleep(d) })
		}
		return nil, nil, false
	})
}

// recordCount adds the record counts of the record batches in b (the
// RecordBatch format: the count is the int32 at byte 57 of each batch, whose
// length is the int32 at byte 8, counted from byte 12).
func recordCount(b []byte) int {
	n := 0
	for len(b) >= 61 {
		n += int(int32(binary.BigEndian.Uint32(b[57:61])))
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:12])))
		if size <= 12 || size > len(b) {
			break
		}
		b = b[size:]
	}
	return n
}
