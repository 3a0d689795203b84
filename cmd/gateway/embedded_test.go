package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kgate/kgate/internal/kafkatest"
)

// The embedded broker drops a partition's oldest records beyond its
// retention, so a long-running `make run` does not grow without bound.
func TestEmbeddedBrokerEnforcesRetention(t *testing.T) {
	b, err := startEmbedded("127.0.0.1:0", 1, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl := kafkatest.Client(t, b.Addr(), kgo.DefaultProduceTopic("retained"), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	value := []byte(strings.Repeat("x", 1000))
	for i := 0; i < 40; i++ { // 40 batches of 10 KB: 400 KB, six times the retention
		var recs []*kgo.Record
		for j := 0; j < 10; j++ {
			recs = append(recs, &kgo.Record{Value: value})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b.cluster.ApplyRetention() // what the broker's ticker does every retentionEvery
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, "retained")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := starts.Lookup("retained", 0)
	if o.Offset < 200 {
		t.Fatalf("partition starts at offset %d after 400 records of 1 KB with 64 KB retention; want the oldest dropped", o.Offset)
	}
	t.Logf("400 records of 1 KB with 64 KB retention: partition now starts at offset %d", o.Offset)
}
