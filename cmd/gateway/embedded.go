package main

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// embeddedBroker is an in-memory, single-node Kafka (franz-go's kfake)
// speaking the real wire protocol, for trying kgate without a cluster. It
// keeps at most retentionBytes per partition: one goroutine, stopped by
// Close, drops the oldest records beyond that every retentionEvery.
type embeddedBroker struct {
	cluster *kfake.Cluster
	addr    string
	stop    chan struct{}
	wg      sync.WaitGroup
}

// retentionEvery is how often the embedded broker enforces its retention.
const retentionEvery = 10 * time.Second

// startEmbedded starts the broker on addr; topics are created on first use
// with partitions partitions; each partition keeps about retentionBytes.
func startEmbedded(addr string, partitions int, retentionBytes int64) (*embeddedBroker, error) {
	var bound string
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err == nil {
				bound = ln.Addr().String()
			}
			return ln, err
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(partitions),
		kfake.BrokerConfigs(map[string]string{"log.retention.bytes": strconv.FormatInt(retentionBytes, 10)}),
	)
	if err != nil {
		return nil, fmt.Errorf("starting the embedded Kafka broker on %s: %w (is something else using it? choose another --embedded-kafka, or use --brokers)", addr, err)
	}
	b := &embeddedBroker{cluster: c, addr: bound, stop: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(retentionEvery)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				c.ApplyRetention()
			}
		}
	}()
	return b, nil
}

// Addr is the broker's bootstrap address.
func (b *embeddedBroker) Addr() string { return b.addr }

// Close stops the broker; everything it held is gone.
func (b *embeddedBroker) Close() {
	close(b.stop)
	b.wg.Wait()
	b.cluster.Close()
}
