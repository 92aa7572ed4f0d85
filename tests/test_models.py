"""`shared.models`: the configurable GPT against references.

References: torch's cross-entropy; manual attention vs `scaled_dot_product_attention`; GQA vs an
MHA whose key/value heads are copies; RoPE vs complex multiplication; ALiBi slopes vs the
paper's values; sinusoidal table vs its formula; FLOPs vs `torch.utils.flop_counter`; and, with
weights copied across, Hugging Face `GPT2LMHeadModel` and `LlamaForCausalLM`.
"""

from __future__ import annotations

import json
import math
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from shared.layers import FeedForward, alibi_slopes, apply_rope, rope_cos_sin, sinusoidal_positions
from shared.models import GPT, CausalSelfAttention, GPTConfig, KVCache

VOCAB = 53


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides: object) -> GPTConfig:
    settings: dict = dict(vocab_size=VOCAB, block_size=32, n_layer=2, n_head=4, d_model=32)
    settings.update(overrides)
    return GPTConfig(**settings)


def model_for(config: GPTConfig, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(config).eval()


def tokens(batch: int, length: int, seed: int = 1, vocab: int = VOCAB) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(d_model=30), "divisible by n_head"),
        (dict(n_kv_head=3), "divisible by n_kv_head"),
        (dict(n_kv_head=0), "n_kv_head must be"),
        (dict(norm="batchnorm"), "norm must be one of"),
        (dict(norm_position="middle"), "norm_position must be one of"),
        (dict(pos_encoding="xpos"), "pos_encoding must be one of"),
        (dict(activation="tanh"), "activation must be one of"),
        (dict(attention_impl="flash"), "attention_impl must be one of"),
        (dict(dropout=1.0), "dropout must be in"),
        (dict(vocab_size=0), "vocab_size must be a positive int"),
        (dict(block_size=2.5), "block_size must be a positive int"),
        (dict(d_ff=-1), "d_ff must be"),
        (dict(rope_theta=0.0), "rope_theta"),
        (dict(norm_eps=0.0), "norm_eps"),
        (dict(bias="yes"), "bias must be a bool"),
        (dict(pos_encoding="rope", n_head=32), "even head dimension"),
        (dict(moe_layers=(0, 2)), "moe_layers must be distinct layer indices in \\[0, 2\\)"),
        (dict(moe_layers=(1, 1)), "moe_layers must be distinct"),
        (dict(moe={"num_experts": 4}), "moe_layers is empty"),
        (dict(moe_layers=(0,), moe=[4]), "moe must be None or a dict"),
    ],
)
def test_config_rejects_bad_values(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(**overrides)


def test_config_defaults_and_json_round_trip() -> None:
    assert tiny().n_kv_head == 4 and tiny().d_ff == 128
    assert tiny(activation="swiglu").d_ff == 128  # 8/3 * 32 = 85.3, rounded up to a multiple of 64
    assert GPTConfig(activation="swiglu").d_ff == 2048  # 8/3 * 768
    config = tiny(
        n_kv_head=2, pos_encoding="rope", moe_layers=[1], moe={"num_experts": 4, "top_k": 2}
    )
    assert config.moe_layers == (1,)
    restored = GPTConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    with pytest.raises(ValueError, match="unknown GPTConfig keys \\['n_embd'\\]"):
        GPTConfig.from_dict({**config.to_dict(), "n_embd": 32})


# --- forward pass and bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(pos_encoding="sinusoidal", norm_position="post", activation="relu"),
        dict(
            pos_encoding="rope",
            norm="rmsnorm",
            activation="swiglu",
            n_kv_head=2,
            bias=False,
            tie_embeddings=False,
        ),
        dict(pos_encoding="alibi", n_kv_head=1, attention_impl="manual"),
    ],
)
def test_forward_loss_is_cross_entropy_and_trains(overrides: dict) -> None:
    model = model_for(tiny(**overrides)).train()
    idx = tokens(3, 16)
    targets = tokens(3, 16, seed=2)
    targets[0, :4] = -100  # ignored positions
    out = model(idx, targets)
    assert out.logits.shape == (3, 16, VOCAB) and out.aux_loss is None and out.cache is None
    valid = targets.view(-1) != -100
    expected = F.cross_entropy(out.logits.view(-1, VOCAB)[valid], targets.view(-1)[valid])
    torch.testing.assert_close(out.loss, expected)
    assert abs(out.loss.item() - math.log(VOCAB)) < 0.2  # small init: close to uniform
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = model(idx, targets).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model(idx, targets).loss.item() < 0.5 * out.loss.item()
    assert model(idx, logits_to_keep=2).logits.shape == (3, 2, VOCAB)


