// The console in a real browser: Playwright (playwright-core) drives
// Debian's chromium against a gateway process (cmd/gateway) in front of a
// broker process (internal/kafkatest/brokerd, kfake over TCP), with tokens
// and an ACL. Run by `make console-test`, which builds both binaries and
// installs what this needs; screenshots go to $KGATE_SHOTS (.tmp/console).
//
// Every wait polls with a deadline; nothing sleeps to synchronise.

import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { serverStream } from "../web/connect.js";

const root = resolve(import.meta.dirname, "../..");
const gatewayBin = process.env.KGATE_GATEWAY || join(root, ".tmp/bin/gateway");
const brokerBin = process.env.KGATE_BROKERD || join(root, ".tmp/bin/brokerd");
const shots = process.env.KGATE_SHOTS || join(root, ".tmp/console");
const chromiumBin = process.env.KGATE_CHROMIUM || "/usr/bin/chromium";
const wait = Number(process.env.KGATE_WAIT_MS || 30000); // the deadline of each wait

const tokens = { ops: "t-ops-" + Math.random().toString(36).slice(2), viewer: "t-viewer-" + Math.random().toString(36).slice(2) };
const run = Date.now().toString(36);
const orders = "orders-" + run;
const payments = "payments-" + run;
const dlq = payments + ".dlq";
const live = "live-" + run;

const children = [];
let work, base, browser, page;
const background = []; // AbortControllers of this test's own streams

