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
# # Multi-agent systems: a research agent and a coding agent share the work
#
# One language model answering one prompt is a function call. Many useful systems instead split
# a job between several *agents*: model calls with their own role, instructions, tools and
# memory, which pass messages to each other under some rule of coordination. MetaGPT and ChatDev
# organise agents like a software company; AutoGen lets agents converse; CrewAI, LangGraph and
# AutoGPT package these patterns as frameworks. This notebook builds a small team from scratch:
# a research agent that searches local documentation, a coding agent that writes a function, a
# tester that runs it in a sandboxed process, and an orchestrator that decides what happens
# next. The agents are driven by a real model, SmolLM2-135M-Instruct, which is small enough to
# run here and weak enough to fail often. That is useful: it shows what the protocol around the
# model (validation, retries, deterministic tools, escalation) has to do.
#
# **Learning objectives**
# - Name the parts of a multi-agent system (roles, messages, coordination, shared memory,
#   tools) and build each one in a few lines of Python.
# - Run untrusted generated code in a separate process with a timeout, a temporary directory,
#   a stripped environment and resource limits, and say what a real sandbox adds.
# - Constrain and validate model outputs, feed errors back, and fall back to deterministic
#   tools; measure how often a small model's code passes on its own and after each step.
# - Compare the hand-built team with CrewAI, LangGraph and AutoGPT.
#
# **Prerequisites:** chat models and prompting
# ([capabilities](../01-introduction/03-capabilities)), keyword retrieval such as TF-IDF
# ([text vectorisation](../03-data-and-tokenization/06-text-vectorization)), and Python
# processes and exceptions.
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
import ast
import bisect
import builtins
import collections
import dataclasses
import functools
import heapq
import inspect
import itertools
import math
import os
import re
import statistics
import string
import warnings

import matplotlib.pyplot as plt
import torch

import shared
from shared import assets
from shared.agents import BM25Index, ModelClient, ToolRegistry, run_sandboxed, run_tests_sandboxed

shared.seed_everything(0)
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
# Greedy decoding of one sequence is latency-bound: one thread is as fast as two on a 2-core
# machine and gives the same tokens whatever the core count.
torch.set_num_threads(1)
print(shared.environment_summary("transformers", "matplotlib"))

# %% [markdown]
# ## What makes a system multi-agent
#
# Five parts recur in every design, from the research papers to the frameworks:
#
# | part | question it answers | in this notebook |
# |---|---|---|
# | **roles** | who does what, with which instructions and tools? | orchestrator, researcher, coder, tester |
# | **messaging** | how does work move between agents? | typed messages on a first-in, first-out bus |
# | **coordination** | who decides what happens next, and when does it stop? | rules in the orchestrator and tester, a message budget |
# | **shared memory** | where do results live so that others can read them? | a versioned blackboard with authors |
# | **tools** | what can an agent do besides generate text? | documentation search, a sandboxed test runner, an import fixer |
#
# Park et al. (2023) gave each generative agent a memory stream it retrieves from; Wu et al.
# (2023, AutoGen) made agents that converse until a termination rule fires; Hong et al. (2023,
# MetaGPT) and Qian et al. (2023, ChatDev) assign company roles (product manager, architect,
# programmer, tester) and make agents exchange structured documents rather than free chat,
# which cuts down on errors that cascade from one agent to the next. ReAct (Yao et al., 2023)
# is the single-agent loop underneath: think, act with a tool, observe the result, repeat.
#
# The design rule of this notebook: **the model proposes, rules dispose.** Every model output is
# checked by code before anything acts on it, and every step that can be done without a model
# (searching, testing, fixing imports, deciding what comes next) is done without one.

# %% [markdown]
# ## Messages and a shared memory
#
# A message has a sender, a recipient, a kind (what the recipient should do with it), the task
# it belongs to and a content. The bus delivers messages in the order they were sent and keeps
# all of them, so the whole run can be replayed as a transcript. The blackboard holds the
# artefacts (notes, code, status) under keys; each write records its author and a version
# number, so that nobody overwrites anybody silently.

# %%
@dataclasses.dataclass(frozen=True)
class Message:
    seq: int
    sender: str
    recipient: str
    kind: str
    task: str
    content: str


class MessageBus:
    """First-in, first-out delivery between named agents; every message is kept in `log`."""

    def __init__(self, agents: list[str]) -> None:
        self.agents = tuple(agents)
        self.log: list[Message] = []
        self._queue: collections.deque[Message] = collections.deque()

    def send(self, sender: str, recipient: str, kind: str, task: str, content: str) -> Message:
        if recipient not in self.agents:
            raise ValueError(f"unknown recipient {recipient!r}; agents are {self.agents}")
        message = Message(len(self.log), sender, recipient, kind, task, content)
        self.log.append(message)
        self._queue.append(message)
        return message

    def next(self) -> Message | None:
        return self._queue.popleft() if self._queue else None


@dataclasses.dataclass(frozen=True)
class Record:
    key: str
    value: str
    author: str
    version: int


