"""A kgate streaming consumer (grpcio).

Opens a Subscribe stream for --topic in consumer group --group and acks every
record, except that a record whose value contains "retry" is nacked with a
--nack-delay-ms delay on its first delivery and acked when it comes back
(delivery_attempt 2).

    ./gen.sh /tmp/kgate-py    # the generated modules, once
    PYTHONPATH=/tmp/kgate-py /usr/bin/python3 consumer.py --addr localhost:8080 --topic orders --group billing --expect 20

It stops by itself: after it acked --expect records (and --linger-ms more to
notice extra ones) it half-closes the stream, so the gateway commits the
acked offsets and ends the stream with OK; after --timeout-s it gives up.
"""

import argparse
import queue
import sys
import threading

import grpc
from google.protobuf import duration_pb2
from kgate.v1 import subscriber_pb2, subscriber_pb2_grpc

_END = object()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", default="localhost:8080")
    p.add_argument("--topic", default="orders")
    p.add_argument("--group", default="python-example")
    p.add_argument("--expect", type=int, default=20)
    p.add_argument("--nack-delay-ms", type=int, default=200)
    p.add_argument("--linger-ms", type=int, default=300)
    p.add_argument("--timeout-s", type=float, default=30)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    # Requests go through a queue: the stream sends whatever is put there and
    # half-closes at _END.
    outbox: "queue.Queue" = queue.Queue()

    def requests():
        while True:
            r = outbox.get()
            if r is _END:
                return
            yield r

    outbox.put(subscriber_pb2.SubscribeRequest(open=subscriber_pb2.SubscribeOpen(
        topics=[args.topic],
        group=args.group,
        start_position=subscriber_pb2.START_POSITION_EARLIEST,
        max_outstanding_messages=100,
    )))

    records, values, acked = set(), set(), set()
    nacked = redelivered = 0
    finishing = False
    failed = None
    status = "OK"
    nack_delay = duration_pb2.Duration()
    nack_delay.FromMilliseconds(args.nack_delay_ms)

    with grpc.insecure_channel(args.addr) as channel:
        stub = subscriber_pb2_grpc.SubscriberStub(channel)
        # The deadline bounds the whole run; ending on time half-closes instead.
        stream = stub.Subscribe(requests(), timeout=args.timeout_s)
        try:
            for resp in stream:
                kind = resp.WhichOneof("response")
                if kind == "assignment":
                    tp = lambda l: ",".join(f"{x.topic}/{x.partition}" for x in l)  # noqa: E731
                    print(f"assigned [{tp(resp.assignment.assigned)}] revoked [{tp(resp.assignment.revoked)}]", flush=True)
                    continue
                if kind != "message":
                    continue
                m = resp.message
                rid = (m.partition, m.offset)
                value = m.value.decode()
                records.add(rid)
                values.add(value)
                where = f"value={value} partition={m.partition} offset={m.offset} delivery_attempt={m.delivery_attempt}"
                if "retry" in value and m.delivery_attempt == 1:
                    # Not now: deliver it again after the delay, with delivery_attempt 2.
                    nacked += 1
                    outbox.put(subscriber_pb2.SubscribeRequest(nack=subscriber_pb2.SubscribeNack(
                        ack_ids=[m.ack_id], delay=nack_delay)))
                    print(f"nacked {where} delay={args.nack_delay_ms}ms", flush=True)
                    continue
                if m.delivery_attempt > 1:
                    redelivered += 1
                outbox.put(subscriber_pb2.SubscribeRequest(ack=subscriber_pb2.SubscribeAck(ack_ids=[m.ack_id])))
                acked.add(rid)
                if not args.quiet or m.delivery_attempt > 1:
                    print(f"acked {where}{' (redelivered after nack)' if m.delivery_attempt > 1 else ''}", flush=True)
                if len(acked) >= args.expect and not finishing:
                    finishing = True
                    # Linger a little to notice records beyond the expected
                    # ones, then half-close: the gateway commits the acked
                    # offsets and ends the stream with OK.
                    threading.Timer(args.linger_ms / 1000, outbox.put, (_END,)).start()
        except grpc.RpcError as err:
            status = err.code().name
            if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                failed = f"timed out after {args.timeout_s:g}s with {len(acked)} of {args.expect} records acked"
            else:
                failed = f"stream ended with {err.code().name}: {err.details()}"
        finally:
            outbox.put(_END)  # ends the request iterator whatever happened

    print(f"SUMMARY records={len(records)} distinct_values={len(values)} acked={len(acked)} "
          f"nacked={nacked} redelivered={redelivered} status={status}", flush=True)
    if failed is None and (len(records) != args.expect or len(values) != args.expect):
        failed = (f"expected {args.expect} records with distinct values, "
                  f"got {len(records)} records with {len(values)} distinct values")
    if failed:
        print(f"consumer failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
