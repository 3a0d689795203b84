// Overview: this gateway's health, its Kafka cluster, the producer queue
// and budgets as gauges, publish rate and refusals over the last five
// minutes, open streams by kind. One GET /v1/gateway a second (it reads
// the gateway's own gauges, nothing from Kafka).

import { get, explain } from "../api.js";
import { h, fill, num, bytes, Poller, History } from "../util.js";
import { sparkline, gauge } from "../chart.js";
import { banner, needToken, updateCaller } from "../app.js";

// Kept while the tab lives, so that coming back to the page shows the
// minutes before (with gaps where the page was not shown).
const keep = 300;
const series = { rate: new History(keep), refused: new History(keep), queue: new History(keep) };
let last = null;

function refusedOf(g) {
  return Number(g.failedMessages) + Number(g.refusedCalls) + (g.rejections || []).reduce((a, r) => a + Number(r.count), 0);
}

function render(root, g) {
  const t = Date.parse(g.time);
  if (last && t > last.t) {
    const dt = (t - last.t) / 1000;
    series.rate.push(Math.max(0, (Number(g.publishedMessages) - last.published) / dt));
    series.refused.push(Math.max(0, (refusedOf(g) - last.refused) / dt));
  }
  series.queue.push(Number(g.producerQueueMessages));
  last = { t, published: Number(g.publishedMessages), refused: refusedOf(g) };
  const rate = series.rate.values.at(-1) ?? 0;
  const refused = series.refused.values.at(-1) ?? 0;
  const overall = (g.health || []).find((s) => s.service === "")?.status || "UNKNOWN";
  const streams = Object.fromEntries((g.streams || []).map((s) => [s.rpc, Number(s.open)]));

  fill(root, 
    h("h1", {}, "Overview"),
    h("section", { class: "cards" },
      h("div", { class: "card" },
        h("h2", {}, "Health"),
        h("p", { class: "big " + (overall === "SERVING" ? "ok" : "bad"), "data-testid": "health" }, overall),
        h("ul", { class: "plain" }, (g.health || []).filter((s) => s.service).map((s) =>
          h("li", {}, h("span", { class: s.status === "SERVING" ? "ok" : "bad" }, "● "), s.service, " ", h("span", { class: "muted" }, s.status))))),
      h("div", { class: "card" },
        h("h2", {}, "Kafka"),
        h("p", { "data-testid": "brokers" }, g.brokers || "?"),
        g.embeddedKafka ? h("p", { class: "bad" }, "Embedded in-memory broker: nothing is durable.") : null,
        h("p", { class: "muted" }, "Instance ", g.instance, ", up since ", new Date(g.startTime).toLocaleString())),
      h("div", { class: "card" },
        h("h2", {}, "Publish"),
        h("p", {}, h("span", { class: "big", "data-testid": "publish-rate" }, rate.toFixed(1)), " messages/s"),
        sparkline(series.rate.values, { w: 240, h: 40, label: "publish rate, last 5 minutes" }),
        h("p", { class: "muted" }, num(g.publishedMessages), " written since the start"),
        h("p", {}, h("span", { class: refused > 0 ? "bad" : "", "data-testid": "refused-rate" }, refused.toFixed(1)), " refused or failed/s"),
        sparkline(series.refused.values, { w: 240, h: 24, label: "refusals, last 5 minutes" }),
        h("p", { class: "muted" }, num(g.failedMessages), " failed, ", num(g.refusedCalls), " calls refused",
          ...(g.rejections || []).map((r) => [", ", num(r.count), " ", r.reason]))),
      h("div", { class: "card" },
        h("h2", {}, "Capacity"),
        h("p", {}, "Producer queue: ", h("span", { "data-testid": "queue" }, num(g.producerQueueMessages)), " messages"),
        sparkline(series.queue.values, { w: 240, h: 24, label: "producer queue" }),
        h("p", {}, "In-flight budget"),
        gauge(Number(g.inflightBytes), Number(g.inflightLimitBytes), `${bytes(g.inflightBytes)} of ${bytes(g.inflightLimitBytes)}`),
        h("p", {}, "Subscription memory"),
        gauge(Number(g.subscribeMemoryBytes), Number(g.subscribeMemoryLimitBytes), `${bytes(g.subscribeMemoryBytes)} of ${bytes(g.subscribeMemoryLimitBytes)}`)),
      h("div", { class: "card" },
        h("h2", {}, "Open streams"),
        h("table", {}, h("tbody", {}, ["Subscribe", "Tail", "PublishStream"].map((k) =>
          h("tr", {}, h("td", {}, k), h("td", { class: "num", "data-testid": "streams-" + k }, num(streams[k] || 0)))))))),
  );
}

export function start(root) {
  root.append(h("h1", {}, "Overview"), h("p", { class: "muted" }, "Loading…"));
  const p = new Poller(1000, async () => {
    try {
      const g = await get("/v1/gateway");
      updateCaller(g.caller);
      banner("");
      render(root, g);
    } catch (e) {
      if (e.code === "unauthenticated") needToken(e);
      else banner(explain(e));
    }
  });
  return { stop: () => p.stop() };
}
