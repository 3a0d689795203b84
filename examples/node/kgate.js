'use strict';
// Shared by publisher.js and consumer.js: loads kgate's API from ../../proto
// at run time (no generated code) and decodes the rich error details kgate
// sends in the grpc-status-details-bin trailer.

const path = require('node:path');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_DIR = path.resolve(__dirname, '../../proto');
// Minimal google.rpc.Status, RetryInfo and ErrorInfo (see the files).
const GOOGLEAPIS_DIR = path.resolve(__dirname, '../googleapis');

// Field names as in the .proto (ack_id, delivery_attempt), int64 as decimal
// strings, enums by name, and `response`/`request` naming the oneof member
// that is set. google/protobuf/*.proto are not in includeDirs: protobufjs
// bundles them and proto-loader resolves those imports to its copies.
const LOADER_OPTIONS = {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

function loadKgate() {
  const def = protoLoader.loadSync(['kgate/v1/publisher.proto', 'kgate/v1/subscriber.proto'], LOADER_OPTIONS);
  return grpc.loadPackageDefinition(def).kgate.v1;
}

// Types for the status details, in a protobufjs Root of their own.
const detailsRoot = new protobuf.Root();
detailsRoot.resolvePath = (origin, target) => {
  for (const dir of [GOOGLEAPIS_DIR, PROTO_DIR]) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  return target; // google/protobuf/*.proto: bundled with protobufjs
};
detailsRoot.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto', 'kgate/v1/publisher.proto'], {
  keepCase: true,
});
const StatusType = detailsRoot.lookupType('google.rpc.Status');

function durationMs(d) {
  return Number(d.seconds || 0) * 1000 + Math.round((d.nanos || 0) / 1e6);
}

// statusDetails returns what a failed call's trailer says:
// { errorInfo: {reason, domain, metadata} | null, retryDelayMs: number | null,
//   publishFailure: {outcomes: [{code, reason, message, result}]} | null }.
function statusDetails(err) {
  const out = { errorInfo: null, retryDelayMs: null, publishFailure: null };
  const bins = err && err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
  if (!bins || bins.length === 0) return out;
  const st = StatusType.decode(bins[0]);
  for (const any of st.details) {
    const name = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    const type = detailsRoot.lookup(name);
    if (!(type instanceof protobuf.Type)) continue; // a detail this client does not know
    const msg = type.toObject(type.decode(any.value), { longs: String, defaults: true });
    switch (name) {
      case 'google.rpc.ErrorInfo':
        out.errorInfo = msg;
        break;
      case 'google.rpc.RetryInfo':
        out.retryDelayMs = durationMs(msg.retry_delay || {});
        break;
      case 'kgate.v1.PublishFailure':
        out.publishFailure = msg;
        break;
    }
  }
  return out;
}

function codeName(code) {
  return Object.keys(grpc.status).find((k) => grpc.status[k] === code) || String(code);
}

module.exports = { grpc, loadKgate, statusDetails, codeName };
