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
# # Lab: a multi-agent scratchpad protocol
#
# When agents chat freely, errors spread: one agent's malformed or invented message becomes the
# next agent's premise, and nobody can say afterwards who claimed what. MetaGPT's answer is to
# make agents publish structured documents to a shared pool instead of chatting; blackboard
# systems in classical AI did the same. In this lab five agents communicate **only** through a
# shared scratchpad: an append-only list of entries, each with an id, the step it was written,
# its author, a type, a content and references to earlier entries. Every write is validated
# before it lands. You will build the parts that make such a protocol robust (the validator,
# a detector for stuck agents, the transcript renderer and a rule for conflicting results),
# watch them handle a real small language model's malformed writes and a scripted agent that
# hangs, and measure what each part buys.
#
# **Learning objectives**
# - Specify a message protocol as a JSON Schema plus semantic rules, and enforce it on every
#   write with clear errors.
# - Detect stuck agents with a step budget and a no-progress rule, and recover by reassigning
#   their work.
# - Render a readable, threaded transcript from the scratchpad alone.
# - Resolve conflicting results with an explicit rule, and measure the protocol against weaker
#   variants.
#
# **Prerequisites:** [multi-agent systems](../../modules/20-advanced-topics/03-multi-agent-systems)
# (roles, messages, validation and retries, `shared.agents.ModelClient`) and
# [the LLM as an operating system](../../modules/20-advanced-topics/04-llm-os) (audit logs).
# JSON and JSON Schema basics.
#
# **Estimated time:** 90 minutes.

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
import collections
import copy
import dataclasses
import json
import warnings
from collections.abc import Callable

import jsonschema
import matplotlib.pyplot as plt
import torch

import shared
from shared.agents import ModelClient
from shared.exercises import check, check_equal, passed

shared.seed_everything(0)
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
# Greedy decoding of one sequence is latency-bound: one thread is as fast as two on a 2-core
# machine and gives the same tokens whatever the core count.
torch.set_num_threads(1)
print(shared.environment_summary("jsonschema", "transformers", "matplotlib"))

# %% [markdown]
# ## The protocol
#
# Five agents share the scratchpad:
#
# | agent | role | driven by |
# |---|---|---|
# | `coordinator` | posts tasks, assigns them, closes them, reassigns stuck or failed work | rules |
# | `worker_a` | solves its assigned tasks with a trusted solver | rules |
# | `worker_b` | a scripted faulty worker: says it is working and never delivers | rules (a deliberate fault) |
# | `llm_worker` | answers its tasks by writing an entry as JSON | SmolLM2-135M-Instruct |
# | `reviewer` | checks every result against the trusted solver and accepts or rejects it | rules |
#
# An entry is a JSON object. The runtime stamps `id` (its position: the pad is append-only),
# `step` and `author` (an agent cannot write under another's name); the agent supplies
# `type`, `content`, `references` and, for some types, a machine-readable `data` object. The
# schema below says what a well-formed entry is; the semantic rules that a schema cannot
# express (references must exist, only the assignee may post a result) come in Exercise 1.

# %%
AGENTS = ["coordinator", "worker_a", "worker_b", "llm_worker", "reviewer"]
WORKERS = ["worker_a", "worker_b", "llm_worker"]
ENTRY_TYPES = ["task", "assign", "result", "review", "note", "close"]

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "step", "author", "type", "content", "references"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": 0},
        "step": {"type": "integer", "minimum": 0},
        "author": {"enum": AGENTS},
        "type": {"enum": ENTRY_TYPES},
        "content": {"type": "string", "minLength": 1, "maxLength": 200},
        "references": {"type": "array", "items": {"type": "integer", "minimum": 0},
                       "uniqueItems": True, "maxItems": 4},
        "data": {"type": "object"},
    },
    "allOf": [
        {"if": {"properties": {"type": {"const": "task"}}},
         "then": {"required": ["data"], "properties": {"data": {
             "required": ["op", "args"], "properties": {"op": {"type": "string"},
                                                        "args": {"type": "array"}}}}}},
        {"if": {"properties": {"type": {"const": "assign"}}},
         "then": {"required": ["data"], "properties": {"data": {
             "required": ["worker"], "properties": {"worker": {"enum": WORKERS}}}}}},
        {"if": {"properties": {"type": {"const": "review"}}},
         "then": {"required": ["data"], "properties": {"data": {
             "required": ["verdict"], "properties": {"verdict": {"enum": ["accept",
                                                                         "reject"]}}}}}},
        {"if": {"properties": {"type": {"enum": ["assign", "result", "review", "close"]}}},
         "then": {"properties": {"references": {"minItems": 1}}}},
    ],
}
jsonschema.Draft202012Validator.check_schema(SCHEMA)  # the schema itself is valid
SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


class ScratchpadError(ValueError):
    """A write was rejected; the message says which rule it broke."""


Validator = Callable[[dict, list[dict]], None]


def parse_json_object(reply: str) -> dict:
    """The JSON object in a model's reply (from the first '{' to the last '}')."""
    start, end = reply.find("{"), reply.rfind("}")
    try:
        value = json.loads(reply[start:end + 1]) if 0 <= start < end else None
    except json.JSONDecodeError as error:
        raise ScratchpadError(f"not valid JSON: {error.msg}") from None
    if not isinstance(value, dict):
        raise ScratchpadError("the reply contains no JSON object")
    return value


