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
def site_url(tmp_path_factory):
    """Serve ``$REPRO_SITE_DIR`` if set (an already built site), else build one now."""
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
    handler = functools.partial(_Quiet, directory=str(out))
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
    tables = page.locator("table", has_text="we measured")
    assert tables.count() == 2 and tables.first.is_visible()
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
    assert page.locator("table", has_text="we measured").count() >= 1
    shot(page, "card-flash-attention")


def test_graph_node_click_lands_on_card(visit):
    page = visit.go("/graph/")
    node = page.locator('svg a[href*="papers/flash-attention"]').first
    node.click()
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