def test_forward_rejects_bad_input() -> None:
    model = model_for(tiny())
    idx = tokens(2, 8)
    with pytest.raises(ValueError, match="integer tensor of shape \\(B, T\\)"):
        model(idx.float())
    with pytest.raises(ValueError, match="integer tensor of shape \\(B, T\\)"):
        model(idx[0])
    with pytest.raises(ValueError, match="at least one token"):
        model(idx[:, :0])
    with pytest.raises(ValueError, match=f"idx must lie in \\[0, vocab_size={VOCAB}\\)"):
        model(torch.tensor([[1, VOCAB]]))
    with pytest.raises(ValueError, match="idx must lie in"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match="exceeds block_size=32"):
        model(tokens(1, 33))
    with pytest.raises(ValueError, match="targets must be an integer tensor of the shape of idx"):
        model(idx, idx[:, :-1])
    with pytest.raises(ValueError, match="targets must be an integer tensor"):
        model(idx, idx.float())
    with pytest.raises(ValueError, match="targets must lie in"):
        model(idx, torch.full_like(idx, VOCAB))
    with pytest.raises(ValueError, match="logits_to_keep cannot be combined with targets"):
        model(idx, idx, logits_to_keep=1)
    with pytest.raises(ValueError, match="logits_to_keep must be in \\[1, T=8\\]"):
        model(idx, logits_to_keep=9)
    with pytest.raises(ValueError, match="this call needs 2 layers x batch 2"):
        model(idx, cache=model.new_cache(1))
    with pytest.raises(TypeError, match="cache must be a KVCache"):
        model(idx, cache={})
    cache = model.new_cache(2)
    model(tokens(2, 30), cache=cache)
    with pytest.raises(ValueError, match="\\(30 cached \\+ 3 new\\) exceeds block_size=32"):
        model(idx[:, :3], cache=cache)
    with pytest.raises(TypeError, match="config must be a GPTConfig"):
        GPT({"vocab_size": 10})


def test_kv_cache_bookkeeping_and_errors() -> None:
    cache = KVCache(2, 3, 2, 4, 5)
    assert cache.memory_bytes() == 2 * 2 * 3 * 2 * 5 * 4 * 4
    k = torch.randn(3, 2, 2, 4)
    keys, values = cache.update(0, k, k + 1)
    torch.testing.assert_close(keys, k)
    cache.advance(2)
    keys, _ = cache.update(0, k[:, :, :1], k[:, :, :1])
    assert keys.shape == (3, 2, 3, 4)
    torch.testing.assert_close(keys[:, :, :2], k)
    cache.reorder(torch.tensor([2, 2, 0, 1]))
    assert cache.batch_size == 4
    torch.testing.assert_close(cache.keys[0, 0, :, :2], k[2])
    cache.crop(1)
    assert cache.length == 1
    with pytest.raises(ValueError, match="expected k and v of shape"):
        cache.update(0, k, k)
    with pytest.raises(ValueError, match="KVCache is full"):
        cache.update(0, torch.randn(4, 2, 5, 4), torch.randn(4, 2, 5, 4))
    with pytest.raises(ValueError, match="crop length must be in \\[0, 1\\]"):
        cache.crop(2)
    with pytest.raises(ValueError, match="cannot advance"):
        cache.advance(5)
    with pytest.raises(ValueError, match="batch_indices must lie in"):
        cache.reorder(torch.tensor([4]))
    with pytest.raises(ValueError, match="positive ints"):
        KVCache(2, 0, 2, 4, 5)
    with pytest.raises(ValueError, match="max_length must be in \\[1, block_size=32\\]"):
        model_for(tiny()).new_cache(1, 33)