class Scratchpad:
    """Append-only shared memory. Every write is stamped and validated; rejections are kept."""

    def __init__(self, validate: Validator) -> None:
        self.validate = validate
        self._entries: list[dict] = []
        self.rejected: list[dict] = []  # the runtime's log of refused writes (not on the pad)

    @property
    def entries(self) -> list[dict]:
        return copy.deepcopy(self._entries)  # a copy: nobody edits the pad in place

    def write(self, author: str, draft: dict | str, step: int) -> dict:
        """Stamp, validate and append a draft (a dict, or JSON text from a model)."""
        try:
            if isinstance(draft, str):
                draft = parse_json_object(draft)
            if not isinstance(draft, dict):
                raise ScratchpadError(f"a write must be a JSON object, got {type(draft).__name__}")
            stamped = sorted({"id", "step", "author"} & set(draft))
            if stamped:
                raise ScratchpadError(f"{stamped} are set by the runtime, not by the agent")
            entry = {"id": len(self._entries), "step": step, "author": author, **draft}
            self.validate(entry, self.entries)
        except ScratchpadError as error:
            self.rejected.append({"author": author, "step": step, "draft": draft,
                                  "error": str(error)})
            raise
        self._entries.append(copy.deepcopy(entry))
        return entry


@dataclasses.dataclass
class Channel:
    """All an agent gets: the entries so far and a write stamped with its name and the step."""

    pad: Scratchpad
    author: str
    step: int

    @property
    def entries(self) -> list[dict]:
        return self.pad.entries

    def write(self, draft: dict | str) -> dict:
        return self.pad.write(self.author, draft, self.step)


# %% [markdown]
# Some read-only helpers over a list of entries, for the agents and for your code. They use
# `.get` so that they also work on a scratchpad that let malformed entries in (the comparison
# at the end runs one).

# %%
def of_type(entries: list[dict], kind: str) -> list[dict]:
    return [e for e in entries if e.get("type") == kind]


def first_reference(entry: dict) -> int | None:
    refs = entry.get("references")
    return refs[0] if isinstance(refs, list) and refs else None


def referencing(entries: list[dict], kind: str, entry_id: int) -> list[dict]:
    """Entries of a type whose first reference is entry_id."""
    return [e for e in of_type(entries, kind) if first_reference(e) == entry_id]


def latest_assignment(entries: list[dict], task_id: int) -> dict | None:
    assignments = referencing(entries, "assign", task_id)
    return assignments[-1] if assignments else None


def is_closed(entries: list[dict], task_id: int) -> bool:
    return bool(referencing(entries, "close", task_id))


def open_tasks(entries: list[dict]) -> list[int]:
    return [e["id"] for e in of_type(entries, "task") if not is_closed(entries, e["id"])]


def verdicts(entries: list[dict], result_id: int) -> list[str]:
    return [(e.get("data") or {}).get("verdict") for e in referencing(entries, "review", result_id)]


# %% [markdown]
# ## Exercise 1: validate every write

# %% [markdown] tags=["exercise"]
# ### Exercise 1: The validator
#
# Write `validate_entry(entry, entries)`, which raises `ScratchpadError` if `entry` may not be
# appended to `entries` and returns `None` otherwise. Check, in this order, and put the phrase
# in quotes into the message so that agents (and the check) can tell the cases apart:
#
# 1. the JSON Schema (`SCHEMA_VALIDATOR`): on failure, a message starting with `"schema"`,
#    naming where and what (tip: `jsonschema.exceptions.best_match(SCHEMA_VALIDATOR.iter_errors(
#    entry))` gives the most relevant error, with `.message` and `.absolute_path`);
# 2. append-only: `entry["id"]` must equal `len(entries)` (`"append-only"`);
# 3. every reference must be the id of an existing entry (`"unknown entry"`);
# 4. by type: the first reference of an `assign`, `result` or `close` must be a task
#    (`"must reference a task"`), and that of a `review` a result (`"must reference a result"`);
# 5. a `result` may only come from the worker that the task's latest assignment names
#    (`"not assigned"`).

# %% tags=["solution"]
def validate_entry(entry: dict, entries: list[dict]) -> None:
    """Raise ScratchpadError if entry breaks the schema or a protocol rule."""
    # BEGIN SOLUTION
    error = jsonschema.exceptions.best_match(SCHEMA_VALIDATOR.iter_errors(entry))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "entry"
        raise ScratchpadError(f"schema: {where}: {error.message}")
    if entry["id"] != len(entries):
        raise ScratchpadError(f"append-only: expected id {len(entries)}, got {entry['id']}")
    for ref in entry["references"]:
        if ref >= len(entries):
            raise ScratchpadError(f"reference to unknown entry #{ref}")
    kind = entry["type"]
    if kind in ("assign", "result", "close"):
        target = entries[entry["references"][0]]
        if target.get("type") != "task":
            raise ScratchpadError(f"a {kind} must reference a task first, "
                                  f"#{target['id']} is a {target.get('type')}")
    if kind == "review" and entries[entry["references"][0]].get("type") != "result":
        raise ScratchpadError("a review must reference a result first")
    if kind == "result":
        assignment = latest_assignment(entries, entry["references"][0])
        assignee = (assignment.get("data") or {}).get("worker") if assignment else None
        if assignee != entry["author"]:
            raise ScratchpadError(f"{entry['author']} is not assigned to task "
                                  f"#{entry['references'][0]} (assignee: {assignee})")
    # END SOLUTION