class SharedMemory:
    """A blackboard: each key holds a history of versioned values with their authors."""

    def __init__(self) -> None:
        self._history: dict[str, list[Record]] = collections.defaultdict(list)

    def write(self, key: str, value: str, author: str) -> Record:
        record = Record(key, value, author, len(self._history[key]) + 1)
        self._history[key].append(record)
        return record

    def read(self, key: str) -> Record | None:
        history = self._history.get(key)
        return history[-1] if history else None

    def history(self, key: str) -> list[Record]:
        return list(self._history.get(key, []))


demo = SharedMemory()
demo.write("plan", "search the docs first", "orchestrator")
demo.write("plan", "search the docs, then write code", "researcher")
print(demo.read("plan"))
print("versions:", [(r.version, r.author) for r in demo.history("plan")])

# %% [markdown]
# ## Tools
#
# ### A local documentation set and a search tool
#
# The research agent needs something to search that is on this machine. Python's standard
# library documents itself: every built-in function, every `str`, `list`, `dict` and `set`
# method and every function of a few modules has a docstring. We collect them into a small
# document set (about 300 entries; the exact count depends on the Python version) and index it
# with BM25 (`shared.agents.BM25Index`), the keyword ranking that TF-IDF grew into.

# %%
DOC_MODULES = (math, statistics, itertools, functools, collections, heapq, bisect, re, string)


def resolve(name: str) -> object:
    """The object a documentation id names: a built-in (`len`, `str.join`) or `module.attr`."""
    first, *rest = name.split(".")
    modules = {module.__name__: module for module in DOC_MODULES}
    obj = modules[first] if first in modules else getattr(builtins, first)
    for part in rest:
        obj = getattr(obj, part)
    return obj


def standard_library_docs() -> dict[str, str]:
    """Documentation id -> 'id: docstring' (whitespace collapsed, at most 300 characters)."""
    names = [name for name in dir(builtins) if not name.startswith("_")
             and callable(getattr(builtins, name))
             and not (isinstance(getattr(builtins, name), type)
                      and issubclass(getattr(builtins, name), BaseException))]
    names += [f"{typ.__name__}.{name}" for typ in (str, list, dict, set)
              for name in dir(typ) if not name.startswith("_")]
    names += [f"{module.__name__}.{name}" for module in DOC_MODULES
              for name in getattr(module, "__all__", dir(module))
              if not name.startswith("_") and callable(getattr(module, name, None))]
    docs = {}
    for name in names:
        doc = inspect.getdoc(resolve(name))
        if doc:
            docs[name] = f"{name}: {' '.join(doc.split())[:300]}"
    return docs


docs = standard_library_docs()
doc_index = BM25Index(docs)
print(f"{len(docs)} documents, e.g. {docs['math.gcd']!r}")
for hit in doc_index.search("Return a greatest common divisor of two integers a and b", k=3):
    print(f"  {hit.score:6.2f}  {hit.doc_id}")

# %% [markdown]
# ### The sandbox
#
# The coding agent's output is untrusted code: it may loop forever, allocate all the memory,
# delete files, open network connections or read secrets from the environment, by accident or
# because a prompt injection told it to. `shared.agents.run_sandboxed` runs code in a separate
# Python process with several layers of defence:
#
# - a **wall-clock timeout**, after which the process group is killed by its handle;
# - a fresh **temporary working directory**, deleted afterwards;
# - a **stripped environment**: only `PATH`, `LANG` and `PYTHONHASHSEED`, so no API keys or
#   proxy settings leak in; no site-packages, so only the standard library imports;
# - **resource limits** set with `resource.setrlimit` in the child: CPU seconds (`RLIMIT_CPU`),
#   address space (`RLIMIT_AS`), file size (`RLIMIT_FSIZE`, which also caps stdout and stderr,
#   since they go to files) and open files;
# - an **audit hook** (PEP 578) that raises `PermissionError` on sockets, new processes, `ctypes`
#   and writes outside the working directory.
#
# This is a teaching sandbox, not a security boundary. Audit hooks can be bypassed by code that
# corrupts the interpreter, and everything still runs as the same user on the same kernel. A
# production sandbox adds OS isolation: Linux namespaces (its own network with no interfaces,
# its own filesystem view and process table), a seccomp filter on system calls, cgroups for
# memory and CPU, and usually a container or a micro-VM (gVisor, Firecracker). The parent side
# stays the same: start, limit, wait with a timeout, kill.
#
# Here is what each layer does to a handful of hostile programs. A fake API key is put in this
# notebook's environment first, to check that the child cannot see it.

