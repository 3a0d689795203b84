"""A kgate publisher (grpcio).

Writes --count messages to --topic in batches of --batch, --concurrency
requests at a time, and retries what the gateway refused for capacity:

  RESOURCE_EXHAUSTED  wait for google.rpc.RetryInfo's delay, then resend only
                      the messages that were not written: those whose
                      kgate.v1.PublishFailure outcome is not OK, or the whole
                      request when the error carries no PublishFailure (then
                      nothing of it was written).
  UNAVAILABLE         the same, with exponential backoff.
  anything else       give up (INVALID_ARGUMENT and friends cannot succeed
                      unchanged; DEADLINE_EXCEEDED, CANCELLED and UNKNOWN leave
                      the outcome unknown, so a resend may duplicate).

    ./gen.sh /tmp/kgate-py    # the generated modules, once
    PYTHONPATH=/tmp/kgate-py /usr/bin/python3 publisher.py --addr localhost:8080 --topic orders

Message i has key "key-<i>" and value "<prefix>-<i>"; every --retry-every'th
value ends in "-retry", which consumer.py nacks once. It gives up after
--max-attempts per batch or --timeout-s in all.
"""

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from kgate.v1 import publisher_pb2, publisher_pb2_grpc

from kgate_status import status_details

RETRYABLE = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}
OUTCOME_UNKNOWN = {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
# MessageOutcome.code uses google.rpc.Code numbers.
CODE_BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}


class PublishError(Exception):
    pass


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", default="localhost:8080")
    p.add_argument("--topic", default="orders")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--prefix", default="python-order")
    p.add_argument("--retry-every", type=int, default=5)
    p.add_argument("--max-attempts", type=int, default=100)
    p.add_argument("--timeout-s", type=float, default=60)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    give_up_at = time.monotonic() + args.timeout_s

    messages = []
    for i in range(args.count):
        suffix = "-retry" if args.retry_every > 0 and i % args.retry_every == args.retry_every - 1 else ""
        messages.append(publisher_pb2.Message(key=f"key-{i}".encode(), value=f"{args.prefix}-{i}{suffix}".encode()))
    written = [None] * args.count  # PublishResult per message
    stats = {"requests": 0, "sent": 0, "exhausted": 0, "partial": 0, "retried": 0}
    lock = threading.Lock()

    def log(line: str) -> None:
        with lock:
            print(line, flush=True)

    def record(i: int, result: publisher_pb2.PublishResult) -> None:
        written[i] = result
        if not args.quiet:
            log(f"written key-{i} value={messages[i].value.decode()} partition={result.partition} offset={result.offset}")

    def publish_batch(stub: publisher_pb2_grpc.PublisherStub, idx: list) -> None:
        pending = idx
        backoff = 0.1
        attempt = 0
        while pending:
            attempt += 1
            if attempt > args.max_attempts:
                raise PublishError(f"gave up after {args.max_attempts} attempts")
            if time.monotonic() > give_up_at:
                raise PublishError(f"gave up after {args.timeout_s:g} s (--timeout-s)")
            with lock:
                stats["requests"] += 1
                stats["sent"] += len(pending)
            req = publisher_pb2.PublishRequest(topic=args.topic, messages=[messages[i] for i in pending])
            try:
                resp = stub.Publish(req, timeout=30)
            except grpc.RpcError as err:
                code = err.code()
                d = status_details(err)
                if code not in RETRYABLE:
                    unknown = " (the outcome is unknown: the messages may be written)" if code in OUTCOME_UNKNOWN else ""
                    raise PublishError(f"{code.name} reason={d.reason}: {err.details()}{unknown}") from None
                failed = pending
                if d.publish_failure is not None:
                    failed = []
                    for j, o in enumerate(d.publish_failure.outcomes):
                        oc = CODE_BY_NUMBER.get(o.code, grpc.StatusCode.UNKNOWN)
                        if oc == grpc.StatusCode.OK:
                            record(pending[j], o.result)
                        elif oc in RETRYABLE:
                            failed.append(pending[j])
                        else:
                            unknown = " (the outcome is unknown: it may be written)" if oc in OUTCOME_UNKNOWN else ""
                            raise PublishError(f"message key-{pending[j]}: {oc.name} {o.reason}: {o.message}{unknown}")
                    with lock:
                        stats["partial"] += 1
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    # kgate always sends RetryInfo with RESOURCE_EXHAUSTED; be safe anyway.
                    delay = d.retry_delay_s if d.retry_delay_s is not None else 0.1
                    why = f"retry_delay={round(delay * 1000)}ms (google.rpc.RetryInfo)"
                    with lock:
                        stats["exhausted"] += 1
                else:
                    delay, backoff = backoff, min(backoff * 2, 5.0)
                    why = f"backoff={round(delay * 1000)}ms"
                if d.publish_failure is not None:
                    how = f"written={len(pending) - len(failed)}/{len(pending)} (kgate.v1.PublishFailure)"
                else:
                    how = f"written=0/{len(pending)} (no kgate.v1.PublishFailure: none written)"
                log(f"{code.name} reason={d.reason} {why} {how}: waiting {round(delay * 1000)}ms, "
                    f"then retrying only the {len(failed)} not written")
                with lock:
                    stats["retried"] += len(failed)
                time.sleep(delay)
                pending = failed
                continue
            for j, r in enumerate(resp.results):
                record(pending[j], r)
            pending = []

    batches = [list(range(i, min(i + args.batch, args.count))) for i in range(0, args.count, args.batch)]
    with grpc.insecure_channel(args.addr) as channel:
        stub = publisher_pb2_grpc.PublisherStub(channel)
        pool = ThreadPoolExecutor(max_workers=args.concurrency)
        try:
            for f in [pool.submit(publish_batch, stub, b) for b in batches]:
                f.result()
        except PublishError as e:
            print(f"publisher failed: {e}", file=sys.stderr)
            return 1
        finally:
            pool.shutdown(cancel_futures=True)  # batches not started yet are dropped
    n = sum(1 for r in written if r is not None)
    print(f"SUMMARY written={n}/{args.count} requests={stats['requests']} sent_messages={stats['sent']} "
          f"resource_exhausted={stats['exhausted']} partial={stats['partial']} retried_messages={stats['retried']}")
    # Every message was sent once, plus once per retry of it: nothing written was sent again.
    if n != args.count or stats["sent"] != args.count + stats["retried"]:
        print("publisher failed: not every message was written exactly once", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