# %% tags=["check"]
BASE = [
    {"id": 0, "step": 0, "author": "coordinator", "type": "task", "content": "What is 2 + 2?",
     "references": [], "data": {"op": "add", "args": [2, 2]}},
    {"id": 1, "step": 0, "author": "coordinator", "type": "assign", "content": "worker_a takes #0",
     "references": [0], "data": {"worker": "worker_a"}},
    {"id": 2, "step": 1, "author": "worker_a", "type": "note", "content": "on it",
     "references": [0]},
]
good = {"id": 3, "step": 1, "author": "worker_a", "type": "result", "content": "4",
        "references": [0]}
check(validate_entry(good, BASE) is None, "validate_entry", "a valid result to be accepted")
review = {"id": 4, "step": 2, "author": "reviewer", "type": "review", "content": "correct",
          "references": [3], "data": {"verdict": "accept"}}
check(validate_entry(review, [*BASE, good]) is None, "validate_entry",
      "a valid review of the result to be accepted")


def rejected_with(entry: dict, phrase: str, entries: list[dict] = BASE) -> None:
    try:
        validate_entry(entry, entries)
    except ScratchpadError as error:
        check(phrase in str(error), "validate_entry",
              f"the error for {entry} to contain {phrase!r}, got {str(error)!r}")
        return
    check(False, "validate_entry", f"a ScratchpadError containing {phrase!r} for {entry}")


rejected_with({k: v for k, v in good.items() if k != "content"}, "schema")
rejected_with({**good, "type": "longest"}, "schema")
rejected_with({**good, "message": "extra"}, "schema")
rejected_with({**good, "content": ""}, "schema")
rejected_with({**good, "type": "assign", "data": {"worker": "nobody"}}, "schema")
rejected_with({**good, "id": 7}, "append-only")
rejected_with({**good, "references": [9]}, "unknown entry")
rejected_with({**good, "references": [2]}, "must reference a task")
rejected_with({**good, "author": "worker_b"}, "not assigned")
rejected_with({**review, "id": 3, "references": [0]}, "must reference a result")
passed("Exercise 1")

# %% [markdown]
# ## A real model writes to the scratchpad
#
# `llm_worker` is SmolLM2-135M-Instruct. It sees its task and one example of a correct entry,
# and must reply with the entry as JSON. The reply goes through `Scratchpad.write`, and so
# through your validator. `ModelClient.complete_validated` (from `shared.agents`) does the
# protocol's error handling: a rejected write's error message goes back to the model, which
# gets one retry; if that fails too, the worker gives up on the task and stays silent, and the
# coordinator must notice. Every call is budgeted (at most 12 for the whole lab) and cached, so
# rerunning the same request later costs nothing.

# %%
client = ModelClient(max_calls=12)
LLM_SYSTEM = ('You are worker agent "llm_worker" on a shared scratchpad. Reply with one JSON '
              'object with the keys "type" (always "result"), "content" (your answer) and '
              '"references" (a list with the task entry id). Nothing else.')
LLM_EXAMPLE = [{"role": "user", "content": "Entry #1 (task): What is the capital of Italy?"},
               {"role": "assistant",
                "content": '{"type": "result", "content": "Rome", "references": [1]}'}]
llm_log: list[dict] = []  # what the model said and what happened to it, for the transcript


class LLMWorker:
    name = "llm_worker"

    def __init__(self) -> None:
        self.tried: set[int] = set()

    def act(self, channel: Channel) -> None:
        entries = channel.entries
        for task_id in open_tasks(entries):
            assignment = latest_assignment(entries, task_id)
            if (assignment is None or (assignment.get("data") or {}).get("worker") != self.name
                    or task_id in self.tried):
                continue
            self.tried.add(task_id)  # at most one validated exchange per task
            question = entries[task_id]["content"]
            outcome = client.complete_validated(
                [{"role": "system", "content": LLM_SYSTEM}, *LLM_EXAMPLE,
                 {"role": "user", "content": f"Entry #{task_id} (task): {question}"}],
                channel.write,  # parse, stamp and validate; a ScratchpadError is a ValueError
                max_new_tokens=40, agent=self.name, retries=1,
                feedback=lambda error: f"Your entry was rejected: {error}\n"
                                       "Reply with the corrected JSON object only.",
            )
            llm_log.append({"step": channel.step, "task": task_id, "outcome": outcome})
            return  # one task per step


# %% [markdown]
# ## The other agents
#
# The deterministic agents. The tasks carry a machine-readable `op` and `args`, so the trusted
# solver can compute every answer; the reviewer uses it to check results, as a test suite
# checks code. `worker_b` is faulty on purpose: it posts the same progress note every step and
# never a result. The coordinator's policy is the protocol's control loop; its two pluggable
# parts are a conflict rule and an optional stuck detector (Exercises 2 and 4).

