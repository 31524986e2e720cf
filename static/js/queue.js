// Queue and ticket page behaviour: j/k/Enter/x on the queue, bulk bar, live SLA countdowns,
// composer shortcuts. Loaded on every page; each part checks for its elements.
(function () {
  "use strict";
  const keys = () => window.Storedesk && window.Storedesk.keys;

  // --- SLA countdown badges: text and colour follow the clock without a reload.
  // As tickets/render.py human_span: whole minutes down, "<1m" under one.
  function human(ms) {
    const m = Math.floor(Math.abs(ms) / 60000);
    if (m < 1) return "<1m";
    if (m < 60) return `${m}m`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }
  function tick() {
    const now = Date.now();
    document.querySelectorAll(".sla[data-due]").forEach((el) => {
      const left = new Date(el.dataset.due).getTime() - now;
      el.classList.remove("ok", "warn", "danger");
      if (left <= 0) { el.classList.add("danger"); el.textContent = `${human(left)} late`; }
      else { el.classList.add(left <= 3600000 ? "warn" : "ok"); el.textContent = `in ${human(left)}`; }
    });
  }
  setInterval(tick, 15000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);

  // --- Queue: a cursor row moved with j/k, opened with Enter, selected with x.
  let cursor = null;
  function updateBulk() {
    const bar = document.getElementById("bulk-bar");
    if (!bar) return;
    const n = document.querySelectorAll('#queue-rows input[name="ids"]:checked').length;
    bar.hidden = n === 0;
    const c = bar.querySelector("[data-selected-count]");
    if (c) c.textContent = n;
  }
  document.addEventListener("DOMContentLoaded", () => {
    if (document.getElementById("queue-rows") && keys()) {
      cursor = window.Storedesk.rowCursor("#queue-rows .qrow");
      keys().add("j", "Next ticket", () => cursor.move(1));
      keys().add("k", "Previous ticket", () => cursor.move(-1));
      keys().add("Enter", "Open ticket", () => { const r = cursor.current(); if (r) window.location.href = r.dataset.href; });
      keys().add("x", "Select ticket", () => { const r = cursor.current(); if (r) { const box = r.querySelector("input"); box.checked = !box.checked; updateBulk(); } });
    }
    const newLink = document.querySelector("[data-key-n]");
    if (newLink && newLink.tagName === "A" && keys()) keys().add("n", "New ticket", () => (window.location.href = newLink.href));
    const up = document.querySelector("[data-key-u]");
    if (up && keys()) keys().add("u", "Back to queue", () => (window.location.href = up.href));
    const composer = document.getElementById("composer");
    if (composer && keys()) {
      const body = composer.querySelector("textarea");
      const pick = (kind) => { composer.querySelector(`input[value="${kind}"]`).checked = true; composer.classList.toggle("is-note", kind === "note"); body.focus(); };
      keys().add("r", "Reply", () => pick("reply"));
      keys().add("n", "Note", () => pick("note"));
      composer.addEventListener("change", (e) => { if (e.target.name === "kind") composer.classList.toggle("is-note", e.target.value === "note"); });
      composer.classList.toggle("is-note", composer.querySelector('input[value="note"]').checked);
      body.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) composer.requestSubmit(); });
    }
  });
  document.addEventListener("click", (e) => {
    const row = e.target.closest(".qrow");
    if (row && !e.target.closest("input, a, select, button, label")) window.location.href = row.dataset.href;
  });
  document.addEventListener("change", (e) => {
    if (e.target.matches("[data-select-all]")) {
      document.querySelectorAll('#queue-rows input[name="ids"]').forEach((b) => (b.checked = e.target.checked));
    }
    if (e.target.matches('#queue-rows input[name="ids"], [data-select-all]')) updateBulk();
    if (e.target.matches("[data-bulk-action]")) {
      document.querySelectorAll("[data-bulk-for]").forEach((el) => {
        const on = el.dataset.bulkFor === e.target.value;
        el.hidden = !on; el.disabled = !on;
      });
    }
  });
  document.addEventListener("htmx:afterSwap", () => { if (cursor) cursor.restore(); updateBulk(); });
})();
