"""`shared.agents`: the model client against a scripted model (and once against the real
SmolLM2 through `shared.assets.chat`), the sandbox against each limit it promises, the test
runner against HumanEval's own tests and canonical solutions, the audit log's ids against sha256
computed by hand, and BM25 against a direct implementation of its formula and a hand-worked case.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys

import pytest

from shared.agents import (
    AuditLog,
    BM25Index,
    BudgetExceededError,
    ModelClient,
    ToolRegistry,
    run_sandboxed,
    run_tests_sandboxed,
)

# --------------------------------------------------------------------------------------------
# ModelClient
# --------------------------------------------------------------------------------------------


class ScriptedModel:
    """A stand-in model that returns prepared replies in order and records what it was sent."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.seen: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        self.seen.append(messages)
        return self.replies.pop(0)


def words(text: str) -> int:
    return len(text.split())


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def parse_int(reply: str) -> int:
    if not reply.strip().isdigit():
        raise ValueError(f"expected a whole number, got {reply!r}")
    return int(reply)


def test_complete_counts_calls_and_tokens_per_agent() -> None:
    model = ScriptedModel("one two three", "four")
    client = ModelClient(model, count_tokens=words, cache=False)
    assert client.complete(ask("a"), max_new_tokens=8, agent="researcher") == "one two three"
    assert client.complete(ask("b"), max_new_tokens=8, agent="coder") == "four"
    assert (client.n_calls, client.n_tokens) == (2, 4)
    assert client.usage() == {"researcher": {"calls": 1, "tokens": 3, "cache_hits": 0},
                              "coder": {"calls": 1, "tokens": 1, "cache_hits": 0}}
    assert model.seen == [ask("a"), ask("b")]
    assert "2 model calls, 4 reply tokens, 0 cache hits" == client.summary()


def test_cache_reuses_identical_requests_without_a_model_call() -> None:
    model = ScriptedModel("42", "43")
    client = ModelClient(model, count_tokens=words)
    first = client.complete(ask("q"), max_new_tokens=4)
    again = client.complete(ask("q"), max_new_tokens=4)
    other = client.complete(ask("q"), max_new_tokens=5)  # a different request
    assert (first, again, other) == ("42", "42", "43")
    assert client.n_calls == 2 and len(model.seen) == 2
    assert [call.cached for call in client.calls] == [False, True, False]


def test_budget_raises_instead_of_calling_again() -> None:
    client = ModelClient(ScriptedModel("a", "b", "c"), count_tokens=words, max_calls=2)
    client.complete(ask("1"), max_new_tokens=4)
    client.complete(ask("2"), max_new_tokens=4)
    client.complete(ask("1"), max_new_tokens=4)  # cached: free
    with pytest.raises(BudgetExceededError, match="budget of 2"):
        client.complete(ask("3"), max_new_tokens=4)


def test_validated_first_reply_accepted() -> None:
    client = ModelClient(ScriptedModel("7"), count_tokens=words)
    outcome = client.complete_validated(ask("n?"), parse_int, max_new_tokens=4)
    assert (outcome.value, outcome.source, outcome.ok) == (7, "model", True)
    assert [a.error for a in outcome.attempts] == [None]


def test_validated_retry_sends_the_error_back() -> None:
    model = ScriptedModel("seven", "7")
    client = ModelClient(model, count_tokens=words)
    outcome = client.complete_validated(ask("n?"), parse_int, max_new_tokens=4, retries=1)
    assert (outcome.value, outcome.source) == (7, "retry")
    assert outcome.attempts[0].error == "expected a whole number, got 'seven'"
    second = model.seen[1]
    assert second[:2] == [ask("n?")[0], {"role": "assistant", "content": "seven"}]
    assert second[2]["role"] == "user" and "expected a whole number, got 'seven'" in second[2][
        "content"]


def test_validated_fallback_and_failure() -> None:
    client = ModelClient(ScriptedModel("x", "y", "z", "w"), count_tokens=words)
    outcome = client.complete_validated(ask("n?"), parse_int, max_new_tokens=4, retries=1,
                                        fallback=lambda: 0)
    assert (outcome.value, outcome.source, len(outcome.attempts)) == (0, "fallback", 2)
    failed = client.complete_validated(ask("m?"), parse_int, max_new_tokens=4, retries=1)
    assert (failed.value, failed.source, failed.ok) == (None, "failed", False)
    assert client.n_calls == 4