# %%
TASKS = [
    ("What is 12 + 30?", "add", [12, 30]),
    ("How many words are in 'the cat sat on the mat'?", "word_count", ["the cat sat on the mat"]),
    ("Which word is longest: tea, coffee, milk?", "longest_word", ["tea", "coffee", "milk"]),
    ("Reverse the word 'agent'.", "reverse", ["agent"]),
    ("How many vowels are in 'scratchpad'?", "vowels", ["scratchpad"]),
    ("What is 7 * 6?", "multiply", [7, 6]),
]


def solve(data: dict) -> str:
    """The trusted solver: the right answer to a task's op and args."""
    op, args = data["op"], data["args"]
    answers = {
        "add": lambda: str(args[0] + args[1]),
        "multiply": lambda: str(args[0] * args[1]),
        "word_count": lambda: str(len(args[0].split())),
        "longest_word": lambda: max(args, key=len),
        "reverse": lambda: args[0][::-1],
        "vowels": lambda: str(sum(c in "aeiou" for c in args[0].lower())),
    }
    return answers[op]()


def task_of(entries: list[dict], result: dict) -> dict | None:
    """The task entry a result points at, or None if it points at anything else."""
    first = first_reference(result)
    if isinstance(first, int) and 0 <= first < len(entries) and entries[first].get("type") == "task":
        return entries[first]
    return None


def my_open_tasks(entries: list[dict], worker: str) -> list[int]:
    mine = []
    for task_id in open_tasks(entries):
        assignment = latest_assignment(entries, task_id)
        if assignment and (assignment.get("data") or {}).get("worker") == worker:
            mine.append(task_id)
    return mine


class Worker:
    """worker_a: posts the trusted answer to each of its tasks, one per step."""

    name = "worker_a"

    def act(self, channel: Channel) -> None:
        entries = channel.entries
        for task_id in my_open_tasks(entries, self.name):
            if not any(r["author"] == self.name for r in referencing(entries, "result", task_id)):
                channel.write({"type": "result", "content": solve(entries[task_id]["data"]),
                               "references": [task_id]})
                return


class StuckWorker:
    """worker_b: a deliberate fault. It reports progress and never delivers."""

    name = "worker_b"

    def act(self, channel: Channel) -> None:
        mine = my_open_tasks(channel.entries, self.name)
        if mine:
            channel.write({"type": "note", "content": f"still working on #{mine[0]}",
                           "references": [mine[0]]})


class Reviewer:
    name = "reviewer"

    def act(self, channel: Channel) -> None:
        entries = channel.entries
        for result in of_type(entries, "result"):
            if verdicts(entries, result["id"]):
                continue
            task = task_of(entries, result)
            expected = solve(task["data"]) if task else None
            ok = task is not None and str(result.get("content", "")).strip() == expected
            content = "correct" if ok else f"wrong: expected {expected!r}"
            channel.write({"type": "review", "content": content, "references": [result["id"]],
                           "data": {"verdict": "accept" if ok else "reject"}})
            return


@dataclasses.dataclass
class Policy:
    """The pluggable parts of the protocol."""

    validate: Validator
    resolve: Callable[[list[dict], int], int | None]
    find_stuck: Callable[[list[dict], int], list[tuple[str, int]]] | None


def terminated_agents(entries: list[dict]) -> set[str]:
    return {(e.get("data") or {}).get("terminate") for e in of_type(entries, "note")} - {None}


class Coordinator:
    name = "coordinator"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def assign(self, channel: Channel, task_id: int, exclude: str | None = None) -> None:
        entries = channel.entries
        down = terminated_agents(entries) | {exclude}
        healthy = [w for w in WORKERS if w not in down]
        if not healthy:
            return
        load = {w: len(my_open_tasks(entries, w)) for w in healthy}
        worker = min(healthy, key=lambda w: (load[w], WORKERS.index(w)))
        channel.write({"type": "assign", "content": f"{worker} takes #{task_id}",
                       "references": [task_id], "data": {"worker": worker}})

    def act(self, channel: Channel) -> None:
        if channel.step == 0:
            for question, op, args in TASKS:
                channel.write({"type": "task", "content": question, "references": [],
                               "data": {"op": op, "args": args}})
            for i, task in enumerate(of_type(channel.entries, "task")):
                channel.write({"type": "assign", "content": f"{WORKERS[i % 3]} takes "
                               f"#{task['id']}", "references": [task["id"]],
                               "data": {"worker": WORKERS[i % 3]}})
            return
        entries = channel.entries
        for task_id in open_tasks(entries):
            winner = self.policy.resolve(entries, task_id)
            if winner is not None:
                answer = str(entries[winner].get("content", ""))[:80]
                channel.write({"type": "close", "references": [task_id, winner],
                               "content": f"closed with #{winner}: {answer}"})
                continue
            assignment = latest_assignment(entries, task_id) or {}
            worker = (assignment.get("data") or {}).get("worker")
            failed = [r for r in referencing(entries, "result", task_id)
                      if r["author"] == worker and "reject" in verdicts(entries, r["id"])]
            if failed:  # the assignee delivered a rejected result: give the task to someone else
                self.assign(channel, task_id, exclude=worker)
        if self.policy.find_stuck is not None:
            for worker, task_id in self.policy.find_stuck(channel.entries, channel.step):
                if worker not in terminated_agents(channel.entries):
                    channel.write({"type": "note", "content": f"{worker} makes no progress: "
                                   "terminated", "references": [task_id],
                                   "data": {"terminate": worker}})
            down = terminated_agents(channel.entries)
            for task_id in open_tasks(channel.entries):  # a terminated agent's work moves on
                worker = (latest_assignment(channel.entries, task_id).get("data") or {}).get(
                    "worker")
                if worker in down:
                    self.assign(channel, task_id, exclude=worker)


