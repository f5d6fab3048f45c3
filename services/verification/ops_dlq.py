"""The ops dashboard's dead letters: how many each consumer dead-lettered, per reason, how many
wait for a redrive, and the latest (read from ``ler.dlq.v1``; ids and counts only)."""

from __future__ import annotations

import time
from typing import Any

from ler.dlq import read_dead_letters
from ler.settings import KafkaSettings

CACHE_SECONDS = 15.0


class DeadLetterCounts:
    """Counts per consumer and reason, read again at most every ``CACHE_SECONDS``: the page
    polls every few seconds and the topic is read from its start each time."""

    def __init__(self, kafka: KafkaSettings, wait_seconds: float) -> None:
        self.kafka = kafka
        self.wait_seconds = wait_seconds
        self._cached: tuple[float, dict[str, Any]] | None = None

    async def get(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        try:
            known = await read_dead_letters(self.kafka, within=max(self.wait_seconds, 5.0))
            found: dict[str, Any] = {"status": "ok", "by_consumer": known.counts()}
        except Exception as exc:  # the broker away: the rest of the page still renders
            found = {"status": "unavailable", "error": type(exc).__name__, "by_consumer": []}
        self._cached = (now, found)
        return found


SECTION = """
  <section aria-labelledby="dlq-h">
    <h2 id="dlq-h">Dead letters per consumer and reason</h2>
    <table id="dlq">
      <caption>Inputs a processor could not decode or that broke a rule (ler.dlq.v1);
        <code>ler dlq list</code>, <code>show</code> and <code>redrive</code> act on them.</caption>
      <thead><tr><th scope="col" class="left">Consumer</th><th scope="col" class="left">Reason</th>
        <th scope="col">Dead letters</th><th scope="col">Waiting for a redrive</th>
        <th scope="col" class="left">Latest (UTC)</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
"""

SCRIPT = """<script nonce="{{nonce}}">
"use strict";
document.addEventListener("ops:data", (e) => {
  const dl = e.detail.dead_letters || {status: "unavailable", by_consumer: []};
  const td = (text, cls) => { const c = document.createElement("td"); c.textContent = text;
    if (cls) c.className = cls; return c; };
  const body = document.querySelector("#dlq tbody");
  const rows = dl.by_consumer.map((r) => { const tr = document.createElement("tr");
    tr.dataset.consumer = r.consumer; tr.dataset.reason = r.reason;
    tr.append(td(r.consumer, "left"), td(r.reason, "left"), td(String(r.total)),
      td(String(r.waiting), r.waiting ? "lagging" : null), td(r.latest.slice(0, 19), "left"));
    return tr; });
  if (!rows.length) { const tr = document.createElement("tr");
    const c = td(dl.status === "ok" ? "No dead letters." : "Dead-letter topic not readable.",
      "left"); c.colSpan = 5; tr.append(c); rows.push(tr); }
  body.replaceChildren(...rows);
});
</script>
"""
