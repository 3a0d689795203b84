package main

import (
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// embeddedBroker is an in-memory, single-node Kafka (franz-go's kfake)
// speaking the real wire protocol, for trying kgate without a cluster.
type embeddedBroker struct {
	cluster *kfake.Cluster
	addr    string
}

// startEmbedded starts the broker on addr; topics are created on first use
// with partitions partitions.
func startEmbedded(addr string, partitions int) (*embeddedBroker, error) {
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
	)
	if err != nil {
		return nil, fmt.Errorf("starting the embedded Kafka broker on %s: %w (is something else using it? choose another --embedded-kafka, or use --brokers)", addr, err)
	}
	return &embeddedBroker{cluster: c, addr: bound}, nil
}

// Addr is the broker's bootstrap address.
func (b *embeddedBroker) Addr() string { return b.addr }

// Close stops the broker; everything it held is gone.
func (b *embeddedBroker) Close() { b.cluster.Close() }
