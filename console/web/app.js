// The console's shell: the tab's sign-in, who the caller is, and the
// router that starts one page at a time (#/, #/groups, #/deadletters,
// #/tail) and stops the one before, so only the visible page polls.

import { get, token, setToken, explain, stats } from "./api.js";
import { h } from "./util.js";
import * as overview from "./pages/overview.js";
import * as groups from "./pages/groups.js";
import * as deadletters from "./pages/deadletters.js";
import * as tailPage from "./pages/tail.js";

const pages = { overview, groups, deadletters, tail: tailPage };

// session is what every page may read: the caller as DescribeGateway
// reported it (principal, identified, acl, mayChange).
export const session = { caller: null };

const $ = (id) => document.getElementById(id);

// banner shows a message above the page (kind "error" or "info"); "" hides it.
export function banner(text, kind = "error") {
  const b = $("banner");
  b.hidden = !text;
  b.className = kind;
  b.textContent = text;
}

// needToken is called by pages on UNAUTHENTICATED.
export function needToken(e) {
  banner(explain(e));
  $("signin").hidden = false;
}

function showWho() {
  const c = session.caller;
  const who = $("who");
  who.replaceChildren();
  if (c) {
    const rights = c.mayChange ? (c.acl ? "changes as the ACL allows" : "may change") : "read-only";
    who.append(h("span", { "data-testid": "principal" }, c.principal), " ", h("span", { class: "muted", "data-testid": "rights" }, "(" + rights + ")"), " ");
  }
  if (token()) {
    who.append(h("button", { type: "button", onclick: () => { setToken(""); refreshCaller(); } }, "Sign out"));
  } else {
    who.append(h("button", { type: "button", onclick: () => { $("signin").hidden = false; $("token").focus(); } }, "Sign in"));
  }
}

// refreshCaller asks who we are (one DescribeGateway), then restarts the
// page so that it shows what the caller may do.
export async function refreshCaller() {
  try {
    const g = await get("/v1/gateway");
    session.caller = g.caller || null;
    banner("");
  } catch (e) {
    session.caller = null;
    if (e.code === "unauthenticated") needToken(e);
    else banner(explain(e));
  }
  showWho();
  route();
}

// updateCaller lets the overview pass on what it polled.
export function updateCaller(c) {
  const before = JSON.stringify(session.caller);
  session.caller = c || null;
  if (JSON.stringify(session.caller) !== before) showWho();
}

let current = null;

function route() {
  const [, name = "", ...rest] = location.hash.replace(/^#/, "").split("/");
  const key = name === "" ? "overview" : name;
  const page = pages[key] || overview;
  if (current) current.stop();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === key);
  const root = $("page");
  root.replaceChildren();
  current = page.start(root, rest.map(decodeURIComponent));
}

function showCost() {
  $("cost").textContent = `This tab: ${stats.requests} requests, ${(stats.bytes / 1024).toFixed(0)} KiB read. ` +
    "A page polls at most once a second (or holds one stream), and not while the tab is hidden.";
}

$("signin").addEventListener("submit", (ev) => {
  ev.preventDefault(); // no form is sent anywhere: the token stays in this tab
  setToken($("token").value.trim());
  $("token").value = "";
  $("signin").hidden = true;
  refreshCaller();
});
$("signin-cancel").addEventListener("click", () => { $("signin").hidden = true; });
window.addEventListener("hashchange", route);
setInterval(showCost, 5000);
refreshCaller();
