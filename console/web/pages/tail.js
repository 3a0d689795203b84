// Tail: watch a topic's new records arrive, with a pause button. One
// kgate.v1.Subscriber/Tail stream over the Connect protocol, auto_ack (at
// most once: the gateway acks what it sent), in a group of this tab's own
// ("<principal>.console.<random>"), so that it takes no records from any
// other consumer. Pause ends the stream; resume opens it again in the
// same group, which goes on from what the gateway acked.

import { get, tail, enc, explain } from "../api.js";
import { h, fill, fromBase64, preview, asJSON, asText, asHex } from "../util.js";
import { banner, needToken, session } from "../app.js";

const maxRows = 200;

// groupFor is this tab's tail group for topic, kept for the tab's life.
function groupFor(topic) {
  const k = "kgate.console.tail." + topic;
  let id = sessionStorage.getItem(k);
  if (!id) {
    id = Math.random().toString(36).slice(2, 10);
    sessionStorage.setItem(k, id);
  }
  return `${session.caller?.principal || "anonymous"}.console.${id}`;
}

function row(m) {
  const v = fromBase64(m.value);
  const k = fromBase64(m.key);
  const full = h("pre", { hidden: true }, asJSON(v) ?? asText(v) ?? asHex(v));
  return h("tr", { class: "click", "data-testid": "tail-record", onclick: () => { full.hidden = !full.hidden; } },
    h("td", {}, m.timestamp ? new Date(m.timestamp).toLocaleTimeString() : ""),
    h("td", {}, `${m.partition}@${m.offset}`),
    h("td", {}, h("code", {}, k.length ? preview(k, 24) : "")),
    h("td", {}, h("code", {}, preview(v, 100)), full),
    h("td", { class: "num" }, (m.headers || []).length || ""));
}

export function start(root, [chosen]) {
  let topic = chosen || "";
  let ctl = null; // the open stream's AbortController
  let count = 0;
  const status = h("span", { class: "muted", "data-testid": "tail-status" }, "stopped");
  const counter = h("span", { class: "muted" });
  const button = h("button", { type: "button", "data-testid": "tail-toggle", disabled: true }, "Start");
  const body = h("tbody", {});
  const picker = h("span", {});
  root.append(h("h1", {}, "Tail"),
    h("div", { class: "row" }, picker, button, status, counter),
    h("p", { class: "muted" }, "New records as they arrive, at most once: the gateway acks each record it sends to this tab, in a group of the tab's own. Click a record for its whole value."),
    h("table", { class: "rows" }, h("thead", {}, h("tr", {}, ["time", "at", "key", "value", "headers"].map((c) => h("th", {}, c)))), body));

  const add = (m) => {
    count++;
    body.prepend(row(m));
    while (body.children.length > maxRows) body.lastChild.remove();
    counter.textContent = `${count} records`;
  };
  const run = async () => {
    ctl = new AbortController();
    const mine = ctl;
    button.textContent = "Pause";
    status.textContent = "connecting…";
    const open = { topics: [topic], group: groupFor(topic), startPosition: "START_POSITION_LATEST", autoAck: true,
      maxOutstandingMessages: 100, maxMessagesPerResponse: 50 };
    try {
      await tail(open, {
        signal: mine.signal,
        onMessage: (r) => {
          if (r.opened) { status.textContent = "tailing " + topic; status.dataset.state = "open"; banner(""); }
          if (r.message) add(r.message);
          for (const m of r.messages?.messages || []) add(m);
        },
      });
      status.textContent = "the gateway ended the tail";
    } catch (e) {
      if (e.name === "AbortError") return;
      status.textContent = "ended";
      if (e.code === "unauthenticated") needToken(e);
      else banner(explain(e));
    } finally {
      if (ctl === mine) { ctl = null; button.textContent = "Resume"; delete status.dataset.state; }
    }
  };
  const pause = () => {
    const c = ctl;
    ctl = null;
    c?.abort();
    button.textContent = "Resume";
    status.textContent = "paused";
    delete status.dataset.state;
  };
  button.addEventListener("click", () => (ctl ? pause() : run()));

  // A text field with the listed topics as suggestions: a principal that
  // may subscribe but not administer lists none, and types the name.
  const field = (topics) => fill(picker,
    h("input", { list: "tail-topics", value: topic, placeholder: "topic", size: 32, "data-testid": "tail-topic",
      onchange: (e) => { location.hash = "#/tail/" + enc(e.target.value.trim()); } }),
    h("datalist", { id: "tail-topics" }, topics.map((t) => h("option", { value: t }))));
  field([]);
  button.disabled = !topic;
  get("/v1/topics").then((r) => field((r.topics || []).map((t) => t.topic)),
    (e) => (e.code === "unauthenticated" ? needToken(e) : banner(explain(e))));
  return { stop: pause };
}