def run_protocol(policy: Policy, max_steps: int = 12) -> Scratchpad:
    """Run the five agents in a fixed order each step until every task is closed."""
    pad = Scratchpad(policy.validate)
    agents = [Coordinator(policy), Worker(), StuckWorker(), LLMWorker(), Reviewer()]
    for step in range(max_steps):
        for agent in agents:
            if agent.name in terminated_agents(pad.entries):
                continue  # terminated agents are no longer scheduled
            try:
                agent.act(Channel(pad, agent.name, step))
            except ScratchpadError:
                pass  # already in pad.rejected; the agent's turn ends
        if step > 0 and not open_tasks(pad.entries):
            break
    return pad


# %% [markdown]
# ## Exercise 2: stuck agents

# %% [markdown] tags=["exercise"]
# ### Exercise 2: The stuck-agent detector
#
# Write `find_stuck(entries, step, max_silent_steps=4, repeat_limit=3)`. For every open task
# (no `close` references it), take the worker named by its latest assignment, written at step
# `s`. That worker is stuck on the task if it has written no result for the task and either
#
# - **step budget**: `step - s > max_silent_steps`, or
# - **no progress**: its last `repeat_limit` entries (of any type, on the whole pad) are all
#   notes with the same content.
#
# Return the sorted list of `(worker, task_id)` pairs. The helpers `open_tasks`,
# `latest_assignment` and `referencing` do most of the reading.

# %% tags=["solution"]
def find_stuck(entries: list[dict], step: int, max_silent_steps: int = 4,
               repeat_limit: int = 3) -> list[tuple[str, int]]:
    """(worker, task) pairs whose worker is silent past the budget or repeating itself."""
    # BEGIN SOLUTION
    stuck = []
    for task_id in open_tasks(entries):
        assignment = latest_assignment(entries, task_id)
        if assignment is None:
            continue
        worker = assignment["data"]["worker"]
        if any(r["author"] == worker for r in referencing(entries, "result", task_id)):
            continue
        silent = step - assignment["step"] > max_silent_steps
        recent = [e for e in entries if e["author"] == worker][-repeat_limit:]
        repeating = (len(recent) == repeat_limit and all(e["type"] == "note" for e in recent)
                     and len({e["content"] for e in recent}) == 1)
        if silent or repeating:
            stuck.append((worker, task_id))
    return sorted(stuck)
    # END SOLUTION


# %% tags=["check"]
def pad_of(*rows: tuple) -> list[dict]:
    """Entries from (step, author, type, content, references, data) rows."""
    return [{"id": i, "step": s, "author": a, "type": t, "content": c, "references": r,
             **({"data": d} if d else {})} for i, (s, a, t, c, r, d) in enumerate(rows)]


task = (0, "coordinator", "task", "What is 1 + 1?", [], {"op": "add", "args": [1, 1]})
to_b = (1, "coordinator", "assign", "worker_b takes #0", [0], {"worker": "worker_b"})
note = (2, "worker_b", "note", "still working on #0", [0], None)
repeating = pad_of(task, to_b, note, (3, *note[1:]), (4, *note[1:]))
check_equal(find_stuck(repeating, 4), [("worker_b", 0)], "find_stuck with three identical notes")
check_equal(find_stuck(repeating[:4], 4), [], "find_stuck with only two identical notes")
varied = pad_of(task, to_b, note, (3, "worker_b", "note", "halfway", [0], None), (4, *note[1:]))
check_equal(find_stuck(varied, 4), [], "find_stuck when the notes change")
silent = pad_of(task, to_b)
check_equal(find_stuck(silent, 5), [], "find_stuck at the budget (5 - 1 = 4 steps)")
check_equal(find_stuck(silent, 6), [("worker_b", 0)], "find_stuck past the budget")
delivered = pad_of(task, to_b, (2, "worker_b", "result", "2", [0], None))
check_equal(find_stuck(delivered, 20), [], "find_stuck after a result")
closed = pad_of(task, to_b, (2, "coordinator", "close", "dropped", [0], None))
check_equal(find_stuck(closed, 20), [], "find_stuck on a closed task")
moved = pad_of(task, to_b, note, (3, *note[1:]), (4, *note[1:]),
               (5, "coordinator", "assign", "worker_a takes #0", [0], {"worker": "worker_a"}))
check_equal(find_stuck(moved, 6), [], "find_stuck after reassignment to a fresh worker")
check_equal(find_stuck(moved, 10), [("worker_a", 0)], "find_stuck for the new assignee later")
passed("Exercise 2")

# %% [markdown]
# ## Exercise 3: the transcript

