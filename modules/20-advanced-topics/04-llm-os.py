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
# # The LLM as an operating system: a desktop agent with tools, a scheduler and memory
#
# An operating system turns one processor and a little memory into many programs that run
# safely side by side: it schedules processes, pages memory to disk, mediates every access to
# files and devices through system calls, and keeps logs. Karpathy's "LLM OS" sketch (2023)
# puts a language model where the CPU was, the context window where RAM was, and tools,
# files and other models where the peripherals were; Ge et al. (2023) develop the analogy into
# "AIOS", and MemGPT (Packer et al., 2023) makes it concrete for memory, paging facts between
# a small context and a large store. This notebook builds a small desktop agent in that shape:
# it operates local tools (files in a sandbox directory, a calculator, search over local
# documents, a Python runner) through checked system calls, runs several jobs with a
# scheduler, keeps short-term and long-term memory, and records every call in an audit log.
#
# **Learning objectives**
# - Map the parts of an operating system (CPU, RAM, disk, devices, processes, kernel) to the
#   parts of an LLM agent, and say where the analogy holds and where it breaks.
# - Confine file access to a sandbox directory (refusing `../`, absolute paths and symlinks
#   that escape) and evaluate arithmetic safely with an AST walker instead of `eval`.
# - Plan tool calls with a small model, validate them, and fall back to rules; say which step
#   is model-driven and which is rule-driven.
# - Schedule agent jobs with priorities and time slices, and measure response times against
#   first-come-first-served.
# - Page memory between a token-limited context and an embedding store, and audit every tool
#   call with deterministic, hash-chained ids.
#
# **Prerequisites:** [multi-agent systems](03-multi-agent-systems) (tools, the model client,
# the sandbox), sentence embeddings ([embeddings](../03-data-and-tokenization/05-embeddings)).
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
import collections
import dataclasses
import math
import operator
import os
import random
import re
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import shared
from shared import assets
from shared.agents import AuditLog, BM25Index, ModelClient, ToolRegistry, run_sandboxed

shared.seed_everything(0)
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
# Greedy decoding of one sequence is latency-bound: one thread is as fast as two on a 2-core
# machine and gives the same tokens whatever the core count.
torch.set_num_threads(1)
print(shared.environment_summary("transformers", "sentence-transformers", "matplotlib"))

# %% [markdown]
# ## The analogy
#
# | operating system | LLM OS (Karpathy 2023; Ge et al. 2023) | in this notebook |
# |---|---|---|
# | CPU: executes the next instruction | the model: decides the next action | SmolLM2-135M-Instruct plans a tool call |
# | RAM: small, fast, volatile | the context window | short-term memory with a token budget |
# | disk: large, slow, persistent | files, vector stores | a sandbox directory; long-term memory with MiniLM embeddings |
# | devices and drivers | tools | calculator, file tools, search, a Python runner |
# | system calls, checked by the kernel | tool calls, checked by code | `ToolRegistry.call` with path and argument checks |
# | processes and a scheduler | concurrent jobs (agents as apps) | generator jobs on a priority round-robin scheduler |
# | virtual memory: paging | moving text in and out of the context (MemGPT) | eviction to and recall from the embedding store |
# | logs and permissions | audit trails and policies | a hash-chained audit log; side effects need explicit intent |
#
# The analogy breaks in one important place. A CPU executes exactly the instruction it is given;
# a language model *proposes* an action that may be wrong, malformed or malicious (a prompt
# injection in a file it read). So everything the kernel does here is deterministic code that
# checks the model's proposals, and the model never touches a file or a tool directly.

# %% [markdown]
# ## The filesystem: a sandbox directory
#
# The agent's "home" is a temporary directory holding a few small files that we write here for
# the demonstration (notes about an imaginary project, reports, a script); they are not real
# data. All file tools go through `SandboxFS.resolve`, which refuses absolute paths and any path
# that, after resolving `..` and following symlinks, lands outside the home directory.

# %%
class SandboxFS:
    """File tools confined to one directory: every path is resolved and checked first."""

    def __init__(self, root: Path, max_bytes: int = 10_000) -> None:
        self.root = root.resolve()
        self.max_bytes = max_bytes

    def resolve(self, path: str) -> Path:
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"path must be a non-empty string, got {path!r}")
        if os.path.isabs(path):
            raise PermissionError(f"absolute paths are refused: {path!r}")
        target = (self.root / path).resolve()  # resolves '..' and follows symlinks
        if target != self.root and self.root not in target.parents:
            raise PermissionError(f"{path!r} resolves outside the sandbox")
        return target

    def read_file(self, path: str) -> str:
        """Read a text file in the sandbox."""
        target = self.resolve(path)
        if not target.is_file():
            raise FileNotFoundError(f"no file {path!r} in the sandbox")
        if target.stat().st_size > self.max_bytes:
            raise ValueError(f"{path!r} is larger than {self.max_bytes} bytes")
        return target.read_text(encoding="utf-8")

    def write_file(self, path: str, text: str) -> str:
        """Write a text file in the sandbox (creating folders as needed)."""
        if len(text.encode("utf-8")) > self.max_bytes:
            raise ValueError(f"refusing to write more than {self.max_bytes} bytes")
        target = self.resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return f"wrote {len(text)} characters to {path}"

    def list_files(self, folder: str) -> list[str]:
        """List the files in a folder of the sandbox."""
        target = self.resolve(folder)
        if not target.is_dir():
            raise NotADirectoryError(f"{folder!r} is not a folder")
        return sorted(str(p.relative_to(self.root)) for p in target.rglob("*") if p.is_file())


