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
# # What a language model is: next-token prediction, step by step
#
# A large language model (LLM) is a neural network trained to do one thing: given a sequence of
# tokens, output a probability for every possible next token. Everything else, from writing
# essays to answering questions, is built by running that one prediction over and over. The
# pipeline has three parts: a **tokenizer** turns text into integer ids, the **model** turns
# the ids into scores (*logits*) for the next token, and a **decoder** turns the scores into a
# choice, which is appended to the input before the next round. This notebook runs the pipeline
# by hand, one step at a time, on the course's own small model, then on a real instruction-tuned
# model, so that every later module has a concrete picture to refer to.
#
# **Learning objectives**
# - State what a language model computes: $P(x_{t+1} \mid x_1, \dots, x_t)$ over a vocabulary.
# - Run the tokenizer, model and decoder by hand: encode a prompt, turn logits into
#   probabilities with a softmax, read the top candidates, append a token, repeat.
# - Compare greedy decoding with sampling, and explain why greedy text repeats itself.
# - Contrast a character-level tokenizer with the byte-pair encoding (BPE) of a real model, and
#   read the top candidates of SmolLM2-135M-Instruct.
#
# **Prerequisites:** [Probability](../00-foundations/02-probability) (softmax, temperature,
# sampling) and [PyTorch](../00-foundations/04-pytorch-and-autograd) (tensors). The model's
# insides (attention, layers) are the subject of module 02; here it is a function from ids to
# logits.
#
# **Estimated time:** 40 minutes.

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
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import shared
from shared.assets import chat_model, chat_tokenizer
from shared.checkpoints import course_model, course_model_info, course_tokenizer
from shared.generation import generate, generate_with_trace, next_token_probs

shared.seed_everything(0)
# Small models, one sequence at a time: one thread does nearly as well as two, and stays fast
# when other programs share the CPU.
torch.set_num_threads(1)
print(shared.environment_summary("numpy", "transformers"))
# transformers imports tqdm, which warns that ipywidgets (Jupyter progress bars) is absent.
warnings.filterwarnings("ignore", message="IProgress not found")

# %% [markdown]
# ## The course model
#
# The course trains its own small GPT once (`make models`; module 05 shows how) and ships it:
# a 6-layer transformer trained on tiny Shakespeare, 1.1 million characters of the plays, to
# predict the next **character**. Here is what it is and how it was made.

# %%
model = course_model("shakespeare-char")
tokenizer = course_tokenizer("shakespeare-char")
info = course_model_info("shakespeare-char")
config = model.config
print(f"{model.num_parameters():,} parameters: {config.n_layer} layers, {config.n_head} heads, "
      f"width {config.d_model}, context {config.block_size} characters")
print(f"vocabulary: {tokenizer.vocab_size} characters: {''.join(tokenizer.chars)!r}")
print(f"trained for {info['train_config']['max_steps']} steps; validation loss "
      f"{info['final_val_loss']:.3f} nats per character")

# %% [markdown]
# ## Step 1: the tokenizer
#
# A model reads integers, not text. The tokenizer maps each piece of text to an id in a fixed
# vocabulary; this model's pieces are single characters, sorted, so its vocabulary has 65
# entries. (Real LLMs use larger pieces; we come back to this with SmolLM2 below.)

# %%
prompt = "ROMEO:\nBut soft, what light"
prompt_ids = tokenizer.encode(prompt)
print(pd.DataFrame({"character": [repr(c)[1:-1] for c in prompt], "id": prompt_ids}).T.to_string(header=False))
print("decode(encode(prompt)) == prompt:", tokenizer.decode(prompt_ids) == prompt)

# %% [markdown]
# ## Step 2: the model, from ids to probabilities
#
# The model takes the ids, shape `(batch, T)`, and returns logits of shape
# `(batch, T, vocab)`: at every position $t$, one score per vocabulary entry for the token at
# position $t + 1$. (Training uses all positions at once; generation needs only the last.) A
# softmax turns the last position's scores into a probability distribution:
#
# $$P(x_{T+1} = v \mid x_1, \dots, x_T) = \frac{e^{z_v}}{\sum_{u} e^{z_u}}.$$