# --- attention -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(pos_encoding="rope", n_kv_head=2),
        dict(pos_encoding="alibi", n_kv_head=1),
        dict(pos_encoding="sinusoidal", norm_position="post"),
    ],
)
def test_manual_attention_matches_sdpa(overrides: dict) -> None:
    sdpa = model_for(tiny(**overrides))
    manual = GPT(tiny(**overrides, attention_impl="manual")).eval()
    manual.load_state_dict(sdpa.state_dict())
    idx = tokens(2, 20)
    torch.testing.assert_close(manual(idx).logits, sdpa(idx).logits, rtol=0, atol=1e-5)
    # The cached path: a prefix, then a chunk of several tokens (masked), then single tokens.
    for model in (sdpa, manual):
        cache = model.new_cache(2)
        pieces = [model(idx[:, :8], cache=cache).logits, model(idx[:, 8:15], cache=cache).logits]
        pieces += [model(idx[:, t : t + 1], cache=cache).logits for t in range(15, 20)]
        torch.testing.assert_close(torch.cat(pieces, dim=1), sdpa(idx).logits, rtol=0, atol=1e-5)


def test_attention_module_matches_explicit_formula() -> None:
    torch.manual_seed(0)
    attn = CausalSelfAttention(tiny(attention_impl="manual")).eval()
    x = torch.randn(2, 6, 32)
    q, k, v = (t.view(2, 6, 4, 8).transpose(1, 2) for t in attn.qkv(x).split(32, dim=-1))
    scores = q @ k.transpose(-2, -1) / math.sqrt(8)
    scores = scores + torch.full((6, 6), float("-inf")).triu(1)
    expected = attn.proj((torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(2, 6, 32))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_kv_head", [1, 2])
def test_gqa_equals_mha_with_repeated_key_value_heads(n_kv_head: int) -> None:
    """A GQA layer is an MHA layer whose key/value projections are copies within each group."""
    torch.manual_seed(0)
    gqa = CausalSelfAttention(tiny(n_kv_head=n_kv_head)).eval()
    mha = CausalSelfAttention(tiny()).eval()
    head_dim, group = 8, 4 // n_kv_head
    wq, wk, wv = gqa.qkv.weight.split([32, n_kv_head * head_dim, n_kv_head * head_dim])
    bq, bk, bv = gqa.qkv.bias.split([32, n_kv_head * head_dim, n_kv_head * head_dim])

    def repeat(
        t: torch.Tensor,
    ) -> torch.Tensor:  # (n_kv_head * head_dim, ...) -> (n_head * head_dim, ...)
        return (
            t.reshape(n_kv_head, head_dim, *t.shape[1:])
            .repeat_interleave(group, dim=0)
            .reshape(32, *t.shape[1:])
        )

    with torch.no_grad():
        mha.qkv.weight.copy_(torch.cat([wq, repeat(wk), repeat(wv)]))
        mha.qkv.bias.copy_(torch.cat([bq, repeat(bk), repeat(bv)]))
        mha.proj.load_state_dict(gqa.proj.state_dict())
    x = torch.randn(3, 10, 32)
    torch.testing.assert_close(gqa(x), mha(x), rtol=1e-5, atol=1e-6)
    assert gqa.qkv.weight.shape[0] == (4 + 2 * n_kv_head) * head_dim


def test_gqa_shrinks_the_kv_cache() -> None:
    sizes = {kv: model_for(tiny(n_kv_head=kv)).new_cache(1).memory_bytes() for kv in (4, 2, 1)}
    assert sizes[4] == 2 * sizes[2] == 4 * sizes[1]


# --- position encodings --------------------------------------------------------------------------


def test_rope_matches_complex_rotation() -> None:
    torch.manual_seed(0)
    T, d, theta = 7, 16, 500.0
    x = torch.randn(2, 3, T, d)
    cos, sin = rope_cos_sin(T, d, theta)
    ours = apply_rope(x, cos, sin)
    # Channels i and i + d/2 form the complex number x_i + j x_{i+d/2}; rotate it by p * w_i.
    z = torch.complex(x[..., : d // 2].double(), x[..., d // 2 :].double())
    freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    rotated = z * torch.polar(
        torch.ones(T, d // 2, dtype=torch.float64), torch.arange(T)[:, None] * freqs
    )
    expected = torch.cat([rotated.real, rotated.imag], dim=-1).float()
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    # The property RoPE exists for: q.k depends only on the offset between positions.
    q, k = torch.randn(d), torch.randn(d)
    cos, sin = rope_cos_sin(20, d, theta)
    dots = [
        (
            apply_rope(q.expand(20, d), cos, sin)[m] @ apply_rope(k.expand(20, d), cos, sin)[m - 3]
        ).item()
        for m in (3, 9, 19)
    ]
    assert max(dots) - min(dots) < 1e-4
    with pytest.raises(ValueError, match="even head_dim"):
        rope_cos_sin(4, 7)
    with pytest.raises(ValueError, match="cos/sin of shape \\(T, head_dim\\)"):
        apply_rope(x, cos, sin)


def test_alibi_slopes_follow_press_et_al() -> None:
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0**-i for i in range(1, 9)]))
    torch.testing.assert_close(
        alibi_slopes(16), torch.tensor([2.0 ** (-i / 2) for i in range(1, 17)])
    )
    # 12 heads: the 8-head slopes, then every other one of the 16-head sequence.
    expected12 = [2.0**-i for i in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected12))
    torch.testing.assert_close(alibi_slopes(1), torch.tensor([2.0**-8]))
    with pytest.raises(ValueError, match="n_head must be a positive int"):
        alibi_slopes(0)


