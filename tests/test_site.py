"""The built website, checked as a reader would meet it (`make test-site`, after `make book`).

* Every internal link and resource of every page resolves, anchors included, and no page loads
  anything from another host: the site works offline.
* Every notebook page has Colab and Binder launch buttons that open the repository's `.ipynb`
  (from `repository` in _config.yml), and a download link to the committed notebook.
* Exercises are exercise blocks, each followed by its collapsed solution and then its check.
* In headless Chromium, against the site served on 127.0.0.1: the home page, the status page and
  one notebook page per module and per lab (and each lab's brief) render with their key elements
  (the title, equations typeset by the site's own MathJax, figures, launch buttons, solutions that
  open on a click) and without a single console error. Screenshots go to _build/screenshots/.

The tests that need the built site carry the `site` marker; the tests of the checks themselves
(that they catch a broken link, a remote script, a console error) run with the unit tests, except
the browser's, which needs Chromium.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

from scripts import (
    book_transform,
    course_checks,
    site_assets,
    site_checks,
    sphinx_exercise_numbers,
    stage_book,
)
from scripts.book_transform import label_stem
from scripts.make_student import STUB_FUNCTION, student_notebook
from scripts.nb_plugin import notebook_requires_gpu
from scripts.write_status_page import main as write_status_main
from scripts.write_status_page import missing_notebooks
from scripts.write_status_page import render as render_status
from tests.mini_course import make_mini_course

REPO_ROOT = Path(__file__).resolve().parent.parent
HTML = REPO_ROOT / "_build" / "html"
STAGE = REPO_ROOT / "_stage"
SCREENSHOTS = REPO_ROOT / "_build" / "screenshots"
site = pytest.mark.site


def _toc_notebooks() -> list[str]:
    """Every notebook page of _toc.yml (path without suffix), in reading order."""
    return [
        entry
        for entry in course_checks.toc_files(REPO_ROOT)
        if entry.split("/")[0] in ("modules", "labs") and (REPO_ROOT / f"{entry}.ipynb").exists()
    ]


def _browser_pages() -> list[tuple[str, str]]:
    """(kind, page) pairs: home, status, one notebook of each module and lab, each lab brief.

    The notebook is a group's first one in reading order that runs on a CPU, if there is one.
    """
    pages = [("home", "index"), ("status", "status")]
    groups: dict[str, list[str]] = {}
    for entry in _toc_notebooks():
        groups.setdefault("/".join(entry.split("/")[:2]), []).append(entry)
    for entries in groups.values():
        cpu = [e for e in entries if not notebook_requires_gpu(REPO_ROOT / f"{e}.ipynb")]
        pages.append(("notebook", (cpu or entries)[0]))
    pages += [
        ("lab", entry)
        for entry in course_checks.toc_files(REPO_ROOT)
        if re.fullmatch(r"labs/[^/]+/README", entry)
    ]
    return pages


@pytest.fixture(scope="module")
def html() -> Path:
    if not (HTML / "intro.html").exists():
        pytest.fail(f"no built site in {HTML}: run `make book` first")
    return HTML


@pytest.fixture(scope="module")
def pages(html: Path) -> dict[Path, site_checks.Page]:
    return site_checks.scan_site(html)


def _repository() -> tuple[str, str]:
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))
    repository = config["repository"]
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", repository["url"])
    assert match, f"repository.url must be https://github.com/<owner>/<repo>: {repository['url']}"
    assert repository.get("path_to_book", "") == "", 'the launch buttons assume path_to_book: ""'
    return match.group(1), repository.get("branch", "main")


def _solutions_mode(notebook: str) -> str:
    """How `make book` rendered the solutions of ``notebook`` (scripts/book_transform.py)."""
    staged = STAGE / f"{notebook}.ipynb"
    assert staged.exists(), f"{staged} is missing: build the book with `make book`"
    return nbformat.read(staged, as_version=4).metadata.get("course_book", {}).get("solutions", "")


# --------------------------------------------------------------------------------------------
# Static checks of the built HTML
# --------------------------------------------------------------------------------------------


@site
def test_every_internal_link_resolves(html: Path, pages: dict) -> None:
    assert site_checks.broken_links(html, pages) == []


@site
def test_nothing_is_loaded_from_another_host(html: Path, pages: dict) -> None:
    assert site_checks.external_resources(html, pages) == []


@site
def test_mathjax_is_served_by_the_site(html: Path, pages: dict) -> None:
    loads = {
        page: [url.split("?")[0] for _, url in info.resources if "mathjax" in url.lower()]
        for page, info in pages.items()
    }
    with_math = {page: urls for page, urls in loads.items() if urls}
    assert with_math, "no page loads MathJax; the notebooks' equations would stay raw TeX"
    for page, urls in with_math.items():
        expected = "../" * (len(page.parts) - 1) + "_static/mathjax/tex-mml-chtml.js"
        assert urls == [expected], f"{page} loads {urls}"
    assert (html / "_static/mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").is_file()


@site
@pytest.mark.parametrize("notebook", _toc_notebooks())
def test_launch_buttons_and_download(notebook: str, html: Path, pages: dict) -> None:
    repo, branch = _repository()
    page = Path(f"{notebook}.html")
    assert page in pages, f"{notebook} is in _toc.yml but has no page; rebuild with `make book`"
    hrefs = {url for _, url in pages[page].links}
    assert (REPO_ROOT / f"{notebook}.ipynb").exists()
    colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{notebook}.ipynb"
    binder = f"https://mybinder.org/v2/gh/{repo}/{branch}?urlpath=tree/{notebook}.ipynb"
    assert colab in hrefs, f"no Colab button with {colab}"
    assert binder in hrefs, f"no Binder button with {binder}"
    download = "../" * (len(page.parts) - 1) + f"_sources/{notebook}.ipynb"
    assert download in hrefs, f"no download link {download}"
    # The download is what Colab opens (the committed notebook), or its student version when
    # the book was built with the solutions hidden; never the staged file with directives.
    committed = nbformat.read(REPO_ROOT / f"{notebook}.ipynb", as_version=4)
    if _solutions_mode(notebook) == "hidden":
        committed = student_notebook(committed)
    downloaded = nbformat.read(html / "_sources" / f"{notebook}.ipynb", as_version=4)
    assert [c.source for c in downloaded.cells] == [c.source for c in committed.cells]


class _Blocks(HTMLParser):
    """The exercise, solution and check blocks of a page, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[tuple[str, str, set[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = set((values.get("class") or "").split())
        for kind in ("exercise", "solution", "tag_check"):
            if tag == "div" and kind in classes:
                self.blocks.append((kind, values.get("id") or "", classes))


@site
@pytest.mark.parametrize("notebook", _toc_notebooks())
def test_exercises_render_as_blocks_with_collapsed_solutions(notebook: str, html: Path) -> None:
    committed = nbformat.read(REPO_ROOT / f"{notebook}.ipynb", as_version=4)
    expected = len(course_checks.find_exercises(committed.cells))
    page = (html / f"{notebook}.html").read_text(encoding="utf-8")
    parser = _Blocks()
    parser.feed(page)
    kinds = [kind for kind, _, _ in parser.blocks]
    # The website numbers the exercises as the notebook does: 1, 2, ... on every page.
    numbers = re.findall(r'caption-number">Exercise (\S+) ', page)
    assert numbers == [str(n) for n in range(1, expected + 1)], numbers
    briefs = [
        committed.cells[e.brief_index].source for e in course_checks.find_exercises(committed.cells)
    ]
    in_briefs = [m.group(1) for b in briefs if (m := re.match(r"#+\s*Exercise\s+(\d+)", b))]
    assert in_briefs in ([], numbers), f"the briefs say Exercise {in_briefs}, the page {numbers}"
    stem = label_stem(f"{notebook}.ipynb")
    exercises = [block_id for kind, block_id, _ in parser.blocks if kind == "exercise"]
    assert exercises == [f"ex-{stem}-{n}" for n in range(1, expected + 1)]
    if _solutions_mode(notebook) == "hidden":
        assert "solution" not in kinds
        return
    starts = [i for i, kind in enumerate(kinds) if kind == "exercise"]
    for number, start in enumerate(starts, start=1):
        solution_kind, solution_id, classes = parser.blocks[start + 1]
        assert solution_kind == "solution" and solution_id == f"sol-{stem}-{number}", parser.blocks[
            start + 1
        ]
        assert "dropdown" in classes, f"solution {solution_id} is not collapsed (no dropdown class)"
        assert kinds[start + 2] == "tag_check", (
            f"exercise {number}: its check does not follow the solution"
        )


# --------------------------------------------------------------------------------------------
# In the browser
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_url(html: Path):
    with site_checks.serve(html) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with site_checks.start_browser(SCREENSHOTS.parent / "chromedriver.log") as driver:
            driver.set_script_timeout(60)
            driver.set_page_load_timeout(60)
            yield driver
    except site_checks.BrowserNotFoundError as error:
        pytest.fail(str(error))


def _open(driver, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    # Sphinx loads MathJax only on pages with math; wait for its first typesetting pass there.
    typeset = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (!document.querySelector('span.math, div.math')) { done('no math'); }"
        "else if (window.MathJax && MathJax.startup && MathJax.startup.promise) {"
        "  MathJax.startup.promise.then(() => done('typeset'), (e) => done('error: ' + e));"
        "} else { done('MathJax did not load'); }"
    )
    assert typeset in ("typeset", "no math"), f"{url}: {typeset}"


def _save_full_page(driver, path: Path, max_height: int = 8000) -> None:
    """A screenshot of the whole page (up to ``max_height`` CSS pixels), not just the window."""
    height = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
    width = driver.execute_script("return document.documentElement.clientWidth")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, max_height), "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def _screenshot_name(page: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", page.lower()).strip("-")


@site
@pytest.mark.parametrize("kind,page", _browser_pages(), ids=lambda value: str(value))
def test_page_renders_without_console_errors(kind: str, page: str, base_url: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    _open(driver, f"{base_url}/{page}.html")
    name = _screenshot_name("home" if kind == "home" else page)
    if kind == "notebook":
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    else:
        _save_full_page(driver, SCREENSHOTS / f"{name}.png")
    if kind == "home":
        assert driver.current_url.endswith("/intro.html"), "index.html should lead to the home page"

    heading = driver.find_elements(By.CSS_SELECTOR, "article.bd-article h1")
    assert heading and heading[0].text.strip(), "no h1 title"
    assert not driver.find_elements(By.CSS_SELECTOR, "mjx-merror"), "MathJax reports an error"
    math = driver.find_elements(By.CSS_SELECTOR, "span.math, div.math")
    if math:
        assert driver.find_elements(By.CSS_SELECTOR, "mjx-container"), "equations were not typeset"
    if kind == "home":
        assert driver.find_elements(By.CSS_SELECTOR, "table a[href*='modules/']"), "no module map"
    if kind == "status":
        assert driver.find_elements(By.CSS_SELECTOR, "table a[href$='.html']"), (
            "no links to notebooks"
        )
    broken = driver.execute_script(
        "return [...document.images]"
        ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert broken == [], f"images that did not load: {broken}"
    if kind == "notebook":
        figures = driver.find_elements(By.CSS_SELECTOR, ".cell_output img")
        if not notebook_requires_gpu(REPO_ROOT / f"{page}.ipynb"):  # GPU notebooks may be unrun
            assert figures, "no figure in the outputs (is MPLBACKEND=Agg set for the notebook run?)"
        if figures:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", figures[0])
            driver.save_screenshot(str(SCREENSHOTS / f"{name}-figure.png"))
        for host in ("colab.research.google.com", "mybinder.org"):
            assert driver.find_elements(By.CSS_SELECTOR, f"a[href^='https://{host}/']"), (
                f"no {host} button"
            )
        assert driver.find_elements(By.CSS_SELECTOR, "a[href$='.ipynb']"), "no .ipynb download"
        display = driver.find_elements(By.CSS_SELECTOR, "mjx-container[display='true']")
        if display:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", display[0])
            driver.save_screenshot(str(SCREENSHOTS / f"{name}-equation.png"))
        exercises = driver.find_elements(By.CSS_SELECTOR, "div.exercise")
        assert exercises, "no exercise block"
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", exercises[0])
        driver.execute_script("window.scrollBy(0, -80)")
        driver.save_screenshot(str(SCREENSHOTS / f"{name}-exercise.png"))
        solutions = driver.find_elements(By.CSS_SELECTOR, "div.solution")
        if solutions:  # absent when the book is built with the solutions hidden
            solution = solutions[0]
            assert "toggle-hidden" in solution.get_attribute("class"), (
                "the solution is not collapsed"
            )
            body = solution.find_element(By.CSS_SELECTOR, "section")
            assert not body.is_displayed(), "the collapsed solution's code is visible"
            # The toggle button ("Click to show"), not the title's centre: sphinx-exercise puts a
            # link to the exercise in the title, and a click on that link navigates instead.
            solution.find_element(By.CSS_SELECTOR, "button.toggle-button").click()
            WebDriverWait(driver, 5).until(
                lambda _: body.is_displayed(), "the solution does not open on a click"
            )
            time.sleep(0.5)  # the end of the fade-in, for the screenshot
            driver.save_screenshot(str(SCREENSHOTS / f"{name}-solution-open.png"))
    assert site_checks.page_errors(driver) == []


@site
def test_console_check_catches_errors_and_remote_loads(tmp_path: Path, browser) -> None:
    """The browser check can fail: a script error and a remote script both reach the console."""
    (tmp_path / "index.html").write_text(
        "<!DOCTYPE html><html><head><title>broken</title>"
        "<script src='https://cdn.example.org/lib.js'></script></head>"
        "<body><h1>Broken</h1><script>undefinedFunction();</script></body></html>"
    )
    with site_checks.serve(tmp_path) as url:
        browser.get_log("browser")
        browser.get(f"{url}/index.html")
        errors = site_checks.page_errors(browser)
    assert any(e.startswith("page: uncaught") and "undefinedFunction" in e for e in errors), errors
    assert "page: failed to load https://cdn.example.org/lib.js" in errors, errors


# --------------------------------------------------------------------------------------------
# The checks can fail (no built site needed)
# --------------------------------------------------------------------------------------------


def _write_site(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "_static").mkdir()
    (root / "index.html").write_text(
        "<html><head><link rel='stylesheet' href='_static/ok.css'>"
        "<script src='https://cdn.example.org/mathjax.js'></script></head><body>"
        "<h1 id='top'>Home</h1><a href='#top'>self</a><a href='sub/page.html#part'>ok</a>"
        "<a href='sub/page.html#nowhere'>bad anchor</a><a href='missing.html'>bad file</a>"
        "<a href='sub/'>folder</a><a href='https://colab.research.google.com/x.ipynb'>ext</a>"
        "<img src='data:image/png;base64,AAAA'><img src='_static/missing.png'></body></html>"
    )
    (root / "sub" / "page.html").write_text(
        "<html><body><h2 id='part'>Part</h2><a href='../index.html#top'>up</a></body></html>"
    )
    (root / "sub" / "index.html").write_text("<html><body><a name='legacy'></a></body></html>")
    (root / "_static" / "ok.css").write_text(
        "body { background: url('https://fonts.example.org/f.woff'); }\n"
    )
    (root / "_static" / "macros.html").write_text("<a href=\"{{ pathto('x') }}\">template</a>")


def test_link_check_reports_missing_files_and_anchors(tmp_path: Path) -> None:
    _write_site(tmp_path)
    assert site_checks.broken_links(tmp_path) == [
        "index.html: a.href='sub/page.html#nowhere': no id 'nowhere' in sub/page.html",
        "index.html: a.href='missing.html': no such file",
        "index.html: img.src='_static/missing.png': no such file",
    ]


def test_offline_check_reports_remote_scripts_and_css_urls(tmp_path: Path) -> None:
    _write_site(tmp_path)
    found = site_checks.external_resources(tmp_path)
    assert len(found) == 2, found
    assert "cdn.example.org/mathjax.js" in found[0] and "fonts.example.org" in found[1]


def test_browser_pages_cover_each_module_once() -> None:
    pages = _browser_pages()
    assert pages[:2] == [("home", "index"), ("status", "status")]
    notebooks = [page for kind, page in pages if kind == "notebook"]
    assert notebooks, "the browser test would check no notebook page"
    assert len({"/".join(p.split("/")[:2]) for p in notebooks}) == len(notebooks)


def test_a_mathjax_archive_with_another_checksum_is_refused(tmp_path: Path) -> None:
    (tmp_path / site_assets.MATHJAX_ARCHIVE).write_bytes(b"not the npm tarball")
    with pytest.raises(site_assets.AssetError, match=f"expected {site_assets.MATHJAX_SHA256}"):
        site_assets.fetch_mathjax(tmp_path)


def test_find_browser_honours_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CHROMIUM", str(fake))
    monkeypatch.setenv("CHROMEDRIVER", str(fake))
    assert site_checks.find_browser() == (str(fake), str(fake))
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "missing"))
    with pytest.raises(site_checks.BrowserNotFoundError, match="not an executable file"):
        site_checks.find_browser()
    monkeypatch.delenv("CHROMIUM")
    monkeypatch.delenv("CHROMEDRIVER")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(site_checks.BrowserNotFoundError, match="make browser"):
        site_checks.find_browser()


# --------------------------------------------------------------------------------------------
# The book's build steps, on a mini course with a module and a lab (no built site needed)
# --------------------------------------------------------------------------------------------

LAB_TOC = """format: jb-book
root: intro
parts:
  - caption: Demo
    chapters:
      - file: modules/00-demo/index
        sections:
          - file: modules/00-demo/01-demo
  - caption: Labs
    chapters:
      - file: labs/demo-lab/README
        sections:
          - file: labs/demo-lab/01-lab
  - caption: About
    chapters:
      - file: status
"""


def _mini_book(root: Path) -> Path:
    """The mini course with a lab, the real _config.yml and intro.md, and a table of contents."""
    course = make_mini_course(root)
    lab = course / "labs" / "demo-lab"
    lab.mkdir(parents=True)
    (lab / "README.md").write_text("# Lab: a demo\n\nSolve the exercises of the notebook.\n")
    for suffix in (".py", ".ipynb"):
        (lab / f"01-lab{suffix}").write_text(
            (course / "modules/00-demo" / f"01-demo{suffix}").read_text()
        )
    for name in ("_config.yml", "intro.md"):
        (course / name).write_text((REPO_ROOT / name).read_text())
    shutil.copytree(REPO_ROOT / "_static", course / "_static")
    (course / "_toc.yml").write_text(LAB_TOC)
    return course


def test_labels_are_unique_per_notebook_path() -> None:
    assert (
        label_stem("modules/00-foundations/01-linear-algebra.ipynb")
        == "00-foundations-01-linear-algebra"
    )
    assert label_stem("labs/moe_lab/01-Router.ipynb") == "labs-moe-lab-01-router"
    with pytest.raises(ValueError, match="expected a notebook path"):
        label_stem("//")


def test_brief_title_comes_from_its_heading() -> None:
    assert book_transform.split_brief("### Exercise 2: Scores with `einsum`\n\nWrite it.") == (
        "Scores with `einsum`",
        "Write it.",
    )
    assert book_transform.split_brief("### A free title\nBody") == ("A free title", "Body")
    with pytest.raises(ValueError, match="empty"):
        book_transform.split_brief("  ")


def test_exercise_fence_is_longer_than_any_fence_inside() -> None:
    body = "Text\n:::{note}\ninside\n:::\n```python\nx = 1\n```"
    block = book_transform.exercise_directive("T", body, "ex-a-1")
    assert block.startswith("::::{exercise} T\n:label: ex-a-1\n") and block.endswith("\n::::")


def test_transform_wraps_solutions_and_keeps_checks_after_them(mini_course: Path) -> None:
    nb = nbformat.read(mini_course / "modules/00-demo/01-demo.ipynb", as_version=4)
    book = book_transform.book_notebook(nb, "modules/00-demo/01-demo.ipynb")
    sources = [c.source for c in book.cells]
    for number in (1, 2, 3):
        exercise = next(
            i for i, s in enumerate(sources) if f":label: ex-00-demo-01-demo-{number}" in s
        )
        assert sources[exercise].startswith(":::{exercise} ")
        assert sources[exercise + 1].startswith(
            f"```{{solution-start}} ex-00-demo-01-demo-{number}\n"
            f":label: sol-00-demo-01-demo-{number}\n:class: dropdown"
        )
        assert "BEGIN SOLUTION" in sources[exercise + 2]
        assert sources[exercise + 3] == book_transform.SOLUTION_END
        assert "check" in book.cells[exercise + 4].metadata.get("tags", [])
    assert len({c.get("id") for c in book.cells}) == len(book.cells), "cell ids must stay unique"
    assert nb.cells[0].source == book.cells[0].source and len(nb.cells) + 6 == len(book.cells)


def test_hidden_solutions_show_the_starter_code(mini_course: Path) -> None:
    nb = nbformat.read(mini_course / "modules/00-demo/01-demo.ipynb", as_version=4)
    book = book_transform.book_notebook(nb, "modules/00-demo/01-demo.ipynb", solutions="hidden")
    text = "\n".join(c.source for c in book.cells)
    assert "solution-start" not in text and "return a + b" not in text and STUB_FUNCTION in text
    with pytest.raises(ValueError, match="solutions must be one of"):
        book_transform.book_notebook(nb, "modules/00-demo/01-demo.ipynb", solutions="shown")


def test_a_gpu_notebook_that_was_not_run_says_why(mini_course: Path) -> None:
    nb = nbformat.read(mini_course / "modules/00-demo/01-demo.ipynb", as_version=4)
    assert book_transform.book_notebook(nb, "x/y.ipynb").cells[1].source != book_transform.GPU_NOTE
    nb.metadata["requires"] = "gpu"
    book = book_transform.book_notebook(nb, "x/y.ipynb")
    assert (
        book.cells[0].source == nb.cells[0].source
        and book.cells[1].source == book_transform.GPU_NOTE
    )


def test_prepare_starts_from_the_executed_copy_each_time(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage_book.stage(stage, root=_mini_book(tmp_path / "course"))
    book_transform.prepare(stage)
    first = (stage / "labs/demo-lab/01-lab.ipynb").read_text()
    book_transform.prepare(stage, solutions="hidden")
    book_transform.prepare(stage)
    assert (stage / "labs/demo-lab/01-lab.ipynb").read_text() == first
    (stage / book_transform.PRISTINE_DIR).rename(tmp_path / "lost")
    with pytest.raises(ValueError, match="already has exercise blocks"):
        book_transform.prepare(stage)


def test_course_map_links_published_modules_and_labs(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage_book.stage(stage, root=_mini_book(tmp_path / "course"))
    intro = (stage / "intro.md").read_text()
    assert "| 00 | [Foundations](modules/00-demo/index.md) |" in intro
    assert "[A demo notebook](modules/00-demo/01-demo.ipynb)" in intro
    assert "| 01 | Introduction |" in intro and "| planned |" in intro
    lab_row = (
        "| [Lab: a demo](labs/demo-lab/README.md) | [A demo notebook](labs/demo-lab/01-lab.ipynb) |"
    )
    assert f"{lab_row} CPU |" in intro
    assert "module-map" not in intro and "lab-map" not in intro


def test_exercise_numbers_restart_on_every_page() -> None:
    numbers = {
        "a": {"exercise": {"x1": (1,), "x2": (2,)}, "figure": {"f": (1,)}},
        "b": {"exercise": {"y2": (4,), "y1": (3,)}},
        "c": {"exercise": {"z1": (2, 7), "z2": (2, 8)}},
    }
    assert sphinx_exercise_numbers.renumber_per_page(numbers) == ["b", "c"]
    assert numbers["b"]["exercise"] == {"y1": (1,), "y2": (2,)}
    assert numbers["c"]["exercise"] == {"z1": (2, 1), "z2": (2, 2)}
    assert numbers["a"] == {"exercise": {"x1": (1,), "x2": (2,)}, "figure": {"f": (1,)}}


def test_course_map_markers_come_together(tmp_path: Path) -> None:
    assert stage_book.render_course_map("# Home\n", tmp_path) == "# Home\n"
    with pytest.raises(ValueError, match="module-map"):
        stage_book.render_course_map("# Home\n<!-- module-map:start -->\n", tmp_path)


def test_status_page_groups_by_module_and_marks_the_budget() -> None:
    status = {
        "finished_at": "2026-01-01T00:00:00+00:00",
        "hardware": {"cores": 2},
        "versions": {"torch": "2"},
        "notebooks": {
            "modules/00-a/01-x.ipynb": {"outcome": "passed", "duration_s": 75.0},
            "modules/00-a/02-y.ipynb": {"outcome": "passed", "duration_s": 5.0},
            "labs/big/01-z.ipynb": {
                "outcome": "skipped",
                "duration_s": 0.0,
                "reason": "requires: gpu",
            },
        },
    }
    page = render_status(status)
    assert page.index("## modules/00-a") < page.index("## labs/big")
    assert "| modules/00-a/01-x | passed | **75.0 (over budget)** | 125% |" in page
    assert "- **Over the budget:** modules/00-a/01-x\n" in page
    assert "| labs/big/01-z | skipped (requires: gpu) | - | - |" in page
    assert "1 min 20 s" in page  # the total of the executed notebooks


def test_status_page_refuses_a_run_that_left_out_notebooks(tmp_path: Path, capsys) -> None:
    book = tmp_path / "stage"
    for key in ("modules/00-a/01-x.ipynb", "labs/demo/demo.ipynb"):
        (book / key).parent.mkdir(parents=True, exist_ok=True)
        (book / key).write_text("{}")
    (book / "labs/demo/.ipynb_checkpoints").mkdir()
    (book / "labs/demo/.ipynb_checkpoints/demo-checkpoint.ipynb").write_text("{}")
    status = {"notebooks": {"modules/00-a/01-x.ipynb": {"outcome": "passed", "duration_s": 1.0}}}
    assert missing_notebooks(status, book) == ["labs/demo/demo.ipynb"]
    status_file = tmp_path / "status.json"
    status_file.write_text(json.dumps(status))
    assert write_status_main([str(status_file), str(book / "status.md")]) == 1
    assert "labs/demo/demo.ipynb" in capsys.readouterr().err
    assert not (book / "status.md").exists()
    status["notebooks"]["labs/demo/demo.ipynb"] = {"outcome": "passed", "duration_s": 2.0}
    status_file.write_text(json.dumps(status))
    assert write_status_main([str(status_file), str(book / "status.md")]) == 0
    assert "labs/demo/demo" in (book / "status.md").read_text()


@pytest.mark.slow
def test_mini_book_with_a_lab_builds_and_its_links_resolve(tmp_path: Path) -> None:
    course = _mini_book(tmp_path / "course")
    stage = tmp_path / "stage"
    stage_book.stage(stage, root=course)
    status = {
        "notebooks": {
            f"{p}.ipynb": {"outcome": "passed", "duration_s": 1.0}
            for p in ("modules/00-demo/01-demo", "labs/demo-lab/01-lab")
        }
    }
    (stage / "status.md").write_text(render_status(status, stage))
    site_assets.write_redirect(stage)
    book_transform.prepare(stage)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("jupyter-book")),
            "build",
            "--warningiserror",
            "--keep-going",
            "--path-output",
            str(tmp_path),
            str(stage),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = tmp_path / "_build" / "html"
    book_transform.publish(stage, html, root=course)
    assert site_checks.broken_links(html) == []
    lab_page = (html / "labs/demo-lab/01-lab.html").read_text()
    # The second notebook of the book numbers its exercises from 1 again (exercise_numbers).
    assert re.findall(r'caption-number">Exercise (\S+) ', lab_page) == ["1", "2", "3"]
    assert (
        'id="ex-labs-demo-lab-01-lab-1"' in lab_page
        and 'id="sol-labs-demo-lab-01-lab-1"' in lab_page
    )
    repo, branch = _repository()
    assert (
        f"colab.research.google.com/github/{repo}/blob/{branch}/labs/demo-lab/01-lab.ipynb"
        in lab_page
    )
    downloaded = nbformat.read(html / "_sources/labs/demo-lab/01-lab.ipynb", as_version=4)
    assert "course_book" not in downloaded.metadata
