// Groups: the consumer groups Kafka knows, and for the chosen one its lag
// per partition over time, the committed offset against the end offset,
// this gateway's streams with their windows, and redeliveries by reason.
// One request a second: GET /v1/groups/{group} (the gateway asks Kafka at
// most once a second per group, however many pages poll), and every tenth
// second GET /v1/groups instead.

import { get, enc, explain } from "../api.js";
import { h, fill, num, bytes, Poller, History } from "../util.js";
import { sparkline } from "../chart.js";
import { banner, needToken } from "../app.js";

const keep = 120; // two minutes of lag per partition
const lagHistory = new Map(); // "group|topic|partition" and "group|" → History
let showOwn = false;

function hist(key) {
  let s = lagHistory.get(key);
  if (!s) lagHistory.set(key, (s = new History(keep)));
  return s;
}

// own says whether a group is the gateway's or the console's own: redrive
// progress, or a console tab's tail.
const own = (g) => g.startsWith("kgate.redrive.") || /\.console\.[0-9a-z]+$/.test(g);

function renderList(el, list, selected) {
  const groups = (list || []).filter((g) => showOwn || !own(g.group));
  fill(el, 
    h("h2", {}, "Groups"),
    h("label", { class: "muted" }, h("input", { type: "checkbox", checked: showOwn, onchange: (e) => { showOwn = e.target.checked; renderList(el, list, selected); } }),
      " show redrive and console groups"),
    groups.length === 0 ? h("p", { class: "muted" }, "No consumer groups.") : null,
    h("ul", { class: "list" }, groups.map((g) =>
      h("li", { class: g.group === selected ? "active" : "" },
        h("a", { href: "#/groups/" + enc(g.group), "data-testid": "group-link" }, g.group),
        " ", h("span", { class: "muted" }, g.state, g.onThisGateway ? " · here" : "")))),
  );
}

function renderGroup(el, d) {
  const total = (d.partitions || []).reduce((a, p) => a + Number(p.lag), 0);
  hist(d.group + "|").push(total);
  for (const p of d.partitions || []) hist(`${d.group}|${p.topic}|${p.partition}`).push(Number(p.lag));
  const redeliveries = (d.redeliveries || []).reduce((a, r) => a + Number(r.count), 0);
  fill(el, 
    h("h2", {}, d.group, " ", h("span", { class: "muted", "data-testid": "group-state" }, d.state)),
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("h3", {}, "Lag"),
        h("p", { class: "big", "data-testid": "group-lag" }, num(total)),
        sparkline(hist(d.group + "|").values, { w: 240, h: 40, label: "total lag, last 2 minutes" })),
      h("div", { class: "card" }, h("h3", {}, "Redeliveries here"),
        h("p", { class: "big", "data-testid": "redeliveries" }, num(redeliveries)),
        h("p", { class: "muted" }, (d.redeliveries || []).map((r) => `${r.reason} ${num(r.count)}`).join(", ") || "none since the gateway started"),
        h("p", {}, num(d.deadLetters), " dead-lettered"))),
    h("h3", {}, "Partitions"),
    h("table", { "data-testid": "partitions" },
      h("thead", {}, h("tr", {}, ["topic", "partition", "committed", "end", "lag", "last 2 min", "acked above", "held here", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, (d.partitions || []).map((p) => h("tr", {},
        h("td", {}, p.topic), h("td", { class: "num" }, p.partition),
        h("td", { class: "num" }, Number(p.committedOffset) < 0 ? "none" : num(p.committedOffset)),
        h("td", { class: "num" }, num(p.endOffset)),
        h("td", { class: "num" }, num(p.lag)),
        h("td", {}, sparkline(hist(`${d.group}|${p.topic}|${p.partition}`).values, { w: 120, h: 20, label: "lag" })),
        h("td", { class: "num" }, num(p.ackedAboveCommit)),
        h("td", { class: "num" }, p.onThisGateway ? num(p.heldRecords) : "—"),
        h("td", {}, p.paused ? h("span", { class: "warn" }, "paused ") : null, p.stalled ? h("span", { class: "bad" }, "stalled") : null))))),
    h("h3", {}, "Streams on this gateway"),
    (d.streams || []).length === 0 ? h("p", { class: "muted" }, "None: this gateway has no stream of the group.") :
      h("table", { "data-testid": "streams" },
        h("thead", {}, h("tr", {}, ["session", "client", "records / window", "bytes / window", ""].map((c) => h("th", {}, c)))),
        h("tbody", {}, d.streams.map((s) => h("tr", {},
          h("td", { class: "num" }, s.session), h("td", {}, s.client),
          h("td", { class: "num" }, `${num(s.records)} / ${num(s.maxRecords)}`),
          h("td", { class: "num" }, `${bytes(s.bytes)} / ${bytes(s.maxBytes)}`),
          h("td", {}, s.draining ? "draining" : ""))))),
    h("h3", {}, "Kafka members"),
    (d.members || []).length === 0 ? h("p", { class: "muted" }, "None: no consumer is in the group.") :
      h("ul", { class: "plain" }, d.members.map((m) => h("li", {}, `${m.clientId} on ${m.host}: `,
        (m.assigned || []).map((a) => `${a.topic}/${a.partition}`).join(", ") || "no partitions"))),
  );
}

export function start(root, [selected]) {
  const side = h("aside", {});
  const detail = h("section", { class: "detail" }, selected ? h("p", { class: "muted" }, "Loading…") : h("p", { class: "muted" }, "Choose a group."));
  root.append(h("div", { class: "split" }, side, detail));
  let list = null;
  let tick = 0;
  const fail = (e) => (e.code === "unauthenticated" ? needToken(e) : banner(explain(e)));
  const p = new Poller(selected ? 1000 : 2000, async () => {
    try {
      if (!selected || tick % 10 === 0) {
        list = (await get("/v1/groups")).groups;
        renderList(side, list, selected);
      } else {
        renderGroup(detail, await get("/v1/groups/" + enc(selected)));
      }
      banner("");
    } catch (e) {
      fail(e);
    }
    tick++;
  });
  return { stop: () => p.stop() };
}
