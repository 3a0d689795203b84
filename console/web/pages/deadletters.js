// Dead letters: per dead-letter topic, the records waiting (origin,
// attempts, reason), a peek at one (key, headers, value as text, JSON or
// hex) and a redrive to the origin topics after a confirmation that shows
// what a dry run would do. Peeking reads Kafka, so the list refreshes
// every 10 s (and on demand), not every second.

import { get, post, enc, explain } from "../api.js";
import { h, fill, fromBase64, asText, asJSON, asHex, preview, Poller } from "../util.js";
import { banner, needToken, session } from "../app.js";

let showRedriven = false;
let view = "auto"; // how values are shown: auto, text, json, hex

function shown(b) {
  const j = asJSON(b);
  const t = asText(b);
  const mode = view === "auto" ? (j !== null ? "json" : t !== null ? "text" : "hex") : view;
  if (mode === "json") return j ?? "(not JSON)";
  if (mode === "text") return t ?? "(not UTF-8 text: see hex)";
  return asHex(b);
}

function originOf(dl) {
  const o = dl.origin;
  return o ? `${o.topic}/${o.partition}@${o.offset}` : "(no origin headers)";
}

function renderRecord(el, dl) {
  const r = dl.record;
  const key = fromBase64(r.key);
  const value = fromBase64(r.value);
  const modes = ["auto", "text", "json", "hex"];
  fill(el, 
    h("h3", {}, `Dead letter ${r.partition}@${r.offset}`),
    h("dl", { class: "kv" },
      h("dt", {}, "Origin"), h("dd", { "data-testid": "peek-origin" }, originOf(dl)),
      h("dt", {}, "Attempts"), h("dd", {}, dl.origin ? dl.origin.attempts : "?"),
      h("dt", {}, "Reason"), h("dd", {}, dl.origin?.reason || ""),
      h("dt", {}, "Written"), h("dd", {}, r.timestamp ? new Date(r.timestamp).toLocaleString() : ""),
      h("dt", {}, "Key"), h("dd", {}, h("code", {}, key.length ? preview(key, 200) : "(none)"))),
    h("h4", {}, "Headers"),
    h("table", {}, h("tbody", {}, (r.headers || []).map((hd) => h("tr", {}, h("td", {}, hd.key), h("td", {}, h("code", {}, preview(fromBase64(hd.value), 200))))))),
    h("h4", {}, "Value ", ...modes.map((m) => h("button", { type: "button", class: m === view ? "on" : "", onclick: () => { view = m; renderRecord(el, dl); } }, m))),
    h("pre", { "data-testid": "peek-value" }, shown(value)),
  );
}

function renderList(el, detail, topic, resp) {
  const dls = resp.deadLetters || [];
  fill(el, 
    dls.length === 0 ? h("p", { class: "muted", "data-testid": "no-dead-letters" }, showRedriven ? "No dead letters in this topic." : "No dead letter waits to be redriven.") :
      h("table", { class: "rows", "data-testid": "dead-letters" },
        h("thead", {}, h("tr", {}, ["at", "origin", "attempts", "reason", "value", ""].map((c) => h("th", {}, c)))),
        h("tbody", {}, dls.map((dl) => h("tr", { class: "click", onclick: () => renderRecord(detail, dl), "data-testid": "dead-letter" },
          h("td", {}, `${dl.record.partition}@${dl.record.offset}`),
          h("td", {}, originOf(dl)),
          h("td", { class: "num" }, dl.origin ? dl.origin.attempts : ""),
          h("td", { class: "wrap" }, dl.origin?.reason || ""),
          h("td", {}, h("code", {}, preview(fromBase64(dl.record.value), 40))),
          h("td", {}, dl.redriven ? h("span", { class: "muted" }, "redriven") : h("span", { class: "warn" }, "waiting")))))),
    resp.more ? h("p", { class: "muted" }, "More follow: redrive these, or read a partition at a time with the API.") : null,
  );
}

