"""Checks of the built website: links, offline resources, and a headless browser on a local server.

tests/test_site.py uses these on `_build/html` (`make test-site`, after `make book`):

* ``scan_site`` parses every HTML page once; ``broken_links`` reports each internal link or
  resource (``href``/``src`` to the same site, anchors included) whose file or ``id`` is missing;
  ``external_resources`` reports everything a page would load from another host (scripts,
  stylesheets, images, fonts in the site's CSS), since the site must work offline;
* ``serve`` serves a folder on 127.0.0.1 from a thread and always stops it;
* ``find_browser`` and ``start_browser`` drive Debian's Chromium through its chromedriver with
  Selenium, headless, with its networking features off and a fresh profile. Selenium Manager
  (which would download a driver) is never used: the driver's path is always given.

Used by: tests/test_site.py.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Debian's package names; Ubuntu's `chromium-browser` is a snap stub, so there the CHROMIUM and
# CHROMEDRIVER variables point to an installed Chrome and its driver instead.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVER_NAMES = ("chromedriver",)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    # Any host name fails to resolve: a page that reaches for the network shows a console error
    # instead of contacting anything.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,1000",
)
# (tag, attribute) pairs whose URL the browser loads by itself, unlike links a reader follows.
RESOURCE_ATTRIBUTES = {
    ("script", "src"),
    ("img", "src"),
    ("iframe", "src"),
    ("source", "src"),
    ("video", "src"),
    ("audio", "src"),
    ("embed", "src"),
    ("object", "data"),
}
LOADED_LINK_RELS = {"stylesheet", "icon", "shortcut", "preload", "modulepreload", "manifest"}
NOT_PAGES = {"_static", "_sources"}
CSS_URL_RE = re.compile(r"url\(\s*['\"]?(https?:)?//", re.I)


# Installed in every page before its own scripts run: it records uncaught errors, failed loads of
# scripts, stylesheets and images, and console.error calls, so that none is missed even when the
# browser's log arrives late.
ERROR_RECORDER = """
window.__pageErrors = [];
window.addEventListener('error', (event) => {
  const target = event.target;
  if (target && target !== window && (target.src || target.href)) {
    window.__pageErrors.push('failed to load ' + (target.src || target.href));
  } else {
    window.__pageErrors.push('uncaught ' + (event.message || event));
  }
}, true);
window.addEventListener('unhandledrejection', (event) => {
  window.__pageErrors.push('unhandled rejection: ' + event.reason);
});
const consoleError = console.error;
console.error = function (...args) {
  window.__pageErrors.push('console.error: ' + args.join(' '));
  return consoleError.apply(this, args);
};
"""


class BrowserNotFoundError(RuntimeError):
    """Chromium or chromedriver is missing; the message says how to install them."""


@dataclass
class Page:
    """What one HTML page defines and refers to."""

    ids: set[str] = field(default_factory=set)
    links: list[tuple[str, str]] = field(
        default_factory=list
    )  # (tag.attribute, url) followed by readers
    resources: list[tuple[str, str]] = field(
        default_factory=list
    )  # (tag.attribute, url) loaded by the browser


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        for name in ("id", "name") if tag == "a" else ("id",):
            if name in values:
                self.page.ids.add(values[name])
        if tag == "link" and "href" in values:
            rels = set(values.get("rel", "").lower().split())
            target = self.page.resources if rels & LOADED_LINK_RELS else self.page.links
            target.append(("link.href", values["href"]))
        elif tag in ("a", "area") and "href" in values:
            self.page.links.append((f"{tag}.href", values["href"]))
        for attribute in ("src", "data"):
            if (tag, attribute) in RESOURCE_ATTRIBUTES and attribute in values:
                self.page.resources.append((f"{tag}.{attribute}", values[attribute]))


def scan_site(root: Path) -> dict[Path, Page]:
    """Parse every page of the site; keys are paths relative to ``root``.

    HTML files under ``_static/`` (theme template macros) and ``_sources/`` are not pages.
    """
    pages = {}
    for path in sorted(root.rglob("*.html")):
        if path.relative_to(root).parts[0] in NOT_PAGES:
            continue
        parser = _PageParser()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        pages[path.relative_to(root)] = parser.page
    return pages


def _is_internal(url: str) -> bool:
    """A URL of the site itself: no scheme (http:, mailto:, data:, ...) and no ``//host``."""
    parts = urlsplit(url)
    return not (parts.scheme or parts.netloc)


def _is_remote(url: str) -> bool:
    """A URL the browser would fetch from another host (``data:`` URLs are inline, not remote)."""
    parts = urlsplit(url)
    return bool(parts.netloc) or parts.scheme.lower() in {"http", "https", "ftp", "ws", "wss"}


