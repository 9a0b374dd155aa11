"""A real headless Chromium for tests of pages qonnx writes or serves (the HTML report, the UI).

Debian's chromium (installed by `make test` where apt-get can) driven by Playwright. Where either
is missing the test is skipped with the reason, never passed.
"""
import shutil

import pytest


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture
def page():
    """A Playwright page in headless Chromium, offline: any request that leaves the machine fails
    the test (a self-contained page makes none)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    exe = chromium_path()
    if not exe:
        pytest.skip("no Chromium on this machine (apt-get install chromium; make test does it where it can)")
    outside = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})

        def guard(route):
            url = route.request.url
            if url.startswith(("file:", "data:", "blob:", "about:")) or "://127.0.0.1" in url or "://localhost" in url:
                return route.continue_()
            outside.append(url)
            return route.abort()

        pg.route("**/*", guard)
        yield pg
        browser.close()
    assert not outside, f"the page asked for addresses outside this machine: {outside[:5]}"