def test_validated_lets_bugs_in_the_parser_propagate() -> None:
    client = ModelClient(ScriptedModel("1"), count_tokens=words)

    def broken(reply: str) -> int:
        raise KeyError("a bug, not a bad reply")

    with pytest.raises(KeyError):
        client.complete_validated(ask("n?"), broken, max_new_tokens=4)


def test_client_bad_inputs() -> None:
    with pytest.raises(TypeError, match="count_tokens is required"):
        ModelClient(ScriptedModel())
    with pytest.raises(ValueError, match="max_calls"):
        ModelClient(ScriptedModel(), count_tokens=words, max_calls=0)
    client = ModelClient(ScriptedModel("a"), count_tokens=words)
    with pytest.raises(TypeError, match="list of"):
        client.complete("just a string", max_new_tokens=4)
    with pytest.raises(ValueError, match="must not be empty"):
        client.complete([], max_new_tokens=4)
    with pytest.raises(ValueError, match="last message"):
        client.complete([{"role": "assistant", "content": "x"}], max_new_tokens=4)
    with pytest.raises(ValueError, match="role"):
        client.complete([{"role": "robot", "content": "x"}], max_new_tokens=4)
    with pytest.raises(ValueError, match="max_new_tokens"):
        client.complete(ask("x"), max_new_tokens=0)
    with pytest.raises(ValueError, match="agent"):
        client.complete(ask("x"), max_new_tokens=4, agent="")
    with pytest.raises(ValueError, match="retries"):
        client.complete_validated(ask("x"), parse_int, max_new_tokens=4, retries=-1)
    with pytest.raises(TypeError, match="must return a str"):
        ModelClient(lambda m, n: 3, count_tokens=words).complete(ask("x"), max_new_tokens=4)


@pytest.mark.slow
def test_default_client_is_smollm2_greedy() -> None:
    """The default client is `shared.assets.chat`; tokens are the SmolLM2 tokenizer's."""
    import torch

    from shared import assets

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one token at a time: a second thread only adds contention
    try:
        client = ModelClient()
        reply = client.complete(ask("What is the capital of France?"), max_new_tokens=8)
        assert reply == assets.chat("What is the capital of France?", max_new_tokens=8)
    finally:
        torch.set_num_threads(threads)
    assert "Paris" in reply
    assert client.n_tokens == len(assets.chat_tokenizer().encode(reply, add_special_tokens=False))


# --------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------


def test_sandbox_runs_code_in_a_fresh_stripped_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    code = ("import json, os, sys\n"
            "print(json.dumps({'cwd': os.getcwd(), 'env': sorted(os.environ),"
            " 'data': open('data/in.txt').read(), 'hashseed': os.environ['PYTHONHASHSEED']}))")
    result = run_sandboxed(code, files={"data/in.txt": "hello"})
    assert result.ok, result.stderr
    seen = json.loads(result.stdout)
    assert "SECRET_TOKEN" not in seen["env"] and "PYTHONPATH" not in seen["env"]
    assert seen["data"] == "hello" and seen["hashseed"] == "0"
    assert os.path.basename(seen["cwd"]).startswith("sandbox-")
    assert not os.path.exists(seen["cwd"])  # the working directory is deleted afterwards


def test_sandbox_kills_on_wall_clock_timeout() -> None:
    result = run_sandboxed("import time\nwhile True: time.sleep(0.01)", timeout_s=0.5)
    assert result.timed_out and not result.ok
    assert result.reason == "wall-clock timeout (killed)"


def test_sandbox_cpu_limit_sends_sigxcpu() -> None:
    result = run_sandboxed("while True: pass", cpu_seconds=1, timeout_s=30)
    assert not result.timed_out
    assert result.returncode == -signal.SIGXCPU
    assert "CPU-time limit" in result.reason


