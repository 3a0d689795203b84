#!/usr/bin/env node
'use strict';
// A kgate publisher: writes --count messages to --topic in batches of
// --batch, --concurrency requests at a time, and retries what the gateway
// refused for capacity:
//
//   RESOURCE_EXHAUSTED  wait for google.rpc.RetryInfo's delay, then resend only
//                       the messages that were not written: those whose
//                       kgate.v1.PublishFailure outcome is not OK, or the whole
//                       request when the error carries no PublishFailure
//                       (then nothing of it was written).
//   UNAVAILABLE         the same, with exponential backoff.
//   anything else       give up (INVALID_ARGUMENT and friends cannot succeed
//                       unchanged; DEADLINE_EXCEEDED, CANCELED and UNKNOWN
//                       leave the outcome unknown, so a resend may duplicate).
//
//   node publisher.js --addr localhost:8080 --topic orders --count 20
//
// Message i has key "key-<i>" and value "<prefix>-<i>"; every
// --retry-every'th value ends in "-retry", which consumer.js nacks once.
// It gives up after --max-attempts per batch or --timeout-s in all.

const { parseArgs } = require('node:util');
const { grpc, loadKgate, statusDetails, codeName } = require('./kgate');

const { values: opts } = parseArgs({
  options: {
    addr: { type: 'string', default: 'localhost:8080' },
    topic: { type: 'string', default: 'orders' },
    count: { type: 'string', default: '20' },
    batch: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '1' },
    prefix: { type: 'string', default: 'node-order' },
    'retry-every': { type: 'string', default: '5' },
    'max-attempts': { type: 'string', default: '100' },
    'timeout-s': { type: 'string', default: '60' },
    quiet: { type: 'boolean', default: false },
  },
});
const count = Number(opts.count);
const batchSize = Number(opts.batch);
const concurrency = Number(opts.concurrency);
const retryEvery = Number(opts['retry-every']);
const maxAttempts = Number(opts['max-attempts']);
const giveUpAt = Date.now() + Number(opts['timeout-s']) * 1000;

const RETRYABLE = new Set([grpc.status.RESOURCE_EXHAUSTED, grpc.status.UNAVAILABLE]);
const OUTCOME_UNKNOWN = new Set([grpc.status.CANCELED, grpc.status.UNKNOWN, grpc.status.DEADLINE_EXCEEDED]);

const kgate = loadKgate();
const client = new kgate.Publisher(opts.addr, grpc.credentials.createInsecure());

const messages = [];
for (let i = 0; i < count; i++) {
  const suffix = retryEvery > 0 && i % retryEvery === retryEvery - 1 ? '-retry' : '';
  messages.push({ key: Buffer.from(`key-${i}`), value: Buffer.from(`${opts.prefix}-${i}${suffix}`) });
}
const written = new Array(count).fill(null); // PublishResult per message
const stats = { requests: 0, sent: 0, exhausted: 0, partial: 0, retried: 0 };

function publish(req) {
  return new Promise((resolve, reject) => {
    client.Publish(req, { deadline: Date.now() + 30_000 }, (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function record(i, result) {
  written[i] = result;
  if (!opts.quiet) {
    console.log(`written key-${i} value=${messages[i].value} partition=${result.partition} offset=${result.offset}`);
  }
}

// publishBatch writes the messages with indexes idx, retrying until all are written.
async function publishBatch(idx) {
  let pending = idx;
  let backoff = 100;
  for (let attempt = 1; pending.length > 0; attempt++) {
    if (attempt > maxAttempts) throw new Error(`gave up after ${maxAttempts} attempts`);
    if (Date.now() > giveUpAt) throw new Error(`gave up after ${opts['timeout-s']} s (--timeout-s)`);
    stats.requests++;
    stats.sent += pending.length;
    try {
      const resp = await publish({ topic: opts.topic, messages: pending.map((i) => messages[i]) });
      resp.results.forEach((r, j) => record(pending[j], r));
      pending = [];
    } catch (err) {
      const d = statusDetails(err);
      const reason = d.errorInfo ? d.errorInfo.reason : '';
      if (!RETRYABLE.has(err.code)) {
        const unknown = OUTCOME_UNKNOWN.has(err.code) ? ' (the outcome is unknown: the messages may be written)' : '';
        throw new Error(`${codeName(err.code)} reason=${reason}: ${err.details}${unknown}`);
      }
      let failed = pending;
      if (d.publishFailure) {
        failed = [];
        d.publishFailure.outcomes.forEach((o, j) => {
          if (o.code === grpc.status.OK) record(pending[j], o.result);
          else if (RETRYABLE.has(o.code)) failed.push(pending[j]);
          else {
            const unknown = OUTCOME_UNKNOWN.has(o.code) ? ' (the outcome is unknown: it may be written)' : '';
            throw new Error(`message key-${pending[j]}: ${codeName(o.code)} ${o.reason}: ${o.message}${unknown}`);
          }
        });
        stats.partial++;
      }
      let delay = d.retryDelayMs;
      let why = `retry_delay=${delay}ms (google.rpc.RetryInfo)`;
      if (err.code === grpc.status.RESOURCE_EXHAUSTED) {
        stats.exhausted++;
        if (delay === null) delay = 100; // kgate always sends RetryInfo; be safe anyway
      } else {
        delay = backoff;
        backoff = Math.min(backoff * 2, 5000);
        why = `backoff=${delay}ms`;
      }
      const how = d.publishFailure
        ? `written=${pending.length - failed.length}/${pending.length} (kgate.v1.PublishFailure)`
        : `written=0/${pending.length} (no kgate.v1.PublishFailure: none written)`;
      console.log(`${codeName(err.code)} reason=${reason} ${why} ${how}: waiting ${delay}ms, then retrying only the ${failed.length} not written`);
      stats.retried += failed.length;
      await sleep(delay);
      pending = failed;
    }
  }
}

async function main() {
  const batches = [];
  for (let i = 0; i < count; i += batchSize) {
    batches.push(Array.from({ length: Math.min(batchSize, count - i) }, (_, j) => i + j));
  }
  let next = 0;
  const worker = async () => {
    while (next < batches.length) await publishBatch(batches[next++]);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const n = written.filter((r) => r !== null).length;
  console.log(
    `SUMMARY written=${n}/${count} requests=${stats.requests} sent_messages=${stats.sent} ` +
      `resource_exhausted=${stats.exhausted} partial=${stats.partial} retried_messages=${stats.retried}`,
  );
  // Every message was sent once, plus once per retry of it: nothing written was sent again.
  if (n !== count || stats.sent !== count + stats.retried) throw new Error('not every message was written exactly once');
}

main()
  .then(() => client.close())
  .catch((err) => {
    console.error(`publisher failed: ${err.message}`);
    client.close();
    process.exitCode = 1;
  });
