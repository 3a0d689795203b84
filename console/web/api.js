// The gateway's API as the console calls it: REST JSON routes (the
// google.api.http options of proto/kgate/v1) on the page's own origin,
// with the tab's bearer token. The gateway checks every call; the console
// only reads what it is allowed to read.

import { serverStream } from "./connect.js";

const tokenKey = "kgate.console.token";

// The token lives in sessionStorage: this tab only, gone when it closes.
export function token() { return sessionStorage.getItem(tokenKey) || ""; }
export function setToken(t) {
  if (t) sessionStorage.setItem(tokenKey, t);
  else sessionStorage.removeItem(tokenKey);
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: "Bearer " + t } : {};
}

// gRPC codes by number, as the REST routes answer them.
const codeNames = ["ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
  "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range", "unimplemented",
  "internal", "unavailable", "data_loss", "unauthenticated"];

// ApiError is a refused or failed call: code is the gRPC code's name in
// lower case ("permission_denied"), reason kgate's ErrorInfo reason.
export class ApiError extends Error {
  constructor(code, message, reason) {
    super(message);
    this.code = code;
    this.reason = reason || "";
  }
}

// bytesIn counts the bytes of response bodies this page read (for the
// footer: what the page costs).
export const stats = { requests: 0, bytes: 0 };

// call makes one REST call and returns its JSON answer, or throws ApiError.
export async function call(method, path, body) {
  const init = { method, headers: { ...authHeaders() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError("unavailable", "the gateway did not answer: " + e.message);
  }
  const text = await resp.text();
  stats.requests++;
  stats.bytes += text.length;
  let j = null;
  try { j = JSON.parse(text); } catch { /* not JSON */ }
  if (resp.ok && j) return j;
  if (j && typeof j.code === "number") {
    const info = (j.details || []).find((d) => (d["@type"] || "").endsWith("google.rpc.ErrorInfo"));
    throw new ApiError(codeNames[j.code] || "unknown", j.message, info?.reason);
  }
  throw new ApiError("unknown", `HTTP ${resp.status} from ${path}`);
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);
export const enc = encodeURIComponent;

// tail opens kgate.v1.Subscriber/Tail over the Connect protocol; see
// connect.js.
export function tail(open, { signal, onMessage }) {
  return serverStream("/kgate.v1.Subscriber/Tail", { open }, { headers: authHeaders(), signal, onMessage });
}

// explain turns an error into a sentence for people, with what to do.
export function explain(e) {
  if (e?.name === "AbortError") return "";
  const code = e?.code || "";
  if (code === "unauthenticated") return "This gateway requires an identity: sign in with a bearer token. (" + e.message + ")";
  if (code === "permission_denied") return "Not allowed for you: " + e.message;
  if (e?.reason === "ADMIN_BUSY") return "The gateway is reading records for other callers (at most 4 at once): this page tries again at its next refresh.";
  return e?.message || String(e);
}
