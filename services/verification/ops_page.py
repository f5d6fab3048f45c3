"""The ops dashboard page: server-rendered HTML with a small inline script (no build step, no
CDN, no network but this service) that polls ``v1/ops/summary`` and draws the breach chart as
inline SVG. The page holds no data; the token is typed into a form and kept in the tab's
``sessionStorage``, sent only in the ``Authorization`` header (never in a URL or a log)."""

from __future__ import annotations

from services.verification.ops_dlq import SCRIPT, SECTION

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>LER operations dashboard</title>
<style nonce="{{nonce}}">
:root { color-scheme: light; --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa;
  --ok: #1a7f37; --bad: #cf222e; --auto: #0969da; --review: #bc4c00; --appeal: #8250df;
  --focus: #0550ae; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
.skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem; }
.skip:focus { left: .5rem; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 1rem 1.5rem; }
.bar { display: flex; flex-wrap: wrap; align-items: end; gap: .75rem 2rem;
  justify-content: space-between; }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
h3 { font-size: 1rem; margin: 0; }
.sub { margin: .15rem 0 0; color: var(--muted); }
form { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; }
label { font-weight: 600; }
input, select, button { font: inherit; color: var(--ink); border: 1px solid #8c959f;
  border-radius: 6px; padding: .35rem .6rem; background: #fff; }
input { width: 16rem; }
button { background: #f3f4f6; cursor: pointer; }
button[type=submit] { background: #1f883d; border-color: #1a7f37; color: #fff; font-weight: 600; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
#status { margin: .6rem 0 0; color: var(--muted); min-height: 1.45em; }
#status.error { color: var(--bad); font-weight: 600; }
main { padding: 1.25rem 1.5rem 2rem; display: grid; gap: 1.25rem; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem; }
.totals { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .75rem;
  margin: 0; }
.totals div { border-left: 4px solid var(--line); padding: .1rem .75rem; }
.totals dt { color: var(--muted); font-size: .85rem; }
.totals dd { margin: 0; font-size: 1.6rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.totals .alert { border-left-color: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; }
.card { border: 1px solid var(--line); border-top: 4px solid var(--q); border-radius: 8px;
  padding: .8rem 1rem; }
.card header { all: unset; display: flex; justify-content: space-between; align-items: baseline; }
.budget { color: var(--muted); font-size: .9rem; }
.stats { display: grid; grid-template-columns: auto auto 1fr; gap: .5rem 1.25rem; margin: .6rem 0; }
.stats dt { color: var(--muted); font-size: .8rem; }
.stats dd { margin: 0; font-variant-numeric: tabular-nums; }
.big { font-size: 1.7rem; font-weight: 700; line-height: 1.1; }
.over { color: var(--bad); font-weight: 600; }
.within { color: var(--ok); }
code { font: .8rem ui-monospace, SFMono-Regular, Menlo, monospace; color: var(--muted);
  word-break: break-all; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: .3rem .5rem; border-bottom: 1px solid var(--line); }
th:first-child, td:first-child, .left { text-align: left; }
thead th { color: var(--muted); font-weight: 600; font-size: .85rem; }
caption { text-align: left; color: var(--muted); font-size: .85rem; padding-bottom: .25rem; }
.meter { display: inline-block; vertical-align: middle; margin-right: .5rem; }
.row { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1rem; }
.row h2 { margin-right: auto; }
figure { margin: .5rem 0 0; }
figcaption { color: var(--muted); font-size: .85rem; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; padding: 0; margin: .25rem 0;
  list-style: none; }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px;
  margin-right: .35rem; vertical-align: -1px; background: var(--q); }
.q-auto_verification { --q: var(--auto); }
.q-manual_review { --q: var(--review); }
.q-appeal { --q: var(--appeal); }
.badge { display: inline-block; font-size: .75rem; font-weight: 600; padding: 0 .4rem;
  border-radius: 999px; border: 1px solid currentColor; margin-left: .35rem; }
tbody.proc th { vertical-align: top; }
tbody.proc { border-top: 2px solid var(--line); }
.lagging { color: var(--bad); font-weight: 700; }
.small { font-size: .8rem; font-weight: 400; }
.card table { font-size: .9rem; }
.card td { white-space: nowrap; width: 40%; }
.vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
details { margin-top: .5rem; }
summary { cursor: pointer; color: var(--focus); }
</style>
</head>
<body data-refresh="{{refresh}}">
<a class="skip" href="#main">Skip to the dashboard</a>
<header>
  <div class="bar">
    <div>
      <h1>LER operations</h1>
      <p class="sub">Processing-time SLAs, breaches and consumer lag, live from the stream.</p>
    </div>
    <form id="auth" method="post" autocomplete="off">
      <label for="token">Admin or ops token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false"
        aria-describedby="token-help">
      <button type="submit">Connect</button>
      <button type="button" id="forget">Forget token</button>
    </form>
  </div>
  <p id="token-help" class="vh">The token stays in this browser tab (session storage) and is
    sent only in the Authorization header.</p>
  <p id="status" role="status" aria-live="polite">Enter the admin token or the ops token
    (VERIFICATION_OPS_TOKEN); it stays in this browser tab.</p>
</header>
<main id="main" tabindex="-1">
  <section aria-labelledby="overview-h">
    <h2 id="overview-h">Overview</h2>
    <dl class="totals" id="totals"></dl>
  </section>
  <section aria-labelledby="queues-h">
    <h2 id="queues-h">Queues against their SLAs</h2>
    <div class="cards" id="queues"></div>
  </section>
  <section aria-labelledby="breaches-h">
    <div class="row">
      <h2 id="breaches-h">Breaches over time</h2>
      <label for="period">Period</label>
      <select id="period">
        <option value="1h">Last hour, per minute</option>
        <option value="24h" selected>Last 24 hours, per hour</option>
        <option value="30d">Last 30 days, per day</option>
      </select>
    </div>
    <ul class="legend" id="legend"></ul>
    <figure>
      <div id="chart"></div>
      <figcaption id="chart-caption">Times in UTC.</figcaption>
    </figure>
    <details>
      <summary>Breaches as a table</summary>
      <table id="breach-table"><caption>Breaches per bucket (UTC)</caption>
        <thead></thead><tbody></tbody></table>
    </details>
  </section>
  <section aria-labelledby="lag-h">
    <h2 id="lag-h">Consumer lag per processor</h2>
    <table id="lag">
      <caption>Fetch high-water mark minus the next offset each processor will apply, as each
        processor measures it, summed over each topic's partitions.</caption>
      <thead><tr><th scope="col">Processor</th><th scope="col" class="left">Topic</th>
        <th scope="col">Partitions</th><th scope="col">Events applied</th>
        <th scope="col">Events in the log</th><th scope="col">Lag</th></tr></thead>
    </table>
    <details>
      <summary>Lag per partition</summary>
      <table id="lag-partitions">
        <caption>Per partition: the last offset applied and the fetch high-water mark.</caption>
        <thead><tr><th scope="col">Processor</th><th scope="col" class="left">Topic</th>
          <th scope="col">Partition</th><th scope="col">Applied offset</th>
          <th scope="col">High-water mark</th><th scope="col">Lag</th></tr></thead>
      </table>
    </details>
  </section>
{{dlq_section}}
</main>
<script nonce="{{nonce}}">
"use strict";
(() => {
  const KEY = "ler.ops.token";
  const SVG = "http://www.w3.org/2000/svg";
  const NAMES = {auto_verification: "Automatic verification", manual_review: "Manual review",
    appeal: "Appeals"};
  const COLORS = {auto_verification: "#0969da", manual_review: "#bc4c00", appeal: "#8250df"};
  const num = new Intl.NumberFormat("en");
  const $ = (id) => document.getElementById(id);
  let refresh = Number(document.body.dataset.refresh) || 5;
  let timer = null;
  let inflight = null;

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const kid of kids) {
      if (kid !== null && kid !== undefined) node.append(kid);
    }
    return node;
  }
  function sv(tag, attrs, ...kids) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const kid of kids) node.append(kid);
    return node;
  }
  const qname = (q) => NAMES[q] || q;
  const qclass = (q) => "q-" + (NAMES[q] ? q : "other");
  function dur(s) {
    if (s === null || s === undefined) return "\u2014";
    const a = Math.abs(s);
    const two = (big, bigUnit, small, smallUnit) =>
      big + " " + bigUnit + (small ? " " + small + " " + smallUnit : "");
    if (a < 1) return Math.round(a * 1000) + " ms";
    if (a < 60) return (a < 10 && !Number.isInteger(a) ? a.toFixed(1) : Math.round(a)) + " s";
    if (a < 3600) return two(Math.floor(a / 60), "min", Math.floor(a % 60), "s");
    if (a < 86400) return two(Math.floor(a / 3600), "h", Math.floor((a % 3600) / 60), "min");
    return two(Math.floor(a / 86400), "d", Math.floor((a % 86400) / 3600), "h");
  }
  const count = (n) => (n === null || n === undefined ? "\u2014" : num.format(n));
  function say(text, error) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("error", Boolean(error));
  }

  function meter(value, budget) {
    const w = 64, h = 6, frac = value === null ? 0 : Math.min(value / budget, 1);
    return sv("svg", {class: "meter", width: w, height: h, "aria-hidden": "true"},
      sv("rect", {width: w, height: h, rx: 3, fill: "#eaeef2"}),
      sv("rect", {width: Math.max(frac * w, value ? 2 : 0), height: h, rx: 3,
        fill: value !== null && value > budget ? "#cf222e" : "#1a7f37"}));
  }

  function totals(data) {
    const qs = Object.values(data.queues);
    const sum = (f) => qs.reduce((a, q) => a + f(q), 0);
    const lag = data.processors.reduce((a, p) => a + (p.total_lag || 0), 0);
    const down = data.processors.filter((p) => p.status !== "ok").length;
    const stalled = data.processors.filter((p) => p.stalled).length;
    const items = [
      ["Open items", sum((q) => q.open), false, "total-open"],
      ["Open and breached", sum((q) => q.open_breached), sum((q) => q.open_breached) > 0,
        "total-breached"],
      ["Breaches, last 24 h", sum((q) => q.windows["24h"].breaches), false, "total-24h"],
      ["Consumer lag (events)", lag, lag > 0, "total-lag"],
      ["Processors not answering", down, down > 0, "total-down"],
      ["Processors stopped on a failure", stalled, stalled > 0, "total-stalled"],
    ];
    $("totals").replaceChildren(...items.map(([label, value, alert, id]) =>
      el("div", {class: alert ? "alert" : null}, el("dt", {}, label),
        el("dd", {id}, count(value)))));
  }

  function queueCard(queue, q) {
    const budget = q.budget_seconds;
    const oldest = q.oldest_open_item;
    let oldestText = el("dd", {}, "none open");
    if (oldest) {
      const late = oldest.seconds_to_deadline < 0;
      oldestText = el("dd", {},
        el("span", {class: "big"}, dur(oldest.age_seconds)), el("br"),
        el("span", {class: late ? "over" : "within"},
          late ? "overdue by " + dur(-oldest.seconds_to_deadline)
               : "due in " + dur(oldest.seconds_to_deadline)), el("br"),
        el("code", {title: "item id"}, oldest.item_id));
    }
    const windows = Object.entries(q.windows);
    const wname = (n) => (n === "24h" ? "24 hours" : n === "30d" ? "30 days" : n);
    const head = el("tr", {}, el("td", {}), ...windows.map(([n]) =>
      el("th", {scope: "col"}, wname(n))));
    const metric = (label, cell) => el("tr", {}, el("th", {scope: "row"}, label),
      ...windows.map(([, w]) => cell(w)));
    const pct = (k) => (w) => {
      const v = w[k];
      const over = v !== null && v > budget;
      return el("td", {}, meter(v, budget), el("span", {class: over ? "over" : null}, dur(v)),
        over ? el("span", {class: "vh"}, " (over the SLA)") : null);
    };
    const rows = [
      metric("Decided", (w) => el("td", {}, count(w.decided))),
      metric("p50", pct("p50_seconds")),
      metric("p90", pct("p90_seconds")),
      metric("p99", pct("p99_seconds")),
      metric("Breaches", (w) => el("td", {class: w.breaches ? "over" : null}, count(w.breaches))),
    ];
    const id = "queue-" + queue;
    return el("article", {class: "card " + qclass(queue), "aria-labelledby": id,
        "data-queue": queue},
      el("header", {}, el("h3", {id}, qname(queue)),
        el("span", {class: "budget"}, "SLA " + dur(budget))),
      el("dl", {class: "stats"},
        el("div", {}, el("dt", {}, "Backlog"),
          el("dd", {class: "big", "data-field": "backlog"}, count(q.open))),
        el("div", {}, el("dt", {}, "Open, breached"),
          el("dd", {class: q.open_breached ? "big over" : "big", "data-field": "open-breached"},
            count(q.open_breached))),
        el("div", {}, el("dt", {}, "Oldest open item"), oldestText)),
      el("table", {}, el("caption", {}, "Processing time of decided items against the SLA of "
        + dur(budget)), el("thead", {}, head), el("tbody", {}, ...rows)));
  }

  function label(iso, period) {
    const d = new Date(iso), p = (n) => String(n).padStart(2, "0");
    if (period === "30d") return p(d.getUTCMonth() + 1) + "-" + p(d.getUTCDate());
    return p(d.getUTCHours()) + ":" + p(d.getUTCMinutes());
  }

  function chart(series, queues) {
    const W = 960, H = 260, L = 44, R = 12, T = 14, B = 34;
    const buckets = series.buckets, n = buckets.length;
    const totalsOf = buckets.map((b) => queues.reduce((a, q) => a + (b.counts[q] || 0), 0));
    const peak = Math.max(1, ...totalsOf);
    const step = peak <= 5 ? 1 : Math.ceil(peak / 4 / Math.pow(10, Math.floor(Math.log10(peak / 4))))
      * Math.pow(10, Math.floor(Math.log10(peak / 4)));
    const top = Math.ceil(peak / step) * step;
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const bw = (W - L - R) / n;
    const unit = {"1h": "minute", "24h": "hour", "30d": "day"}[series.period] || "bucket";
    const byQueue = queues.map((q) => qname(q) + " " +
      buckets.reduce((a, b) => a + (b.counts[q] || 0), 0)).join(", ");
    const title = "Breaches per " + unit + ": " + series.total + " in total (" + byQueue + ")";
    const svg = sv("svg", {viewBox: "0 0 " + W + " " + H, width: "100%", role: "img",
      "aria-labelledby": "chart-title", "data-total": series.total});
    svg.append(sv("title", {id: "chart-title"}, title));
    for (let v = 0; v <= top; v += step) {
      svg.append(sv("line", {x1: L, x2: W - R, y1: y(v), y2: y(v),
        stroke: v === 0 ? "#8c959f" : "#d0d7de", "stroke-width": 1}));
      svg.append(sv("text", {x: L - 8, y: y(v) + 4, "text-anchor": "end", "font-size": 12,
        fill: "#57606a"}, String(v)));
    }
    const every = Math.max(1, Math.ceil(n / 8));
    buckets.forEach((b, i) => {
      const x = L + i * bw;
      let base = 0;
      const parts = [];
      for (const q of queues) {
        const c = b.counts[q] || 0;
        if (!c) continue;
        const rect = sv("rect", {class: "bar", x: x + bw * 0.15, width: Math.max(bw * 0.7, 2),
          y: y(base + c), height: y(base) - y(base + c), fill: COLORS[q] || "#57606a",
          "data-queue": q, "data-count": c});
        rect.append(sv("title", {}, label(b.start, series.period) + " UTC: " + c + " "
          + qname(q).toLowerCase() + (c === 1 ? " breach" : " breaches")));
        svg.append(rect);
        parts.push(qname(q) + " " + c);
        base += c;
      }
      if ((n - 1 - i) % every === 0) {
        svg.append(sv("text", {x: x + bw / 2, y: H - B + 18, "text-anchor": "middle",
          "font-size": 12, fill: "#57606a"}, label(b.start, series.period)));
      }
    });
    if (!series.total) {
      svg.append(sv("text", {x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle",
        "font-size": 15, fill: "#57606a"}, "No breaches in this period"));
    }
    $("chart").replaceChildren(svg);
    $("chart-caption").textContent = title + ". Times in UTC.";
    $("legend").replaceChildren(...queues.map((q) => el("li", {class: qclass(q)},
      el("span", {class: "swatch", "aria-hidden": "true"}), qname(q))));
    const table = $("breach-table");
    table.tHead.replaceChildren(el("tr", {}, el("th", {scope: "col"}, "From (UTC)"),
      ...queues.map((q) => el("th", {scope: "col"}, qname(q)))));
    table.tBodies[0].replaceChildren(...buckets.filter((b, i) => totalsOf[i] > 0).map((b) =>
      el("tr", {}, el("th", {scope: "row"}, b.start.replace("T", " ").slice(0, 16)),
        ...queues.map((q) => el("td", {}, count(b.counts[q] || 0))))));
  }

  function byTopic(partitions) {
    const topics = new Map();
    for (const part of partitions) {
      const t = topics.get(part.topic) || {topic: part.topic, parts: [], applied: 0, hw: 0,
        lag: 0, unknown: 0};
      t.parts.push(part);
      t.applied += part.applied_offset === null ? 0 : part.applied_offset + 1;
      t.hw += part.highwater || 0;
      if (part.lag === null) t.unknown += 1; else t.lag += part.lag;
      topics.set(part.topic, t);
    }
    return Array.from(topics.values());
  }

  function lagTable(processors) {
    const table = $("lag");
    for (const old of Array.from(table.tBodies)) old.remove();
    const detail = $("lag-partitions");
    for (const old of Array.from(detail.tBodies)) old.remove();
    if (!processors.length) {
      table.append(el("tbody", {}, el("tr", {}, el("td", {colspan: 6, class: "left"},
        "No processors configured (VERIFICATION_OPS_PROCESSORS)."))));
      return;
    }
    for (const p of processors) {
      const body = el("tbody", {class: "proc", "data-processor": p.name});
      const topics = byTopic(p.partitions);
      const badge = p.stalled
        ? el("span", {class: "badge over"}, "stopped since " + p.stalled.since.slice(11, 19) +
            " UTC (" + p.stalled.error + ", " + p.stalled.attempts + " attempts)")
        : p.status === "ok"
        ? el("span", {class: p.total_lag ? "badge lagging" : "badge within"},
            p.total_lag ? "lag " + count(p.total_lag) : "caught up")
        : el("span", {class: "badge over"}, p.status === "unreachable" ? "not answering"
            : "invalid answer");
      const name = el("th", {scope: "rowgroup", rowspan: Math.max(topics.length, 1),
        class: "left"}, p.name, badge, p.group ? el("br") : null,
        p.group ? el("code", {}, p.group) : null);
      if (!topics.length) {
        body.append(el("tr", {}, name, el("td", {colspan: 5, class: "left"},
          p.status === "ok" ? "no partitions assigned yet" : "no answer from its health port")));
      }
      topics.forEach((t, i) => {
        const lagging = t.parts.filter((x) => x.lag);
        body.append(el("tr", {class: "lag-row"}, i === 0 ? name : null,
          el("td", {class: "left"}, t.topic), el("td", {}, String(t.parts.length)),
          el("td", {}, count(t.applied)), el("td", {}, count(t.hw)),
          el("td", {class: t.lag ? "lagging" : null},
            t.unknown === t.parts.length ? "not measured yet" : count(t.lag),
            lagging.length ? el("span", {class: "small"}, " (" + lagging.map((x) =>
              "p" + x.partition + ": " + count(x.lag)).join(", ") + ")") : null)));
      });
      table.append(body);
      const rows = p.partitions.map((part) => el("tr", {},
        el("th", {scope: "row", class: "left"}, p.name), el("td", {class: "left"}, part.topic),
        el("td", {}, String(part.partition)), el("td", {}, count(part.applied_offset)),
        el("td", {}, count(part.highwater)),
        el("td", {}, part.lag === null ? "not measured yet" : count(part.lag))));
      if (rows.length) detail.append(el("tbody", {}, ...rows));
    }
  }

  function render(data) {
    const queues = Object.keys(data.queues);
    totals(data);
    $("queues").replaceChildren(...queues.map((q) => queueCard(q, data.queues[q])));
    chart(data.breaches, queues);
    lagTable(data.processors);
    document.dispatchEvent(new CustomEvent("ops:data", {detail: data}));
    if (data.refresh_seconds) refresh = data.refresh_seconds;
    const at = new Date(data.as_of).toISOString().slice(11, 19);
    say("Updated " + at + " UTC; refreshing every " + refresh + " s.");
  }

  async function poll() {
    clearTimeout(timer);
    const token = sessionStorage.getItem(KEY);
    if (!token) return;
    if (inflight) inflight.abort();
    inflight = new AbortController();
    try {
      const r = await fetch("v1/ops/summary?period=" + encodeURIComponent($("period").value), {
        headers: {Authorization: "Bearer " + token, Accept: "application/json"},
        cache: "no-store", credentials: "omit", signal: inflight.signal});
      if (r.status === 401 || r.status === 403) {
        sessionStorage.removeItem(KEY);
        say("The token was refused (" + r.status + "). Enter the admin token or the ops token.",
          true);
        $("token").focus();
        return;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
    } catch (e) {
      if (e.name === "AbortError") return;
      say("Cannot load the figures (" + e.message + "); retrying in " + refresh + " s.", true);
    }
    timer = setTimeout(poll, refresh * 1000);
  }

  $("auth").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("token");
    const value = input.value.trim();
    input.value = "";
    if (!value) { say("Enter a token first.", true); input.focus(); return; }
    sessionStorage.setItem(KEY, value);
    input.placeholder = "connected (kept in this tab)";
    say("Loading\u2026");
    poll();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    clearTimeout(timer);
    $("token").placeholder = "";
    say("Token forgotten. Enter a token to connect again.");
  });
  $("period").addEventListener("change", poll);
  if (sessionStorage.getItem(KEY)) {
    $("token").placeholder = "connected (kept in this tab)";
    poll();
  }
})();
</script>
{{dlq_script}}
</body>
</html>
"""


def render_page(nonce: str, refresh_seconds: float) -> str:
    """The page with this response's CSP nonce and the polling interval (no data)."""
    refresh = f"{refresh_seconds:g}"
    page = PAGE.replace("{{dlq_section}}", SECTION).replace("{{dlq_script}}", SCRIPT)
    return page.replace("{{nonce}}", nonce).replace("{{refresh}}", refresh)
