// Storedesk UI behaviour: flash messages, the shortcuts dialog and global key bindings.
// Page scripts register more keys with Storedesk.keys.add(key, description, handler).
(function () {
  "use strict";
  const bindings = new Map();
  let pendingG = false;

  function typing(el) {
    return el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  }

  function nav(key) {
    const link = document.querySelector(`[data-nav="${key}"]`);
    if (link) window.location.href = link.href;
  }

  document.addEventListener("keydown", (event) => {
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    const dialog = document.getElementById("shortcuts");
    if (event.key === "Escape") {
      if (typing(document.activeElement)) document.activeElement.blur();
      return;
    }
    if (typing(event.target)) return;
    if (pendingG) {
      pendingG = false;
      if (event.key === "q") return nav("queue");
      if (event.key === "s") return nav("settings");
      if (event.key === "t") return nav("tickets");
      if (event.key === "c") return nav("customers");
    }
    if (event.key === "g") { pendingG = true; setTimeout(() => (pendingG = false), 1200); return; }
    if (event.key === "?") { event.preventDefault(); dialog && dialog.showModal(); return; }
    const binding = bindings.get(event.key);
    // Enter on a focused link or button keeps its native meaning.
    if (binding && !(event.key === "Enter" && event.target.closest("a, button, summary"))) { event.preventDefault(); binding.handler(event); }
  });

  document.addEventListener("click", (event) => {
    const target = event.target;
    if (target.matches("[data-dismiss]")) target.closest(".flash").remove();
    if (target.matches("[data-shortcuts-open]")) document.getElementById("shortcuts").showModal();
    if (target.matches("dialog [data-close]")) target.closest("dialog").close();
    if (target.matches("[data-copy]")) {
      const text = document.querySelector(target.dataset.copy).textContent.trim();
      navigator.clipboard && navigator.clipboard.writeText(text).then(() => { target.textContent = "Copied"; });
    }
  });

  // Success flashes leave by themselves; errors stay until dismissed.
  function ageFlashes(root) {
    root.querySelectorAll(".flash.success, .flash.info").forEach((el) => setTimeout(() => el.remove(), 5000));
  }
  document.addEventListener("DOMContentLoaded", () => ageFlashes(document));
  document.addEventListener("htmx:afterSwap", (e) => ageFlashes(e.target));

  // An approved reply fetched for the composer: put its text in the draft (at the cursor
  // when there is a draft already), switch to "Public reply", remember which template.
  document.addEventListener("htmx:afterSwap", (e) => {
    const filled = e.target.querySelector && e.target.querySelector("[data-fill-composer]");
    if (!filled) return;
    const body = document.getElementById("id_body");
    if (!body) return;
    const text = filled.textContent;
    if (body.value.trim()) {
      const at = body.selectionStart ?? body.value.length;
      body.value = body.value.slice(0, at) + text + body.value.slice(body.selectionEnd ?? at);
    } else {
      body.value = text;
    }
    const reply = document.querySelector('#composer input[name=kind][value=reply]');
    if (reply) reply.checked = true;
    const used = document.getElementById("id_template");
    if (used) used.value = filled.dataset.template;
    body.focus();
  });

  // A keyboard cursor over a list's rows (j/k in the queue and the escalation queues):
  // move(±1) marks the next/previous row, current() is the marked row or undefined,
  // reset() forgets it (the rows were swapped).
  // A j/k cursor over the rows matching `selector`. It follows its row by `data-id` when
  // the rows are re-rendered (a live refresh); any other swap on the page leaves it alone.
  function rowCursor(selector) {
    let index = -1;
    let id = null;
    const rows = () => Array.from(document.querySelectorAll(selector));
    const mark = (list) => list.forEach((r, i) => r.classList.toggle("is-cursor", i === index));
    return {
      move(delta) {
        const list = rows();
        if (!list.length) return;
        index = Math.max(0, Math.min(list.length - 1, index + delta));
        id = list[index].dataset.id || null;
        mark(list);
        list[index].scrollIntoView({ block: "nearest" });
      },
      current() { return rows()[index]; },
      restore() {
        if (index < 0) return;
        const list = rows();
        const found = id ? list.findIndex((r) => r.dataset.id === id) : -1;
        index = found >= 0 ? found : Math.min(index, list.length - 1);
        id = index >= 0 ? list[index].dataset.id || null : null;
        mark(list);
      },
    };
  }

  window.Storedesk = {
    keys: {
      add(key, description, handler) { bindings.set(key, { description, handler }); },
    },
    rowCursor,
  };
})();
