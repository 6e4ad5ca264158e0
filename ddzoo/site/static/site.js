// ddzoo site: sortable leaderboard columns, filters and copy buttons. No dependencies; the pages work without it.
"use strict";

(function () {
  function sortValue(row, index, numeric) {
    const cell = row.cells[index];
    const raw = cell ? cell.getAttribute("data-value") : null;
    if (raw === null || raw === "" || raw === "None") return null;
    if (!numeric) return raw.toLowerCase();
    const value = Number(raw);
    return Number.isFinite(value) ? value : null;
  }

  function sortable(table, onSort) {
    const headers = Array.from(table.tHead.rows[0].cells);
    const body = table.tBodies[0];
    Array.from(body.rows).forEach(function (row, i) { row.dataset.order = String(i); });
    headers.forEach(function (th, index) {
      const button = th.querySelector("button[data-sort]");
      if (!button) return;
      button.addEventListener("click", function () {
        const numeric = button.dataset.sort === "number";
        const now = th.getAttribute("aria-sort");
        // numbers start best (largest) first, text A to Z; a second click reverses
        const direction = now === "descending" ? "ascending" : now === "ascending" ? "descending"
          : (numeric ? "descending" : "ascending");
        headers.forEach(function (h) { if (h.hasAttribute("aria-sort")) h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", direction);
        const sign = direction === "ascending" ? 1 : -1;
        const rows = Array.from(body.rows);
        rows.sort(function (a, b) {
          const x = sortValue(a, index, numeric), y = sortValue(b, index, numeric);
          if (x === null || y === null) {  // rows without the figure stay last, in their first order
            if (x === y) return a.dataset.order - b.dataset.order;
            return x === null ? 1 : -1;
          }
          if (x < y) return -sign;
          if (x > y) return sign;
          return a.dataset.order - b.dataset.order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
        if (onSort) onSort(button.textContent, direction);
      });
    });
  }

  function filterable(form, table) {
    const output = form.elements.namedItem("shown");
    function apply(sorted) {
      const defence = form.elements.namedItem("defence").value;
      const artifact = form.elements.namedItem("artifact").value;
      const switchAnchors = form.elements.namedItem("anchors");
      const anchors = switchAnchors ? switchAnchors.checked : true;
      let shown = 0, total = 0;
      Array.from(table.tBodies[0].rows).forEach(function (row) {
        let visible;
        if (row.classList.contains("anchor")) {
          visible = anchors;
        } else {
          total += 1;
          const passed = (row.dataset.passed || "").split(" ");
          visible = (!defence || row.dataset.defence === defence) && (!artifact || passed.indexOf(artifact) >= 0);
          if (visible) shown += 1;
        }
        row.hidden = !visible;
      });
      output.value = shown + " of " + total + " models shown" + (sorted ? ", " + sorted : "");
    }
    form.addEventListener("change", function () { apply(""); });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.hidden = false;
    apply("");
    return apply;
  }

  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      const code = document.getElementById(button.dataset.copy);
      if (!code) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        const select = function () {
          const range = document.createRange();
          range.selectNodeContents(code);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          button.textContent = "selected";
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(code.textContent).then(function () { button.textContent = "copied"; }, select);
        } else {
          select();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const table = document.getElementById("leaderboard");
    const form = document.getElementById("filters");
    if (table) {
      const apply = form ? filterable(form, table) : null;
      sortable(table, function (label, direction) {
        if (apply) apply("sorted by " + label + " (" + direction + ")");
      });
    }
    copyButtons();
  });
})();