def test_alibi_bias_in_the_model() -> None:
    model = model_for(tiny(pos_encoding="alibi"))
    offset, T = 3, 4
    mask = model._attention_mask(T, offset, torch.device("cpu"))
    slopes = alibi_slopes(4)
    for h in range(4):
        for i in range(T):
            for j in range(offset + T):
                expected = -slopes[h] * (offset + i - j) if j <= offset + i else float("-inf")
                assert mask[h, i, j] == pytest.approx(expected)


def test_sinusoidal_table_matches_formula() -> None:
    table = sinusoidal_positions(10, 6, base=100.0)
    for p in range(10):
        for i in range(3):
            angle = p / 100.0 ** (2 * i / 6)
            assert table[p, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[p, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    with pytest.raises(ValueError, match="even dim"):
        sinusoidal_positions(10, 5)


def test_positions_change_the_output() -> None:
    """Each encoding makes the model order-aware: swapping two tokens changes the last logits."""
    idx = tokens(1, 8)
    swapped = idx.clone()
    swapped[0, [0, 1]] = idx[0, [1, 0]]
    for pos in ("learned", "sinusoidal", "rope", "alibi"):
        model = model_for(tiny(pos_encoding=pos, n_layer=1))
        assert not torch.allclose(
            model(idx).logits[0, -1], model(swapped).logits[0, -1], atol=1e-6
        ), pos


# --- equivalence with Hugging Face transformers --------------------------------------------------


def test_matches_transformers_gpt2() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf_config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=4,
        activation_function="gelu",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    hf = GPT2LMHeadModel(hf_config).eval()
    ours = GPT.from_huggingface(hf)
    assert ours.config == tiny()  # a GPT-2-shaped config is our default one
    idx = tokens(2, 32)
    with torch.no_grad():
        expected = hf(idx, labels=idx)
    out = ours(idx[:, :-1], idx[:, 1:])
    torch.testing.assert_close(ours(idx).logits, expected.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.loss, expected.loss, rtol=0, atol=1e-5)
    assert ours.num_parameters() == sum(p.numel() for p in hf.parameters())
    with pytest.raises(ValueError, match="activation_function must be 'gelu'"):
        GPT.from_huggingface(
            GPT2LMHeadModel(
                GPT2Config(vocab_size=VOCAB, n_positions=8, n_embd=8, n_layer=1, n_head=2)
            )
        )


@pytest.mark.parametrize("tied", [False, True])
def test_matches_transformers_llama(tied: bool) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    hf_config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=80,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rope_theta=500.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=tied,
    )
    hf = LlamaForCausalLM(hf_config).eval()
    ours = GPT.from_huggingface(hf)
    c = ours.config
    assert (c.norm, c.pos_encoding, c.activation, c.n_kv_head, c.bias, c.tie_embeddings) == (
        "rmsnorm",
        "rope",
        "swiglu",
        2,
        False,
        tied,
    )
    idx = tokens(2, 40)
    with torch.no_grad():
        expected = hf(idx).logits
    torch.testing.assert_close(ours(idx).logits, expected, rtol=0, atol=1e-5)
    assert ours.num_parameters() == sum(p.numel() for p in hf.parameters())
    # The KV cache path agrees with the reference too.
    cache = ours.new_cache(2)
    stepwise = torch.cat(
        [ours(idx[:, :30], cache=cache).logits]
        + [ours(idx[:, t : t + 1], cache=cache).logits for t in range(30, 40)],
        1,
    )
    torch.testing.assert_close(stepwise, expected, rtol=0, atol=1e-5)


def test_from_huggingface_rejects_other_models() -> None:
    with pytest.raises(ValueError, match="supports model_type 'gpt2' and 'llama'"):
        GPT.from_huggingface(nn.Linear(2, 2))


# --- accounting ----------------------------------------------------------------------------------


def test_num_parameters_closed_form() -> None:
    d, L, V, T, ff = 32, 2, VOCAB, 32, 128
    per_block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d)
    model = model_for(tiny())
    assert model.num_parameters() == V * d + T * d + L * per_block + 2 * d
    assert model.num_parameters(non_embedding=True) == L * per_block + 2 * d
    untied = model_for(tiny(tie_embeddings=False, pos_encoding="rope"))
    assert untied.num_parameters() == 2 * V * d + L * per_block + 2 * d
    assert untied.num_parameters(non_embedding=True) == V * d + L * per_block + 2 * d


