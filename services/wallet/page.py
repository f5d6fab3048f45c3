"""The wallet page (``GET /wallet``): server-rendered HTML and a small script, no build step.

The person's access token is typed into the form or given in the URL fragment (``#token=...``,
which browsers never send to a server); the script keeps it in memory only, removes it from the
address bar, and sends it as a bearer token to the wallet API.
"""

from __future__ import annotations

WALLET_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>My wallet - Learning and Employment Records</title>
<style>
  :root { --ink: #1a1a1a; --muted: #4a4a4a; --line: #c8c8c8; --ok: #0b6b2b; --warn: #8a4b00;
          --bad: #a0001b; --accent: #0a4fa3; --bg: #ffffff; --soft: #f3f5f8; }
  * { box-sizing: border-box; }
  body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
         background: var(--bg); margin: 0; }
  header { background: #102a4c; color: #fff; padding: 0.8rem 1.5rem; }
  header h1 { margin: 0; font-size: 1.4rem; }
  main { max-width: 72rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
  section { border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; margin: 1rem 0;
            background: var(--bg); }
  h2 { margin-top: 0; font-size: 1.2rem; }
  label { font-weight: 600; display: block; margin: 0.4rem 0 0.2rem; }
  input, select, button { font: inherit; }
  input[type=text], input[type=password], input[type=number], select {
    padding: 0.4rem 0.5rem; border: 1px solid #767676; border-radius: 4px; min-width: 16rem; }
  button { background: var(--accent); color: #fff; border: 0; border-radius: 4px;
           padding: 0.45rem 0.9rem; cursor: pointer; margin-top: 0.5rem; }
  button.secondary { background: #fff; color: var(--accent); border: 1px solid var(--accent); }
  :focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 0.35rem 0.5rem; border-bottom: 1px solid var(--line);
           vertical-align: top; }
  .badge { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; font-size: 0.85rem;
           font-weight: 600; border: 1px solid currentColor; }
  .verified { color: var(--ok); } .pending { color: var(--warn); } .refused { color: var(--bad); }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(20rem, 1fr)); gap: 1rem; }
  ul.skills { padding-left: 1.2rem; margin: 0.3rem 0; }
  .muted { color: var(--muted); }
  .score { font-size: 1.6rem; font-weight: 700; }
  .qr img { width: 12rem; height: 12rem; border: 1px solid var(--line); }
  .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  [role=alert] { color: var(--bad); font-weight: 600; }
</style>
</head>
<body>
<header><h1>My wallet</h1></header>
<main>
  <section id="signin" aria-labelledby="signin-title">
    <h2 id="signin-title">Open your wallet</h2>
    <form id="signin-form">
      <label for="token">Your access token</label>
      <input id="token" name="token" type="password" autocomplete="off" required
             aria-describedby="token-help">
      <p id="token-help" class="muted">The token you received when you enrolled. It stays in
        this page and is never stored.</p>
      <button type="submit">Open wallet</button>
    </form>
    <p id="signin-error" role="alert" aria-live="assertive"></p>
  </section>

  <div id="wallet" hidden>
    <p id="greeting" class="muted" aria-live="polite"></p>
    <section aria-labelledby="records-title">
      <h2 id="records-title">My records</h2>
      <table>
        <caption class="sr-only">Records and their verification</caption>
        <thead><tr><th scope="col">Share</th><th scope="col">Record</th><th scope="col">Type</th>
          <th scope="col">From</th><th scope="col">Verification</th></tr></thead>
        <tbody id="records"></tbody>
      </table>
    </section>

    <div class="grid">
      <section aria-labelledby="skills-title">
        <h2 id="skills-title">My skills</h2>
        <ul id="skills" class="skills"></ul>
      </section>
      <section aria-labelledby="match-title">
        <h2 id="match-title">Compare with a role</h2>
        <label for="role">Role</label>
        <select id="role"><option value="">Choose a role...</option></select>
        <div id="match" aria-live="polite"></div>
      </section>
    </div>

    <section aria-labelledby="shares-title">
      <h2 id="shares-title">Share verified records</h2>
      <form id="share-form">
        <p class="muted">Tick verified records in the table above, then say who they are for.
          Demographic details (birth date, county, education, other demographics) are left out
          unless you include them.</p>
        <label for="audience">Who is this for?</label>
        <input id="audience" type="text" maxlength="200" required placeholder="e.g. Company B">
        <label for="expires">Valid for (days)</label>
        <input id="expires" type="number" min="1" max="90" value="7" required>
        <label><input id="demographics" type="checkbox"> Include my demographic details</label>
        <button type="submit">Create share link and QR code</button>
        <p id="share-error" role="alert" aria-live="assertive"></p>
      </form>
      <div id="new-share" class="qr" aria-live="polite"></div>
      <h3>My shares</h3>
      <table>
        <caption class="sr-only">Shares and who opened them</caption>
        <thead><tr><th scope="col">For</th><th scope="col">Records</th><th scope="col">State</th>
          <th scope="col">Opened</th><th scope="col"><span class="sr-only">Actions</span></th></tr>
        </thead>
        <tbody id="shares"></tbody>
      </table>
    </section>
  </div>
</main>
<script>
"use strict";
let token = null, wallet = null;
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
async function api(path, options) {
  const opts = Object.assign({headers: {}}, options || {});
  opts.headers = Object.assign({"Authorization": "Bearer " + token}, opts.headers);
  const response = await fetch(path, opts);
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    const why = (body && body.errors && body.errors.length)
      ? body.errors.map((e) => e.message).join("; ") : (body && body.detail);
    throw new Error(why || ("error " + response.status));
  }
  return body;
}
const BADGES = {
  verified: ["Verified", "verified"], revoked: ["Revoked", "refused"],
  suspended: ["Suspended", "pending"],
  rejected: ["Not verified", "refused"], in_review: ["In review", "pending"],
  submitted: ["Waiting for verification", "pending"]
};
function badge(status) {
  const [text, cls] = BADGES[status] || [status, "pending"];
  return el("span", {"class": "badge " + cls}, text);
}
function renderRecords() {
  const body = $("records"); body.replaceChildren();
  for (const r of wallet.records) {
    const box = el("input", {type: "checkbox", value: r.record_id, "class": "pick",
                             "aria-label": "Share " + r.title});
    if (r.status !== "verified") box.disabled = true;
    const from = r.submitted_by.kind === "organization" ? (r.submitted_by.name || "Organization")
                                                        : "Self-reported";
    body.append(el("tr", {}, el("td", {}, box), el("td", {}, r.title), el("td", {}, r.type),
                   el("td", {}, from), el("td", {}, badge(r.status))));
  }
}
function renderSkills() {
  const list = $("skills"); list.replaceChildren();
  if (!wallet.skills.length) list.append(el("li", {"class": "muted"}, "No skills yet."));
  for (const s of wallet.skills) {
    const mark = s.verified ? badge("verified") : el("span", {"class": "badge pending"}, "Not verified");
    list.append(el("li", {}, s.name + " ", mark));
  }
}
function skillList(title, items, note) {
  const ul = el("ul", {"class": "skills"});
  for (const s of items) ul.append(el("li", {}, s.name + (s.required ? "" : " (preferred)")));
  if (!items.length) ul.append(el("li", {"class": "muted"}, "None"));
  return el("div", {"data-group": title.toLowerCase()}, el("h3", {}, title), note, ul);
}
async function showMatch() {
  const role = $("role").value, out = $("match");
  out.replaceChildren();
  if (!role) return;
  try {
    const m = await api("/v1/wallets/" + wallet.person_id + "/match?role=" + encodeURIComponent(role));
    out.append(
      el("p", {}, el("span", {"class": "score"}, Math.round(m.score * 100) + "%"),
         " match; " + m.required_matched + " of " + m.required_total + " required skills verified."),
      skillList("Matched", m.matched, el("p", {"class": "muted"}, "Shown by your verified records.")),
      skillList("Missing", m.missing, el("p", {"class": "muted"}, "No record shows these yet.")),
      skillList("Unverified", m.unverified,
                el("p", {"class": "muted"}, "You have these, but they are not verified yet.")));
  } catch (e) { out.append(el("p", {role: "alert"}, e.message)); }
}
async function loadShares() {
  const data = await api("/v1/wallets/" + wallet.person_id + "/shares");
  const body = $("shares"); body.replaceChildren();
  for (const s of data.shares) {
    const opened = s.accesses.length
      ? s.accesses.map((a) => new Date(a.at).toLocaleString() + " (" + a.action.replace("share_", "") + ")").join(", ")
      : "Not opened yet";
    const action = el("td", {});
    if (s.state === "active") {
      const revoke = el("button", {type: "button", "class": "secondary"}, "Revoke");
      revoke.addEventListener("click", async () => {
        await api("/v1/wallets/" + wallet.person_id + "/shares/" + s.share_id, {method: "DELETE"});
        await loadShares();
      });
      action.append(revoke);
    }
    body.append(el("tr", {}, el("td", {}, s.audience), el("td", {}, s.record_ids.length),
                   el("td", {}, s.state), el("td", {}, opened), action));
  }
}
async function createShare(event) {
  event.preventDefault();
  $("share-error").textContent = "";
  const picked = [...document.querySelectorAll("input.pick:checked")].map((b) => b.value);
  if (!picked.length) { $("share-error").textContent = "Tick at least one verified record."; return; }
  try {
    const share = await api("/v1/wallets/" + wallet.person_id + "/shares", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({record_ids: picked, audience: $("audience").value,
                            expires_in: Number($("expires").value) * 86400,
                            include_demographics: $("demographics").checked})});
    const link = el("a", {href: share.url}, "share link");
    $("new-share").replaceChildren(
      el("h3", {}, "My QR code"),
      el("img", {src: share.qr_url, alt: "QR code of the share link for " + $("audience").value}),
      el("p", {}, "Show this code or send the ", link, ". It works until " +
                  new Date(share.expires_at).toLocaleString() + "."));
    await loadShares();
  } catch (e) { $("share-error").textContent = e.message; }
}
async function open_(given) {
  token = given;
  try {
    wallet = await api("/v1/wallet");
  } catch (e) { token = null; $("signin-error").textContent = e.message; return; }
  $("signin").hidden = true; $("wallet").hidden = false;
  $("greeting").textContent = "Signed in as " + wallet.display_name + ".";
  renderRecords(); renderSkills();
  const roles = await (await fetch("/v1/roles")).json();
  for (const r of roles.roles) $("role").append(el("option", {value: r.role_id}, r.title));
  await loadShares();
  $("records-title").focus();
}
$("signin-form").addEventListener("submit", (e) => { e.preventDefault(); open_($("token").value.trim()); });
$("role").addEventListener("change", showMatch);
$("share-form").addEventListener("submit", createShare);
$("records-title").tabIndex = -1;
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  const given = fragment.get("token");
  history.replaceState(null, "", location.pathname);
  open_(given);
}
</script>
</body>
</html>
"""