# %% [markdown] tags=["exercise"]
# ### Exercise 3: The transcript renderer
#
# Write `render_transcript(entries)` that returns the scratchpad as text, one line per entry
# in id order, threaded by the first reference:
#
# ```
# #0 [0] coordinator task: What is 2 + 2?
#   #1 [0] coordinator assign: worker_a takes #0 (re #0)
#   #2 [1] worker_a result: 4 (re #0)
#     #3 [2] reviewer review: correct (re #2)
# ```
#
# Each line is `#<id> [<step>] <author> <type>: <content>`, followed by ` (re #a, #b)` when the
# entry has references. It is indented by two spaces per level of depth, where an entry without
# references has depth 0 and any other entry has the depth of its first reference plus one.
# Lines are joined with `"\n"`.

# %% tags=["solution"]
def render_transcript(entries: list[dict]) -> str:
    """The scratchpad as threaded text, one line per entry."""
    # BEGIN SOLUTION
    depth: dict[int, int] = {}
    lines = []
    for e in entries:
        refs = e["references"]
        depth[e["id"]] = depth[refs[0]] + 1 if refs else 0
        line = f"{'  ' * depth[e['id']]}#{e['id']} [{e['step']}] {e['author']} {e['type']}: "
        line += e["content"]
        if refs:
            line += " (re " + ", ".join(f"#{r}" for r in refs) + ")"
        lines.append(line)
    return "\n".join(lines)
    # END SOLUTION


# %% tags=["check"]
sample = pad_of(
    (0, "coordinator", "task", "What is 2 + 2?", [], {"op": "add", "args": [2, 2]}),
    (0, "coordinator", "assign", "worker_a takes #0", [0], {"worker": "worker_a"}),
    (1, "worker_a", "result", "4", [0], None),
    (2, "reviewer", "review", "correct", [2], {"verdict": "accept"}),
    (3, "coordinator", "close", "closed with #2: 4", [0, 2], None),
)
expected = "\n".join([
    "#0 [0] coordinator task: What is 2 + 2?",
    "  #1 [0] coordinator assign: worker_a takes #0 (re #0)",
    "  #2 [1] worker_a result: 4 (re #0)",
    "    #3 [2] reviewer review: correct (re #2)",
    "  #4 [3] coordinator close: closed with #2: 4 (re #0, #2)",
])
check_equal(render_transcript(sample), expected, "render_transcript(sample)")
check_equal(render_transcript(sample[:1]), expected.splitlines()[0], "a one-entry transcript")
check_equal(render_transcript([]), "", "the transcript of an empty scratchpad")
passed("Exercise 3")

# %% [markdown]
# ## Exercise 4: conflicting results

# %% [markdown] tags=["exercise"]
# ### Exercise 4: A conflict rule
#
# A task can end up with several results: a wrong one and a later right one, or two right
# ones from redundant workers. Write `resolve(entries, task_id)` returning the id of the result
# that closes the task, or `None` if none may yet. The rule: among the results whose first
# reference is the task, a result qualifies if it has at least one `accept` review and no
# `reject` review (a reject is a veto); the earliest qualifying result wins. (`verdicts(entries,
# result_id)` lists a result's review verdicts.)

# %% tags=["solution"]
def resolve(entries: list[dict], task_id: int) -> int | None:
    """The earliest result for the task with an accept and no reject review; None if none."""
    # BEGIN SOLUTION
    for result in referencing(entries, "result", task_id):
        votes = verdicts(entries, result["id"])
        if "accept" in votes and "reject" not in votes:
            return result["id"]
    return None
    # END SOLUTION


# %% tags=["check"]
task_row = (0, "coordinator", "task", "What is 2 + 2?", [], {"op": "add", "args": [2, 2]})
other_task = (0, "coordinator", "task", "What is 3 + 3?", [], {"op": "add", "args": [3, 3]})


def result_row(step, author, content, task=0):
    return (step, author, "result", content, [task], None)


def review_row(step, result_id, verdict):
    return (step, "reviewer", "review", verdict, [result_id], {"verdict": verdict})


conflict = pad_of(task_row, other_task, result_row(1, "llm_worker", "5"),
                  result_row(1, "worker_a", "4"), review_row(2, 2, "reject"),
                  review_row(2, 3, "accept"))
check_equal(resolve(conflict, 0), 3, "resolve: a rejected result and an accepted one")
check(resolve(conflict[:4], 0) is None, "resolve", "None before any review")
both = pad_of(task_row, other_task, result_row(1, "worker_a", "4"), result_row(2, "worker_b", "4"),
              review_row(3, 3, "accept"), review_row(3, 2, "accept"))
check_equal(resolve(both, 0), 2, "resolve: two accepted results (the earliest wins)")
vetoed = pad_of(task_row, other_task, result_row(1, "worker_a", "4"), review_row(2, 2, "accept"),
                review_row(2, 2, "reject"))
check(resolve(vetoed, 0) is None, "resolve",
      "None for a result with both an accept and a reject review (a veto)")
elsewhere = pad_of(task_row, other_task, result_row(1, "worker_a", "6", task=1),
                   review_row(2, 2, "accept"))
