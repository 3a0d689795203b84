#!/usr/bin/env node
'use strict';
// A kgate streaming consumer: opens a Subscribe stream for --topic in
// consumer group --group, acks every record, except that a record whose value
// contains "retry" is nacked with a --nack-delay-ms delay on its first delivery
// and acked when it comes back (delivery_attempt 2).
//
//   node consumer.js --addr localhost:8080 --topic orders --group billing --expect 20
//
// It stops by itself: after it acked --expect records (and --linger-ms more
// to notice extra ones) it half-closes the stream, so the gateway commits the
// acked offsets and ends the stream with OK; after --timeout-s it gives up.

const { parseArgs } = require('node:util');
const { grpc, loadKgate, codeName } = require('./kgate');

const { values: opts } = parseArgs({
  options: {
    addr: { type: 'string', default: 'localhost:8080' },
    topic: { type: 'string', default: 'orders' },
    group: { type: 'string', default: 'node-example' },
    expect: { type: 'string', default: '20' },
    'nack-delay-ms': { type: 'string', default: '200' },
    'linger-ms': { type: 'string', default: '300' },
    'timeout-s': { type: 'string', default: '30' },
    quiet: { type: 'boolean', default: false },
  },
});
const expect = Number(opts.expect);
const nackDelayMs = Number(opts['nack-delay-ms']);

const kgate = loadKgate();
const client = new kgate.Subscriber(opts.addr, grpc.credentials.createInsecure());

const records = new Set(); // "partition/offset" of every record seen
const values = new Set(); // distinct values seen
const acked = new Set(); // "partition/offset" acked
let nacked = 0;
let redelivered = 0;
let finishing = false;
let failed = null;

const call = client.Subscribe();
const timer = setTimeout(() => {
  failed = `timed out after ${opts['timeout-s']}s with ${acked.size} of ${expect} records acked`;
  call.cancel();
}, Number(opts['timeout-s']) * 1000);

call.write({
  open: {
    topics: [opts.topic],
    group: opts.group,
    start_position: 'START_POSITION_EARLIEST',
    max_outstanding_messages: 100,
  },
});

call.on('data', (resp) => {
  if (resp.response === 'assignment') {
    const tp = (l) => l.map((p) => `${p.topic}/${p.partition}`).join(',');
    console.log(`assigned [${tp(resp.assignment.assigned)}] revoked [${tp(resp.assignment.revoked)}]`);
    return;
  }
  if (resp.response !== 'message') return;
  const m = resp.message;
  const id = `${m.partition}/${m.offset}`;
  const value = m.value.toString();
  records.add(id);
  values.add(value);
  const where = `value=${value} partition=${m.partition} offset=${m.offset} delivery_attempt=${m.delivery_attempt}`;
  if (value.includes('retry') && m.delivery_attempt === 1) {
    // Not now: deliver it again after the delay, with delivery_attempt 2.
    nacked++;
    call.write({ nack: { ack_ids: [m.ack_id], delay: { seconds: 0, nanos: nackDelayMs * 1e6 } } });
    console.log(`nacked ${where} delay=${nackDelayMs}ms`);
    return;
  }
  if (m.delivery_attempt > 1) redelivered++;
  call.write({ ack: { ack_ids: [m.ack_id] } });
  acked.add(id);
  if (!opts.quiet || m.delivery_attempt > 1) {
    console.log(`acked ${where}${m.delivery_attempt > 1 ? ' (redelivered after nack)' : ''}`);
  }
  if (acked.size >= expect && !finishing) {
    finishing = true;
    // Linger a little to notice records beyond the expected ones, then
    // half-close: the gateway commits the acked offsets and ends with OK.
    setTimeout(() => call.end(), Number(opts['linger-ms']));
  }
});

call.on('error', (err) => {
  if (!failed) failed = `stream ended with ${codeName(err.code)}: ${err.details}`;
});

call.on('status', (st) => {
  clearTimeout(timer);
  console.log(
    `SUMMARY records=${records.size} distinct_values=${values.size} acked=${acked.size} ` +
      `nacked=${nacked} redelivered=${redelivered} status=${codeName(st.code)}`,
  );
  if (!failed && (records.size !== expect || values.size !== expect)) {
    failed = `expected ${expect} records with distinct values, got ${records.size} records with ${values.size} distinct values`;
  }
  client.close();
  if (failed) {
    console.error(`consumer failed: ${failed}`);
    process.exitCode = 1;
  }
});