@pytest.mark.parametrize(
    "overrides",
    [
        dict(attention_impl="manual"),
        dict(attention_impl="manual", n_kv_head=1, activation="swiglu", tie_embeddings=False),
    ],
)
def test_flops_per_token_matches_flop_counter(overrides: dict) -> None:
    model = model_for(tiny(**overrides))
    T = 24
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(tokens(1, T))
    assert model.flops_per_token(T) == counter.get_total_flops() / T
    # The "2N" of the 6N rule: besides attention, 2 FLOPs per matmul weight (the head included).
    c = model.config
    matrices = [p for n, p in model.named_parameters() if p.ndim == 2 and "emb" not in n]
    weights = sum(p.numel() for p in matrices) + c.tie_embeddings * c.vocab_size * c.d_model
    assert model.flops_per_token(T) == 2 * weights + 4 * c.n_layer * T * c.d_model
    with pytest.raises(ValueError, match="seq_len must be in \\[1, block_size=32\\]"):
        model.flops_per_token(33)


def test_gpt2_style_initialisation() -> None:
    model = model_for(GPTConfig(vocab_size=512, block_size=64, n_layer=8, n_head=4, d_model=256))
    block = model.blocks[3]
    assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.tok_emb.weight.std().item() == pytest.approx(0.02, rel=0.05)
    residual = 0.02 / math.sqrt(16)
    assert block.attn.proj.weight.std().item() == pytest.approx(residual, rel=0.05)
    assert block.ffn.down.weight.std().item() == pytest.approx(residual, rel=0.05)
    assert torch.count_nonzero(block.ffn.up.bias) == 0


# --- saving and loading --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [dict(), dict(pos_encoding="rope", tie_embeddings=False, norm="rmsnorm", n_kv_head=2)],
)
def test_save_and_load_round_trip(tmp_path, monkeypatch, overrides: dict) -> None:
    model = model_for(tiny(**overrides))
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]

    def no_pickle(*args: object, **kwargs: object) -> None:
        raise AssertionError("from_pretrained must not use torch.load")

    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = GPT.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    idx = tokens(2, 16)
    assert torch.equal(loaded(idx).logits, model(idx).logits)
    assert (loaded.lm_head.weight is loaded.tok_emb.weight) == model.config.tie_embeddings


def test_from_pretrained_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        GPT.from_pretrained(tmp_path / "nowhere")
    model = model_for(tiny())
    model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").rename(tmp_path / "weights")
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        GPT.from_pretrained(tmp_path / "m")
    (tmp_path / "weights").rename(tmp_path / "m" / "model.safetensors")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "d_model": 64}))
    with pytest.raises(ValueError, match="do not fit the config.*wrong shapes"):
        GPT.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        GPT.from_pretrained(tmp_path / "m")