// startChild runs bin and resolves with the first output line ready()
// accepts; its output is kept for failure messages.
function startChild(name, bin, args, ready) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("KGATE_")));
  const p = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const c = { name, p, out: [] };
  children.push(c);
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name} did not start within ${wait} ms:\n${c.out.slice(-20).join("\n")}`)), wait);
    let pending = "";
    const onData = (d) => {
      pending += d;
      const lines = pending.split("\n");
      pending = lines.pop();
      for (const l of lines) {
        c.out.push(l);
        if (c.out.length > 500) c.out.shift();
        const v = ready(l);
        if (v) { clearTimeout(timer); res(v); }
      }
    };
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    p.on("exit", (code) => rej(new Error(`${name} exited (${code}):\n${c.out.slice(-20).join("\n")}`)));
  });
}

async function stopChild(c) {
  if (c.p.exitCode !== null || c.p.signalCode !== null) return;
  const exited = new Promise((r) => c.p.once("exit", r));
  c.p.kill("SIGTERM");
  const t = setTimeout(() => c.p.kill("SIGKILL"), 30000); // past the gateway's --shutdown-timeout
  await exited;
  clearTimeout(t);
}

const auth = (who) => ({ Authorization: "Bearer " + tokens[who] });

async function publish(topic, value, key = "") {
  const r = await fetch(`${base}/v1/topics/${topic}/messages`, {
    method: "POST", headers: { "Content-Type": "application/json", ...auth("ops") },
    body: JSON.stringify({ messages: [{ key: Buffer.from(key).toString("base64"), value: Buffer.from(value).toString("base64") }] }),
  });
  assert.equal(r.status, 200, `publish to ${topic}: HTTP ${r.status} ${await r.text()}`);
}

// consumer opens a Tail as ops, calling onRecord for each record; abort()
// ends it.
function consumer(open, onRecord) {
  const ctl = new AbortController();
  background.push(ctl);
  const done = serverStream(`${base}/kgate.v1.Subscriber/Tail`, { open }, {
    headers: auth("ops"), signal: ctl.signal,
    onMessage: (r) => {
      if (r.message) onRecord(r.message, r);
      for (const m of r.messages?.messages || []) onRecord(m, r);
    },
  }).catch((e) => { if (e.name !== "AbortError") throw e; });
  return { abort: () => ctl.abort(), done };
}

// until polls cond (a function of nothing) until it is true.
async function until(what, cond, ms = wait) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// number reads a data-testid element's number, or NaN.
const number = (id) => page.evaluate((id) => Number(document.querySelector(`[data-testid="${id}"]`)?.textContent.replace(/,/g, "") ?? NaN), id);

async function shot(name) {
  await page.screenshot({ path: join(shots, name + ".png") });
}

async function signIn(who) {
  if (await page.locator("#who button", { hasText: "Sign out" }).count()) await page.click("#who button");
  await page.click("#who button"); // Sign in
  await page.fill("#token", tokens[who]);
  await page.click("#signin button[type=submit]");
  await page.locator('[data-testid="principal"]', { hasText: who }).waitFor({ timeout: wait });
}

let loadTimer;
const pageErrors = []; // uncaught errors of the console's scripts: none allowed

before(async () => {
  mkdirSync(shots, { recursive: true });
  work = mkdtempSync(join(tmpdir(), "kgate-console-"));
  writeFileSync(join(work, "tokens"), `ops ${tokens.ops}\nviewer ${tokens.viewer}\n`);
  // viewer may look (admin) but not read payloads (no subscribe rule).
  writeFileSync(join(work, "acl"), "ops admin * *\nops subscribe * *\nops publish *\nviewer admin * *\n");
  const brokers = await startChild("broker", brokerBin, ["--listen", "127.0.0.1:0", "--partitions", "2"], (l) => l.startsWith("BROKER ") && l.slice(7).trim());
  children.at(-1).addr = brokers;
  base = await startChild("gateway", gatewayBin, ["--brokers", brokers, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
    "--metrics-listen", "", "--auth-tokens", join(work, "tokens"), "--acl", join(work, "acl"), "--subscribe-linger", "60s", "--shutdown-timeout", "20s"],
  (l) => l.includes('msg="kgate listening"') && "http://" + / http=([^ ]+)/.exec(l)?.[1]);
  // Light load: five records a second into orders.
  await publish(orders, JSON.stringify({ n: 0 }));
  let n = 1;
  loadTimer = setInterval(() => publish(orders, JSON.stringify({ n: n++, total: 42 }), "k" + (n % 7)).catch(() => {}), 200);
  browser = await chromium.launch({
    executablePath: chromiumBin,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
  page.on("pageerror", (e) => pageErrors.push(e.message));
});

afterEach(async () => {
  assert.deepEqual(pageErrors, [], "the console's scripts threw");
  const text = await page.evaluate(() => document.getElementById("page").innerText);
  assert.doesNotMatch(text, /\b(null|undefined|NaN)\b|\[object /, "the page shows a value the console failed to format");
});

after(async () => {
  clearInterval(loadTimer);
  for (const c of background) c.abort();
  await browser?.close();
  for (const c of children.reverse()) await stopChild(c);
  if (work) rmSync(work, { recursive: true, force: true });
  const errors = children.flatMap((c) => c.out.filter((l) => l.includes("level=ERROR")).map((l) => c.name + ": " + l));
  assert.deepEqual(errors, [], "the gateways logged errors");
});

test("sign in and see the overview under light load", async () => {
  await page.goto(base + "/");
  // Tokens are required: the console says so and asks for one.
  await page.locator("#banner", { hasText: "requires an identity" }).waitFor({ timeout: wait });
  assert.equal(await page.isVisible("#signin"), true);
  await page.fill("#token", tokens.viewer);
  await page.click("#signin button[type=submit]");
  await page.locator('[data-testid="principal"]', { hasText: "viewer" }).waitFor({ timeout: wait });
  await page.locator('[data-testid="health"]', { hasText: "SERVING" }).waitFor({ timeout: wait });
  await until("a publish rate above 0", async () => (await number("publish-rate")) > 0);
  assert.match(await page.textContent('[data-testid="brokers"]'), /127\.0\.0\.1:\d+/);
  await shot("overview");
});

test("no payload without subscribe permission", async () => {
  // A dead letter to look at, made by a consumer that never acks.
  await publish(payments, JSON.stringify({ id: "poison-1", amount: -1 }), "p1");
  const seen = [];
  const worker = consumer({ topics: [payments], group: "ops.payments", startPosition: "START_POSITION_EARLIEST", ackDeadline: "1s",
    maxDeliveryAttempts: 1, deadLetterTopic: dlq }, (m) => seen.push(m));
  await until("the poison record delivered", () => seen.length > 0);
  await until("the dead letter written", async () => {
    const r = await fetch(`${base}/v1/topics/${dlq}/deadLetters`, { headers: auth("ops") });
    return r.ok && ((await r.json()).deadLetters || []).length === 1;
  });
  await page.goto(`${base}/#/deadletters/${dlq}`);
  // viewer may administer, but the API refuses to show it records.
  await page.locator('[data-testid="peek-error"]', { hasText: "may not read the records" }).waitFor({ timeout: wait });
  await page.goto(`${base}/#/tail/${live}`);
  await publish(live, "x");
  await page.reload();
  await page.locator('[data-testid="tail-toggle"]:not([disabled])').waitFor({ timeout: wait });
  await page.click('[data-testid="tail-toggle"]');
  await page.locator("#banner", { hasText: "may not subscribe" }).waitFor({ timeout: wait });
  assert.equal(await page.locator('[data-testid="tail-record"]').count(), 0);
  worker.abort();
  await worker.done;
});

test("a group's lag rises when its consumer stops and falls when it resumes", async () => {
  await page.goto(base + "/");
  await signIn("ops");
  const open = { topics: [orders], group: "ops.billing", startPosition: "START_POSITION_EARLIEST", autoAck: true };
  let got = 0;
  let billing = consumer(open, () => got++);
  await until("billing consuming", () => got > 0);
  await page.goto(`${base}/#/groups/ops.billing`);
  await until("the group's lag near 0", async () => (await number("group-lag")) <= 5);
  billing.abort();
  await billing.done;
  await until("the lag rising while the consumer is stopped", async () => (await number("group-lag")) >= 15);
  await shot("groups-lag-rising");
  billing = consumer(open, () => got++);
  await until("the lag falling once it resumed", async () => (await number("group-lag")) <= 5);
  await page.locator('[data-testid="streams"]', { hasText: "ops@" }).waitFor({ timeout: wait });
  await shot("groups");
  billing.abort();
  await billing.done;
});

