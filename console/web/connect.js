// A Connect-protocol server-stream client over fetch: the request is one
// enveloped JSON message, the response a series of envelopes (1 byte of
// flags, 4 bytes of big-endian length, the JSON), the last of which (flag
// 0x02) ends the stream, with an error when it failed. See
// https://connectrpc.com/docs/protocol#streaming-response. No library:
// it is the 60 lines below. Works in browsers and in Node.js 18+.

const endStream = 0x02;
const compressed = 0x01;

// ConnectError is a failed call: code is the Connect code name
// ("permission_denied", ...), reason kgate's ErrorInfo reason when there
// is one.
export class ConnectError extends Error {
  constructor(code, message, details) {
    super(message || code);
    this.code = code;
    this.details = details || [];
    const info = this.details.find((d) => (d.type || "").endsWith("google.rpc.ErrorInfo"));
    this.reason = info?.debug?.reason || "";
  }
}

function envelope(obj) {
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const out = new Uint8Array(5 + json.length);
  new DataView(out.buffer).setUint32(1, json.length);
  out.set(json, 5);
  return out;
}

// serverStream calls a server-streaming method (url: "/pkg.Service/Method")
// with request and calls onMessage(obj) for each response message, in
// order. It resolves when the stream ends cleanly and rejects with a
// ConnectError when it ends with an error, or with the AbortError of
// signal. headers are added to the request's (Authorization, say).
export async function serverStream(url, request, { headers = {}, signal, onMessage }) {
  const resp = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/connect+json", "Connect-Protocol-Version": "1", ...headers },
    body: envelope(request),
    signal,
  });
  if (resp.status !== 200) {
    // Not the protocol's stream (a proxy, a 413, a wrong route): the body,
    // when JSON, says why.
    let msg = `HTTP ${resp.status}`;
    let code = "unknown";
    try {
      const j = await resp.json();
      msg = j.message || msg;
      code = typeof j.code === "string" ? j.code : code;
    } catch { /* not JSON */ }
    throw new ConnectError(code, msg);
  }
  const reader = resp.body.getReader();
  let buf = new Uint8Array(0);
  for (;;) {
    // Take every whole envelope in buf.
    while (buf.length >= 5) {
      const flags = buf[0];
      const len = new DataView(buf.buffer, buf.byteOffset, 5).getUint32(1);
      if (buf.length < 5 + len) break;
      const data = buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
      if (flags & compressed) throw new ConnectError("internal", "the gateway sent a compressed message, which was not asked for");
      const obj = JSON.parse(new TextDecoder().decode(data));
      if (flags & endStream) {
        if (obj.error) throw new ConnectError(obj.error.code, obj.error.message, obj.error.details);
        return;
      }
      onMessage(obj);
    }
    const { done, value } = await reader.read();
    if (done) throw new ConnectError("unavailable", "the stream was cut before it ended (the gateway or the network went away)");
    const joined = new Uint8Array(buf.length + value.length);
    joined.set(buf);
    joined.set(value, buf.length);
    buf = joined;
  }
}
