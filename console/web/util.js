// Small helpers the pages share: elements, numbers, bytes, a poller.

// h builds an element: h("td", {class: "num"}, "12", child...).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function num(n) {
  return Number(n || 0).toLocaleString("en-US");
}

export function bytes(n) {
  n = Number(n || 0);
  if (n < 1024) return n + " B";
  const u = ["KiB", "MiB", "GiB", "TiB"];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return n.toFixed(n < 10 ? 1 : 0) + " " + u[i];
}

// fromBase64 decodes proto3 JSON bytes.
export function fromBase64(s) {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// asText is b as UTF-8 text, or null when it is not valid UTF-8.
export function asText(b) {
  try { return new TextDecoder("utf-8", { fatal: true }).decode(b); } catch { return null; }
}

export function asHex(b) {
  const lines = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = b.subarray(i, i + 16);
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, "0")).join(" ");
    const txt = Array.from(row, (x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : ".")).join("");
    lines.push(i.toString(16).padStart(6, "0") + "  " + hex.padEnd(48) + " " + txt);
  }
  return lines.join("\n");
}

// asJSON is b pretty-printed when it is JSON, else null.
export function asJSON(b) {
  const t = asText(b);
  if (t === null) return null;
  try { return JSON.stringify(JSON.parse(t), null, 2); } catch { return null; }
}

// preview is a one-line view of b for lists.
export function preview(b, max = 80) {
  const t = asText(b);
  if (t === null) return "(" + b.length + " bytes, binary)";
  return t.length > max ? t.slice(0, max) + "…" : t;
}

// Poller calls fn every interval ms, one call at a time (the next starts
// an interval after the last ended), and not while the tab is hidden.
// stop() ends it.
export class Poller {
  constructor(interval, fn) {
    this.interval = interval;
    this.fn = fn;
    this.timer = 0;
    this.stopped = false;
    this.onVisible = () => { if (!document.hidden) this.kick(); };
    document.addEventListener("visibilitychange", this.onVisible);
    this.kick();
  }
  kick() {
    if (this.stopped || this.running) return;
    clearTimeout(this.timer);
    this.run();
  }
  async run() {
    if (this.stopped || document.hidden) return; // visibilitychange restarts it
    this.running = true;
    try { await this.fn(); } finally { this.running = false; }
    if (!this.stopped) this.timer = setTimeout(() => this.run(), this.interval);
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisible);
  }
}

// History keeps the last n samples of a series.
export class History {
  constructor(n) { this.n = n; this.values = []; }
  push(v) { this.values.push(v); if (this.values.length > this.n) this.values.shift(); }
}

// fill replaces el's children, leaving out null, undefined and false
// (replaceChildren would show them as text).
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}
