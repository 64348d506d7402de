/* The claims explorer (repro.site._claims_html): filter rows by verdict, kind, tag, year,
 * paper and a word; sort by a column. The table is complete without this script; it only
 * hides and reorders rows that are already in the page. */
(function () {
  "use strict";

  function init() {
    document.querySelectorAll(".claims-explorer").forEach(function (box) {
      if (box.getAttribute("data-cx-ready")) return;
      box.setAttribute("data-cx-ready", "1");
      var form = box.querySelector(".cx-controls");
      var table = box.querySelector("table");
      var tbody = table.tBodies[0];
      var rows = Array.prototype.slice.call(tbody.rows);
      var selects = form.querySelectorAll("select[data-cx-filter]");
      var text = form.querySelector("input[data-cx-text]");
      var count = form.querySelector(".cx-count");

      function apply() {
        var word = (text.value || "").toLowerCase().trim();
        var n = 0;
        rows.forEach(function (tr) {
          var keep = true;
          selects.forEach(function (sel) {
            var want = sel.value;
            if (!want) return;
            var name = sel.getAttribute("data-cx-filter");
            var have = (tr.getAttribute("data-" + name) || "").split(" ");
            if (name === "verdict") have = [tr.getAttribute("data-verdict")];
            if (have.indexOf(want) < 0) keep = false;
          });
          if (keep && word && tr.textContent.toLowerCase().indexOf(word) < 0) keep = false;
          tr.hidden = !keep;
          if (keep) n += 1;
        });
        count.textContent = n + " of " + rows.length + " claims";
      }

      var sortState = { col: -1, dir: 1 };
      function sortBy(col) {
        sortState.dir = sortState.col === col ? -sortState.dir : 1;
        sortState.col = col;
        var numeric = col === 1;
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
          var c = numeric ? (parseFloat(x) - parseFloat(y)) : x.localeCompare(y);
          return c * sortState.dir;
        });
        rows.forEach(function (tr) { tbody.appendChild(tr); });
        table.querySelectorAll("th").forEach(function (th, i) {
          th.setAttribute("aria-sort", i === col ? (sortState.dir > 0 ? "ascending" : "descending") : "none");
        });
      }

      selects.forEach(function (sel) { sel.addEventListener("change", apply); });
      text.addEventListener("input", apply);
      form.addEventListener("submit", function (ev) { ev.preventDefault(); });
      table.querySelectorAll("button[data-cx-sort]").forEach(function (b) {
        b.addEventListener("click", function () { sortBy(parseInt(b.getAttribute("data-cx-sort"), 10)); });
      });
      form.hidden = false;
      apply();
    });
  }

  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(init);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
