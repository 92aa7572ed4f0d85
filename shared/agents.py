"""Plumbing for agents: a chat-model client, a sandboxed Python runner, tools with an audit log,
and a keyword index over local documents.

- `ModelClient`: calls a chat model (by default SmolLM2-135M-Instruct through `shared.assets.chat`,
  greedy), counts calls and reply tokens per agent, enforces a call budget, memoises identical
  requests, and runs the validate-retry-fallback loop that makes a weak model usable in a protocol
  (`complete_validated`).
- `run_sandboxed`, `run_tests_sandboxed`: run untrusted Python in a separate interpreter with a
  wall-clock timeout, a fresh temporary working directory, a stripped environment, resource limits
  (`resource.setrlimit`: CPU time, address space, file size, open files) and an audit hook that
  refuses network access, new processes, native libraries and writes outside the working
  directory. This is a teaching sandbox, not a security boundary: a real one adds OS isolation
  (namespaces, seccomp, containers or a VM).
- `ToolRegistry`, `AuditLog`: tools that agents call by name with checked arguments; every call,
  refused or not, is appended to a hash-chained log whose ids are deterministic (no timestamps).
- `BM25Index`: Okapi BM25 keyword search over a dict of documents.

Importing this module is cheap: it imports no torch or transformers (the default model client
loads them on its first call).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = [
    "AuditEntry",
    "AuditLog",
    "Attempt",
    "BM25Index",
    "BudgetExceededError",
    "ModelCall",
    "ModelClient",
    "Outcome",
    "SandboxResult",
    "SearchHit",
    "TestOutcome",
    "Tool",
    "ToolRegistry",
    "ToolResult",
    "run_sandboxed",
    "run_tests_sandboxed",
]

T = TypeVar("T")
Messages = Sequence[Mapping[str, str]]

# --------------------------------------------------------------------------------------------
# The chat-model client
# --------------------------------------------------------------------------------------------


class BudgetExceededError(RuntimeError):
    """A `ModelClient` was asked for more model calls than its ``max_calls`` budget allows."""


@dataclasses.dataclass(frozen=True)
class ModelCall:
    """One request to the model: who asked, the conversation, the reply and its size."""

    agent: str
    messages: tuple[dict[str, str], ...]
    max_new_tokens: int
    reply: str
    new_tokens: int
    cached: bool


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One reply in a validated exchange; ``error`` is why it was rejected (None: accepted)."""

    reply: str
    error: str | None


@dataclasses.dataclass(frozen=True)
class Outcome(Generic[T]):
    """The result of `ModelClient.complete_validated`.

    ``source`` is ``"model"`` (the first reply was valid), ``"retry"`` (a later reply was),
    ``"fallback"`` (every reply was rejected and the fallback produced ``value``) or ``"failed"``
    (every reply was rejected and there was no fallback; ``value`` is None).
    """

    value: T | None
    source: str
    attempts: tuple[Attempt, ...]

    @property
    def ok(self) -> bool:
        return self.source != "failed"


def _default_feedback(error: str) -> str:
    return f"Your reply was rejected: {error}\nReply again and follow the instructions exactly."


