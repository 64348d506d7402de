"""The built site in a real browser: headless Chromium (Debian package) driven by Playwright.

The site is built once into a temporary folder and served on 127.0.0.1. Every page visit
records the requests it makes and the console errors it logs: none may leave localhost and
there must be none. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)"
    ),
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory):
    """``$REPRO_SITE_DIR`` if set (an already built site), else a site built now."""
    prebuilt = os.environ.get("REPRO_SITE_DIR")
    if prebuilt:
        out = Path(prebuilt)
        assert (out / "index.html").exists(), f"REPRO_SITE_DIR={prebuilt} holds no built site"
    else:
        out = tmp_path_factory.mktemp("site")
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        proc = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def site_url(site_dir):
    """The built site, served on 127.0.0.1."""
    handler = functools.partial(_Quiet, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


class Visit:
    """A page plus what it requested and what it complained about."""

    def __init__(self, browser, base: str, width: int = 1280):
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def go(self, path: str):
        self.page.goto(self.base + path, wait_until="networkidle")
        return self.page

    def external(self) -> list[str]:
        return [
            u
            for u in self.requests
            if not u.startswith(self.base) and not u.startswith(("data:", "blob:", "about:"))
        ]

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, site_url):
    v = Visit(browser, site_url)
    yield v
    assert v.external() == [], f"requests left localhost: {v.external()[:5]}"
    assert v.errors == [], f"console errors: {v.errors[:5]}"
    v.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def test_home_shows_totals_and_collections(visit):
    page = visit.go("/")
    totals = page.locator(".totals").inner_text()
    # findings and implementation checks are shown apart, never summed
    assert "paper cards" in totals and "findings" in totals
    assert "implementation checks" in totals and "inconclusive" in totals
    assert (
        page.locator("a", has_text="19 landmark").count()
        + page.locator("a", has_text="Landmark").count()
        >= 1
    )
    shot(page, "home")


def test_card_with_reproduction_shows_claim_table(visit):
    page = visit.go("/papers/attention-is-all-you-need/")
    assert page.locator("h1").first.inner_text().startswith("Attention Is All You Need")
    assert page.locator("h3", has_text="Findings").count() == 1
    assert page.locator("h3", has_text="Implementation checks").count() == 1
    tables = page.locator("table.claims-table")
    assert tables.count() == 2 and tables.first.is_visible()
    assert tables.first.locator("th").all_inner_texts() == ["claim", "paper", "ours", "verdict"]
    checks = tables.nth(1)
    assert checks.locator("tbody tr").count() >= 3
    text = checks.inner_text()
    assert "pass" in text and "§3.5" in text
    assert page.locator("text=BibTeX").count() >= 1
    shot(page, "card-attention")


def test_flash_attention_card(visit):
    page = visit.go("/papers/flash-attention/")
    assert "FlashAttention" in page.locator("h1").first.inner_text()
    assert page.locator("h2", has_text="What we measured").count() == 1
    assert page.locator("table.claims-table").count() >= 1
    strip = page.locator(".verdict-strip")
    assert strip.is_visible() and "checks" in strip.inner_text()
    # the strip sits above the notes, within the first screen
    assert strip.bounding_box()["y"] < 600
    assert strip.locator('a[href="#what-we-measured"]').count() == 1
    assert strip.locator('a[href*="walkthroughs/flash-attention"]').count() == 1
    shot(page, "card-flash-attention")


def test_graph_node_click_opens_panel_then_card(visit):
    page = visit.go("/graph/")
    # the drawing opens on the recent years: scrolled right until the right-most label ends
    # just inside the view
    scrolled = page.evaluate(
        """(() => { const s = document.querySelector('.rg-scroll');
             const box = s.getBoundingClientRect();
             const right = Math.max(...[...s.querySelectorAll('.rg-node')]
               .map(n => n.getBoundingClientRect().right));
             return [s.scrollLeft, box.right - right]; })()"""
    )
    assert scrolled[0] > 0 and 0 <= scrolled[1] <= 40, scrolled
    labels = page.locator("svg.rg-full text").all_text_contents()
    assert "GPT-1" in labels and "Kaplan scaling laws" in labels and "gpt" not in labels
    node = page.locator('svg.rg-full a[href*="papers/flash-attention"]').first
    node.click()
    panel = page.locator(".rg-panel")
    panel.wait_for(state="visible")
    assert "FlashAttention" in panel.locator(".rg-panel-title").inner_text()
    assert "2022" in panel.inner_text() and "implementation checks" in panel.inner_text()
    assert "/graph/" in page.url  # still on the graph
    shot(page, "graph-panel")
    panel.locator(".rg-panel-open").click()
    page.wait_for_load_state("networkidle")
    assert page.url.rstrip("/").endswith("/papers/flash-attention")
    assert "FlashAttention" in page.locator("h1").first.inner_text()


def test_search_finds_flash_attention(visit):
    page = visit.go("/")
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("flash", delay=30)  # Material searches on key events
    # the card, not the walkthrough page that also mentions it
    result = page.locator('.md-search-result__item a[href*="papers/flash-attention/"]').first
    result.wait_for(timeout=15000)
    assert result.is_visible()
    result.click()
    page.wait_for_load_state("networkidle")
    assert "/papers/flash-attention/" in page.url


def test_tags_page_lists_tags(visit):
    page = visit.go("/tags/")
    text = page.locator("article").inner_text()
    for tag in ("attention", "scaling-laws", "normalization"):
        assert tag in text


def test_timeline_lists_years(visit):
    page = visit.go("/timeline/")
    headings = page.locator("article h2").all_inner_texts()
    years = [int(h.strip()[:4]) for h in headings if h.strip()[:4].isdigit()]
    assert years == sorted(years, reverse=True) and len(years) >= 5


@pytest.mark.parametrize("path", ["/", "/papers/flash-attention/", "/graph/"])
def test_phone_width_has_no_horizontal_overflow(browser, site_url, path):
    v = Visit(browser, site_url, width=390)
    try:
        page = v.go(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        shot(page, "phone-" + (path.strip("/").replace("/", "-") or "home"))
        assert overflow <= 0, f"{path} is {overflow}px wider than a 390px screen"
        assert v.external() == [] and v.errors == []
    finally:
        v.close()


# --------------------------------------------------------------------------- issue 20
def _cards_with_reproduction():
    sys.path.insert(0, str(REPO))
    from repro import cards

    kb = cards.load(REPO)
    return kb, sorted(c.id for c in kb.cards.values() if c.meta.repro)


def test_no_raw_tex_anywhere_on_the_built_site(site_dir):
    from repro.site import raw_tex

    found = {}
    for path in sorted(Path(site_dir).rglob("*.html")):
        hits = raw_tex(path.read_text(encoding="utf-8"))
        if hits:
            found[str(path.relative_to(site_dir))] = hits[:3]
    assert found == {}, f"raw TeX on {len(found)} page(s): {list(found.items())[:3]}"
    walk = (Path(site_dir) / "walkthroughs" / "flash-attention" / "index.html").read_text()
    assert walk.count("<math") >= 10  # the notebook's maths became MathML


def test_every_card_with_a_reproduction_has_a_verdict_strip(site_dir):
    kb, ids = _cards_with_reproduction()
    assert len(ids) >= 30
    missing = []
    for cid in ids:
        text = (Path(site_dir) / "papers" / cid / "index.html").read_text(encoding="utf-8")
        head = text.split('class="card-meta"')[0]
        if 'class="verdict-strip"' not in head or "claims table" not in head:
            missing.append(cid)
    assert missing == []


@pytest.mark.parametrize("width", [1400, 390])
def test_no_card_overflows_its_column(browser, site_url, width):
    kb, _ = _cards_with_reproduction()
    v = Visit(browser, site_url, width=width)
    bad = {}
    try:
        for cid in sorted(kb.cards):
            page = v.page
            page.goto(f"{site_url}/papers/{cid}/", wait_until="load")
            res = page.evaluate(
                """(() => {
                  const art = document.querySelector('article').getBoundingClientRect();
                  const wide = [...document.querySelectorAll(
                      'article table, article svg, article figure, article img, article td')]
                    .filter(e => !e.closest('.md-typeset__scrollwrap, pre, .highlight')
                      && !(e.parentElement && e.parentElement.closest('.fig-wide, .forest-plot')))
                    .filter(e => e.getBoundingClientRect().right > art.right + 1)
                    .map(e => e.tagName + '.' + e.className);
                  const clipped = [...document.querySelectorAll('.md-typeset__scrollwrap')]
                    .filter(e => e.scrollWidth > e.clientWidth + 1).length;
                  // Wide figures and the forest plot may be wider than a phone by design, but
                  // only inside a sideways-scrolling box that itself fits the column.
                  const boxes = [...document.querySelectorAll('article .fig-wide, article .forest-plot')]
                    .filter(e => !['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                      || e.getBoundingClientRect().right > art.right + 1)
                    .map(e => 'box:' + e.className);
                  return [document.documentElement.scrollWidth - window.innerWidth,
                          wide.concat(boxes).slice(0, 3), clipped];
                })()"""
            )
            if res[0] > 0 or res[1] or res[2]:
                bad[cid] = res
        assert v.external() == [] and v.errors == []
    finally:
        v.close()
    assert bad == {}, f"{len(bad)} card(s) overflow at {width}px: {list(bad.items())[:4]}"


def test_claims_explorer_filters_and_sorts(visit):
    page = visit.go("/claims/")
    rows = page.locator(".explorer-table tbody tr")
    total = rows.count()
    assert total >= 100
    assert page.locator(".cx-count").inner_text() == f"{total} of {total} claims"
    page.select_option('select[data-cx-filter="verdict"]', "not reproduced")
    shown = page.locator(".explorer-table tbody tr:not([hidden])")
    n = shown.count()
    assert 0 < n < total
    assert set(shown.evaluate_all("rs => rs.map(r => r.dataset.verdict)")) == {"not reproduced"}
    page.select_option('select[data-cx-filter="verdict"]', "")
    page.select_option('select[data-cx-filter="kind"]', "check")
    kinds = page.locator(".explorer-table tbody tr:not([hidden])").evaluate_all(
        "rs => rs.map(r => r.dataset.kind)"
    )
    assert kinds and set(kinds) == {"check"}
    page.select_option('select[data-cx-filter="kind"]', "")
    page.select_option('select[data-cx-filter="paper"]', "flash-attention")
    papers = page.locator(".explorer-table tbody tr:not([hidden])").evaluate_all(
        "rs => rs.map(r => r.dataset.paper)"
    )
    assert papers and set(papers) == {"flash-attention"}
    page.select_option('select[data-cx-filter="paper"]', "")
    page.click('button[data-cx-sort="1"]')  # year, ascending
    years = [
        int(y) for y in page.locator(".explorer-table tbody td:nth-child(2)").all_inner_texts()
    ]
    assert years == sorted(years)
    page.click('button[data-cx-sort="1"]')  # and descending
    years = [
        int(y) for y in page.locator(".explorer-table tbody td:nth-child(2)").all_inner_texts()
    ]
    assert years == sorted(years, reverse=True)


def _search(page, query: str) -> str:
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially(query, delay=30)
    first = page.locator(".md-search-result__item > a").first
    first.wait_for(timeout=15000)
    page.wait_for_timeout(500)  # let the result list settle after the last key
    return page.locator(".md-search-result__item > a").first.get_attribute("href")


def test_search_chinchilla_finds_the_chinchilla_card_first(visit):
    page = visit.go("/")
    assert "/papers/chinchilla/" in _search(page, "chinchilla")


def test_search_flash_attention_finds_the_card_first(visit):
    page = visit.go("/")
    assert "/papers/flash-attention/" in _search(page, "flash attention")


@pytest.mark.parametrize("width", [1400, 390])
def test_screenshots_of_the_main_pages(browser, site_url, width):
    v = Visit(browser, site_url, width=width)
    try:
        for path, name in [
            ("/", "home"),
            ("/papers/flash-attention/", "card-flash-attention"),
            ("/claims/", "explorer"),
            ("/graph/", "graph"),
        ]:
            page = v.go(path)
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
            shot(page, f"{name}-{width}")
        assert v.external() == [] and v.errors == []
    finally:
        v.close()


def test_figures_have_captions_alt_text_and_enlarge(visit):
    page = visit.go("/papers/flash-attention/")
    figs = page.locator("figure.result-fig")
    assert figs.count() == 3  # memory, IO and the CPU benchmark plot
    srcs = figs.locator("img").evaluate_all("xs => xs.map(x => x.getAttribute('src'))")
    assert any(s.endswith("bench/cpu.png") for s in srcs)
    for i in range(figs.count()):
        fig = figs.nth(i)
        alt = fig.locator("img").get_attribute("alt")
        assert len(alt.split()) >= 8 and not alt.endswith(".png")  # words, not a file name
        assert fig.locator("figcaption").inner_text().strip()
    img = figs.first.locator("img")
    img.scroll_into_view_if_needed()
    img.click()
    overlay = page.locator(".fig-overlay")
    overlay.wait_for(state="visible")
    box = overlay.locator("img").bounding_box()
    assert box["width"] > img.bounding_box()["width"]  # shown larger than in the column
    page.keyboard.press("Escape")
    assert page.locator(".fig-overlay").count() == 0


def test_every_shipped_image_is_shown_on_a_page(site_dir):
    site = Path(site_dir)
    pages = "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
    shipped = sorted(p.relative_to(site).as_posix() for p in (site / "results").rglob("*.png"))
    assert shipped, "no result figures in the site"
    unused = [rel for rel in shipped if rel not in pages]
    assert unused == []
