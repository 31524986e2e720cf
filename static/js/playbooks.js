// Playbook editor: reorder checklist rows (drag, or ↑/↓ buttons for the keyboard), add and
// remove rows. Each row carries its own token, so the server reads the order as posted.
(function () {
  "use strict";
  const list = document.getElementById("checklist");
  if (!list) return;
  let counter = 0;
  const token = () => "js" + Date.now().toString(36) + (counter++);

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const row = button.closest("li");
    if (button.dataset.move === "up" && row.previousElementSibling) {
      row.parentNode.insertBefore(row, row.previousElementSibling);
      button.focus();
    } else if (button.dataset.move === "down" && row.nextElementSibling) {
      row.parentNode.insertBefore(row.nextElementSibling, row);
      button.focus();
    } else if (button.hasAttribute("data-remove")) {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      if (next) next.querySelector("input[type=text]").focus();
    }
  });

  const add = document.getElementById("add-item");
  const blank = document.getElementById("blank-item");
  if (add && blank) {
    add.addEventListener("click", () => {
      // An empty row already waiting: use it rather than adding one below it.
      const empty = [...list.querySelectorAll("input[name=item_text]")].find((input) => !input.value.trim());
      if (empty) {
        empty.focus();
        return;
      }
      const row = blank.content.firstElementChild.cloneNode(true);
      const t = token();
      row.querySelector("input[name=item_row]").value = t;
      row.querySelector("input[name=item_required]").value = t;
      list.appendChild(row);
      row.querySelector("input[type=text]").focus();
    });
  }

  let dragged = null;
  list.addEventListener("dragstart", (event) => {
    dragged = event.target.closest("li");
    if (dragged) dragged.classList.add("dragging");
  });
  list.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });
  list.addEventListener("dragover", (event) => {
    if (!dragged) return;
    event.preventDefault();
    const over = event.target.closest("li");
    if (!over || over === dragged) return;
    const box = over.getBoundingClientRect();
    const after = event.clientY > box.top + box.height / 2;
    list.insertBefore(dragged, after ? over.nextElementSibling : over);
  });
})();

// Template editor: language tabs.
(function () {
  "use strict";
  const tabs = document.querySelectorAll(".lang-tabs [role=tab]");
  tabs.forEach((tab) => {
    tab.addEventListener("click", () => {
      tabs.forEach((other) => {
        const selected = other === tab;
        other.setAttribute("aria-selected", selected ? "true" : "false");
        document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
      });
      document.dispatchEvent(new CustomEvent("language-changed", { detail: tab.dataset.lang }));
    });
  });
})();