# %%
os.environ["COURSE_DEMO_API_KEY"] = "sk-demo-not-a-real-key"
hostile = {
    "busy loop": ("while True: pass", {}),
    "sleeps for a minute": ("import time\ntime.sleep(60)", {"timeout_s": 1.0}),
    "allocates 2 GiB": ("block = bytearray(2 * 1024**3)", {}),
    "fetches a web page": ("import urllib.request\nurllib.request.urlopen('http://example.com')",
                           {}),
    "reads the API key": ("import os\nprint(os.environ.get('COURSE_DEMO_API_KEY'))", {}),
    "writes to /tmp": ("open('/tmp/owned.txt', 'w').write('owned')", {}),
    "runs a shell": ("import os\nos.system('echo owned')", {}),
    "writes 10 MB": ("open('big.bin', 'wb').write(bytes(10 * 2**20))", {}),
}
try:
    for label, (code, limits) in hostile.items():
        result = run_sandboxed(code, cpu_seconds=1, memory_mb=256, max_file_mb=4, **limits)
        shown = result.stdout.strip() or result.reason
        print(f"{label:20s} -> {shown[:100]}")
finally:
    del os.environ["COURSE_DEMO_API_KEY"]
print("the parent's /tmp/owned.txt exists:", os.path.exists("/tmp/owned.txt"))

# %% [markdown]
# Every program stopped where it should: the busy loop by the CPU limit (SIGXCPU), the sleeper
# by the wall-clock timeout (a sleeping process uses no CPU, so both limits are needed), the
# allocation by the address-space limit, the file by the size limit, and network, shell and
# outside writes by the audit hook. The key printed as `None`: the child's environment never
# had it.
#
# On top of the sandbox, `run_tests_sandboxed` runs HumanEval-style tests (a `check(candidate)`
# function full of asserts) on a solution and reports the first failure together with the test
# line it came from: exactly the feedback a coding agent needs.

# %% [markdown]
# ### Tasks, tools and the audit log
#
# The team will solve four problems from HumanEval (Chen et al., 2021), loaded offline with
# `shared.assets.humaneval()`: each has a signature with a docstring, hidden unit tests, and a
# canonical solution written by people. We chose four short problems whose documentation the
# search finds to different degrees.
#
# The tools go into a `ToolRegistry`. Agents call them by name with keyword arguments; the
# registry checks the arguments and writes every call, successful or not, into a hash-chained
# `AuditLog` (the [LLM-OS notebook](04-llm-os) looks at that log more closely). The import
# fixer is a deterministic repair, of the kind linters apply automatically: it adds
# `import math` when code uses `math` without importing it.

# %%
problems = {p["task_id"]: p for p in assets.humaneval()}
TASKS = ["HumanEval/13", "HumanEval/28", "HumanEval/29", "HumanEval/34"]


def first_sentence(problem: dict) -> str:
    """The first line of the problem's docstring: the task in words."""
    return problem["prompt"].split('"""')[1].strip().splitlines()[0]


def import_header(problem: dict) -> str:
    """The import lines of the prompt (HumanEval runs prompt + completion, so they are given)."""
    return "".join(line + "\n" for line in problem["prompt"].splitlines()
                   if line.startswith(("from ", "import ")))


for task in TASKS:
    print(f"{task:13s} {problems[task]['entry_point']:24s} {first_sentence(problems[task])}")

FIXABLE_MODULES = {module.__name__ for module in DOC_MODULES}


def search_docs(query: str, k: int = 3) -> list[str]:
    """Search the local standard-library documentation; return the ids of the best matches."""
    return [hit.doc_id for hit in doc_index.search(query, k=k)]


def run_tests(task_id: str, code: str) -> str:
    """Run a task's HumanEval tests on code in the sandbox; return 'pass' or the first error."""
    problem = problems[task_id]
    outcome = run_tests_sandboxed(import_header(problem) + code, problem["test"],
                                  problem["entry_point"], timeout_s=5.0, cpu_seconds=2)
    return "pass" if outcome.passed else outcome.error