class ModelClient:
    """A chat model behind a budget, a cache and a validate-retry-fallback loop.

    ``generate(messages, max_new_tokens) -> str`` answers a conversation (a list of
    ``{"role", "content"}`` dicts). The default is `shared.assets.chat`: SmolLM2-135M-Instruct,
    greedy, so the same request always gets the same reply. ``count_tokens(text) -> int`` sizes
    the replies; it defaults to the SmolLM2 tokenizer with the default model and must be given
    with any other ``generate``. Reply tokens are counted by re-encoding the reply text (an end
    token the model emitted is not counted).

    ``max_calls`` caps the model calls (cache hits are free); one more raises
    `BudgetExceededError`, so a runaway agent loop fails loudly instead of running for minutes.
    With ``cache=True`` an identical request (same messages and ``max_new_tokens``) reuses the
    earlier reply, which greedy decoding makes exact.

    Used in: modules/20-advanced-topics (03-multi-agent-systems, 04-llm-os),
    labs/multi-agent-scratchpad-protocol.
    """

    def __init__(
        self,
        generate: Callable[[list[dict[str, str]], int], str] | None = None,
        *,
        count_tokens: Callable[[str], int] | None = None,
        max_calls: int | None = None,
        cache: bool = True,
    ) -> None:
        if generate is not None and not callable(generate):
            raise TypeError(f"generate must be callable, got {type(generate).__name__}")
        if generate is not None and count_tokens is None:
            raise TypeError("count_tokens is required with a custom generate (how to size replies)")
        if max_calls is not None and (isinstance(max_calls, bool) or not isinstance(max_calls, int)
                                      or max_calls < 1):
            raise ValueError(f"max_calls must be None or an int >= 1, got {max_calls!r}")
        self._generate = generate or _smollm2_chat
        self._count_tokens = count_tokens or _smollm2_token_count
        self.max_calls = max_calls
        self.cache = cache
        self.calls: list[ModelCall] = []
        self._replies: dict[str, str] = {}

    @property
    def n_calls(self) -> int:
        """Model calls made (cache hits excluded)."""
        return sum(not call.cached for call in self.calls)

    @property
    def n_tokens(self) -> int:
        """Reply tokens generated by the model (cache hits excluded)."""
        return sum(call.new_tokens for call in self.calls if not call.cached)

    def usage(self) -> dict[str, dict[str, int]]:
        """Per agent: model calls, reply tokens and cache hits, in order of first appearance."""
        table: dict[str, dict[str, int]] = {}
        for call in self.calls:
            row = table.setdefault(call.agent, {"calls": 0, "tokens": 0, "cache_hits": 0})
            if call.cached:
                row["cache_hits"] += 1
            else:
                row["calls"] += 1
                row["tokens"] += call.new_tokens
        return table

    def summary(self) -> str:
        """One line: calls, tokens and cache hits, for the end of a notebook section."""
        hits = sum(call.cached for call in self.calls)
        budget = "" if self.max_calls is None else f" of a budget of {self.max_calls}"
        return (f"{self.n_calls} model calls{budget}, {self.n_tokens} reply tokens, "
                f"{hits} cache hits")

    def complete(self, messages: Messages, *, max_new_tokens: int, agent: str = "agent") -> str:
        """Send ``messages`` to the model and return its reply (recorded in ``calls``)."""
        conversation = _check_conversation(messages)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
            raise TypeError(f"max_new_tokens must be an int, got {type(max_new_tokens).__name__}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not isinstance(agent, str) or not agent:
            raise ValueError(f"agent must be a non-empty str naming the caller, got {agent!r}")
        key = json.dumps([conversation, max_new_tokens], sort_keys=True)
        cached = self.cache and key in self._replies
        if cached:
            reply = self._replies[key]
        else:
            if self.max_calls is not None and self.n_calls >= self.max_calls:
                raise BudgetExceededError(
                    f"the model-call budget of {self.max_calls} is spent ({agent} asked for one "
                    "more); raise max_calls or make the protocol stop earlier"
                )
            reply = self._generate(conversation, max_new_tokens)
            if not isinstance(reply, str):
                raise TypeError(f"generate must return a str, got {type(reply).__name__}")
            self._replies[key] = reply
        tokens = 0 if cached else int(self._count_tokens(reply))
        self.calls.append(
            ModelCall(agent, tuple(conversation), max_new_tokens, reply, tokens, cached)
        )
        return reply

    def complete_validated(
        self,
        messages: Messages,
        parse: Callable[[str], T],
        *,
        max_new_tokens: int,
        agent: str = "agent",
        retries: int = 1,
        feedback: Callable[[str], str] = _default_feedback,
        fallback: Callable[[], T] | None = None,
    ) -> Outcome[T]:
        """Ask, validate, and on rejection ask again with the error; fall back when all fail.

        ``parse(reply)`` returns the parsed value or raises ValueError whose message says what is
        wrong; that message goes back to the model as ``feedback(error)`` in a user turn after its
        rejected reply, at most ``retries`` times. Other exceptions from ``parse`` propagate (they
        are bugs, not bad replies). If every reply is rejected, ``fallback()`` (a deterministic
        rule or tool) supplies the value; without one the outcome is ``"failed"``.
        """
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        conversation = _check_conversation(messages)
        attempts: list[Attempt] = []
        for attempt in range(retries + 1):
            reply = self.complete(conversation, max_new_tokens=max_new_tokens, agent=agent)
            try:
                value = parse(reply)
            except ValueError as error:
                attempts.append(Attempt(reply, str(error)))
                conversation = [
                    *conversation,
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": feedback(str(error))},
                ]
                continue
            attempts.append(Attempt(reply, None))
            return Outcome(value, "model" if attempt == 0 else "retry", tuple(attempts))
        if fallback is None:
            return Outcome(None, "failed", tuple(attempts))
        return Outcome(fallback(), "fallback", tuple(attempts))


_ROLES = ("system", "user", "assistant")


def _check_conversation(messages: Messages) -> list[dict[str, str]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError(
            f"messages must be a list of {{'role', 'content'}} dicts, got {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages must not be empty")
    conversation = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or set(message) != {"role", "content"}:
            raise TypeError(f"message {i} must have exactly the keys 'role' and 'content', "
                            f"got {message!r}")
        if message["role"] not in _ROLES:
            raise ValueError(f"message {i} has role {message['role']!r}; expected one of {_ROLES}")
        if not isinstance(message["content"], str):
            raise TypeError(f"message {i} content must be a str, "
                            f"got {type(message['content']).__name__}")
        conversation.append({"role": message["role"], "content": message["content"]})
    if conversation[-1]["role"] == "assistant":
        raise ValueError("the last message must come from 'user' or 'system', not 'assistant'")
    return conversation


def _smollm2_chat(messages: list[dict[str, str]], max_new_tokens: int) -> str:
    from shared.assets import chat

    return chat(messages, max_new_tokens=max_new_tokens)


def _smollm2_token_count(text: str) -> int:
    from shared.assets import chat_tokenizer

    return len(chat_tokenizer().encode(text, add_special_tokens=False))


# --------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run left behind: exit status, output (truncated) and why it stopped."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def reason(self) -> str:
        """A short account of how the process ended, for messages and tables."""
        if self.timed_out:
            return "wall-clock timeout (killed)"
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            why = {"SIGXCPU": " (CPU-time limit)", "SIGKILL": " (killed)"}.get(name, "")
            return f"killed by {name}{why}"
        if self.returncode == 0:
            return "exit 0"
        last = self.stderr.strip().splitlines()[-1] if self.stderr.strip() else ""
        return f"exit {self.returncode}" + (f": {last}" if last else "")


# The child process runs this file. It lowers its own resource limits, installs an audit hook
# (PEP 578) that refuses the operations a test of a small function never needs, and only then
# compiles and runs the untrusted code from main.py. Audit hooks are not a security boundary
# (code can, for instance, corrupt the interpreter); they are a second line behind the limits.
_RUNNER = r'''
import os, resource, sys

for limit, value in LIMITS:
    resource.setrlimit(getattr(resource, limit), (value, value if limit != "RLIMIT_CPU" else value + 1))

_ROOT = os.path.realpath(os.getcwd())
_PATH_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
                "os.symlink", "os.link", "os.truncate", "os.utime", "shutil.rmtree"}
_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                   "os.fork", "os.forkpty", "os.kill", "os.killpg"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _outside(path):
    if isinstance(path, int):
        return False
    full = os.path.realpath(os.path.join(_ROOT, os.fsdecode(path)))
    return full != _ROOT and not full.startswith(_ROOT + os.sep)


def _guard(event, args):
    if event.startswith("socket."):
        raise PermissionError("sandbox: network access is blocked (" + event + ")")
    if event in _PROCESS_EVENTS:
        raise PermissionError("sandbox: starting or signalling processes is blocked (" + event + ")")
    if event.startswith("ctypes."):
        raise PermissionError("sandbox: native code via ctypes is blocked (" + event + ")")
    if event == "open" and args[0] is not None:
        path, mode, flags = args
        writing = (mode is not None and any(c in mode for c in "wax+")) or bool(flags & _WRITE_FLAGS)
        if writing and _outside(path):
            raise PermissionError("sandbox: writing outside the working directory is blocked: "
                                  + repr(os.fsdecode(path)))
    if event in _PATH_EVENTS:
        for arg in args:
            if isinstance(arg, (str, bytes, os.PathLike)) and _outside(arg):
                raise PermissionError("sandbox: changing files outside the working directory is "
                                      "blocked (" + event + ": " + repr(os.fsdecode(arg)) + ")")


with open("main.py", encoding="utf-8") as _handle:
    _code = compile(_handle.read(), "main.py", "exec")
sys.addaudithook(_guard)
del _handle
exec(_code, {"__name__": "__main__", "__builtins__": __builtins__})
'''

# Only what a Python process needs to start; no PYTHONPATH, proxies, tokens or keys.
_SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
                "PYTHONDONTWRITEBYTECODE": "1"}


def _positive_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


def run_sandboxed(
    code: str,
    *,
    timeout_s: float = 5.0,
    cpu_seconds: int = 2,
    memory_mb: int = 256,
    max_file_mb: int = 4,
    max_output_chars: int = 20_000,
    files: Mapping[str, str] | None = None,
) -> SandboxResult:
    """Run untrusted Python ``code`` in a separate, restricted interpreter and return its result.

    The child runs in a fresh temporary directory (deleted afterwards; ``files`` maps relative
    names to text files to put there first) with a minimal environment (``PATH``, ``LANG``,
    ``PYTHONHASHSEED=0``: nothing of the parent's variables, so no credentials), without the
    site-packages (``-S -s``: the standard library only), and with these limits:

    - ``timeout_s`` of wall-clock time, after which the whole process group is killed;
    - ``cpu_seconds`` of CPU time (``RLIMIT_CPU``; the kernel sends SIGXCPU);
    - ``memory_mb`` of address space (``RLIMIT_AS``; allocations beyond raise MemoryError);
    - ``max_file_mb`` per written file (``RLIMIT_FSIZE``), which also bounds stdout and stderr,
      since they go to files; at most ``max_output_chars`` of each are returned;
    - an audit hook that raises PermissionError on sockets, new processes, ctypes and writes
      outside the working directory.

    The process is stopped by its own handle on every path (timeout, error, interrupt). It is
    still not a security boundary: a real sandbox adds OS isolation (user and network namespaces,
    seccomp filters, a container or a VM).

    Used in: modules/20-advanced-topics (03-multi-agent-systems, 04-llm-os).
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, got {type(code).__name__}")
    timeout_s = _positive_number(timeout_s, "timeout_s")
    for name, value in (("cpu_seconds", cpu_seconds), ("memory_mb", memory_mb),
                        ("max_file_mb", max_file_mb), ("max_output_chars", max_output_chars)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if memory_mb < 64:
        raise ValueError(f"memory_mb must be >= 64 (the interpreter needs it), got {memory_mb}")
    files = dict(files or {})
    limits = [("RLIMIT_CPU", cpu_seconds), ("RLIMIT_AS", memory_mb << 20),
              ("RLIMIT_FSIZE", max_file_mb << 20), ("RLIMIT_NOFILE", 64), ("RLIMIT_CORE", 0)]
    with tempfile.TemporaryDirectory(prefix="sandbox-") as folder:
        root = Path(folder)
        for name, text in files.items():
            if not isinstance(name, str) or not isinstance(text, str):
                raise TypeError("files must map str names to str contents")
            target = (root / name).resolve()
            if root.resolve() not in target.parents:
                raise ValueError(f"file name {name!r} must be a relative path inside the sandbox")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        (root / "main.py").write_text(code, encoding="utf-8")
        runner = root / "_runner.py"
        runner.write_text(f"LIMITS = {limits!r}\n{_RUNNER}", encoding="utf-8")
        env = {**_SANDBOX_ENV, "HOME": folder, "TMPDIR": folder}
        with open(root / "_stdout", "wb") as out, open(root / "_stderr", "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-S", "-s", str(runner)],
                cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True,  # its own process group, so a kill reaches every child
            )
            timed_out = False
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        stdout = (root / "_stdout").read_text(encoding="utf-8", errors="replace")
        stderr = (root / "_stderr").read_text(encoding="utf-8", errors="replace")
    return SandboxResult(process.returncode, stdout[:max_output_chars], stderr[:max_output_chars],
                         timed_out)


@dataclasses.dataclass(frozen=True)
class TestOutcome:
    """Whether a solution passed its tests in the sandbox, and if not, what failed first."""

    passed: bool
    error: str | None
    sandbox: SandboxResult

    __test__ = False  # not a pytest test class


_RESULT_MARKER = "@@sandbox-test-result@@"

# Runs inside the sandbox: the solution, then the tests, then check(<entry point>). The failing
# line of the tests is reported, since an assert in HumanEval style carries no message.
_TEST_HARNESS = r'''
import json, sys, traceback

SOLUTION, TESTS, ENTRY_POINT, MARKER = {solution!r}, {tests!r}, {entry_point!r}, {marker!r}


def report(passed, error=None):
    sys.stdout.flush()
    print("\n" + MARKER + json.dumps({{"passed": passed, "error": error}}), flush=True)
    sys.exit(0)


def describe(exc):
    text = type(exc).__name__ + (": " + str(exc) if str(exc) else "")
    lines = TESTS.splitlines()
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<tests>" and 0 < frame.lineno <= len(lines):
            return text + " (in the test line: " + lines[frame.lineno - 1].strip() + ")"
    return text


namespace = {{"__name__": "solution"}}
try:
    exec(compile(SOLUTION, "<solution>", "exec"), namespace)
except BaseException as exc:
    report(False, "the solution does not run: " + describe(exc))
candidate = namespace.get(ENTRY_POINT)
if not callable(candidate):
    report(False, "the solution defines no function named " + repr(ENTRY_POINT))
tests = {{"__name__": "tests"}}
try:
    exec(compile(TESTS, "<tests>", "exec"), tests)
    tests["check"](candidate)
except BaseException as exc:
    report(False, describe(exc))
report(True)
'''


def run_tests_sandboxed(
    code: str,
    tests: str,
    entry_point: str,
    **limits: Any,
) -> TestOutcome:
    """Run ``code`` and then ``tests`` (which define ``check(candidate)``) in `run_sandboxed`.

    This is HumanEval's convention: ``check`` asserts on ``candidate``, here the function
    ``entry_point`` that ``code`` defines. The outcome says whether every assertion held and,
    if not, the first error with the test line it came from (e.g. ``"AssertionError (in the
    test line: assert candidate(3, 7) == 1)"``), or why the process died (timeout, CPU or
    memory limit). ``limits`` are passed on to `run_sandboxed`.

    Used in: modules/20-advanced-topics/03-multi-agent-systems.
    """
    for name, value in (("code", code), ("tests", tests), ("entry_point", entry_point)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}")
    if not re.search(r"^def check\(", tests, flags=re.MULTILINE):
        raise ValueError("tests must define a top-level function check(candidate)")
    harness = _TEST_HARNESS.format(solution=code, tests=tests, entry_point=entry_point,
                                   marker=_RESULT_MARKER)
    result = run_sandboxed(harness, **limits)
    reports = [line for line in result.stdout.splitlines() if line.startswith(_RESULT_MARKER)]
    if not reports:
        return TestOutcome(False, f"no test report: {result.reason}", result)
    verdict = json.loads(reports[-1][len(_RESULT_MARKER):])
    return TestOutcome(bool(verdict["passed"]), verdict["error"], result)


# --------------------------------------------------------------------------------------------
# Tools and the audit log
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One tool call in the audit log. ``id`` hashes this entry's fields and ``prev``."""

    seq: int
    id: str
    prev: str
    actor: str
    tool: str
    args: str  # canonical JSON
    status: str
    result: str