def test_sandbox_memory_limit() -> None:
    result = run_sandboxed("block = bytearray(512 * 2**20)", memory_mb=128)
    assert result.returncode == 1 and "MemoryError" in result.stderr
    assert run_sandboxed("block = bytearray(16 * 2**20)", memory_mb=128).ok


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("import socket\nsocket.socket().connect(('127.0.0.1', 9))", "network access is blocked"),
        ("import socket\nsocket.getaddrinfo('example.com', 80)", "network access is blocked"),
        ("import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9')",
         "network access is blocked"),
        ("import subprocess\nsubprocess.run(['true'])", "starting or signalling processes"),
        ("import os\nos.system('true')", "starting or signalling processes"),
        ("import ctypes\nctypes.CDLL(None)", "native code via ctypes"),
        ("import os\nos.symlink('/etc', 'etc_link')", "outside the working directory"),
    ],
)
def test_sandbox_audit_hook_refuses(code: str, message: str) -> None:
    result = run_sandboxed(code)
    assert result.returncode == 1
    assert "PermissionError" in result.stderr and message in result.stderr


def test_sandbox_writes_only_inside_its_directory(tmp_path) -> None:
    outside = tmp_path / "escaped.txt"
    result = run_sandboxed(f"open({str(outside)!r}, 'w').write('x')")
    assert "writing outside the working directory is blocked" in result.stderr
    assert not outside.exists()
    result = run_sandboxed(f"import os\nos.remove({str(tmp_path)!r} + '/victim')")
    assert "outside the working directory" in result.stderr
    inside = run_sandboxed("open('note.txt', 'w').write('kept')\nprint(open('note.txt').read())")
    assert inside.ok and inside.stdout.strip() == "kept"


def test_sandbox_limits_output_and_file_size() -> None:
    result = run_sandboxed("print('x' * 100_000)", max_output_chars=50)
    assert result.ok and result.stdout == "x" * 50
    result = run_sandboxed("open('big', 'w').write('x' * (3 << 20))", max_file_mb=1)
    assert result.returncode == 1 and "File too large" in result.stderr


def test_sandbox_has_only_the_standard_library() -> None:
    result = run_sandboxed("import json, math, itertools\nimport numpy")
    assert "No module named 'numpy'" in result.stderr