test("peek at a dead letter, redrive it, and see it consumed", async () => {
  await page.goto(`${base}/#/deadletters/${dlq}`);
  const row = page.locator('[data-testid="dead-letter"]', { hasText: payments });
  await row.first().waitFor({ timeout: wait });
  await row.first().click();
  await page.locator('[data-testid="peek-value"]', { hasText: '"poison-1"' }).waitFor({ timeout: wait });
  assert.match(await page.textContent('[data-testid="peek-origin"]'), new RegExp(`^${payments}/\\d+@0$`));
  await shot("deadletters");
  await page.click('[data-testid="redrive"]');
  await page.locator('[data-testid="redrive-confirm"]', { hasText: "Write 1 dead letter back to " + payments }).waitFor({ timeout: wait });
  await shot("redrive-confirm");
  await page.click('[data-testid="redrive-yes"]');
  await page.locator('[data-testid="redrive-done"]', { hasText: "Redrove 1" }).waitFor({ timeout: wait });
  // The same group, now acking, gets the copy: past its commit, which the
  // dead letter counted as acked.
  const got = [];
  const worker = consumer({ topics: [payments], group: "ops.payments", startPosition: "START_POSITION_EARLIEST", autoAck: true }, (m) => got.push(m));
  const redriven = (m) => (m.headers || []).some((hd) => hd.key === "kgate.redriven.from");
  await until("the redriven copy consumed", () => got.some(redriven));
  assert.equal(Buffer.from(got.find(redriven).value, "base64").toString(), JSON.stringify({ id: "poison-1", amount: -1 }));
  worker.abort();
  await worker.done;
  await page.locator('[data-testid="no-dead-letters"]').waitFor({ timeout: wait });
});

test("tail a topic and see a record published during the test", async () => {
  await publish(live, "before the tail"); // the topic exists
  await page.goto(`${base}/#/tail/${live}`);
  await page.locator('[data-testid="tail-toggle"]:not([disabled])').waitFor({ timeout: wait });
  await page.click('[data-testid="tail-toggle"]');
  await page.locator('[data-testid="tail-status"][data-state="open"]').waitFor({ timeout: wait });
  const marker = "hello from the test " + run;
  // The tail starts at the end: publish until the tail has its partitions
  // and shows the record (each try is a new record with the marker).
  let last = 0;
  await until("the published record in the tail", async () => {
    if (Date.now() - last > 1000) {
      last = Date.now();
      await publish(live, JSON.stringify({ greeting: marker }));
    }
    return (await page.locator('[data-testid="tail-record"]', { hasText: marker }).count()) > 0;
  });
  await shot("tail");
  await page.click('[data-testid="tail-toggle"]'); // pause
  await page.locator('[data-testid="tail-status"]', { hasText: "paused" }).waitFor({ timeout: wait });
  // Paused means no stream: the gateway's Tail count drops to 0 (a record
  // sent before the gateway saw the stream end would be acked and lost to
  // the page: at most once).
  await until("no Tail stream open", async () => {
    const g = await (await fetch(base + "/v1/gateway", { headers: auth("ops") })).json();
    return !(g.streams || []).some((s) => s.rpc === "Tail" && Number(s.open) > 0);
  });
  const n = await page.locator('[data-testid="tail-record"]').count();
  await publish(live, JSON.stringify({ greeting: "while paused" })); // answered once written
  assert.equal(await page.locator('[data-testid="tail-record"]').count(), n);
  // Resume goes on in the tab's group, from where the tail stopped: the
  // record published while paused arrives.
  await page.click('[data-testid="tail-toggle"]');
  await page.locator('[data-testid="tail-record"]', { hasText: "while paused" }).waitFor({ timeout: wait });
  await page.click('[data-testid="tail-toggle"]');
});

test("without identity the console is read-only", async () => {
  // A second gateway in front of the same broker, with no tokens and no
  // --allow-anonymous-admin: the dead letters can be listed, not redriven.
  const brokers = children.find((c) => c.name === "broker").addr;
  const open = await startChild("gateway without tokens", gatewayBin, ["--brokers", brokers, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
    "--metrics-listen", "", "--shutdown-timeout", "20s"], (l) => l.includes('msg="kgate listening"') && "http://" + / http=([^ ]+)/.exec(l)?.[1]);
  const anon = await browser.newPage({ viewport: { width: 1100, height: 500 } }); // a new tab: no token
  anon.on("pageerror", (e) => pageErrors.push(e.message));
  try {
    await anon.goto(`${open}/#/deadletters/${dlq}`);
    await anon.locator('[data-testid="rights"]', { hasText: "read-only" }).waitFor({ timeout: wait });
    await anon.locator('[data-testid="redrive-disabled"]', { hasText: "needs an identity" }).waitFor({ timeout: wait });
    assert.equal(await anon.locator('[data-testid="redrive"]').count(), 0);
    await anon.screenshot({ path: join(shots, "read-only.png") });
  } finally {
    await anon.close();
  }
});