_GENESIS = "0" * 12
AUDIT_STATUSES = ("ok", "error", "refused", "unknown_tool", "bad_arguments")


def _entry_id(prev: str, seq: int, actor: str, tool: str, args: str, status: str,
              result: str) -> str:
    payload = json.dumps([prev, seq, actor, tool, args, status, result], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


class AuditLog:
    """An append-only, hash-chained record of tool calls, with deterministic ids.

    Each entry's ``id`` is the first 12 hex digits of the sha256 of the previous id and this
    entry's fields (sequence number, actor, tool, canonical JSON arguments, status, result), so
    the same run always produces the same ids, and changing, dropping or reordering any entry
    breaks the chain from there on: `verify_records` finds the first broken entry. No timestamps:
    the order is the sequence number.

    Used in: modules/20-advanced-topics (03-multi-agent-systems, 04-llm-os).
    """

    def __init__(self, max_result_chars: int = 200) -> None:
        if isinstance(max_result_chars, bool) or not isinstance(max_result_chars, int):
            raise TypeError("max_result_chars must be an int")
        if max_result_chars < 1:
            raise ValueError(f"max_result_chars must be >= 1, got {max_result_chars}")
        self.max_result_chars = max_result_chars
        self._entries: list[AuditEntry] = []

    def record(self, actor: str, tool: str, args: Mapping[str, Any], status: str,
               result: str) -> AuditEntry:
        """Append one call; ``args`` must be JSON-serialisable, ``status`` in AUDIT_STATUSES."""
        for name, value in (("actor", actor), ("tool", tool), ("result", result)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if status not in AUDIT_STATUSES:
            raise ValueError(f"status must be one of {AUDIT_STATUSES}, got {status!r}")
        if not isinstance(args, Mapping):
            raise TypeError(f"args must be a mapping of argument names, got {type(args).__name__}")
        try:
            args_json = json.dumps(dict(args), sort_keys=True, ensure_ascii=False)
        except TypeError as error:
            raise TypeError(f"tool arguments must be JSON-serialisable: {error}") from None
        result = result[: self.max_result_chars]
        prev = self._entries[-1].id if self._entries else _GENESIS
        seq = len(self._entries)
        entry = AuditEntry(seq, _entry_id(prev, seq, actor, tool, args_json, status, result),
                           prev, actor, tool, args_json, status, result)
        self._entries.append(entry)
        return entry

    @property
    def entries(self) -> tuple[AuditEntry, ...]:
        return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[AuditEntry]:
        return iter(tuple(self._entries))

    def to_records(self) -> list[dict[str, Any]]:
        """The log as plain dicts, e.g. to save as JSON lines."""
        return [dataclasses.asdict(entry) for entry in self._entries]

    @staticmethod
    def verify_records(records: Sequence[Mapping[str, Any]]) -> int | None:
        """Index of the first record whose hash or link does not check out; None if all do."""
        prev = _GENESIS
        for index, record in enumerate(records):
            expected = _entry_id(prev, index, record["actor"], record["tool"], record["args"],
                                 record["status"], record["result"])
            if record["seq"] != index or record["prev"] != prev or record["id"] != expected:
                return index
            prev = record["id"]
        return None

    def verify(self) -> int | None:
        """`verify_records` on this log's own entries."""
        return self.verify_records(self.to_records())

    def render(self, value_chars: int = 24) -> str:
        """A table of the log, one call per line: ``seq id actor status tool(args) -> result``.

        Each argument value and the result are cut to ``value_chars`` characters.
        """
        if isinstance(value_chars, bool) or not isinstance(value_chars, int) or value_chars < 4:
            raise ValueError(f"value_chars must be an int >= 4, got {value_chars!r}")

        def cut(text: str) -> str:
            text = text.replace("\n", "\\n")
            return text if len(text) <= value_chars else text[: value_chars - 3] + "..."

        lines = [f"{'#':>3} {'id':12} {'actor':12} {'status':13} call -> result"]
        for e in self._entries:
            args = ", ".join(f"{k}={cut(repr(v))}" for k, v in json.loads(e.args).items())
            lines.append(f"{e.seq:>3} {e.id:12} {e.actor[:12]:12} {e.status:13} "
                         f"{e.tool}({args}) -> {cut(e.result)}")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Tool:
    """A function that agents may call by name; ``side_effects`` marks tools that change state."""

    name: str
    func: Callable[..., Any]
    description: str
    parameters: tuple[str, ...]
    side_effects: bool = False

    def signature(self) -> str:
        return f"{self.name}({', '.join(self.parameters)})"


@dataclasses.dataclass(frozen=True)
class ToolResult:
    """What a tool call returned: ``output`` when ``status == "ok"``, else ``error``."""

    call_id: str
    tool: str
    status: str
    output: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ToolRegistry:
    """Named tools with argument checks; every call is written to an `AuditLog`.

    ``call`` never raises for an agent's mistakes: an unknown tool, arguments that do not fit
    the signature, or an exception inside the tool become a `ToolResult` with an error (status
    ``"refused"`` for PermissionError, the sandbox's way of saying no), which an agent can read
    and react to. Mistakes in registering tools raise at once.

    Used in: modules/20-advanced-topics (03-multi-agent-systems, 04-llm-os).
    """

    def __init__(self, audit: AuditLog | None = None) -> None:
        if audit is not None and not isinstance(audit, AuditLog):
            raise TypeError(f"audit must be an AuditLog, got {type(audit).__name__}")
        self.audit = audit if audit is not None else AuditLog()
        self._tools: dict[str, Tool] = {}

    def register(self, func: Callable[..., Any], *, name: str | None = None,
                 description: str | None = None, side_effects: bool = False) -> Tool:
        """Add ``func`` as a tool (its name and the first line of its docstring by default)."""
        if not callable(func):
            raise TypeError(f"a tool must be callable, got {type(func).__name__}")
        name = name or func.__name__
        if not name.isidentifier():
            raise ValueError(f"tool name must be a Python identifier, got {name!r}")
        if name in self._tools:
            raise ValueError(f"a tool named {name!r} is already registered")
        doc = description or (inspect.getdoc(func) or "").split("\n")[0]
        if not doc:
            raise ValueError(f"tool {name!r} needs a description (a docstring or description=)")
        params = tuple(inspect.signature(func).parameters)
        tool = Tool(name, func, doc, params, side_effects)
        self._tools[name] = tool
        return tool

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool:
        if name not in self._tools:
            raise KeyError(f"no tool named {name!r}; registered: {sorted(self._tools)}")
        return self._tools[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def describe(self) -> str:
        """One line per tool, ``name(params): description``, for a system prompt."""
        return "\n".join(f"{t.signature()}: {t.description}" for t in self._tools.values())

    def call(self, name: str, args: Mapping[str, Any], *, actor: str) -> ToolResult:
        """Call tool ``name`` with keyword ``args`` on behalf of ``actor``; log and return it."""
        if not isinstance(args, Mapping):
            raise TypeError(f"args must be a mapping of argument names, got {type(args).__name__}")
        if not isinstance(actor, str) or not actor:
            raise ValueError(f"actor must be a non-empty str, got {actor!r}")
        tool = self._tools.get(name)
        if tool is None:
            error = f"unknown tool {name!r}; available: {', '.join(self._tools)}"
            return self._finish(actor, str(name), args, "unknown_tool", None, error)
        try:
            inspect.signature(tool.func).bind(**args)
        except TypeError as exc:
            error = f"{tool.signature()} cannot take {sorted(args)}: {exc}"
            return self._finish(actor, name, args, "bad_arguments", None, error)
        try:
            output = tool.func(**args)
        except PermissionError as exc:
            return self._finish(actor, name, args, "refused", None, str(exc))
        except Exception as exc:  # a tool's failure is information for the agent, not a crash
            return self._finish(actor, name, args, "error", None, f"{type(exc).__name__}: {exc}")
        return self._finish(actor, name, args, "ok", output, None)

    def _finish(self, actor: str, name: str, args: Mapping[str, Any], status: str,
                output: Any, error: str | None) -> ToolResult:
        shown = error if error is not None else str(output)
        entry = self.audit.record(actor, name, args, status, shown)
        return ToolResult(entry.id, name, status, output, error)


# --------------------------------------------------------------------------------------------
# Keyword search over local documents
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SearchHit:
    """One search result: the document's id, its BM25 score and its text."""

    doc_id: str
    score: float
    text: str


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class BM25Index:
    """Okapi BM25 over a dict ``{doc_id: text}`` (lower-cased alphanumeric words).

    For a query with words $q_i$, a document $D$ of length $|D|$ scores
    $\\sum_i \\mathrm{idf}(q_i)\\, f(q_i, D)(k_1 + 1) / (f(q_i, D) + k_1(1 - b + b|D|/\\bar L))$,
    with $f$ the word's count in $D$, $\\bar L$ the mean document length and
    $\\mathrm{idf}(q) = \\ln(1 + (N - n_q + 0.5)/(n_q + 0.5))$ (the non-negative form used by
    Lucene), $N$ documents of which $n_q$ contain $q$. Ties keep the documents' order.

    Used in: modules/20-advanced-topics (03-multi-agent-systems, 04-llm-os).
    """

    def __init__(self, documents: Mapping[str, str], *, k1: float = 1.5, b: float = 0.75) -> None:
        if not isinstance(documents, Mapping):
            raise TypeError(f"documents must be a mapping doc_id -> text, "
                            f"got {type(documents).__name__}")
        if not documents:
            raise ValueError("documents must not be empty")
        for doc_id, text in documents.items():
            if not isinstance(doc_id, str) or not isinstance(text, str):
                raise TypeError("documents must map str ids to str texts")
        if not k1 >= 0:
            raise ValueError(f"k1 must be >= 0, got {k1}")
        if not 0 <= b <= 1:
            raise ValueError(f"b must be in [0, 1], got {b}")
        self.k1, self.b = float(k1), float(b)
        self.doc_ids = list(documents)
        self.texts = dict(documents)
        self._counts = [Counter(_words(documents[d])) for d in self.doc_ids]
        self._lengths = [sum(c.values()) for c in self._counts]
        self._mean_length = max(sum(self._lengths) / len(self._lengths), 1e-9)
        frequency: Counter[str] = Counter()
        for counts in self._counts:
            frequency.update(counts.keys())
        n = len(self.doc_ids)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in frequency.items()}

    def __len__(self) -> int:
        return len(self.doc_ids)

    def scores(self, query: str) -> list[float]:
        """The BM25 score of every document for ``query``, in document order."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        words = _words(query)
        out = []
        for counts, length in zip(self._counts, self._lengths):
            norm = self.k1 * (1 - self.b + self.b * length / self._mean_length)
            out.append(sum(self.idf[w] * counts[w] * (self.k1 + 1) / (counts[w] + norm)
                           for w in words if counts[w]))
        return out

    def search(self, query: str, k: int = 3) -> list[SearchHit]:
        """The ``k`` best documents with a positive score, best first."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        scored = [(s, i) for i, s in enumerate(self.scores(query)) if s > 0]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [SearchHit(self.doc_ids[i], s, self.texts[self.doc_ids[i]]) for s, i in scored[:k]]