workspace = Path(tempfile.mkdtemp(prefix="llm-os-"))  # removed at the end of the notebook
home = workspace / "home"
HOME_FILES = {  # written for this notebook: an imaginary project, not real data
    "notes/project.txt": "Project Falcon: the final report is due on 14 March. Maria owns the "
                         "data pipeline; Tom reviews the slides.",
    "notes/budget.txt": "Falcon budget: 12,400 euros for compute and 3,100 euros for annotation.",
    "notes/meeting.txt": "The weekly Falcon meeting moved to Thursday 10:00 in room B2.",
    "todo.txt": "1. send the slides to Tom\n2. renew the cluster reservation\n3. book room B2",
    "reports/q1.txt": "Compute used in Q1: 1320 GPU hours.",
    "reports/q2.txt": "Compute used in Q2: 1675 GPU hours.",
    "scripts/hello.py": "print('hello from the sandbox')\nprint(sum(range(10)))\n",
}
for name, text in HOME_FILES.items():
    (home / name).parent.mkdir(parents=True, exist_ok=True)
    (home / name).write_text(text, encoding="utf-8")
(workspace / "outside.txt").write_text("a file next to the sandbox, not in it")
(home / "escape").symlink_to(workspace, target_is_directory=True)  # points outside
(home / "latest_report.txt").symlink_to(home / "reports/q2.txt")  # points inside: allowed

fs = SandboxFS(home)
for path in ["notes/project.txt", "latest_report.txt", "../outside.txt", "/etc/passwd",
             "notes/../../outside.txt", "escape/outside.txt"]:
    try:
        print(f"{path:26s} allowed: {fs.read_file(path)[:45]!r}")
    except PermissionError as error:
        print(f"{path:26s} refused: {error}")

# %% [markdown]
# All three routes out are refused: `..`, an absolute path and a symlink that points outside,
# while a symlink inside the sandbox works. One caveat: checking a path and then opening it are
# two steps, and a process that swaps a symlink between them could escape (a
# time-of-check-to-time-of-use race). Production code opens relative to a directory handle with
# the kernel enforcing the boundary (Linux `openat2` with `RESOLVE_BENEATH`) or runs the tool in
# a container that only sees the sandbox.

# %% [markdown]
# ## The calculator: an AST walker instead of `eval`
#
# `eval("2 + 3")` works, and so does `eval("__import__('os').system('rm -rf ~')")`. A safe
# calculator parses the expression with `ast.parse` and evaluates only the node types it knows:
# numbers, `+ - * / // % **`, unary signs, a few named constants and functions. Anything else
# (names, attributes, subscripts, lambdas, calls to other functions) is refused, and so are
# results that would take unbounded time or memory (`9 ** 9 ** 9`).

# %%
BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
          ast.Pow: operator.pow}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
FUNCTIONS = {"sqrt": math.sqrt, "log": math.log, "exp": math.exp, "abs": abs, "round": round}
CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT, MAX_BITS = 100, 4096