# %%
ids = torch.tensor([prompt_ids])
with torch.no_grad():
    logits = model(ids).logits
print("input shape:", tuple(ids.shape), "-> logits shape:", tuple(logits.shape))
probs = torch.softmax(logits[0, -1], dim=-1)
top = probs.topk(5)
print(f"after {prompt!r}, the 5 most likely next characters:")
for p, i in zip(top.values, top.indices):
    print(f"  {tokenizer.decode([int(i)])!r:6s} {p:.3f}")
print(f"probabilities sum to {probs.sum():.6f}")

# %%
fig, ax = plt.subplots(figsize=(10, 3.5))
order = probs.argsort(descending=True)
ax.bar(range(tokenizer.vocab_size), probs[order].numpy())
ax.set_xticks(range(tokenizer.vocab_size),
              [{" ": "sp", "\n": "\\n"}.get(tokenizer.chars[i], tokenizer.chars[i]) for i in order],
              fontsize=7)
ax.set(yscale="log", xlabel="next character, sorted by probability (sp = space, \\n = newline)",
       ylabel="probability (log)",
       title=f"The model's distribution for the character after {prompt[-10:]!r}")
plt.tight_layout()
plt.show()

# %% [markdown]
# Every character gets some probability; a few get almost all of it. The model is not looking
# anything up: these numbers are what its weights compute from the 27 characters it was given.
#
# ## Step 3: the decoder, one token at a time
#
# Generating text is a loop: compute the distribution, choose a token, append it, repeat. The
# simplest choice is **greedy**: always the most likely token. We run ten steps by hand and
# record the top five candidates at each.

# %%
N_STEPS, TOP = 10, 5
ids = torch.tensor([prompt_ids])
steps = []
for step in range(N_STEPS):
    with torch.no_grad():
        step_probs = torch.softmax(model(ids).logits[0, -1], dim=-1)
    best = step_probs.topk(TOP)
    choice = int(best.indices[0])  # greedy: the most likely token
    steps.append([(tokenizer.decode([int(i)]), float(p)) for p, i in zip(best.values, best.indices)])
    ids = torch.cat([ids, torch.tensor([[choice]])], dim=1)
greedy_by_hand = tokenizer.decode(ids[0])
print(repr(greedy_by_hand))

table = pd.DataFrame([[f"{c!r} {p:.2f}" for c, p in row] for row in steps],
                     columns=[f"#{k + 1}" for k in range(TOP)], index=range(1, N_STEPS + 1))
table.index.name = "step"
table

# %%
fig, ax = plt.subplots(figsize=(8, 5.5))
matrix = np.array([[p for _, p in row] for row in steps])
im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1, aspect="auto")
for s, row in enumerate(steps):
    for k, (c, p) in enumerate(row):
        ax.text(k, s, f"{c!r}\n{p:.2f}", ha="center", va="center", fontsize=8,
                color="white" if p > 0.6 else "black")
ax.set_xticks(range(TOP), [f"#{k + 1}" for k in range(TOP)])
ax.set_yticks(range(N_STEPS), [f"step {s + 1}" for s in range(N_STEPS)])
ax.set(xlabel="candidate rank", ylabel="decoding step",
       title="Top candidates at each greedy step (the first column is chosen)")
fig.colorbar(im, ax=ax, label="probability")
plt.tight_layout()
plt.show()

# %% [markdown]
# The model is sure of some steps and unsure of others. Inside a word one letter often
# dominates: after "stan" comes "d" with probability 0.95 (step 10), after " t" comes "h" with
# 0.72 (step 3). Where a new word begins, many letters are plausible and the top candidate has
# little more than the others: 0.13 at step 2, 0.09 at step 6. Greedy decoding takes the first
# column however small its lead. Every later step is conditioned on those choices, which is how
# a model commits to one of many possible texts.
#
# `shared.generation.generate_with_trace` runs the same loop (with a KV cache, which stores past
# computations so that each step feeds one new token; module 11 explains it) and records the
# same candidates. It must agree with our hand-written loop:

# %%
trace = generate_with_trace(model, torch.tensor([prompt_ids]), N_STEPS, top=TOP)
print("same tokens as the loop above:", tokenizer.decode(trace.tokens[0]) == greedy_by_hand)
max_diff = max(abs(p - q) for step, row in zip(trace.steps, steps)
               for p, (_, q) in zip(step.top_probs, row))
print(f"largest difference in the top-5 probabilities: {max_diff:.2e}")

# %% [markdown]
# ## Greedy against sampling
#
# Greedy decoding is deterministic and tends to loop: once a likely phrase appears, it stays
# likely. **Sampling** draws the next token from the distribution instead, with a
# *temperature* $\tau$ that divides the logits first ($\tau < 1$ sharpens, $\tau > 1$ flattens;
# [probability](../00-foundations/02-probability)). We continue the prompt for 220 characters
# both ways (sampling with a fixed seed, so the output is reproducible).

# %%
N_CHARS = 220  # prompt + 220 fits the 256-character context
prompt_tensor = torch.tensor([prompt_ids])
greedy = tokenizer.decode(generate(model, prompt_tensor, N_CHARS)[0])
sampled = tokenizer.decode(generate(model, prompt_tensor, N_CHARS, do_sample=True, temperature=0.8,
                                    generator=torch.Generator().manual_seed(0))[0])
print("=== greedy ===\n" + greedy + "\n")
print("=== sampled, temperature 0.8 ===\n" + sampled)