def test_sandbox_bad_inputs() -> None:
    with pytest.raises(TypeError, match="code must be a str"):
        run_sandboxed(b"print(1)")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        run_sandboxed("pass", timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb must be >= 64"):
        run_sandboxed("pass", memory_mb=16)
    with pytest.raises(TypeError, match="cpu_seconds must be an int"):
        run_sandboxed("pass", cpu_seconds=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="relative path inside the sandbox"):
        run_sandboxed("pass", files={"../escape.txt": "x"})


def test_tests_runner_agrees_with_humaneval_on_canonical_solutions() -> None:
    """HumanEval's canonical solutions pass their own tests; a wrong body fails them."""
    from shared import assets

    problems = {p["task_id"]: p for p in assets.humaneval()}
    for task in ("HumanEval/13", "HumanEval/29", "HumanEval/34"):
        p = problems[task]
        good = run_tests_sandboxed(p["prompt"] + p["canonical_solution"], p["test"],
                                   p["entry_point"])
        assert good.passed and good.error is None, (task, good)
        wrong = run_tests_sandboxed(p["prompt"] + "    return None\n", p["test"], p["entry_point"])
        assert not wrong.passed and "AssertionError (in the test line: assert candidate(" in (
            wrong.error or "")


def test_tests_runner_reports_what_went_wrong() -> None:
    tests = "def check(candidate):\n    assert candidate(3, 7) == 1\n    assert candidate(4, 6) == 2\n"
    missing_import = run_tests_sandboxed("def gcd(a, b):\n    return math.gcd(a, b)\n", tests, "gcd")
    assert missing_import.error == (
        "NameError: name 'math' is not defined (in the test line: assert candidate(3, 7) == 1)")
    second = run_tests_sandboxed("def gcd(a, b):\n    return 1\n", tests, "gcd")
    assert second.error == "AssertionError (in the test line: assert candidate(4, 6) == 2)"
    syntax = run_tests_sandboxed("def gcd(a, b)\n    return 1\n", tests, "gcd")
    assert syntax.error is not None and syntax.error.startswith(
        "the solution does not run: SyntaxError")
    absent = run_tests_sandboxed("def other(a, b):\n    return 1\n", tests, "gcd")
    assert absent.error == "the solution defines no function named 'gcd'"
    hung = run_tests_sandboxed("def gcd(a, b):\n    while True: pass\n", tests, "gcd",
                               timeout_s=0.5)
    assert not hung.passed and hung.error == "no test report: wall-clock timeout (killed)"
    with pytest.raises(ValueError, match="check"):
        run_tests_sandboxed("pass", "assert True", "gcd")
    with pytest.raises(ValueError, match="identifier"):
        run_tests_sandboxed("pass", tests, "not a name")


# --------------------------------------------------------------------------------------------
# Audit log and tool registry
# --------------------------------------------------------------------------------------------


def test_audit_ids_are_a_sha256_chain() -> None:
    log = AuditLog()
    first = log.record("agent", "calculator", {"expression": "1 + 2"}, "ok", "3")
    payload = json.dumps(["0" * 12, 0, "agent", "calculator", '{"expression": "1 + 2"}', "ok",
                          "3"], ensure_ascii=False)
    assert first.id == hashlib.sha256(payload.encode()).hexdigest()[:12]
    second = log.record("agent", "read_file", {"path": "a.txt"}, "refused", "outside")
    assert second.prev == first.id and second.seq == 1
    again = AuditLog()
    again.record("agent", "calculator", {"expression": "1 + 2"}, "ok", "3")
    assert again.entries[0].id == first.id  # deterministic: no timestamps
    assert log.verify() is None
    lines = log.render(value_chars=8).splitlines()
    assert lines[1].split() == ["0", first.id, "agent", "ok", "calculator(expression='1", "+",
                                "2')", "->", "3"]
    assert lines[2].endswith("read_file(path='a.txt') -> outside")
    with pytest.raises(ValueError, match="value_chars"):
        log.render(value_chars=2)


def test_audit_verification_finds_the_first_tampered_record() -> None:
    log = AuditLog()
    for i in range(4):
        log.record("agent", "tool", {"i": i}, "ok", str(i))
    records = log.to_records()
    changed = [dict(r) for r in records]
    changed[2]["result"] = "forged"
    assert AuditLog.verify_records(changed) == 2
    assert AuditLog.verify_records(records[:1] + records[2:]) == 1  # a record removed
    assert AuditLog.verify_records([records[1], records[0], *records[2:]]) == 0
    assert AuditLog.verify_records(records) is None


def test_audit_bad_inputs() -> None:
    log = AuditLog()
    with pytest.raises(ValueError, match="status must be one of"):
        log.record("a", "t", {}, "fine", "")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        log.record("a", "t", {"x": object()}, "ok", "")
    with pytest.raises(TypeError, match="actor"):
        log.record(1, "t", {}, "ok", "")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_result_chars"):
        AuditLog(0)


def test_registry_calls_checks_and_logs_everything() -> None:
    registry = ToolRegistry()

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    def secret(path: str) -> str:
        """Read a secret."""
        raise PermissionError(f"{path} is outside the sandbox")

    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    for func in (add, secret, divide):
        registry.register(func)
    assert registry.describe().splitlines()[0] == "add(a, b): Add two integers."
    ok = registry.call("add", {"a": 2, "b": 3}, actor="agent")
    assert ok.ok and ok.output == 5
    refused = registry.call("secret", {"path": "/etc/passwd"}, actor="agent")
    assert refused.status == "refused" and "outside the sandbox" in (refused.error or "")
    failed = registry.call("divide", {"a": 1, "b": 0}, actor="agent")
    assert failed.status == "error" and failed.error == "ZeroDivisionError: division by zero"
    unknown = registry.call("rm_rf", {}, actor="agent")
    assert unknown.status == "unknown_tool" and "available: add, secret, divide" in unknown.error
    bad = registry.call("add", {"a": 1}, actor="agent")
    assert bad.status == "bad_arguments"
    statuses = [e.status for e in registry.audit]
    assert statuses == ["ok", "refused", "error", "unknown_tool", "bad_arguments"]
    assert [e.id for e in registry.audit] == [r.call_id for r in (ok, refused, failed, unknown,
                                                                   bad)]


def test_registry_bad_registrations() -> None:
    registry = ToolRegistry()

    def tool(x: int) -> int:
        """A tool."""
        return x

    registry.register(tool)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(tool)
    with pytest.raises(ValueError, match="needs a description"):
        registry.register(lambda x: x, name="anonymous")
    with pytest.raises(ValueError, match="identifier"):
        registry.register(tool, name="not valid")
    with pytest.raises(TypeError, match="callable"):
        registry.register(3)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no tool named"):
        registry["missing"]
    with pytest.raises(TypeError, match="AuditLog"):
        ToolRegistry(audit=[])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# BM25
# --------------------------------------------------------------------------------------------

DOCS = {
    "gcd": "Greatest common divisor of the integer arguments.",
    "startswith": "Return True if the string starts with the specified prefix, False otherwise.",
    "sorted": "Return a new list containing all items from the iterable in ascending order.",
    "set": "Build an unordered collection of unique elements.",
    "join": "Concatenate any number of strings. The string whose method is called is inserted.",
}


def naive_bm25(docs: dict[str, str], query: str, k1: float, b: float) -> list[float]:
    """Okapi BM25 written out term by term, as in Robertson and Zaragoza (2009), Lucene idf."""
    import re

    tokenised = [re.findall(r"[a-z0-9]+", text.lower()) for text in docs.values()]
    n = len(tokenised)
    avgdl = sum(len(t) for t in tokenised) / n
    scores = []
    for doc in tokenised:
        total = 0.0
        for term in re.findall(r"[a-z0-9]+", query.lower()):
            f = doc.count(term)
            if f == 0:
                continue
            n_q = sum(term in d for d in tokenised)
            idf = math.log((n - n_q + 0.5) / (n_q + 0.5) + 1)
            total += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(total)
    return scores


@pytest.mark.parametrize("query", ["greatest common divisor", "string prefix", "return the list",
                                   "unique sorted elements of a list", "nothing matches here"])
@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (1.2, 0.0), (0.0, 1.0)])
def test_bm25_matches_the_formula(query: str, k1: float, b: float) -> None:
    index = BM25Index(DOCS, k1=k1, b=b)
    assert index.scores(query) == pytest.approx(naive_bm25(DOCS, query, k1, b), rel=1e-12)


