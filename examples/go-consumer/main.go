// Command go-consumer is a short kgate streaming consumer: it subscribes to a
// topic, acks records it handles, and nacks (with a delay) records it
// cannot handle yet. Run a gateway (make run), then:
//
//	go run ./examples/go-consumer --topic orders --group billing
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "kgate gRPC address")
	topic := flag.String("topic", "orders", "topic to consume")
	group := flag.String("group", "example", "consumer group")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	stream, err := kgatev1.NewSubscriberClient(conn).Subscribe(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// The first message opens the subscription.
	err = stream.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Open{Open: &kgatev1.SubscribeOpen{
		Topics:                 []string{*topic},
		Group:                  *group,
		StartPosition:          kgatev1.StartPosition_START_POSITION_EARLIEST,
		MaxOutstandingMessages: 100,
		AckDeadline:            durationpb.New(30 * time.Second),
		// Records come in batches (`messages`) of whatever is ready, up to
		// 100: cheaper per record for the gateway and for us.
		MaxMessagesPerResponse: 100,
	}}})
	if err != nil {
		log.Fatal(err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			log.Printf("stream ended: %v (reconnect to resume from the committed offsets)", err)
			return
		}
		switch r := resp.GetResponse().(type) {
		case *kgatev1.SubscribeResponse_Assignment:
			log.Printf("assigned %v, revoked %v", r.Assignment.GetAssigned(), r.Assignment.GetRevoked())
		case *kgatev1.SubscribeResponse_Messages:
			var acks, nacks []string
			for _, m := range r.Messages.GetMessages() {
				if err := handle(m); err != nil {
					nacks = append(nacks, m.GetAckId())
				} else {
					acks = append(acks, m.GetAckId())
				}
			}
			if len(acks) > 0 {
				err = stream.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Ack{Ack: &kgatev1.SubscribeAck{AckIds: acks}}})
			}
			if err == nil && len(nacks) > 0 {
				// Not now: deliver them again in 5 s (delivery_attempt + 1).
				err = stream.Send(&kgatev1.SubscribeRequest{Request: &kgatev1.SubscribeRequest_Nack{Nack: &kgatev1.SubscribeNack{
					AckIds: nacks, Delay: durationpb.New(5 * time.Second)}}})
			}
			if err != nil {
				log.Printf("sending acks/nacks: %v", err)
				return
			}
		}
	}
}

// handle processes one record; here, values containing "retry" fail the
// first two times.
func handle(m *kgatev1.ReceivedMessage) error {
	fmt.Printf("%s/%d@%d attempt %d: %s\n", m.GetTopic(), m.GetPartition(), m.GetOffset(), m.GetDeliveryAttempt(), m.GetValue())
	if strings.Contains(string(m.GetValue()), "retry") && m.GetDeliveryAttempt() < 3 {
		return fmt.Errorf("not yet")
	}
	return nil
}