def broken_links(root: Path, pages: dict[Path, Page] | None = None) -> list[str]:
    """Every internal link or resource of the site whose target file, or anchor, does not exist.

    External URLs (any scheme, or ``//host``) are not followed here. A link to a folder resolves to
    its ``index.html``. An anchor must be an ``id`` (or ``<a name>``) of the target page.
    """
    pages = scan_site(root) if pages is None else pages
    root = root.resolve()
    problems = []
    for page_path, page in pages.items():
        for where, url in page.links + page.resources:
            if not url or not _is_internal(url):
                continue
            parts = urlsplit(url)
            if parts.path:
                target = (root / page_path.parent / unquote(parts.path)).resolve()
                if target.is_dir():
                    target = target / "index.html"
                if root not in target.parents or not target.is_file():
                    problems.append(f"{page_path}: {where}={url!r}: no such file")
                    continue
                target_key = target.relative_to(root)
            else:
                target_key = page_path
            fragment = unquote(parts.fragment)
            if fragment and target_key.suffix == ".html" and fragment not in pages[target_key].ids:
                problems.append(f"{page_path}: {where}={url!r}: no id {fragment!r} in {target_key}")
    return problems


def external_resources(root: Path, pages: dict[Path, Page] | None = None) -> list[str]:
    """Everything the site's pages and stylesheets would load from another host."""
    pages = scan_site(root) if pages is None else pages
    found = [
        f"{page_path}: {where}={url!r}"
        for page_path, page in pages.items()
        for where, url in page.resources
        if _is_remote(url)
    ]
    for css in sorted(root.rglob("*.css")):
        for number, line in enumerate(
            css.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            if CSS_URL_RE.search(line):
                found.append(f"{css.relative_to(root)}, line {number}: {line.strip()[:120]}")
    return found


# --------------------------------------------------------------------------------------------
# A local server and a headless browser
# --------------------------------------------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def handle(self) -> None:
        # A browser may drop a connection it no longer needs (a prefetch); that is not an error.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) and yield the base URL; always shut down."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _which(variable: str, names: tuple[str, ...]) -> str | None:
    configured = os.environ.get(variable)
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise BrowserNotFoundError(f"{variable}={configured} is not an executable file")
        return configured
    return next((found for name in names if (found := shutil.which(name))), None)


def find_browser() -> tuple[str, str]:
    """Return the paths of Chromium (or Chrome) and of its chromedriver.

    ``CHROMIUM`` and ``CHROMEDRIVER`` override the search of ``PATH``.
    """
    browser = _which("CHROMIUM", BROWSER_NAMES)
    driver = _which("CHROMEDRIVER", DRIVER_NAMES)
    missing = [
        name for name, path in (("Chromium", browser), ("chromedriver", driver)) if path is None
    ]
    if missing:
        raise BrowserNotFoundError(
            f"{' and '.join(missing)} not found. Run `make browser` (which installs Debian's "
            "chromium and chromium-driver with apt-get), or set CHROMIUM=/path/to/chrome and "
            "CHROMEDRIVER=/path/to/chromedriver to use an installed Chrome."
        )
    return browser, driver  # type: ignore[return-value]  # both checked above


@contextlib.contextmanager
def start_browser(log_path: Path | None = None) -> Iterator[object]:
    """Start headless Chromium under Selenium, with console logging on; always quit it.

    Yields a ``selenium.webdriver.Chrome``; ``page_errors(driver)`` returns the errors of the page
    it shows.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with tempfile.TemporaryDirectory(prefix="course-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        service = Service(
            executable_path=driver_path,
            log_output=str(log_path) if log_path is not None else os.devnull,
        )
        driver = webdriver.Chrome(service=service, options=options)
        try:
            driver.execute_cdp_cmd(
                "Page.addScriptToEvaluateOnNewDocument", {"source": ERROR_RECORDER}
            )
            yield driver
        finally:
            driver.quit()


def page_errors(driver, settle_s: float = 0.5) -> list[str]:
    """Every error of the current page: console errors (level SEVERE) and what ERROR_RECORDER saw.

    Waits ``settle_s`` first, for late messages. The browser's log is emptied by each call, so a
    caller drops an earlier page's messages with ``driver.get_log("browser")`` before loading.
    """
    time.sleep(settle_s)
    logged = [
        f"console {entry['level']}: {entry['message']}"
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
    ]
    recorded = driver.execute_script(
        "return window.__pageErrors || ['the error recorder is missing']"
    )
    return logged + [f"page: {message}" for message in recorded]
