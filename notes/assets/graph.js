/* The citation graph's interactions, for the SVGs that repro.graph.draw writes at build time.
 *
 * Hovering or focusing a card highlights it, the cards it is linked to and those edges; the
 * selects in a .repro-graph block dim every card outside the chosen collection and tag. The
 * drawing carries all it needs in data- attributes, so this script holds no data of its own.
 * No library: a few dozen lines do not justify a dependency or a CDN.
 */
(function () {
  "use strict";

  function words(el, name) {
    var v = el.getAttribute("data-" + name);
    return v ? v.split(" ") : [];
  }

  function wire(svg) {
    if (svg.getAttribute("data-rg-ready")) return;
    svg.setAttribute("data-rg-ready", "1");
    var nodes = {};
    var edgesOf = {};
    svg.querySelectorAll(".rg-node").forEach(function (n) {
      nodes[n.getAttribute("data-id")] = n;
      edgesOf[n.getAttribute("data-id")] = [];
    });
    svg.querySelectorAll(".rg-edge").forEach(function (e) {
      var s = e.getAttribute("data-source"), t = e.getAttribute("data-target");
      if (edgesOf[s]) edgesOf[s].push([e, t]);
      if (edgesOf[t]) edgesOf[t].push([e, s]);
    });

    function light(id, on) {
      svg.classList.toggle("rg-focus", on);
      var n = nodes[id];
      if (!n) return;
      n.classList.toggle("rg-hl", on);
      edgesOf[id].forEach(function (pair) {
        pair[0].classList.toggle("rg-hl", on);
        if (nodes[pair[1]]) nodes[pair[1]].classList.toggle("rg-hl", on);
      });
    }

    Object.keys(nodes).forEach(function (id) {
      var n = nodes[id];
      n.addEventListener("mouseenter", function () { light(id, true); });
      n.addEventListener("mouseleave", function () { light(id, false); });
      n.addEventListener("focus", function () { light(id, true); });
      n.addEventListener("blur", function () { light(id, false); });
    });
    return { nodes: nodes, edgesOf: edgesOf };
  }

  function filters(block) {
    var svg = block.querySelector("svg.rg-svg");
    var form = block.querySelector(".rg-controls");
    if (!svg || !form || block.getAttribute("data-rg-ready")) return;
    block.setAttribute("data-rg-ready", "1");
    var selects = form.querySelectorAll("select[data-rg-filter]");
    var count = form.querySelector(".rg-count");
    var all = svg.querySelectorAll(".rg-node");

    function apply() {
      var shown = {}, n = 0;
      all.forEach(function (node) {
        var keep = true;
        selects.forEach(function (sel) {
          var want = sel.value;
          if (want && words(node, sel.getAttribute("data-rg-filter")).indexOf(want) < 0) {
            keep = false;
          }
        });
        node.classList.toggle("rg-dim", !keep);
        if (keep) { shown[node.getAttribute("data-id")] = true; n += 1; }
      });
      svg.querySelectorAll(".rg-edge").forEach(function (e) {
        var keep = shown[e.getAttribute("data-source")] && shown[e.getAttribute("data-target")];
        e.classList.toggle("rg-dim", !keep);
      });
      if (count) count.textContent = n + " of " + all.length + " papers";
    }

    selects.forEach(function (sel) { sel.addEventListener("change", apply); });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); });
    form.hidden = false;
    apply();

    // Open on the dense recent years (the right end) rather than on 1991.
    // The right edge of the view goes just past the right-most label, not to the drawing's
    // margin, so a phone shows the last two years' papers rather than empty space.
    var scroll = block.querySelector(".rg-scroll");
    if (scroll) {
      var box = scroll.getBoundingClientRect(), right = 0;
      svg.querySelectorAll(".rg-node").forEach(function (node) {
        right = Math.max(right, node.getBoundingClientRect().right - box.left + scroll.scrollLeft);
      });
      scroll.scrollLeft = right > 0 ? Math.max(0, right + 12 - scroll.clientWidth) : scroll.scrollWidth;
    }

    // A click shows the card in a side panel first; its button opens the card.
    var panel = block.querySelector(".rg-panel");
    if (!panel) return;
    function show(node) {
      panel.querySelector(".rg-panel-title").textContent = node.getAttribute("data-title");
      panel.querySelector(".rg-panel-year").textContent = node.getAttribute("data-year");
      var tldr = node.getAttribute("data-tldr") || "";
      var t = panel.querySelector(".rg-panel-tldr");
      t.textContent = tldr;
      t.hidden = !tldr;
      panel.querySelector(".rg-panel-verdicts").textContent = node.getAttribute("data-verdicts");
      panel.querySelector(".rg-panel-open").setAttribute("href", node.getAttribute("href"));
      panel.hidden = false;
    }
    all.forEach(function (node) {
      node.addEventListener("click", function (ev) { ev.preventDefault(); show(node); });
    });
    panel.querySelector(".rg-panel-close").addEventListener("click", function () {
      panel.hidden = true;
    });
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") panel.hidden = true;
    });
  }

  function init() {
    document.querySelectorAll("svg.rg-svg").forEach(wire);
    document.querySelectorAll(".repro-graph").forEach(filters);
  }

  // Material's instant navigation swaps pages without a reload and announces each on document$.
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(init);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