check(resolve(elsewhere, 0) is None, "resolve", "None when only another task has a result")
check_equal(resolve(elsewhere, 1), 2, "resolve for the other task")
passed("Exercise 4")

# %% [markdown]
# ## The full run
#
# With your four functions in place, run the protocol: the validator on every write, the
# review-based conflict rule, and the stuck detector. Then read the transcript: it is rendered
# from the scratchpad alone, because the scratchpad is the only channel there is.

# %%
full = Policy(validate=validate_entry, resolve=resolve, find_stuck=find_stuck)
pad = run_protocol(full)
print(render_transcript(pad.entries))

# %% [markdown]
# The runtime also kept the writes it refused. They never reached the scratchpad, so no agent
# ever read them; this is the failure case of an invalid write, handled. Below are the model's
# exchanges in full: each reply, and the validator's verdict on it.

# %%
for record in llm_log:
    outcome = record["outcome"]
    print(f"step {record['step']}, task #{record['task']}: {outcome.source}")
    for attempt in outcome.attempts:
        verdict = "accepted" if attempt.error is None else f"rejected: {attempt.error}"
        print(f"    reply {attempt.reply!r}\n      -> {verdict}")
print(f"\n{len(pad.rejected)} writes rejected in total; {client.summary()}")

# %% [markdown]
# Read the two logs together; in this run they show every failure case the protocol is built
# for.
#
# - **Invalid writes.** The model's replies break the protocol in the ways small models
#   typically do: it copies the example's reference (`[1]`) and so answers a task it was not
#   given; asked to correct itself, it invents another entry type with an extra key and no
#   content. Each write is refused with a message that names the broken rule, and the message
#   goes back to the model for its one retry. None of these entries ever reaches the pad.
# - **Valid but wrong.** One reply passes validation (`llm_worker` really was assigned the task
#   it names) with a wrong answer. The reviewer rejects it, the coordinator reassigns the task,
#   and the conflict rule closes it with the accepted result, not with the earlier wrong one.
# - **Stuck agents.** `worker_b` repeats the same note; after three, the no-progress rule flags
#   it and the coordinator terminates it with a note on the pad (which is also how the runtime
#   learns to stop scheduling it) and moves its tasks. `llm_worker`, which went silent after
#   its failed exchanges, is caught later by the step budget and its remaining work moves too.
#
# Every task still ends with an accepted result: the protocol routes around failing agents.

# %% [markdown]
# ## Measured: what each part of the protocol buys
#
# Now the same agents under three policies, each using your code where it applies:
#
# - **no protocol**: every write is accepted as long as it is a JSON object, there is no
#   stuck detection, and the last result posted for a task closes it;
# - **validation only**: your `validate_entry` and `resolve`, no stuck detection;
# - **full protocol**: all of it (the run above).
#
# For each we count the tasks closed within the 12-step budget, the tasks closed with the right
# answer, malformed entries that reached the scratchpad (replayed through your validator), the
# writes refused and the steps used. The model's replies are cached from the run above, so the
# comparison costs no new model calls where the requests repeat.

# %%
def last_result_wins(entries: list[dict], task_id: int) -> int | None:
    results = referencing(entries, "result", task_id)
    return results[-1]["id"] if results else None


def accept_any_object(entry: dict, entries: list[dict]) -> None:
    """No validation at all (the runtime still stamps id, step and author)."""


policies = {
    "no protocol": Policy(accept_any_object, last_result_wins, None),
    "validation only": Policy(validate_entry, resolve, None),
    "full protocol": full,
}
pads = {"full protocol": pad}
for name, policy in policies.items():
    if name not in pads:
        llm_log.clear()
        pads[name] = run_protocol(policy)


def measure(pad: Scratchpad) -> dict[str, int]:
    entries = pad.entries
    malformed = 0
    for i, entry in enumerate(entries):
        try:
            validate_entry(entry, entries[:i])
        except Exception:  # noqa: BLE001 - any failure to validate counts as malformed
            malformed += 1
    closes = of_type(entries, "close")
    correct = 0
    for close in closes:
        task_id, winner = (close["references"] + [None, None])[:2]
        task, answer = entries[task_id], entries[winner] if winner is not None else {}
        correct += str(answer.get("content", "")).strip() == solve(task["data"])
    return {"tasks closed": len(closes), "closed correctly": correct,
            "malformed entries on the pad": malformed, "writes refused": len(pad.rejected),
            "steps used": 1 + max(e["step"] for e in entries)}


results = {name: measure(p) for name, p in pads.items()}
results = {name: results[name] for name in policies}  # in the order of the policies
metrics = list(next(iter(results.values())))
print(f"{'':30s}" + "".join(f"{name:>17s}" for name in results))
for metric in metrics:
    print(f"{metric:30s}" + "".join(f"{results[name][metric]:>17d}" for name in results))