def add_missing_imports(code: str) -> str:
    """Add `import m` for documented standard-library modules that code uses but never binds."""
    tree = ast.parse(code)
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    used = {node.id for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    missing = sorted((used - bound) & FIXABLE_MODULES)
    return "".join(f"import {name}\n" for name in missing) + code


tools = ToolRegistry()
for tool in (search_docs, run_tests, add_missing_imports):
    tools.register(tool)
print(tools.describe())

# %% [markdown]
# ## The model behind a budget
#
# Every model call goes through one `ModelClient`: SmolLM2-135M-Instruct with greedy decoding
# (so a rerun gives the same replies), at most 12 calls for the whole notebook, and a record
# of each call with its agent, prompt, reply and reply length in tokens. A runaway loop would
# hit `BudgetExceededError` instead of running for minutes.
#
# Two checks keep the model's outputs usable, and both are plain code:
#
# - The **researcher** does not ask the model to write free text. It retrieves three candidate
#   documents and asks the model to *choose* one by number. A choice is easy to validate: the
#   reply must point at exactly one candidate. If it does not, the fallback is a deterministic
#   rule: take the best-ranked document.
# - The **coder's** reply must contain code that parses and defines the requested function;
#   the tester checks this before anything runs.

# %%
client = ModelClient(max_calls=12)
CODE_TOKENS = 64  # enough for a one-line body; longer replies are cut off (and then rejected)
MAX_ATTEMPTS = 2  # the coder's first reply plus one retry with the tester's feedback

RESEARCH_SYSTEM = ("You are a research agent. Reply with the number of the most useful "
                   "candidate and nothing else.")
CODER_SYSTEM = ("You are a Python coding agent. Reply with one short Python code block that "
                "defines the requested function. No explanation, no example.")
# One worked example shows the expected format (a fenced block, no prose) better than words.
CODER_EXAMPLE = [
    {"role": "user", "content": 'Complete this function:\n```python\ndef max_of(numbers: list)'
     ' -> int:\n    """Return the largest number in numbers.\n    >>> max_of([1, 5, 2])\n    5\n'
     '    """\n```\nNotes from the research agent: max: With a single iterable argument, '
     'return its biggest item.'},
    {"role": "assistant", "content": "```python\ndef max_of(numbers: list) -> int:\n"
     "    return max(numbers)\n```"},
]


def parse_choice(reply: str, candidates: list[str]) -> str:
    """The one candidate the reply points at, by number or by name; ValueError otherwise."""
    numbers = {int(n) for n in re.findall(r"\b\d+\b", reply)}
    named = {i for i, name in enumerate(candidates, start=1)
             if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", reply)}
    chosen = numbers | named
    if len(chosen) != 1:
        raise ValueError(f"expected exactly one candidate number from 1 to {len(candidates)}, "
                         f"found {sorted(chosen) or 'none'}")
    number = chosen.pop()
    if not 1 <= number <= len(candidates):
        raise ValueError(f"{number} is not a candidate number (1 to {len(candidates)})")
    return candidates[number - 1]


def extract_function(reply: str, entry_point: str) -> str:
    """The first fenced code block of reply (or all of it), if it parses and defines entry_point."""
    match = re.search(r"```(?:python)?\n(.*?)(?:```|$)", reply, flags=re.DOTALL)
    code = match.group(1) if match else reply
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        raise ValueError(f"the code does not parse: {error.msg} (line {error.lineno})") from None
    if not any(isinstance(node, ast.FunctionDef) and node.name == entry_point
               for node in tree.body):
        raise ValueError(f"the code defines no function named {entry_point}")
    return code


print(parse_choice("2", ["a", "b", "c"]), "|", parse_choice("1. math.gcd", ["math.gcd", "x"]))
for bad in ["The most useful candidate is", "1. str.removeprefix"]:
    try:
        parse_choice(bad, ["str.startswith", "filter", "str.removeprefix"])
    except ValueError as error:
        print(f"{bad!r} rejected: {error}")

# %% [markdown]
# ## The team
#
# Each agent is a small class with a `handle(message)` method. Only the researcher and the coder
# call the model; the tester and the orchestrator are rules.
#
# - **orchestrator**: sends each task to the researcher; on a passing verdict it records the
#   result; on a failing one it *escalates*: it takes HumanEval's canonical solution (written by
#   people, labelled as such) and tests it, as a team would hand a task to a human.
# - **researcher**: searches the documentation (tool), asks the model to choose among the top
#   three hits (validated, no retry, fallback to the top hit), writes its notes to the
#   blackboard and tells the coder where they are.
# - **coder**: builds a prompt from the task and the notes, asks the model for code, and sends
#   the reply to the tester. On feedback it continues the same conversation with the error.
# - **tester**: extracts and validates the code, runs the tests in the sandbox (tool); if they
#   fail, it applies the import fixer (tool) and tests again; then it reports a pass to the
#   orchestrator, or sends feedback to the coder while attempts remain, or reports a failure.

# %%
bus = MessageBus(["orchestrator", "researcher", "coder", "tester"])
memory = SharedMemory()
stage: dict[str, str] = {}  # how each task was finally solved
research: dict[str, object] = {}  # the researcher's validated choice per task


class Orchestrator:
    name = "orchestrator"

    def start(self, tasks: list[str]) -> None:
        for task in tasks:
            bus.send(self.name, "researcher", "task", task, first_sentence(problems[task]))

    def handle(self, message: Message) -> None:
        if message.content.startswith("pass"):
            stage[message.task] = message.content.removeprefix("pass by ")
            memory.write(f"status/{message.task}", message.content, self.name)
            return
        problem = problems[message.task]
        reference = problem["prompt"] + problem["canonical_solution"]
        verdict = tools.call("run_tests", {"task_id": message.task, "code": reference},
                             actor=self.name).output
        stage[message.task] = "reference"
        memory.write(f"code/{message.task}", reference, self.name)
        memory.write(f"status/{message.task}", f"escalated to the reference solution: {verdict}",
                     self.name)


class Researcher:
    name = "researcher"

    def handle(self, message: Message) -> None:
        candidates = tools.call("search_docs", {"query": message.content, "k": 3},
                                actor=self.name).output
        if not candidates:
            memory.write(f"notes/{message.task}", "no matching documentation", self.name)
        else:
            listing = "\n".join(f"{i}. {docs[name][:110]}"
                                for i, name in enumerate(candidates, start=1))
            outcome = client.complete_validated(
                [{"role": "system", "content": RESEARCH_SYSTEM},
                 {"role": "user", "content": f"Task: {message.content}\nCandidates:\n{listing}"
                                             "\nMost useful candidate number:"}],
                lambda reply: parse_choice(reply, candidates),
                max_new_tokens=6, agent=self.name, retries=0, fallback=lambda: candidates[0],
            )
            research[message.task] = outcome
            memory.write(f"notes/{message.task}", docs[outcome.value][:200], self.name)
        bus.send(self.name, "coder", "notes", message.task, f"notes/{message.task}")


class Coder:
    name = "coder"

    def __init__(self) -> None:
        self.conversations: dict[str, list[dict[str, str]]] = {}
        self.reply_tokens: dict[str, list[int]] = collections.defaultdict(list)

    def handle(self, message: Message) -> None:
        task = message.task
        if message.kind == "notes":
            notes = memory.read(message.content).value
            prompt = problems[task]["prompt"].strip()
            self.conversations[task] = [
                {"role": "system", "content": CODER_SYSTEM}, *CODER_EXAMPLE,
                {"role": "user", "content": f"Complete this function:\n```python\n{prompt}\n```"
                                            f"\nNotes from the research agent: {notes}"},
            ]
        else:  # feedback from the tester
            self.conversations[task].append(
                {"role": "user", "content": f"Your code failed: {message.content}\n"
                                            "Reply with the corrected code block."})
        reply = client.complete(self.conversations[task], max_new_tokens=CODE_TOKENS,
                                agent=self.name)
        self.conversations[task].append({"role": "assistant", "content": reply})
        self.reply_tokens[task].append(client.calls[-1].new_tokens)
        bus.send(self.name, "tester", "code", task, reply)


class Tester:
    name = "tester"

    def __init__(self) -> None:
        self.attempts: collections.Counter[str] = collections.Counter()

    def handle(self, message: Message) -> None:
        task = message.task
        self.attempts[task] += 1
        how = "model" if self.attempts[task] == 1 else "retry"
        try:
            code = extract_function(message.content, problems[task]["entry_point"])
        except ValueError as error:
            verdict = str(error)
        else:
            verdict = tools.call("run_tests", {"task_id": task, "code": code},
                                 actor=self.name).output
            if verdict != "pass":
                fixed = tools.call("add_missing_imports", {"code": code}, actor=self.name).output
                if fixed != code and tools.call("run_tests", {"task_id": task, "code": fixed},
                                                actor=self.name).output == "pass":
                    code, verdict, how = fixed, "pass", how + " + import fix"
        if verdict == "pass":
            memory.write(f"code/{task}", code, self.name)
            bus.send(self.name, "orchestrator", "verdict", task, f"pass by {how}")
        elif self.attempts[task] < MAX_ATTEMPTS:
            bus.send(self.name, "coder", "feedback", task, verdict)
        else:
            bus.send(self.name, "orchestrator", "verdict", task, f"fail: {verdict}")


# %% [markdown]
# The run loop is the whole coordination mechanism: deliver the oldest message to its
# recipient, stop when no message is left, and stop with an error if a budget of messages is
# exceeded (a conversation that never ends is the classic failure of chatting agents).

# %%
team = {agent.name: agent for agent in (Orchestrator(), Researcher(), Coder(), Tester())}
MAX_MESSAGES = 40

team["orchestrator"].start(TASKS)
delivered = 0
while (message := bus.next()) is not None:
    delivered += 1
    if delivered > MAX_MESSAGES:
        raise RuntimeError(f"more than {MAX_MESSAGES} messages: the team does not converge")
    team[message.recipient].handle(message)
print(f"{delivered} messages delivered; {client.summary()}")

# %% [markdown]
# ### The transcript
#
# Everything below is printed from the bus, the blackboard and the model client: the model
# replies are SmolLM2's actual outputs of this run, in full.

# %%
for task in TASKS:
    print(f"=== {task}: {problems[task]['entry_point']} ===")
    outcome = research[task]
    print(f"researcher: model replied {outcome.attempts[0].reply!r} -> "
          f"{outcome.value} ({outcome.source}"
          + (f"; rejected: {outcome.attempts[0].error}" if outcome.attempts[0].error else "")
          + ")")
    sizes = iter(team["coder"].reply_tokens[task])
    for message in bus.log:
        if message.task == task and message.kind in ("code", "feedback", "verdict"):
            text = message.content
            if message.kind == "code":
                size = next(sizes)
                text = (f"({size} tokens of at most {CODE_TOKENS})\n    "
                        + text.replace("\n", "\n    "))
            print(f"#{message.seq:02d} {message.sender} -> {message.recipient} "
                  f"[{message.kind}]: {text}")
    print(f"final: {stage[task]}\n")

# %% [markdown]
# Each task in this run shows a different part of the protocol at work:
#
# - `greatest_common_divisor`: the researcher's note names `math.gcd`, and the coder uses it,
#   but forgets `import math`. The tests fail with a `NameError`; the import fixer adds the
#   line and the tests pass. Research helped, a deterministic tool finished the job.
# - `concatenate`: the first reply passes as written.
# - `filter_by_prefix`: the reply uses all 64 tokens and stops in the middle of an expression,
#   so it does not parse. Told so, the model sends the same reply again.
# - `unique`: the model's reply to the researcher names no candidate, so the fallback takes the
#   top-ranked document (`heapq.nsmallest`, a poor match: keyword search only knows the words
#   it is given). The code recurses forever; the sandboxed test ends it with a
#   `RecursionError`, and after that feedback the model returns the worked example from its
#   prompt instead of the function it was asked for.
#
# The last two go to the reference solution. Nothing the model wrote ran outside the sandbox,
# and nothing failing was accepted.

# %% [markdown]
# ## Results: how often did the model's code pass?
#
# Each task ends in one of five ways: the coder's first reply passes as written (`model`), it
# passes after the import fixer (`model + import fix`), the reply after feedback passes
# (`retry`, possibly `+ import fix`), or the orchestrator escalates to the reference solution.
# Counting cumulatively shows what each layer of the protocol adds.

# %%
LADDER = [("model's first reply, as written", {"model"}),
          ("+ deterministic import fix", {"model + import fix"}),
          ("+ one retry with test feedback", {"retry", "retry + import fix"}),
          ("+ escalation to the reference", {"reference"})]
cumulative, solved = [], 0
for label, outcomes in LADDER:
    solved += sum(stage[task] in outcomes for task in TASKS)
    cumulative.append(solved)
    print(f"{label:34s} {solved}/{len(TASKS)} tasks pass")

by_model = sum(stage[task] != "reference" for task in TASKS)
print(f"\nThe model wrote code that passes for {by_model} of {len(TASKS)} tasks "
      f"({cumulative[0]} as written, {by_model - cumulative[0]} with the protocol's help); "
      f"{len(TASKS) - by_model} went to the reference solution.")
print("researcher choices:", {task: f"{research[task].value} ({research[task].source})"
                              for task in TASKS})

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
bars = axes[0].bar(range(len(LADDER)), [100 * c / len(TASKS) for c in cumulative],
                   color=["tab:blue", "tab:cyan", "tab:green", "tab:gray"])
axes[0].bar_label(bars, labels=[f"{c}/{len(TASKS)}" for c in cumulative])
axes[0].set_xticks(range(len(LADDER)), [label for label, _ in LADDER], rotation=15, ha="right")
axes[0].set(ylabel="tasks passing (%)", ylim=(0, 105),
            title=f"Pass rate after each protocol step ({len(TASKS)} HumanEval tasks)")

lanes = {name: i for i, name in enumerate(team)}
colors = dict(zip(TASKS, ["tab:blue", "tab:orange", "tab:green", "tab:red"]))
for message in bus.log:
    axes[1].annotate("", xy=(message.seq, lanes[message.recipient]),
                     xytext=(message.seq, lanes[message.sender]),
                     arrowprops={"arrowstyle": "->", "color": colors[message.task], "lw": 1.5})
for task, color in colors.items():
    axes[1].plot([], [], color=color, label=f"{task} {problems[task]['entry_point']}")
axes[1].set_yticks(range(len(lanes)), list(lanes))
axes[1].set(xlabel="message number", ylabel="agent", xlim=(-1, len(bus.log)),
            ylim=(-0.5, len(lanes) - 0.5), title="Messages on the bus (arrow: sender to recipient)")
axes[1].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
plt.tight_layout()
plt.show()

# %% [markdown]
# The message plot shows the coordination pattern: every task flows orchestrator, researcher,
# coder, tester; a failing task bounces between tester and coder once, then returns to the
# orchestrator. Because the bus is first-in, first-out, the four tasks interleave, which is how
# a real team of agents would keep a slow model busy.
#
# What the numbers say about a 135M-parameter model: it writes syntactically valid code most of
# the time and sometimes the right code, and it uses the research note when the note names the
# right function. Feeding back a failing test rarely helps it: a model this small tends to
# repeat or garble its earlier answer. The deterministic pieces (validation, the import fixer,
# the fallback choice, escalation) are what turn its output into a reliable process. A larger
# model moves tasks up the ladder; the ladder itself stays.
#
# ### Cost and accountability
#
# The client knows what each agent spent, and the registry's audit log records every tool call
# with its arguments and result.

# %%
for agent, row in client.usage().items():
    print(f"{agent:10s} {row['calls']:2d} model calls, {row['tokens']:4d} reply tokens")
print(client.summary())
print()
print(tools.audit.render())

# %% [markdown]
# ## How the frameworks do it
#
# None of these frameworks is installed here; the comparison is from their documentation.
#
# **CrewAI** describes a team as a `Crew` of `Agent`s, each with a `role`, a `goal`, a
# `backstory` and `tools`, working on `Task`s that have a description and an expected output.
# A `Process` coordinates them: `sequential` runs the tasks in order, `hierarchical` adds a
# manager model that delegates. Task guardrails validate an output and send the error back for
# another attempt, and `max_iter` bounds an agent's loop, the same ideas as the tester and the
# message budget above.
#
# **LangGraph** makes the control flow an explicit graph: nodes are functions that read a
# shared, typed state and return updates (merged by a reducer per key), edges and conditional
# edges decide which node runs next, and cycles are allowed. A checkpointer saves the state
# after every step, so a run can be resumed, inspected or interrupted for a human's approval.
# Our bus-and-rules loop is an implicit graph; writing it as nodes and edges makes the allowed
# transitions checkable before running.
#
# **AutoGPT** began as a single autonomous loop: the model chooses the next command (search,
# write a file, run code), the result is fed back into its prompt, and this repeats towards a
# goal, with the user authorising actions. It popularised tools and long-running autonomy, and
# showed their failure mode: loops that do not converge. The project has since become a
# platform where agents are built from blocks in a graph.
#
# | | this notebook | CrewAI | LangGraph | AutoGPT (classic loop) |
# |---|---|---|---|---|
# | unit of work | an agent class with `handle()` | `Agent` + `Task` | a node (function of the state) | one agent, one command per cycle |
# | coordination | FIFO bus + rules | `Process.sequential` / `hierarchical` (manager LLM) | explicit edges, conditional routing | the model picks the next command |
# | shared memory | versioned blackboard | crew memory (short-term, long-term, entity) | the graph state + checkpointer | prompt history and workspace files |
# | tools | `ToolRegistry`, audit log | tools on agents and tasks | tool nodes, tools bound to the model | built-in commands, plugins |
# | validation and retries | parser, tests, one retry with feedback | task guardrails with retries | retry policies, human interrupts | user approval of actions |
# | stopping | message and call budgets | `max_iter`, task completion | reaching `END`, recursion limit | goal reached or user stops it |
#
# The common lesson of all four: the model is one component among deterministic ones, and the
# structure around it (who may talk to whom, what is validated, what is budgeted) decides
# whether the system is reliable.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: A static check before the sandbox
#
# The sandbox stops dangerous code when it runs; a static check can refuse it before it runs,
# with a clearer message. Write `forbidden_imports(code, forbidden)` that parses `code` with
# `ast` and returns the sorted list of names from `forbidden` that the code imports, counting
# `import os`, `import os.path as p`, `from subprocess import run` and `__import__("socket")`
# by their top-level module. Text that merely mentions a module (a string, a comment) does not
# count. The check runs it on hand-written cases and on every function the team delivered.

# %% tags=["solution"]
DANGEROUS = ("ctypes", "os", "shutil", "socket", "subprocess")


def forbidden_imports(code: str, forbidden: tuple[str, ...] = DANGEROUS) -> list[str]:
    """Top-level modules from `forbidden` that `code` imports, sorted."""
    # BEGIN SOLUTION
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "__import__" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value.split(".")[0])
    return sorted(found & set(forbidden))
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_equal, check_function, passed

check_function(
    forbidden_imports,
    [(("import os\nprint(os.getcwd())",), ["os"]),
     (("import os.path as p, math",), ["os"]),
     (("from subprocess import run\nimport socket",), ["socket", "subprocess"]),
     (("mod = __import__('ctypes')",), ["ctypes"]),
     (("import math\n# import os\nx = 'import shutil'",), []),
     (("from . import helpers",), [])],
    "forbidden_imports",
)
for task in TASKS:
    check_equal(forbidden_imports(memory.read(f"code/{task}").value), [],
                f"forbidden_imports(delivered code of {task})")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Two agents write the same key
#
# The blackboard lets anyone overwrite anything. When two agents read version 1 of a plan and
# both write their edit, the second silently erases the first (a *lost update*). Write
# `write_if_unchanged(memory, key, expected_version, value, author)`: it writes and returns
# `True` only if the key's current version is still `expected_version` (0 for a key that does
# not exist yet); otherwise it writes nothing and returns `False`, so the caller knows to read
# again. This is optimistic concurrency control, the compare-and-set of databases.

# %% tags=["solution"]
def write_if_unchanged(memory: SharedMemory, key: str, expected_version: int, value: str,
                       author: str) -> bool:
    """Write only if the key is still at expected_version; report whether it was written."""
    # BEGIN SOLUTION
    current = memory.read(key)
    if (current.version if current else 0) != expected_version:
        return False
    memory.write(key, value, author)
    return True
    # END SOLUTION


# %% tags=["check"]
board = SharedMemory()
check_equal(write_if_unchanged(board, "plan", 0, "draft", "orchestrator"), True,
            "writing a new key with expected_version=0")
seen_by_a = seen_by_b = board.read("plan").version  # both agents read version 1
check_equal(write_if_unchanged(board, "plan", seen_by_a, "edit by A", "researcher"), True,
            "the first writer")
check_equal(write_if_unchanged(board, "plan", seen_by_b, "edit by B", "coder"), False,
            "the second writer, who read a stale version")
check_equal(board.read("plan").value, "edit by A", "the value after the refused write")
check_equal(len(board.history("plan")), 2, "the number of versions written")
check_equal(write_if_unchanged(board, "plan", 0, "reset", "coder"), False,
            "expected_version=0 on an existing key")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: Give the research agent a new tool
#
# Write a tool `lookup_signature(name)` that returns the call signature of a documented
# function as text, e.g. `"(*integers)"` for `"math.gcd"`, using `resolve(name)` and
# `inspect.signature`. Names that are not in `docs` must raise `ValueError` (an agent must not
# be able to reach arbitrary objects through the tool). Register it in `tools` (the cell does
# that for you) so that calls are checked and audited like the others.

# %% tags=["solution"]
def lookup_signature(name: str) -> str:
    """Return the call signature of a documented standard-library function."""
    # BEGIN SOLUTION
    if name not in docs:
        raise ValueError(f"{name!r} is not in the documentation set")
    return str(inspect.signature(resolve(name)))
    # END SOLUTION


if "lookup_signature" not in tools:
    tools.register(lookup_signature)

# %% tags=["check"]
calls_before = len(tools.audit)
gcd_call = tools.call("lookup_signature", {"name": "math.gcd"}, actor="researcher")
check_equal((gcd_call.status, gcd_call.output), ("ok", "(*integers)"), "lookup_signature math.gcd")
mean_call = tools.call("lookup_signature", {"name": "statistics.mean"}, actor="researcher")
check_equal(mean_call.output, "(data)", "lookup_signature statistics.mean")
escape = tools.call("lookup_signature", {"name": "os.system"}, actor="researcher")
check_equal(escape.status, "error", "the status of a call for an undocumented name")
check("ValueError" in (escape.error or ""), "lookup_signature",
      "a ValueError for a name outside the documentation set")
check_equal(len(tools.audit) - calls_before, 3, "new audit entries for three calls")
check(tools.audit.verify() is None, "audit log", "the hash chain to verify after the new calls")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - A multi-agent system is roles, messages, a coordination rule, shared memory and tools. Each
#   fits in a few lines: a FIFO bus, a versioned blackboard, agent classes, a run loop with a
#   budget.
# - The model proposes; code disposes. Constrain what the model may say (choose a number, write
#   one code block), validate it, feed errors back, and fall back to a deterministic rule or a
#   human when it fails. The printed ladder shows what each step contributed in this run.
# - Generated code runs in a separate process with a timeout, a temporary directory, a stripped
#   environment, `setrlimit` limits and an audit hook; a production sandbox adds namespaces,
#   seccomp and containers or micro-VMs.
# - Budgets (model calls, messages) and an audit log make the run bounded and accountable.
# - CrewAI (roles, tasks, processes), LangGraph (explicit state graphs with checkpoints) and
#   AutoGPT (an autonomous command loop) package the same parts in different shapes.
#
# Next: [the LLM as an operating system](04-llm-os), where one agent gets a scheduler, memory
# and a sandboxed filesystem. The lab
# [multi-agent scratchpad protocol](../../labs/multi-agent-scratchpad-protocol/multi-agent-scratchpad-protocol)
# makes agents communicate only through a validated, append-only scratchpad.
#
# ## References
#
# - J. S. Park, J. C. O'Brien, C. J. Cai, M. R. Morris, P. Liang, M. S. Bernstein, "Generative
#   agents: interactive simulacra of human behavior", UIST 2023. https://arxiv.org/abs/2304.03442
# - Q. Wu et al., "AutoGen: enabling next-gen LLM applications via multi-agent conversation",
#   2023. https://arxiv.org/abs/2308.08155
# - S. Hong et al., "MetaGPT: meta programming for a multi-agent collaborative framework", 2023.
#   https://arxiv.org/abs/2308.00352
# - C. Qian et al., "ChatDev: communicative agents for software development", 2023.
#   https://arxiv.org/abs/2307.07924
# - S. Yao et al., "ReAct: synergizing reasoning and acting in language models", ICLR 2023.
#   https://arxiv.org/abs/2210.03629
# - M. Chen et al., "Evaluating large language models trained on code" (HumanEval), 2021.
#   https://arxiv.org/abs/2107.03374
# - CrewAI documentation: agents, tasks and processes. https://docs.crewai.com/concepts/agents,
#   https://docs.crewai.com/concepts/tasks, https://docs.crewai.com/concepts/processes
# - LangGraph documentation. https://langchain-ai.github.io/langgraph/ and
#   https://github.com/langchain-ai/langgraph
# - Significant Gravitas, AutoGPT (GitHub repository and documentation).
#   https://github.com/Significant-Gravitas/AutoGPT, https://docs.agpt.co/
# - S. Robertson, H. Zaragoza, "The probabilistic relevance framework: BM25 and beyond",
#   Foundations and Trends in Information Retrieval 3(4), 2009.
#   https://doi.org/10.1561/1500000019
# - PEP 578, Python runtime audit hooks. https://peps.python.org/pep-0578/
# - Python documentation, `resource` (setrlimit). https://docs.python.org/3/library/resource.html
