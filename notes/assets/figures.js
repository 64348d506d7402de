/* Click-to-enlarge for result figures: a click (or Enter) on a figure's image shows it at
 * the size of the window over the page; a click anywhere or Escape closes it. No library. */
(function () {
  "use strict";
  var overlay = null;

  function close() {
    if (overlay) { overlay.remove(); overlay = null; }
  }

  function open(img) {
    close();
    overlay = document.createElement("div");
    overlay.className = "fig-overlay";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", img.getAttribute("alt") || "figure");
    var big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    var cap = document.createElement("p");
    cap.textContent = img.alt + " (click or Esc to close)";
    overlay.appendChild(big);
    overlay.appendChild(cap);
    overlay.addEventListener("click", close);
    document.body.appendChild(overlay);
  }

  function init() {
    document.querySelectorAll("figure.result-fig img").forEach(function (img) {
      if (img.getAttribute("data-fig-ready")) return;
      img.setAttribute("data-fig-ready", "1");
      img.setAttribute("tabindex", "0");
      img.addEventListener("click", function () { open(img); });
      img.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") open(img);
      });
    });
  }

  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") close(); });
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(function () { close(); init(); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