def test_bm25_hand_worked_case() -> None:
    # Two documents of equal length: idf(apple) = ln(1 + 1.5/1.5) = ln 2, and with |D| = avgdl
    # the term weight is f (k1 + 1) / (f + k1) = 2 * 2.5 / 3.5 for f = 2, k1 = 1.5.
    index = BM25Index({"a": "apple apple", "b": "pear plum"})
    assert index.scores("apple") == pytest.approx([math.log(2) * 5 / 3.5, 0.0])


def test_bm25_search_orders_and_filters() -> None:
    index = BM25Index(DOCS)
    hits = index.search("greatest common divisor of integers", k=2)
    assert hits[0].doc_id == "gcd" and hits[0].text == DOCS["gcd"]
    assert all(h.score > 0 for h in hits)
    assert index.search("zebra") == []
    tie = BM25Index({"x": "same words", "y": "same words"}).search("same")
    assert [h.doc_id for h in tie] == ["x", "y"]  # ties keep document order


def test_bm25_bad_inputs() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        BM25Index({})
    with pytest.raises(TypeError, match="mapping"):
        BM25Index(["a doc"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="b must be in"):
        BM25Index(DOCS, b=2.0)
    with pytest.raises(ValueError, match="k must be"):
        BM25Index(DOCS).search("x", k=0)
    with pytest.raises(TypeError, match="query"):
        BM25Index(DOCS).scores(None)  # type: ignore[arg-type]


def test_import_is_cheap() -> None:
    code = ("import sys, shared.agents; heavy = [m for m in ('torch', 'transformers', 'numpy') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