print(f"(out of {len(TASKS)} tasks; {client.summary()})")
print("\nhow the tasks were closed without a protocol:")
loose = pads["no protocol"].entries
for close in of_type(loose, "close"):
    task_id, winner = close["references"][:2]
    print(f"  task #{task_id} ({loose[task_id]['content']}) closed with #{winner} by "
          f"{loose[winner]['author']}: {loose[winner].get('content')!r}; right answer "
          f"{solve(loose[task_id]['data'])!r}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
shown = ["tasks closed", "closed correctly", "malformed entries on the pad", "writes refused"]
width = 0.25
for i, name in enumerate(results):
    axes[0].bar([j + (i - 1) * width for j in range(len(shown))],
                [results[name][m] for m in shown], width, label=name)
axes[0].set_xticks(range(len(shown)), shown, rotation=15, ha="right")
axes[0].axhline(len(TASKS), color="gray", ls=":", lw=1)
axes[0].set(ylabel="count", title=f"Three policies, same agents ({len(TASKS)} tasks, dotted)")
axes[0].legend()

entries = pad.entries
markers = {"task": "s", "assign": ">", "result": "o", "review": "D", "note": "x", "close": "*"}
group_sizes = collections.Counter((e["step"], e["author"]) for e in entries)
seen: collections.Counter = collections.Counter()
offsets = {}
for e in entries:  # spread the entries one agent wrote in one step across the step's width
    key = (e["step"], e["author"])
    offsets[e["id"]] = 0.8 * seen[key] / group_sizes[key]
    seen[key] += 1
for kind, marker in markers.items():
    rows = of_type(entries, kind)
    axes[1].scatter([r["step"] + offsets[r["id"]] for r in rows],
                    [AGENTS.index(r["author"]) for r in rows], marker=marker, s=50, label=kind)
terminations = [e for e in of_type(entries, "note") if "terminate" in e.get("data", {})]
for e in terminations:
    axes[1].axvline(e["step"], color="tab:red", ls="--", lw=1)
refused = pad.rejected
shift = [0.3 + 0.2 * sum(1 for q in refused[:i] if (q["step"], q["author"]) == (r["step"],
                                                                              r["author"]))
         for i, r in enumerate(refused)]
axes[1].scatter([r["step"] + d for r, d in zip(refused, shift)],
                [AGENTS.index(r["author"]) for r in refused],
                marker="X", s=70, color="black", label="refused write (not on the pad)")
axes[1].set_yticks(range(len(AGENTS)), AGENTS)
axes[1].set(xlabel="step", ylabel="author",
            title="Full protocol: who wrote what, when (dashed: a termination)")
axes[1].legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.2))
plt.tight_layout()
plt.show()

# %% [markdown]
# What the table shows, part by part:
#
# - **Validation** keeps the scratchpad clean. With no protocol, the model's first reply, a
#   result for a task it was not assigned, lands on the pad, and because the last result wins,
#   it closes that task with a wrong answer; so does its valid-looking but wrong result. With
#   validation the first is refused at the door (and the model is told why), and the second is
#   vetoed by the review.
# - **The conflict rule** closes a task only with a reviewed, accepted result, so every task
#   closed under the two protocol policies is closed correctly.
# - **The stuck detector** is what gets the work of hanging agents done: with validation only,
#   the tasks held by `worker_b` and the silent `llm_worker` stay open until the 12-step budget
#   runs out. The budget itself is the last line of defence: every run stops.
#
# The counts come from what the model wrote in this run; the printed table is the measurement.

# %% [markdown]
# ## Summary
#
# - A scratchpad protocol is a shared, append-only log with a schema. The runtime stamps id,
#   step and author; the agent supplies the rest; every write is validated, and refused writes
#   come back to the writer as errors.
# - JSON Schema checks shape (required keys, types, enums, conditional rules); semantic rules
#   (append-only ids, existing references, who may post what) need code.
# - A step budget and a no-progress rule detect stuck agents; reassignment and termination,
#   written to the scratchpad, let the rest of the team recover.
# - An explicit conflict rule (accepted, not vetoed, earliest) decides between results, so the
#   outcome does not depend on the order of arrival.
# - The transcript is a pure function of the scratchpad: what is not on the pad did not happen.
#
# ## References
#
# - S. Hong et al., "MetaGPT: meta programming for a multi-agent collaborative framework"
#   (structured outputs and a shared message pool), 2023. https://arxiv.org/abs/2308.00352
# - C. Qian et al., "ChatDev: communicative agents for software development", 2023.
#   https://arxiv.org/abs/2307.07924
# - Q. Wu et al., "AutoGen: enabling next-gen LLM applications via multi-agent conversation",
#   2023. https://arxiv.org/abs/2308.08155
# - J. S. Park et al., "Generative agents: interactive simulacra of human behavior", UIST 2023.
#   https://arxiv.org/abs/2304.03442
# - S. Yao et al., "ReAct: synergizing reasoning and acting in language models", ICLR 2023.
#   https://arxiv.org/abs/2210.03629
# - Significant Gravitas, AutoGPT. https://github.com/Significant-Gravitas/AutoGPT
# - CrewAI documentation (tasks and guardrails). https://docs.crewai.com/concepts/tasks
# - LangGraph documentation (shared state, reducers, checkpoints).
#   https://langchain-ai.github.io/langgraph/
# - H. P. Nii, "Blackboard systems", AI Magazine 7(2), 1986.
#   https://doi.org/10.1609/aimag.v7i2.537
# - JSON Schema, Draft 2020-12. https://json-schema.org/draft/2020-12 ; the Python `jsonschema`
#   package. https://python-jsonschema.readthedocs.io/