def repeated_share(text: str, n: int = 3) -> float:
    """Share of the text's word n-grams that already occurred earlier in the text."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return sum(g in grams[:i] for i, g in enumerate(grams)) / len(grams)


for name, text in [("greedy", greedy), ("sampled", sampled)]:
    print(f"{name:8s}: {repeated_share(text[len(prompt):]):.0%} of its word trigrams repeat an "
          "earlier one")

# %% [markdown]
# The greedy text is made of well-formed, frequent phrases and keeps returning to them ("of the
# world", "of the country"): 14% of its word trigrams repeat an earlier one, and none of the
# sampled text's do. Sampling produces more varied text, with more invented words ("Monthumberlous") and
# less coherence: the temperature sets the balance (Holtzman et al., 2020, analyse why
# likelihood-maximising decoding degenerates into repetition).
#
# ## The same pipeline in a real model: SmolLM2
#
# SmolLM2-135M-Instruct (Ben Allal et al., 2025) is a 135M-parameter transformer trained on
# 2 trillion tokens and then fine-tuned to follow instructions. Its pipeline has the same three
# parts, with one difference at the first step: its tokenizer is a byte-pair encoding (BPE) of
# 49,152 tokens, most of them whole words or pieces of words (module 03 builds one). Here is a
# sentence in its tokens; `Ġ` marks a leading space.

# %%
smol, smol_tok = chat_model(), chat_tokenizer()
sentence = "Language models predict the next token, one step at a time."
pieces = smol_tok.tokenize(sentence)
print(f"{len(sentence)} characters -> {len(pieces)} tokens: {pieces}")
print(f"the course model would need {len(sentence)} steps to write it, SmolLM2 {len(pieces)}")
print(f"parameters: course model {model.num_parameters():,}, SmolLM2 "
      f"{sum(p.numel() for p in smol.parameters()):,}")

# %% [markdown]
# We run the same greedy loop on SmolLM2 as a plain language model (no chat template), from a
# factual prompt, and print the top five candidates at each step.

# %%
smol_prompt = "The capital of France is"
smol_ids = smol_tok(smol_prompt, return_tensors="pt").input_ids
rows = []
for step in range(8):
    with torch.no_grad():
        step_probs = torch.softmax(smol(smol_ids).logits[0, -1], dim=-1)
    best = step_probs.topk(TOP)
    rows.append([f"{smol_tok.decode([int(i)])!r} {float(p):.2f}" for p, i in zip(best.values, best.indices)])
    smol_ids = torch.cat([smol_ids, best.indices[:1].view(1, 1)], dim=1)
print(repr(smol_tok.decode(smol_ids[0])))
smol_table = pd.DataFrame(rows, columns=[f"#{k + 1}" for k in range(TOP)], index=range(1, 9))
smol_table.index.name = "step"
smol_table

# %% [markdown]
# At the first step SmolLM2 puts 0.77 of its probability on " Paris": the fact is in its
# weights. After the period, nothing tells a plain language model to stop, so it goes on
# writing whatever text commonly follows such a sentence ("The answer is:"), with probability
# spread thin where many continuations fit (step 6: the top token has 0.04).
#
# An instruction-tuned model is used through a **chat template**: the conversation is written
# out with special tokens that mark who is speaking, and the decoder stops when the model emits
# the end-of-turn token. It is still the same loop:

# %%
messages = [{"role": "user", "content": "What is the capital of France?"}]
chat_text = smol_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
print(chat_text)
chat_ids = smol_tok(chat_text, return_tensors="pt", add_special_tokens=False).input_ids
end_of_turn = smol_tok.convert_tokens_to_ids("<|im_end|>")
with torch.no_grad():
    out = smol.generate(chat_ids, attention_mask=torch.ones_like(chat_ids), max_new_tokens=30,
                        do_sample=False, eos_token_id=end_of_turn, pad_token_id=smol_tok.pad_token_id)
print("reply:", repr(smol_tok.decode(out[0, chat_ids.shape[1] :], skip_special_tokens=True)))
print(f"{out.shape[1] - chat_ids.shape[1]} tokens generated; the last is <|im_end|>:",
      int(out[0, -1]) == end_of_turn)

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to complete and a check cell. Run the check after your solution; it
# says what was expected if something is off.

# %% [markdown] tags=["exercise"]
# ### Exercise 1: Temperature and top-k by hand
#
# Write `sampling_distribution(logits, temperature, top_k)`: divide the logits by the
# temperature, keep only the `top_k` largest (set the others to $-\infty$), and return the
# softmax. The check compares it with `shared.generation.next_token_probs` on the course
# model's logits.

# %% tags=["solution"]
def sampling_distribution(logits: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    """Softmax of logits / temperature, restricted to the top_k largest logits."""
    # BEGIN SOLUTION
    scaled = logits / temperature
    kth = scaled.topk(top_k).values[..., -1:]
    return torch.softmax(scaled.masked_fill(scaled < kth, float("-inf")), dim=-1)
    # END SOLUTION


# %% tags=["check"]
from shared.exercises import check, check_close, check_equal, passed

last_logits = logits[0, -1]
for temperature, top_k in [(1.0, 5), (0.5, 10), (2.0, 65)]:
    check_close(sampling_distribution(last_logits, temperature, top_k),
                next_token_probs(last_logits, temperature=temperature, top_k=top_k),
                f"sampling_distribution(temperature={temperature}, top_k={top_k})", atol=1e-6)
check(int((sampling_distribution(last_logits, 1.0, 3) > 0).sum()) == 3, "sampling_distribution",
      "exactly 3 non-zero probabilities with top_k=3")
passed("Exercise 1")

# %% [markdown] tags=["exercise"]
# ### Exercise 2: A greedy decoder
#
# Write `greedy_decode(model, ids, n)` that appends `n` tokens to `ids` (shape `(1, T)`), each
# the argmax of the model's logits at the last position, and returns the extended tensor. Feed
# the whole sequence each step (no cache). The check compares it with
# `shared.generation.generate`.

# %% tags=["solution"]
def greedy_decode(model: torch.nn.Module, ids: torch.Tensor, n: int) -> torch.Tensor:
    """Extend ids by n greedy tokens."""
    # BEGIN SOLUTION
    for _ in range(n):
        with torch.no_grad():
            next_id = model(ids).logits[:, -1].argmax(dim=-1, keepdim=True)
        ids = torch.cat([ids, next_id], dim=1)
    return ids
    # END SOLUTION


# %% tags=["check"]
for text in ["JULIET:\n", "First Citizen:\nWe"]:
    start = torch.tensor([tokenizer.encode(text)])
    check_equal(greedy_decode(model, start, 15), generate(model, start, 15),
                f"greedy_decode from {text!r}")
passed("Exercise 2")

# %% [markdown] tags=["exercise"]
# ### Exercise 3: The probability of a whole continuation
#
# By the chain rule, a model assigns a continuation $y_1 \dots y_n$ of a prompt the probability
# $\prod_i P(y_i \mid \text{prompt}, y_{<i})$. Write `continuation_logprob(prompt, continuation)`:
# the natural log of that probability under the course model, computed with **one** forward
# pass over prompt + continuation. Then set `more_likely` to whichever of `" light"` and
# `" fight"` the model finds more likely after `"But soft, what"`.

# %% tags=["solution"]
def continuation_logprob(prompt: str, continuation: str) -> float:
    """log P(continuation | prompt) under the course model, from one forward pass."""
    # BEGIN SOLUTION
    ids = torch.tensor([tokenizer.encode(prompt + continuation)])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0], dim=-1)
    start = len(prompt)
    targets = ids[0, start:]
    return float(logprobs[start - 1 : -1].gather(1, targets[:, None]).sum())
    # END SOLUTION


more_likely = None
# BEGIN SOLUTION
more_likely = max([" light", " fight"], key=lambda c: continuation_logprob("But soft, what", c))
# END SOLUTION
print("more likely after 'But soft, what':", more_likely)

# %% tags=["check"]
manual, context = 0.0, "But soft, what"
for ch in " light":
    with torch.no_grad():
        step_logits = model(torch.tensor([tokenizer.encode(context)])).logits[0, -1]
    manual += float(torch.log_softmax(step_logits, dim=-1)[tokenizer.encode(ch)[0]])
    context += ch
check_close(continuation_logprob("But soft, what", " light"), manual, "continuation_logprob",
            rtol=1e-4, atol=1e-4)
check_equal(more_likely, max([" light", " fight"], key=lambda c: continuation_logprob("But soft, what", c)),
            "more_likely")
passed("Exercise 3")

# %% [markdown]
# ## Summary
#
# - A language model maps a sequence of token ids to a probability for every possible next
#   token. Generation is a loop: tokenizer, model, softmax, a decoding choice, append, repeat.
# - The top candidates show how sure the model is at each step: nearly certain inside a word,
#   spread over many options where a word begins. Decoding turns these distributions into one
#   text.
# - Greedy decoding always takes the top candidate and tends to repeat itself; sampling with a
#   temperature trades some coherence for variety.
# - Real LLMs run the same loop with a subword tokenizer (SmolLM2: 49,152 BPE tokens), far more
#   parameters and far more training data; an instruction-tuned model adds a chat template and
#   stops at its end-of-turn token.
#
# Next: [the scale of LLMs](02-scale): what "large" means in parameters, data and compute.
#
# ## References
#
# - A. Vaswani et al., "Attention is all you need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
# - A. Radford et al., "Improving language understanding by generative pre-training" (GPT),
#   2018. https://cdn.openai.com/research-covers/language-unsupervised/language_understanding_paper.pdf
# - T. Brown et al., "Language models are few-shot learners", NeurIPS 2020.
#   https://arxiv.org/abs/2005.14165
# - A. Holtzman et al., "The curious case of neural text degeneration", ICLR 2020 (why greedy
#   and beam search repeat themselves). https://arxiv.org/abs/1904.09751
# - R. Sennrich, B. Haddow, A. Birch, "Neural machine translation of rare words with subword
#   units" (BPE), ACL 2016. https://arxiv.org/abs/1508.07909
# - L. Ben Allal et al., "SmolLM2: when smol goes big", 2025. https://arxiv.org/abs/2502.02737
# - A. Karpathy, nanoGPT (the shakespeare_char setup this course's model follows).
#   https://github.com/karpathy/nanoGPT
# - J. Alammar, "The illustrated transformer". https://jalammar.github.io/illustrated-transformer/
# - D. Jurafsky, J. H. Martin, *Speech and Language Processing*, 3rd ed. draft, chapter 3
#   (n-gram language models) and chapter 10 (large language models).
#   https://web.stanford.edu/~jurafsky/slp3/
