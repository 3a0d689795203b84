#!/usr/bin/env node
'use strict';
// Tails a topic over HTTP/1.1 with the Connect protocol (@connectrpc/connect-node),
// as a browser or any fetch-based client can: kgate.v1.Subscriber/Tail is a
// server stream, and each record is acked with the unary
// kgate.v1.Subscriber/Ack, naming the tail's id from its first response.
//
//   node tail.js --url http://localhost:8081 --descriptors kgate.binpb --topic orders --group node-tail --expect 20
//
// --descriptors is a FileDescriptorSet of proto/ with its imports (no code is
// generated): `buf build -o kgate.binpb` makes one. It stops after acking
// --expect records (closing the tail, so the gateway commits), or fails
// after --timeout-s.

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { createClient } = require('@connectrpc/connect');
const { createConnectTransport } = require('@connectrpc/connect-node');
const { createFileRegistry, fromBinary } = require('@bufbuild/protobuf');
const { FileDescriptorSetSchema } = require('@bufbuild/protobuf/wkt');

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:8081' },
    descriptors: { type: 'string', default: 'kgate.binpb' },
    topic: { type: 'string', default: 'orders' },
    group: { type: 'string', default: 'node-tail' },
    expect: { type: 'string', default: '20' },
    token: { type: 'string', default: '' },
    'timeout-s': { type: 'string', default: '30' },
  },
});
const expect = Number(opts.expect);

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(opts.descriptors)));
const Subscriber = registry.getService('kgate.v1.Subscriber');
// HTTP/1.1, JSON on the wire: what a browser's fetch does.
const transport = createConnectTransport({ baseUrl: opts.url, httpVersion: '1.1', useBinaryFormat: false });
const client = createClient(Subscriber, transport);
const headers = opts.token ? { authorization: `Bearer ${opts.token}` } : {};

async function main() {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`timed out after ${opts['timeout-s']} s`)), Number(opts['timeout-s']) * 1000);
  let tail = '';
  let acked = 0;
  const seen = new Set();
  try {
    const stream = client.tail(
      { open: { topics: [opts.topic], group: opts.group, startPosition: 1 /* START_POSITION_EARLIEST */, maxOutstandingMessages: 100 } },
      { signal: abort.signal, headers },
    );
    for await (const resp of stream) {
      const r = resp.response;
      if (r.case === 'opened') {
        tail = r.value.tail;
        console.log(`opened tail=${tail} ack_deadline=${r.value.ackDeadline ? Number(r.value.ackDeadline.seconds) : 0}s`);
        continue;
      }
      if (r.case !== 'message') continue; // assignment notices
      const m = r.value;
      seen.add(`${m.partition}/${m.offset}`);
      console.log(`record partition=${m.partition} offset=${m.offset} value=${Buffer.from(m.value).toString()} delivery_attempt=${m.deliveryAttempt}`);
      // Ack through the unary call: it must reach the gateway that serves the tail.
      await client.ack({ tail, ackIds: [m.ackId] }, { headers });
      acked++;
      if (acked >= expect) break; // leaving the loop closes the tail
    }
  } finally {
    clearTimeout(timer);
    abort.abort(); // closes the tail if it is still open
  }
  console.log(`SUMMARY records=${seen.size} acked=${acked} tail=${tail ? 'opened' : 'none'}`);
  if (acked < expect) throw new Error(`the tail ended with ${acked} of ${expect} records acked`);
}

main().then(
  () => process.exit(0), // keep-alive sockets would keep node running
  (err) => {
    console.error(`tail failed: ${err.code !== undefined ? `code=${err.code} ` : ''}${err.message}`);
    process.exit(1);
  },
);