# --- the mixture-of-experts hook -----------------------------------------------------------------


class StandInMoE(nn.Module):
    """A stand-in with `shared.moe.MoEFeedForward`'s contract: a FeedForward plus aux_loss/stats."""

    def __init__(
        self, d_model: int, d_ff: int, activation: str, bias: bool, dropout: float, **kwargs: object
    ) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.expert = FeedForward(d_model, d_ff, activation, bias, dropout)
        self.router = nn.Linear(d_model, 2, bias=False)
        nn.init.zeros_(self.router.weight)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.aux_loss = self.kwargs["coef"] * x.pow(2).mean()
        self.stats = {"calls": self.calls}
        return self.expert(x)

    def active_flops_per_token(self) -> int:
        return self.expert.flops_per_token()


def test_moe_hook_with_a_stand_in(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "shared.moe", types.SimpleNamespace(MoEFeedForward=StandInMoE))
    config = tiny(n_layer=3, moe_layers=(2, 0), moe={"coef": 0.5})
    model = model_for(config).train()
    moe_blocks = [i for i, b in enumerate(model.blocks) if isinstance(b.ffn, StandInMoE)]
    assert moe_blocks == [0, 2] and model.blocks[0].ffn.kwargs == {"coef": 0.5}
    assert torch.count_nonzero(model.blocks[0].ffn.router.weight) == 0  # router init left alone
    assert model.blocks[0].ffn.expert.up.weight.std().item() == pytest.approx(0.02, rel=0.2)
    idx, targets = tokens(2, 12), tokens(2, 12, seed=3)
    out = model(idx, targets)
    expected_aux = model.blocks[0].ffn.aux_loss + model.blocks[2].ffn.aux_loss
    torch.testing.assert_close(out.aux_loss, expected_aux)
    ce = F.cross_entropy(out.logits.view(-1, VOCAB), targets.view(-1))
    torch.testing.assert_close(out.loss, ce + expected_aux)
    out.loss.backward()
    assert model.blocks[2].ffn.expert.up.weight.grad is not None
    assert model.moe_stats() == {0: {"calls": 1}, 2: {"calls": 1}}
    dense = model_for(tiny(n_layer=3))
    assert model.flops_per_token(12) == dense.flops_per_token(12)


def test_moe_hook_with_shared_moe(tmp_path) -> None:
    moe = pytest.importorskip("shared.moe")
    config = tiny(moe_layers=(1,), moe={"num_experts": 4, "top_k": 2, "capacity_factor": None})
    model = model_for(config)
    assert isinstance(model.blocks[1].ffn, moe.MoEFeedForward)
    idx = tokens(2, 12)
    out = model(idx, idx)
    assert out.aux_loss is not None and out.aux_loss.ndim == 0 and out.aux_loss.item() > 0
    torch.testing.assert_close(
        out.loss, F.cross_entropy(out.logits.view(-1, VOCAB), idx.view(-1)) + out.aux_loss
    )
    assert set(model.moe_stats()) == {1}
    dense = model_for(tiny())
    moe_layer, dense_ffn = model.blocks[1].ffn, dense.blocks[1].ffn
    expected = dense.flops_per_token(12) - dense_ffn.flops_per_token()
    assert model.flops_per_token(12) == expected + moe_layer.active_flops_per_token()
    model.save_pretrained(tmp_path / "moe")
    assert torch.equal(GPT.from_pretrained(tmp_path / "moe")(idx).logits, out.logits)


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal", "rope", "alibi"])
def test_bf16_autocast_runs_and_stays_close(pos_encoding: str) -> None:
    model = model_for(tiny(pos_encoding=pos_encoding, n_kv_head=2))
    idx = tokens(2, 16)
    reference = model(idx, idx).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(idx, idx)
        cache = model.new_cache(2)
        model(idx[:, :8], cache=cache)
        stepped = model(idx[:, 8:9], cache=cache).logits
    assert out.logits.dtype == torch.bfloat16 and out.loss.dtype == torch.float32
    assert abs(out.loss.item() - reference.item()) < 0.02
    torch.testing.assert_close(stepped.float(), out.logits[:, 8:9].float(), rtol=0, atol=0.05)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