// redrivePanel shows the redrive controls; out (kept across refreshes of
// the list) holds the confirmation and the outcome.
function redrivePanel(el, out, topic, dls, done) {
  const c = session.caller;
  const origins = [...new Set(dls.filter((d) => !d.redriven && d.origin).map((d) => d.origin.topic))];
  if (!c?.mayChange) {
    fill(el, h("p", { class: "muted", "data-testid": "redrive-disabled" },
      c?.identified ? `Redrive is not allowed for ${c.principal}: no admin rule of the ACL names this principal.` :
        "Redrive needs an identity: sign in with a bearer token (or run the gateway with --allow-anonymous-admin on a laptop)."));
    return;
  }
  const chosen = el.querySelector("select")?.value || "";
  const select = h("select", { "data-testid": "redrive-origin" }, h("option", { value: "" }, "every origin topic"),
    origins.map((o) => h("option", { value: o, selected: o === chosen }, "origin " + o)));
  const ask = async () => {
    const req = { limit: 100, originTopic: select.value };
    fill(out, h("p", { class: "muted" }, "Checking what a redrive would do (dry run)…"));
    try {
      const dry = await post(`/v1/topics/${enc(topic)}/deadLetters:redrive`, { ...req, dryRun: true });
      const n = (dry.redriven || []).length;
      if (n === 0) {
        fill(out, h("p", {}, "Nothing to redrive", dry.skipped > 0 ? ` (${dry.skipped} do not match the filter)` : "", "."));
        return;
      }
      const to = [...new Set(dry.redriven.map((r) => r.origin?.topic))].join(", ");
      fill(out, h("div", { class: "confirm", "data-testid": "redrive-confirm" },
        h("p", {}, `Write ${n} dead letter${n > 1 ? "s" : ""} back to ${to}`, dry.more ? " (more remain after these)" : "", Number(dry.skipped) ? `; ${dry.skipped} skipped by the filter` : "", "?"),
        h("p", { class: "muted" }, "Each is written once, however often this is repeated; the copies carry a kgate.redriven.from header."),
        h("button", { type: "button", class: "danger", "data-testid": "redrive-yes", onclick: async () => {
          try {
            const r = await post(`/v1/topics/${enc(topic)}/deadLetters:redrive`, req);
            fill(out, h("p", { class: "ok", "data-testid": "redrive-done" },
              `Redrove ${(r.redriven || []).length}: `, (r.redriven || []).map((x) => `${x.origin?.topic}/${x.result?.partition}@${x.result?.offset}`).join(", ")));
            done();
          } catch (e) {
            fill(out, h("p", { class: "bad" }, explain(e)));
          }
        } }, "Redrive"),
        h("button", { type: "button", onclick: () => fill(out) }, "Cancel")));
    } catch (e) {
      fill(out, h("p", { class: "bad" }, explain(e)));
    }
  };
  fill(el, h("div", { class: "row" }, select, h("button", { type: "button", "data-testid": "redrive", onclick: ask }, "Redrive…")));
}

export function start(root, [chosen]) {
  const picker = h("div", { class: "row" });
  const list = h("div", {});
  const actions = h("div", {});
  const outcome = h("div", {});
  const detail = h("section", { class: "detail" });
  root.append(h("h1", {}, "Dead letters"), picker, actions, outcome, list, detail);
  let topic = chosen || "";
  let poll = null;
  let stopped = false;
  const fail = (e) => (e.code === "unauthenticated" ? needToken(e) : banner(explain(e)));
  const refresh = async () => {
    if (!topic) return;
    const q = "?limit=50" + (showRedriven ? "&offset=0" : "");
    try {
      const resp = await get(`/v1/topics/${enc(topic)}/deadLetters${q}`);
      banner("");
      renderList(list, detail, topic, resp);
      redrivePanel(actions, outcome, topic, resp.deadLetters || [], () => poll?.kick());
    } catch (e) {
      fill(list, h("p", { class: "bad", "data-testid": "peek-error" }, explain(e)));
      fill(actions);
      if (e.code === "unauthenticated") needToken(e);
    }
  };
  get("/v1/topics").then((r) => {
    const topics = (r.topics || []).map((t) => t.topic);
    if (!topic) topic = topics.find((t) => /dlq|dead/i.test(t)) || "";
    const sel = h("select", { "data-testid": "dl-topic", onchange: (e) => { location.hash = "#/deadletters/" + enc(e.target.value); } },
      h("option", { value: "" }, "choose a dead-letter topic"),
      topics.map((t) => h("option", { value: t, selected: t === topic }, t)));
    fill(picker, sel,
      h("label", { class: "muted" }, h("input", { type: "checkbox", checked: showRedriven, onchange: (e) => { showRedriven = e.target.checked; poll?.kick(); } }), " show redriven too"),
      h("button", { type: "button", onclick: () => poll?.kick() }, "Refresh"));
    if (!topic) fill(list, h("p", { class: "muted" }, "Choose the topic a Subscribe stream's dead_letter_topic names."));
    if (!stopped) poll = new Poller(10000, refresh);
  }, fail);
  return { stop: () => { stopped = true; poll?.stop(); } };
}