def calculate(expression: str) -> float | int:
    """Evaluate an arithmetic expression (numbers, + - * / // % **, sqrt, log, exp, pi, e)."""
    if not isinstance(expression, str) or len(expression) > 200:
        raise ValueError("expected an arithmetic expression of at most 200 characters")

    def evaluate(node: ast.AST) -> float | int:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.Name) and node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
            return UNARY[type(node.op)](evaluate(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            left, right = evaluate(node.left), evaluate(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
                raise ValueError(f"exponent {right} is larger than {MAX_EXPONENT}")
            result = BINARY[type(node.op)](left, right)
            if isinstance(result, int) and result.bit_length() > MAX_BITS:
                raise ValueError(f"result has more than {MAX_BITS} bits")
            return result
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in FUNCTIONS and not node.keywords):
            return FUNCTIONS[node.func.id](*(evaluate(arg) for arg in node.args))
        raise ValueError(f"not allowed in a calculator expression: {ast.unparse(node)!r}")

    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"not an arithmetic expression: {error.msg}") from None
    return evaluate(tree.body)


# The reference: Python's own eval on random expressions that we generate ourselves (so eval is
# safe here). The walker must agree exactly.
rng = random.Random(0)


def random_expression(depth: int) -> str:
    if depth == 0:
        return str(rng.choice([rng.randint(-20, 20), round(rng.uniform(-9, 9), 3)]))
    op = rng.choice(["+", "-", "*", "/", "%", "//", "**"])
    left = random_expression(depth - 1)
    right = str(rng.randint(0, 3)) if op == "**" else random_expression(depth - 1)
    return f"({left} {op} {right})"


compared = mismatches = 0
for _ in range(500):
    expression = random_expression(rng.randint(1, 3))
    try:
        expected = eval(expression)  # noqa: S307 - our own generated expressions only
    except ZeroDivisionError:
        continue
    if isinstance(expected, complex):  # a negative base to a fractional power
        continue
    compared += 1
    mismatches += calculate(expression) != expected
print(f"{compared} random expressions: {mismatches} differ from Python's eval")
for expression in ["17 * 23 + 4", "sqrt(2) * 10", "2 ** 0.5", "__import__('os').system('ls')",
                   "().__class__.__bases__", "open('/etc/passwd').read()", "9 ** 9 ** 9",
                   "x + 1"]:
    try:
        print(f"{expression:32s} = {calculate(expression)}")
    except ValueError as error:
        print(f"{expression:32s} refused: {error}")

# %% [markdown]
# ## System calls: tools, a registry and the audit log
#
# The kernel exposes six tools. `search` ranks the sandbox's text files with BM25, rebuilt on
# every call so that new files are found. `run_python` reads a script from the sandbox and
# runs it with `shared.agents.run_sandboxed` (a separate process with a timeout, resource
# limits and no network; see the [previous notebook](03-multi-agent-systems)). The registry
# checks argument names, turns every failure into an error result instead of a crash, marks a
# `PermissionError` as `refused`, and appends every call to a hash-chained `AuditLog`: the
# sequence number, the actor, the tool, the arguments as canonical JSON, the status and the
# result, with an id that is the sha256 of all of these and the previous id. There are no
# timestamps, so the same run gives the same ids.


# %%
def search(query: str) -> list[str]:
    """Search the text files of the sandbox; return the best-matching paths."""
    texts = {path: fs.read_file(path) for path in fs.list_files(".") if path.endswith(".txt")}
    return [hit.doc_id for hit in BM25Index(texts).search(query, k=2)]


def run_python(path: str) -> str:
    """Run a Python script from the sandbox in an isolated process; return its output."""
    result = run_sandboxed(fs.read_file(path), timeout_s=5.0, cpu_seconds=2, memory_mb=256)
    if not result.ok:
        raise RuntimeError(f"the script failed: {result.reason}")
    return result.stdout.strip()


def make_tools(audit: AuditLog) -> ToolRegistry:
    registry = ToolRegistry(audit)
    registry.register(calculate, name="calculator")
    registry.register(fs.read_file, name="read_file")
    registry.register(fs.write_file, name="write_file", side_effects=True)
    registry.register(fs.list_files, name="list_files")
    registry.register(search)
    registry.register(run_python, side_effects=True)
    return registry


tools = make_tools(AuditLog())
print(tools.describe())
print(tools.call("run_python", {"path": "scripts/hello.py"}, actor="demo").output)

# %% [markdown]
# ## The planner: model-driven proposals, rule-driven decisions
#
# A user request in words must become one tool call. This is the step where a language model
# is most useful: understanding free text. SmolLM2 gets the tool list and six worked examples
# (one per tool) and replies with a call such as `read_file("todo.txt")`. Everything after
# that is rules:
#
# 1. **Parse and validate** (rule): the reply must be `tool(arguments)` with literal arguments,
#    a known tool and the right number of arguments. A rejected proposal is not retried here;
#    the rule parser below is the fallback.
# 2. **Rule parser** (rule): a handful of regular expressions that recognise the common
#    phrasings ("what is 3 * 4", "show me X.txt", "save 'text' to file"). It has no
#    understanding, but it is predictable, and it says nothing when it does not match.
# 3. **Side-effect policy** (rule): a model proposal that writes or executes is only accepted
#    when the rule parser read the same call from the request. A model must not be able to
#    invent a write the user did not ask for.
# 4. **Execute, and recover** (rule): if the model's call fails (a missing file, a refusal),
#    the rule parser's call, if any and different, is tried next: the observation of a failed
#    action changes the plan, as in ReAct.
# 5. **Sandbox** (rule): whatever is executed still goes through `SandboxFS` and the registry.

# %%
client = ModelClient(max_calls=12)
PLAN_TOKENS = 24
PLANNER_SYSTEM = ("You are the planner of a desktop agent. Tools: calculator(expression), "
                  "read_file(path), write_file(path, text), list_files(folder), search(query), "
                  "run_python(path). Reply with exactly one tool call and nothing else.")
PLANNER_EXAMPLES = [
    ("How much is 3 + 4 * 2?", 'calculator("3 + 4 * 2")'),
    ("Open the file notes/ideas.txt", 'read_file("notes/ideas.txt")'),
    ("Write 'call Anna' into reminders.txt", 'write_file("reminders.txt", "call Anna")'),
    ("What is in the photos folder?", 'list_files("photos")'),
    ("Look up what my notes say about the budget", 'search("budget")'),
    ("Execute the program tools/clean.py", 'run_python("tools/clean.py")'),
]


def parse_tool_call(reply: str) -> tuple[str, dict]:
    """`tool("literal", ...)` on the reply's first line -> (tool, keyword arguments)."""
    line = reply.strip().splitlines()[0].strip() if reply.strip() else ""
    match = re.fullmatch(r"(\w+)\((.*)\)", line)
    if match is None:
        raise ValueError(f"not a tool call of the form name(arguments): {line!r}")
    name, inner = match.groups()
    if name not in tools:
        raise ValueError(f"unknown tool {name!r}")
    try:
        values = ast.literal_eval(f"({inner},)") if inner.strip() else ()
    except (SyntaxError, ValueError):
        raise ValueError(f"arguments must be literals: {inner!r}") from None
    parameters = tools[name].parameters
    if len(values) != len(parameters):
        raise ValueError(f"{tools[name].signature()} takes {len(parameters)} arguments, "
                         f"got {len(values)}")
    return name, dict(zip(parameters, values))


RULES = [  # (pattern, tool, how to build the arguments from the match)
    (r"(?:save|write)\s+(?:the text\s+)?'([^']*)'\s+(?:to|into)\s+([\w./-]+)", "write_file",
     lambda m: {"path": m[2], "text": m[1]}),
    (r"\brun\b.*?([\w./-]+\.py)\b", "run_python", lambda m: {"path": m[1]}),
    (r"\b(?:show|open|read|print)(?:\s+me)?(?:\s+the)?(?:\s+file)?\s+([\w./-]+)", "read_file",
     lambda m: {"path": m[1]}),
    (r"\blist\b.*?\bin\s+(?:the\s+)?([\w./-]+)\s+folder", "list_files",
     lambda m: {"folder": m[1]}),
    (r"\b(?:find|search|look up)\b.*?\babout\s+(?:the\s+)?([\w\s-]+)", "search",
     lambda m: {"query": m[1].strip()}),
    (r"(\d[\d.]*(?:\s*(?:\*\*|[-+*/%])\s*\d[\d.]*)+)", "calculator",
     lambda m: {"expression": m[1]}),
]


def rule_plan(request: str) -> tuple[str, dict] | None:
    """The first rule that matches the request, as (tool, arguments); None if none does."""
    for pattern, name, build in RULES:
        match = re.search(pattern, request, flags=re.IGNORECASE)
        if match:
            return name, build(match)
    return None


def model_plan(request: str) -> tuple[str, object]:
    """SmolLM2's proposal: (reply, parsed call or the ValueError that rejected it)."""
    messages = [{"role": "system", "content": PLANNER_SYSTEM}]
    for question, answer in PLANNER_EXAMPLES:
        messages += [{"role": "user", "content": question},
                     {"role": "assistant", "content": answer}]
    reply = client.complete([*messages, {"role": "user", "content": request}],
                            max_new_tokens=PLAN_TOKENS, agent="planner")
    try:
        return reply, parse_tool_call(reply)
    except ValueError as error:
        return reply, error


def handle_request(request: str) -> dict:
    """Plan with the model, check with rules, execute through the registry; report each step."""
    reply, proposal = model_plan(request)
    rules = rule_plan(request)
    plans = []
    if isinstance(proposal, ValueError):
        note = f"model rejected ({proposal})"
    elif tools[proposal[0]].side_effects and proposal != rules:
        note = "model proposal has side effects the request does not state: not executed"
    else:
        note = "model proposal accepted"
        plans.append(("model", proposal))
    if rules is not None and all(rules != plan for _, plan in plans):
        plans.append(("rules", rules))
    steps = []
    for source, (name, args) in plans:
        result = tools.call(name, args, actor=source)
        steps.append((source, name, args, result))
        if result.ok:
            break
    return {"request": request, "reply": reply, "note": note, "steps": steps}


REQUESTS = [
    "What is 17 * 23 + 4?",
    "Find my notes about the project deadline",
    "Show me the file todo.txt",
    "Read the file ../../etc/passwd",
    "Save the text 'buy milk' to shopping.txt",
    "Run the script scripts/hello.py",
    "What is the square root of 2 times 10?",
]
handled = [handle_request(request) for request in REQUESTS]
for h in handled:
    print(f"REQUEST  {h['request']}\n  model said  {h['reply']!r}\n  planner     {h['note']}")
    for source, name, args, result in h["steps"]:
        shown = result.output if result.ok else result.error
        print(f"  {source:5s} ran  {name}({args}) -> {result.status}: {str(shown)[:70]!r}")
    if not any(result.ok for *_, result in h["steps"]):
        print("  -> no plan succeeded: the agent asks the user to rephrase")
print(client.summary())

# %% [markdown]
# Reading the table: the model is right often enough to be worth asking and wrong often enough
# that nothing it says may act unchecked. Its replies fall into three kinds, all visible above:
# not a tool call at all (rejected by the parser), a well-formed call to the wrong tool or the
# wrong file (caught when the tool fails, after which the rule plan runs), and a correct call.
# The request for `../../etc/passwd` shows the division of labour: neither the model nor the
# rules decide whether a path is allowed; the sandbox refuses it, whoever asked. The last
# request is phrased in words ("square root of 2 times 10"); the rules do not understand it,
# and when the model's reply does not validate either, the honest answer is to ask the user.
#
# | step | driven by |
# |---|---|
# | turning the request into a proposed tool call | the model (SmolLM2) |
# | parsing and validating the proposal | rules (`parse_tool_call`) |
# | fallback plan | rules (`rule_plan`) |
# | allowing side effects | rules (policy: the rule plan must agree) |
# | path confinement, argument checks, refusals | rules (`SandboxFS`, `ToolRegistry`) |
# | recovering after a failed call | rules (try the next plan) |
# | scheduling jobs, paging memory, auditing | rules (next sections) |
# | answering from recalled memory | the model (last section) |

# %% [markdown]
# ## Processes and the scheduler
#
# A job in an LLM OS is a program that issues system calls: read this, compute that, write the
# result. Here each job is a Python generator that *yields* tool calls and receives their
# results, like a process that traps into the kernel and is resumed with the answer. In a full
# LLM OS each step would be a model call choosing the next action (the ReAct loop); our jobs are
# scripted so that the scheduler's behaviour is visible and deterministic.
#
# Four jobs arrive: a long quarterly report and a backup of the notes at time 0, an interactive
# user question at tick 3 and a script run at tick 4. Each tool call takes one tick. Two
# policies:
#
# - **first come, first served (FCFS)**: a job runs to completion before the next starts;
# - **priority round-robin**: the ready job with the best priority (0 is best) runs for at most
#   a time slice (`QUANTUM` calls) and is then preempted; jobs of equal priority take turns; a
#   higher-priority arrival preempts at the next tick.
#
# The measures are those of operating systems: *response time* (from arrival to the first
# step) and *turnaround* (from arrival to completion).

# %%
def quarterly_report():
    files = yield "list_files", {"folder": "reports"}
    hours = []
    for path in [f for f in files if re.fullmatch(r"reports/q\d\.txt", f)]:
        text = yield "read_file", {"path": path}
        hours.append(re.search(r"(\d+) GPU hours", text)[1])
    total = yield "calculator", {"expression": " + ".join(hours)}
    yield "write_file", {"path": "reports/summary.txt", "text": f"Total compute: {total} GPU hours"}


def backup_notes():
    files = yield "list_files", {"folder": "notes"}
    texts = []
    for path in files:
        texts.append((yield "read_file", {"path": path}))
    yield "write_file", {"path": "backup/notes.txt", "text": "\n".join(texts)}


def user_question():
    paths = yield "search", {"query": "when is the project report due"}
    yield "read_file", {"path": paths[0]}


def run_script():
    yield "run_python", {"path": "scripts/hello.py"}


@dataclasses.dataclass
class Job:
    pid: int
    name: str
    priority: int
    arrival: int
    program: object  # a generator of (tool, args)
    started: int | None = None
    finished: int | None = None
    pending: tuple | None = None  # the next system call, once issued


def make_jobs() -> list[Job]:
    return [Job(1, "quarterly report", 2, 0, quarterly_report()),
            Job(2, "backup notes", 3, 0, backup_notes()),
            Job(3, "user question", 0, 3, user_question()),
            Job(4, "run script", 1, 4, run_script())]


def run_scheduler(jobs: list[Job], policy: str, quantum: int, registry: ToolRegistry,
                  on_result=None) -> list[tuple[int, int]]:
    """Run the jobs one system call per tick; return the timeline [(tick, pid)]."""
    for job in jobs:
        job.pending = next(job.program)
    ready: collections.deque[Job] = collections.deque()
    waiting = sorted(jobs, key=lambda j: j.arrival)
    current, used, tick, timeline = None, 0, 0, []
    while waiting or ready or current:
        while waiting and waiting[0].arrival <= tick:
            ready.append(waiting.pop(0))
        if current is not None and policy == "priority-rr":
            better = any(job.priority < current.priority for job in ready)
            if used >= quantum or better:
                ready.append(current)  # preempted: back of the queue
                current = None
        if current is None:
            if not ready:
                tick += 1  # idle until the next arrival
                continue
            if policy == "priority-rr":
                best = min(job.priority for job in ready)
                current = next(job for job in ready if job.priority == best)
            else:  # FCFS: the earliest arrival; ties by pid
                current = min(ready, key=lambda job: (job.arrival, job.pid))
            ready.remove(current)
            used = 0
        if current.started is None:
            current.started = tick
        name, args = current.pending
        result = registry.call(name, args, actor=f"pid{current.pid}")
        if on_result is not None:
            on_result(current, name, args, result)
        timeline.append((tick, current.pid))
        tick, used = tick + 1, used + 1
        try:
            current.pending = current.program.send(result.output if result.ok else result.error)
        except StopIteration:
            current.finished, current = tick, None
    return timeline


QUANTUM = 2
schedules = {}
for policy in ("fcfs", "priority-rr"):
    jobs = make_jobs()
    timeline = run_scheduler(jobs, policy, QUANTUM, make_tools(AuditLog()))
    schedules[policy] = (jobs, timeline)
    print(f"{policy}:")
    for job in jobs:
        print(f"  pid {job.pid} {job.name:17s} priority {job.priority}  arrival {job.arrival:2d}"
              f"  response {job.started - job.arrival:2d}  turnaround "
              f"{job.finished - job.arrival:2d}")
print("summary written by the report job:", fs.read_file("reports/summary.txt"))

# %%
fig, axes = plt.subplots(2, 1, figsize=(11, 4.5), sharex=True)
colors = {1: "tab:blue", 2: "tab:gray", 3: "tab:red", 4: "tab:green"}
for ax, (policy, (jobs, timeline)) in zip(axes, schedules.items()):
    for tick, pid in timeline:
        ax.barh(pid, 1, left=tick, color=colors[pid], edgecolor="white")
    for job in jobs:
        ax.plot(job.arrival, job.pid, marker="v", color="black", markersize=7)
    ax.set_yticks([job.pid for job in jobs], [f"{job.name} (p{job.priority})" for job in jobs])
    ax.set(ylabel="job", title=f"{policy}: one bar per system call; triangle = arrival")
    ax.invert_yaxis()
axes[-1].set_xlabel("tick (one tool call each)")
plt.tight_layout()
plt.show()

# %% [markdown]
# The interactive question arrives at tick 3. First come, first served makes it wait behind both
# long jobs; priority round-robin starts it at once and finishes it two ticks later, at the price
# of a slightly later finish for the background jobs. This is the trade-off every interactive
# system makes, and an LLM OS faces it harder than a CPU does: a "tick" is a model call of
# hundreds of milliseconds, so the order of jobs is what the user feels. AIOS (Ge et al., 2023)
# proposes exactly such a scheduler in front of the model.

# %% [markdown]
# ## Memory: a small context and a large store
#
# The context window is the model's RAM: everything the model can use at once, and small.
# MemGPT (Packer et al., 2023) manages it like virtual memory: when the context is full, the
# oldest items are evicted to an external store, and later a query retrieves the relevant ones
# back. We rerun the priority scheduler with every tool result appended to a short-term context
# of at most 60 tokens (counted with SmolLM2's tokenizer); items pushed out are embedded with
# MiniLM (`shared.assets.sentence_encoder()`) into the long-term store. A question then recalls
# by cosine similarity, and the model answers from what was recalled.

# %%
class Memory:
    """Short-term context under a token budget; evicted items go to an embedding store."""

    def __init__(self, budget_tokens: int) -> None:
        self.budget = budget_tokens
        self.tokenizer = assets.chat_tokenizer()
        self.encoder = assets.sentence_encoder()
        self.context: collections.deque[str] = collections.deque()
        self.store_texts: list[str] = []
        self.store_vectors: list[np.ndarray] = []
        self.context_sizes: list[int] = []  # tokens in context after each event
        self.overflow_sizes: list[int] = []  # tokens just after adding, before any eviction
        self.store_sizes: list[int] = []  # items in the long-term store after each event

    def tokens(self) -> int:
        return sum(len(self.tokenizer.encode(text, add_special_tokens=False))
                   for text in self.context)

    def add(self, text: str) -> None:
        self.context.append(text)
        self.overflow_sizes.append(self.tokens())
        while self.tokens() > self.budget and len(self.context) > 1:
            evicted = self.context.popleft()
            self.store_texts.append(evicted)
            self.store_vectors.append(self.encoder.encode(evicted, normalize_embeddings=True))
        self.context_sizes.append(self.tokens())
        self.store_sizes.append(len(self.store_texts))

    def recall(self, query: str, k: int = 2) -> list[tuple[float, str]]:
        if not self.store_texts:
            return []
        q = self.encoder.encode(query, normalize_embeddings=True)
        scores = np.stack(self.store_vectors) @ q
        order = np.argsort(-scores, kind="stable")[:k]
        return [(float(scores[i]), self.store_texts[i]) for i in order]


memory = Memory(budget_tokens=60)


def remember(job: Job, name: str, args: dict, result) -> None:
    shown = result.output if result.ok else result.error
    if isinstance(shown, list):
        shown = ", ".join(shown)
    memory.add(f"[{job.name}] {name}: {shown}")


audit = AuditLog()
run_scheduler(make_jobs(), "priority-rr", QUANTUM, make_tools(audit), on_result=remember)
print(f"{len(memory.context_sizes)} events, {len(memory.store_texts)} evicted to long-term "
      f"memory, {len(memory.context)} left in context ({memory.tokens()} tokens)")
print("in context now:", list(memory.context))
question = "How many GPU hours of compute were used in Q1?"
recalled = memory.recall(question)
for score, text in recalled:
    print(f"recalled {score:.3f}: {text[:90]}")

# %%
fig, ax = plt.subplots(figsize=(9, 3.8))
events = range(len(memory.context_sizes))
ax.plot(events, memory.overflow_sizes, "o", mfc="none", color="tab:orange",
        label="context tokens after adding a result")
ax.plot(events, memory.context_sizes, "o-", color="tab:blue", label="... after paging out")
ax.axhline(memory.budget, color="tab:red", ls="--", label=f"budget ({memory.budget} tokens)")
ax.set(xlabel="event (tool result)", ylabel="tokens in short-term context", ylim=(0, None),
       title="The context stays under its budget by paging out to the long-term store")
store_ax = ax.twinx()
store_ax.step(events, memory.store_sizes, where="post", color="tab:gray")
store_ax.set_ylabel("items in long-term store (gray)")
ax.legend(fontsize=8, loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# The fact the question needs was read by the report job in its first time slice and has long
# left the context (the printout shows what is still there); retrieval brings it back. Now the
# model answers with recalled memories in its prompt, once with the best match only and once
# with the two best. This is the second and last model-driven step of the notebook.

# %%
for k in (1, 2):
    notes = "\n".join(text for _, text in recalled[:k])
    answer = client.complete(
        [{"role": "system", "content": "Answer the question in one short sentence, using only "
                                       "the notes."},
         {"role": "user", "content": f"Notes:\n{notes}\n\nQuestion: {question}"}],
        max_new_tokens=24, agent="answerer")
    label = "the best memory" if k == 1 else f"the {k} best memories"
    print(f"with {label}: {answer!r} (contains Q1's 1320: {'1320' in answer})")
print(client.summary())
for agent, row in client.usage().items():
    print(f"  {agent:9s} {row['calls']} calls, {row['tokens']} reply tokens")

# %% [markdown]
# With the best match alone the model reads the right figure. The second-best memory is a near
# miss (the same sentence for Q2), and with it in the prompt the 135M model picks the wrong
# number. Retrieval decides what the model sees, so its precision matters as much as its
# recall, and more so for a small model; MemGPT lets the model itself decide what to page in,
# which needs a stronger model than this one.

# %% [markdown]
# ## The audit log
#
# Every system call of the memory run is in `audit`, with its actor (the job's pid), its
# arguments and its result. Because each id hashes the previous id, the log is tamper-evident:
# export it, change one record (say, hide that a file was written), and verification points at
# the first record that no longer checks out.

# %%
print(audit.render())
records = audit.to_records()
print("\nverification of the exported log:", AuditLog.verify_records(records))
forged = [dict(record) for record in records]
index = next(i for i, r in enumerate(forged) if r["tool"] == "write_file")
forged[index]["result"] = "nothing was written"
print(f"after editing record {index}: verification fails at record",
      AuditLog.verify_records(forged))

# %% [markdown]
# Tamper evidence is not tamper proofing: whoever can rewrite the whole log can recompute every
# hash. Real systems anchor the chain outside the agent's reach (append-only storage, a
# signature, or the latest hash published elsewhere).

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Shortest job first
#
# If the kernel knew how many system calls each job will make, it could run the shortest ready
# job first, which minimises the mean turnaround of jobs that are all present at the start.
# Write `shortest_job_first(lengths)` that takes a dict `{job name: number of calls}` (all
# arriving at tick 0, run without preemption) and returns the order of names (ties by name)
# and the mean turnaround. The check compares it with first-come-first-served on the same jobs.

# %% tags=["solution"]
def shortest_job_first(lengths: dict[str, int]) -> tuple[list[str], float]:
    """Order of the jobs under SJF and their mean turnaround (all arrive at tick 0)."""
    # BEGIN SOLUTION
    order = sorted(lengths, key=lambda name: (lengths[name], name))
    finish, total = 0, 0
    for name in order:
        finish += lengths[name]
        total += finish
    return order, total / len(order)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, passed

lengths = {"report": 5, "backup": 5, "question": 2, "script": 1}
order, mean_turnaround = shortest_job_first(lengths)
check_equal(order, ["script", "question", "backup", "report"], "shortest_job_first order")
check_close(mean_turnaround, (1 + 3 + 8 + 13) / 4, "mean turnaround under SJF")
fcfs_mean = (5 + 10 + 12 + 13) / 4  # report, backup, question, script in arrival order
check(mean_turnaround < fcfs_mean, "shortest_job_first",
      f"a mean turnaround below FCFS's {fcfs_mean}")
check_equal(shortest_job_first({"b": 3, "a": 3})[0], ["a", "b"], "ties broken by name")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: Recency, importance and relevance
#
# Generative agents (Park et al., 2023) rank memories by the sum of three scores: *recency*
# ($\text{decay}^{\text{age}}$, with age in events since the memory was stored), *importance*
# (a number in [0, 1] given when it is stored) and *relevance* (cosine similarity to the
# query). Write `rank_memories(similarities, ages, importances, decay)` that returns the indices
# of the memories from best to worst total score (ties by index). Then use it on the long-term
# store above: set `top_memory` to the text it ranks first for `deadline_question`, with the
# store's MiniLM similarities (`memory.encoder`, normalised embeddings), ages counted back from
# the last memory stored (the last one has age 0), importance 1.0 for memories of the "user
# question" job (their text starts with `[user question]`) and 0.0 otherwise, and `decay=0.9`.

# %% tags=["solution"]
def rank_memories(similarities: np.ndarray, ages: np.ndarray, importances: np.ndarray,
                  decay: float) -> list[int]:
    """Indices from best to worst by relevance + importance + decay**age."""
    # BEGIN SOLUTION
    scores = np.asarray(similarities) + np.asarray(importances) + decay ** np.asarray(ages)
    return [int(i) for i in np.argsort(-scores, kind="stable")]
    # END SOLUTION


deadline_question = "When is the final report of the project due?"
top_memory = None
# BEGIN SOLUTION
query_vector = memory.encoder.encode(deadline_question, normalize_embeddings=True)
similarities = np.stack(memory.store_vectors) @ query_vector
ages = np.arange(len(memory.store_texts))[::-1]
importances = np.array([1.0 if text.startswith("[user question]") else 0.0
                        for text in memory.store_texts])
top_memory = memory.store_texts[rank_memories(similarities, ages, importances, 0.9)[0]]
# END SOLUTION
print(top_memory)

# %% tags=["check"]
check_equal(rank_memories(np.array([0.1, 0.9, 0.5]), np.zeros(3), np.zeros(3), 0.9), [1, 2, 0],
            "rank_memories by relevance alone")
check_equal(rank_memories(np.zeros(3), np.array([5, 0, 2]), np.zeros(3), 0.5), [1, 2, 0],
            "rank_memories by recency alone")
check_equal(rank_memories(np.array([0.2, 0.1]), np.array([0, 0]), np.array([0.0, 1.0]), 0.9),
            [1, 0], "importance outweighs a small relevance gap")
check_equal(rank_memories(np.zeros(2), np.zeros(2), np.zeros(2), 0.9), [0, 1], "ties by index")
check(top_memory is not None and "14 March" in top_memory, "top_memory",
      "the memory holding the project note (it mentions 14 March) to rank first")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: A read-only mode
#
# Operating systems mount disks read-only; an agent OS needs the same switch. Write
# `read_only(registry)` that returns a new `ToolRegistry` sharing `registry.audit`, with the
# same tools, except that each tool marked `side_effects` is replaced by a function that raises
# `PermissionError("read-only mode: <tool name> is disabled")`. The registry then logs such
# calls as `refused`. The replacement must keep the tool's parameters, so that a call with
# missing arguments is still reported as `bad_arguments`: give the refusing function the
# original signature (`refuse.__signature__ = inspect.signature(tool.func)`).
# `registry.names` lists the tools and `registry[name]` gives a `Tool` with `.func`,
# `.description` and `.side_effects`.

# %% tags=["solution"]
import inspect


def read_only(registry: ToolRegistry) -> ToolRegistry:
    """A registry with the same tools, where tools with side effects refuse to run."""
    # BEGIN SOLUTION
    safe = ToolRegistry(registry.audit)
    for name in registry.names:
        tool = registry[name]
        func = tool.func
        if tool.side_effects:
            def refuse(*args, _name=name, **kwargs):
                raise PermissionError(f"read-only mode: {_name} is disabled")

            refuse.__signature__ = inspect.signature(tool.func)
            func = refuse
        safe.register(func, name=name, description=tool.description,
                      side_effects=tool.side_effects)
    return safe
    # END SOLUTION


# %% tags=["check"]
locked = read_only(tools)
check_equal(type(locked).__name__, "ToolRegistry", "read_only(tools) type")
check_equal(sorted(locked.names), sorted(tools.names), "the tools of the read-only registry")
before = len(tools.audit)
write = locked.call("write_file", {"path": "x.txt", "text": "y"}, actor="test")
check_equal(write.status, "refused", "write_file in read-only mode")
check("read-only mode" in (write.error or ""), "read_only", "the refusal to say 'read-only mode'")
check(not (home / "x.txt").exists(), "read_only", "no file to be written")
check_equal(locked.call("run_python", {"path": "scripts/hello.py"}, actor="test").status,
            "refused", "run_python in read-only mode")
check_equal(locked.call("read_file", {"path": "todo.txt"}, actor="test").status, "ok",
            "read_file in read-only mode")
check_equal(locked.call("write_file", {"path": "x.txt"}, actor="test").status, "bad_arguments",
            "a call with a missing argument (the signature must be kept)")
check_equal(len(tools.audit) - before, 4, "audit entries added to the shared log")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - The LLM-OS analogy maps the model to the CPU, the context to RAM, files and vector stores to
#   disk, tools to devices and agent jobs to processes. It breaks where it matters most: the
#   model proposes rather than executes, so the kernel must check every proposal.
# - File tools resolve paths and refuse anything outside the sandbox (`..`, absolute paths,
#   escaping symlinks); the calculator walks the AST and never calls `eval`; scripts run in a
#   separate limited process.
# - The model turns words into tool calls; parsing, fallback rules, the side-effect policy,
#   recovery after a failed call, scheduling, paging and auditing are rules.
# - A priority round-robin scheduler gives interactive jobs a short response time at a small
#   cost to background jobs, measured against first come, first served.
# - A token-budgeted context with eviction to an embedding store (MemGPT-style paging) lets the
#   agent recall facts it no longer holds in context.
# - A hash-chained audit log with deterministic ids makes every call accountable and
#   tampering detectable.
#
# Next: the lab
# [multi-agent scratchpad protocol](../../labs/multi-agent-scratchpad-protocol/multi-agent-scratchpad-protocol)
# builds a validated, append-only channel between agents.
#
# ## References
#
# - A. Karpathy, "LLM OS" (post on X, November 2023).
#   https://x.com/karpathy/status/1723140519554105733 ; and the talk "Intro to Large Language
#   Models" (2023), section "LLM OS". https://www.youtube.com/watch?v=zjkBMFhNj_g
# - Y. Ge, Y. Ren, W. Hua, S. Xu, J. Tan, Y. Zhang, "LLM as OS, agents as apps: envisioning
#   AIOS, agents and the AIOS-agent ecosystem", 2023. https://arxiv.org/abs/2312.03815
# - C. Packer, S. Wooders, K. Lin, V. Fang, S. G. Patil, I. Stoica, J. E. Gonzalez, "MemGPT:
#   towards LLMs as operating systems", 2023. https://arxiv.org/abs/2310.08560
# - S. Yao et al., "ReAct: synergizing reasoning and acting in language models", ICLR 2023.
#   https://arxiv.org/abs/2210.03629
# - T. Schick et al., "Toolformer: language models can teach themselves to use tools", NeurIPS
#   2023. https://arxiv.org/abs/2302.04761
# - J. S. Park et al., "Generative agents: interactive simulacra of human behavior", UIST 2023.
#   https://arxiv.org/abs/2304.03442
# - A. Silberschatz, P. B. Galvin, G. Gagne, *Operating System Concepts*, 10th ed., Wiley, 2018
#   (scheduling: chapter 5). https://www.os-book.com/
# - Linux `openat2(2)` and `RESOLVE_BENEATH`. https://man7.org/linux/man-pages/man2/openat2.2.html
# - Python documentation, `ast` (safe parsing) and `ast.literal_eval`.
#   https://docs.python.org/3/library/ast.html

# %%
import shutil

shutil.rmtree(workspace)  # the sandbox home and the file next to it
