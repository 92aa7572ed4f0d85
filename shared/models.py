"""`shared.models`: one configurable decoder-only transformer (GPT) for the whole course.

A single `GPTConfig` switches between the architectures the course compares:

- GPT-2: LayerNorm, learned positions, GELU, biases, tied embeddings (``GPTConfig()`` defaults);
- Llama: RMSNorm, RoPE, SwiGLU, grouped-query attention, no biases, untied output head;
- the teaching variants in between: post-norm, sinusoidal or ALiBi positions, multi-query
  attention, an explicit ("manual") attention path next to PyTorch's fused
  `scaled_dot_product_attention`, and mixture-of-experts feed-forward layers (`shared.moe`).

The model saves to and loads from the Hugging Face layout (``config.json`` + ``model.safetensors``)
and can take the weights of a `transformers` GPT-2 or Llama model (`GPT.from_huggingface`); the
tests show that it then produces the same logits. A `KVCache` makes generation
(`shared.generation`) cost one token's work per step.

Used in: modules/01-introduction/01-overview, modules/02-transformer-architecture
(02-decoder-only, 04-multi-head-attention, 05-positional-encoding, 06-feed-forward,
07-layer-normalization), modules/04-llm-from-scratch/*, modules/05-pretraining/*,
modules/20-advanced-topics/01-mixture-of-experts, labs/moe-switch-transformer-inference.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shared.layers import (
    ACTIVATIONS,
    NORMS,
    FeedForward,
    alibi_slopes,
    apply_rope,
    make_norm,
    rope_cos_sin,
    sinusoidal_positions,
)

__all__ = [
    "CausalSelfAttention",
    "GPT",
    "GPTConfig",
    "GPTOutput",
    "KVCache",
    "TransformerBlock",
]

POS_ENCODINGS = ("learned", "sinusoidal", "rope", "alibi")
NORM_POSITIONS = ("pre", "post")
ATTENTION_IMPLS = ("sdpa", "manual")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
IGNORE_INDEX = -100  # targets equal to this are left out of the loss (padding, prompts)


@dataclass
class GPTConfig:
    """Hyperparameters of `GPT`; validated on creation, JSON-serialisable (`to_dict`/`from_dict`).

    - ``vocab_size``, ``block_size`` (the longest context, in tokens), ``n_layer``, ``n_head``,
      ``d_model``.
    - ``n_kv_head``: key/value heads. ``None`` means ``n_head`` (multi-head attention); fewer
      gives grouped-query attention (GQA), 1 gives multi-query attention (MQA).
    - ``d_ff``: hidden width of the feed-forward network. ``None`` means ``4 * d_model``, or for
      SwiGLU ``8/3 * d_model`` rounded up to a multiple of 64 (the same parameter count as a
      4x GELU network, as in Llama).
    - ``norm``: ``"layernorm"`` or ``"rmsnorm"``; ``norm_position``: ``"pre"`` (GPT-2, Llama) or
      ``"post"`` (the original transformer; then there is no final norm); ``norm_eps``.
    - ``pos_encoding``: ``"learned"``, ``"sinusoidal"``, ``"rope"`` (``rope_theta``) or ``"alibi"``.
    - ``activation``: ``"gelu"`` (exact erf form), ``"relu"`` or ``"swiglu"``.
    - ``attention_impl``: ``"sdpa"`` (fused, fast) or ``"manual"`` (explicit
      ``softmax(Q K^T / sqrt(d)) V``).
    - ``dropout`` (embeddings, attention weights, residual branches), ``bias`` (in linear layers
      and LayerNorm), ``tie_embeddings`` (output head shares the token embedding matrix).
    - ``moe_layers``: indices of the blocks whose feed-forward network is a
      `shared.moe.MoEFeedForward`, built with the keyword arguments in ``moe``.

    Used in: modules/04-llm-from-scratch/*, modules/05-pretraining/*,
    modules/02-transformer-architecture/*, modules/20-advanced-topics/01-mixture-of-experts.
    """

    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    d_model: int = 768
    n_kv_head: int | None = None
    d_ff: int | None = None
    norm: str = "layernorm"
    norm_position: str = "pre"
    norm_eps: float = 1e-5
    pos_encoding: str = "learned"
    rope_theta: float = 10000.0
    activation: str = "gelu"
    attention_impl: str = "sdpa"
    dropout: float = 0.0
    bias: bool = True
    tie_embeddings: bool = True
    moe_layers: tuple[int, ...] = ()
    moe: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if not isinstance(self.n_kv_head, int) or self.n_kv_head <= 0:
            raise ValueError(f"n_kv_head must be None or a positive int, got {self.n_kv_head!r}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(
                f"n_head={self.n_head} must be divisible by n_kv_head={self.n_kv_head} "
                "(each key/value head serves a whole group of query heads)"
            )
        choices = {
            "norm": NORMS,
            "norm_position": NORM_POSITIONS,
            "pos_encoding": POS_ENCODINGS,
            "activation": ACTIVATIONS,
            "attention_impl": ATTENTION_IMPLS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.d_ff is None:
            # SwiGLU has three matrices: 8/3 * d_model matches the parameters of a 4x GELU FFN.
            swiglu_width = 64 * math.ceil(8 * self.d_model / 3 / 64)
            self.d_ff = swiglu_width if self.activation == "swiglu" else 4 * self.d_model
        if not isinstance(self.d_ff, int) or self.d_ff <= 0:
            raise ValueError(f"d_ff must be None or a positive int, got {self.d_ff!r}")
        if self.pos_encoding == "rope" and self.head_dim % 2:
            raise ValueError(
                f"RoPE needs an even head dimension, got d_model/n_head = {self.head_dim}"
            )
        if self.pos_encoding == "sinusoidal" and self.d_model % 2:
            raise ValueError(f"sinusoidal positions need an even d_model, got {self.d_model}")
        if self.rope_theta <= 0:
            raise ValueError(f"rope_theta must be > 0, got {self.rope_theta}")
        if self.norm_eps <= 0:
            raise ValueError(f"norm_eps must be > 0, got {self.norm_eps}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("bias", "tie_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        layers = tuple(self.moe_layers) if isinstance(self.moe_layers, (list, tuple)) else None
        if (
            layers is None
            or len(set(layers)) != len(layers)
            or not all(isinstance(i, int) and 0 <= i < self.n_layer for i in layers)
        ):
            raise ValueError(
                f"moe_layers must be distinct layer indices in [0, {self.n_layer}), "
                f"got {self.moe_layers!r}"
            )
        self.moe_layers = tuple(sorted(layers))
        if self.moe is not None and not isinstance(self.moe, dict):
            raise ValueError(
                f"moe must be None or a dict of MoEFeedForward kwargs, "
                f"got {type(self.moe).__name__}"
            )
        if self.moe and not self.moe_layers:
            raise ValueError(
                "moe kwargs are set but moe_layers is empty: name the layers that use them"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``moe_layers`` as a list)."""
        data = dataclasses.asdict(self)
        data["moe_layers"] = list(self.moe_layers)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        """Build a config from `to_dict` output; unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown GPTConfig keys {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**data)


@dataclass
class GPTOutput:
    """What `GPT.forward` returns.

    ``logits``: ``(B, T, vocab_size)`` (or the last ``logits_to_keep`` positions);
    ``loss``: mean cross-entropy over non-ignored targets plus ``aux_loss``, or None without
    targets; ``aux_loss``: the summed auxiliary losses of the MoE layers (None without MoE);
    ``cache``: the `KVCache` that was passed in, now holding these tokens too.

    Used in: modules/04-llm-from-scratch/*, modules/05-pretraining/*.
    """

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None
    cache: KVCache | None = None


class KVCache:
    """Keys and values of past tokens, per layer, so each generation step feeds only new tokens.

    Storage is allocated once: ``keys`` and ``values`` have shape
    ``(n_layer, batch, n_kv_head, max_length, head_dim)`` and ``length`` positions are filled.
    With GQA/MQA only the ``n_kv_head`` shared heads are stored, which is where their memory
    saving comes from (`memory_bytes`). Keys are stored after RoPE, so cached keys never need
    rotating again.

    Protocol (followed by `GPT.forward`): each layer calls ``update(layer, k, v)`` with the new
    tokens' keys and values, which writes them at ``[length, length + T)`` and returns the keys and
    values of all tokens so far; after the last layer the model calls ``advance(T)``.
    `crop` rolls back (speculative decoding) and `reorder` permutes the batch (beam search).

    Used in: modules/11-inference-optimization (kv-cache, speculative-decoding),
    modules/20-advanced-topics/07-inference-engines, and `shared.generation`.
    """

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_kv_head: int,
        head_dim: int,
        max_length: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        shape = (n_layer, batch_size, n_kv_head, max_length, head_dim)
        if not all(isinstance(n, int) and n > 0 for n in shape):
            raise ValueError(
                "KVCache sizes must be positive ints, got (n_layer, batch_size, n_kv_head, "
                f"max_length, head_dim) = {shape}"
            )
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0

    @property
    def n_layer(self) -> int:
        return self.keys.shape[0]

    @property
    def batch_size(self) -> int:
        return self.keys.shape[1]

    @property
    def max_length(self) -> int:
        return self.keys.shape[3]

    def update(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v`` ``(B, n_kv_head, T, head_dim)`` after the cached tokens; return all."""
        expected = (self.batch_size, self.keys.shape[2], k.shape[2], self.keys.shape[4])
        if k.shape != expected or v.shape != expected:
            raise ValueError(
                f"expected k and v of shape {expected}, got {tuple(k.shape)} and {tuple(v.shape)}"
            )
        end = self.length + k.shape[2]
        if end > self.max_length:
            raise ValueError(
                f"KVCache is full: {self.length} cached + {k.shape[2]} new "
                f"> max_length={self.max_length}"
            )
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, n_tokens: int) -> None:
        """Mark ``n_tokens`` more positions as filled (once per forward, after all layers)."""
        if n_tokens < 0 or self.length + n_tokens > self.max_length:
            raise ValueError(
                f"cannot advance by {n_tokens}: length={self.length}, max_length={self.max_length}"
            )
        self.length += n_tokens

    def crop(self, length: int) -> None:
        """Forget every position from ``length`` on (e.g. rejected draft tokens)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"crop length must be in [0, {self.length}], got {length}")
        self.length = length

    def reorder(self, batch_indices: torch.Tensor) -> None:
        """Replace the batch by ``batch[batch_indices]`` (its size may change: beam search)."""
        batch_indices = batch_indices.to(self.keys.device)
        if batch_indices.ndim != 1 or batch_indices.numel() == 0:
            raise ValueError(
                "batch_indices must be a non-empty 1-D tensor, "
                f"got shape {tuple(batch_indices.shape)}"
            )
        if batch_indices.min() < 0 or batch_indices.max() >= self.batch_size:
            raise ValueError(
                f"batch_indices must lie in [0, {self.batch_size}), got {batch_indices.tolist()}"
            )
        self.keys = self.keys.index_select(1, batch_indices)
        self.values = self.values.index_select(1, batch_indices)

    def memory_bytes(self) -> int:
        """Bytes held by the key and value storage."""
        return 2 * self.keys.numel() * self.keys.element_size()


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention with grouped key/value heads (MHA, GQA or MQA).

    One fused linear layer projects ``x`` to the queries of ``n_head`` heads and the keys and
    values of ``n_kv_head`` heads; each key/value head serves ``n_head / n_kv_head`` query heads.
    ``attention_impl="sdpa"`` calls `torch.nn.functional.scaled_dot_product_attention`;
    ``"manual"`` computes ``softmax(Q K^T / sqrt(d_head) + mask) V`` step by step, for teaching.

    Position information arrives from `GPT`: RoPE tables (rotating q and k) and/or an additive
    ``attn_mask`` (ALiBi biases, or causality when cached tokens precede the new ones). Alone,
    ``module(x)`` is plain causal attention.

    Used in: modules/02-transformer-architecture/04-multi-head-attention,
    modules/04-llm-from-scratch/02-transformer-layers,
    modules/07-core-architectures/attention-variants.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv_head = config.n_head, config.n_kv_head
        self.head_dim = config.head_dim
        self.q_size, self.kv_size = self.n_head * self.head_dim, self.n_kv_head * self.head_dim
        self.impl = config.attention_impl
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, self.q_size + 2 * self.kv_size, bias=config.bias)
        self.proj = nn.Linear(self.q_size, config.d_model, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        *,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        attn_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        """``x``: ``(B, T, d_model)``. ``attn_mask``: additive float mask broadcastable to
        ``(B, n_head, T, T_keys)`` (it then replaces the causal mask); None means causal over the
        keys, which must then be exactly the T new ones or all T-1 earlier ones plus one query."""
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        # (B, T, heads * head_dim) -> (B, heads, T, head_dim)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        # With a cache and no mask, a single new query may see every key: no mask needed.
        is_causal = attn_mask is None and k.shape[2] == T and T > 1
        if self.impl == "sdpa":
            y = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=None if attn_mask is None else attn_mask.to(q.dtype),
                dropout_p=self.dropout if self.training else 0.0,
                is_causal=is_causal,
                enable_gqa=self.n_kv_head != self.n_head,
            )
        else:
            y = self._manual_attention(q, k, v, attn_mask, is_causal)
        y = y.transpose(1, 2).reshape(B, T, self.q_size)
        return self.resid_dropout(self.proj(y))

    def _manual_attention(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
    ) -> torch.Tensor:
        group = self.n_head // self.n_kv_head  # query heads per key/value head
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, n_head, T, T_keys)
        if attn_mask is not None:
            scores = scores + attn_mask
        elif is_causal:
            T = q.shape[2]
            future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(diagonal=1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = self.attn_dropout(torch.softmax(scores.float(), dim=-1).type_as(q))
        return weights @ v


class TransformerBlock(nn.Module):
    """One decoder block: attention then feed-forward, each with a residual connection.

    Pre-norm (GPT-2, Llama): ``x + f(norm(x))``. Post-norm (Vaswani et al., 2017):
    ``norm(x + f(x))``. The feed-forward network is `shared.layers.FeedForward`, or a
    `shared.moe.MoEFeedForward` when ``moe`` is True.

    Used in: modules/02-transformer-architecture/07-layer-normalization,
    modules/04-llm-from-scratch/*.
    """

    def __init__(self, config: GPTConfig, moe: bool = False) -> None:
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.norm1 = make_norm(config.norm, config.d_model, bias=config.bias, eps=config.norm_eps)
        self.attn = CausalSelfAttention(config)
        self.norm2 = make_norm(config.norm, config.d_model, bias=config.bias, eps=config.norm_eps)
        ffn_kwargs = dict(
            d_model=config.d_model,
            d_ff=config.d_ff,
            activation=config.activation,
            bias=config.bias,
            dropout=config.dropout,
        )
        if moe:
            from shared.moe import MoEFeedForward  # lazily: dense models never import the MoE code

            self.ffn = MoEFeedForward(**ffn_kwargs, **(config.moe or {}))
        else:
            self.ffn = FeedForward(**ffn_kwargs)
        self.is_moe = moe

    def forward(self, x: torch.Tensor, **attn_kwargs: Any) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attn(self.norm1(x), **attn_kwargs)
            return x + self.ffn(self.norm2(x))
        x = self.norm1(x + self.attn(x, **attn_kwargs))
        return self.norm2(x + self.ffn(x))


class GPT(nn.Module):
    """A decoder-only transformer language model configured by `GPTConfig`.

    ``forward(idx, targets)`` returns a `GPTOutput` with logits and the cross-entropy loss;
    ``forward(idx, cache=model.new_cache(B, n))`` feeds tokens incrementally. Weights are
    initialised as in GPT-2: normal(0, 0.02), zero biases, and residual output projections
    (``attn.proj``, ``ffn.down``) scaled by ``1/sqrt(2 n_layer)`` so that the residual stream's
    variance does not grow with depth.

    Used in: modules/01-introduction/01-overview, modules/04-llm-from-scratch/*,
    modules/05-pretraining/*, modules/02-transformer-architecture/*,
    modules/20-advanced-topics/01-mixture-of-experts, labs/moe-switch-transformer-inference.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        if config.pos_encoding == "learned":
            self.pos_emb = nn.Embedding(config.block_size, config.d_model)
        elif config.pos_encoding == "sinusoidal":
            self.register_buffer(
                "sinusoidal",
                sinusoidal_positions(config.block_size, config.d_model),
                persistent=False,
            )
        elif config.pos_encoding == "rope":
            cos, sin = rope_cos_sin(config.block_size, config.head_dim, config.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        else:
            self.register_buffer("alibi_slopes", alibi_slopes(config.n_head), persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(config, moe=i in config.moe_layers) for i in range(config.n_layer)
        )
        # Post-norm blocks already end in a norm; pre-norm stacks need one before the head.
        self.norm_f = (
            make_norm(config.norm, config.d_model, bias=config.bias, eps=config.norm_eps)
            if config.norm_position == "pre"
            else nn.Identity()
        )
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        # GPT-2 initialisation for every layer, MoE experts included (they are FeedForwards, so MoE
        # and dense models start alike); an MoE router keeps the initialisation its layer chose.
        moe_modules: set[nn.Module] = set()
        expert_modules: set[nn.Module] = set()
        for block in self.blocks:
            if block.is_moe:
                moe_modules.update(block.ffn.modules())
                for module in block.ffn.modules():
                    if isinstance(module, FeedForward):
                        expert_modules.update(module.modules())
        for module in self.modules():
            if module not in moe_modules or module in expert_modules:
                self._init_weights(module)
        residual_std = 0.02 / math.sqrt(2 * config.n_layer)
        for name, param in self.named_parameters():
            if name.endswith(("attn.proj.weight", "down.weight")):
                nn.init.normal_(param, mean=0.0, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    # --- forward -------------------------------------------------------------------------------

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        logits_to_keep: int | None = None,
    ) -> GPTOutput:
        """Run the model on token ids ``idx`` of shape ``(B, T)``.

        - ``targets`` ``(B, T)``: next-token ids; entries equal to -100 are ignored in the loss.
        - ``cache``: a `KVCache` holding earlier tokens of these sequences; ``idx`` continues
          them at position ``cache.length``, and the cache is extended in place.
        - ``logits_to_keep``: compute logits only for the last n positions (generation needs one).

        Raises ValueError for non-integer or out-of-range ids, contexts longer than
        ``block_size``, mismatched targets or caches.
        """
        offset = self._check_inputs(idx, targets, cache, logits_to_keep)
        T = idx.shape[1]
        x = self.tok_emb(idx)
        if self.config.pos_encoding == "learned":
            x = x + self.pos_emb(torch.arange(offset, offset + T, device=idx.device))
        elif self.config.pos_encoding == "sinusoidal":
            x = x + self.sinusoidal[offset : offset + T]
        x = self.drop(x)
        rope = None
        if self.config.pos_encoding == "rope":
            rope = (self.rope_cos[offset : offset + T], self.rope_sin[offset : offset + T])
        attn_mask = self._attention_mask(T, offset, idx.device)
        for layer, block in enumerate(self.blocks):
            x = block(x, rope=rope, attn_mask=attn_mask, cache=cache, layer=layer)
        if cache is not None:
            cache.advance(T)
        x = self.norm_f(x)
        if logits_to_keep is not None:
            x = x[:, -logits_to_keep:]
        logits = self.lm_head(x)

        aux_loss = None
        moe_ffns = [block.ffn for block in self.blocks if block.is_moe]
        if moe_ffns:
            aux_loss = torch.stack([ffn.aux_loss for ffn in moe_ffns]).sum()
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX
            )
            if aux_loss is not None:
                loss = loss + aux_loss
        return GPTOutput(logits=logits, loss=loss, aux_loss=aux_loss, cache=cache)

    def _check_inputs(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None,
        cache: KVCache | None,
        logits_to_keep: int | None,
    ) -> int:
        """Validate the arguments of `forward`; return the position of idx's first token."""
        if not _is_integer_tensor(idx) or idx.ndim != 2:
            raise ValueError(f"idx must be an integer tensor of shape (B, T), got {_describe(idx)}")
        B, T = idx.shape
        if T == 0:
            raise ValueError("idx must hold at least one token per sequence (T >= 1)")
        self._check_token_range(idx, "idx")
        offset = 0
        if cache is not None:
            if not isinstance(cache, KVCache):
                raise TypeError(f"cache must be a KVCache, got {type(cache).__name__}")
            if cache.batch_size != B or cache.n_layer != self.config.n_layer:
                raise ValueError(
                    f"cache holds {cache.n_layer} layers x batch {cache.batch_size}; this call "
                    f"needs {self.config.n_layer} layers x batch {B} "
                    f"(make one with model.new_cache({B}, ...))"
                )
            offset = cache.length
        if offset + T > self.config.block_size:
            raise ValueError(
                f"sequence of {offset + T} positions ({offset} cached + {T} new) exceeds "
                f"block_size={self.config.block_size}, the longest context this model's "
                "positions support"
            )
        if targets is not None:
            if not _is_integer_tensor(targets) or targets.shape != idx.shape:
                raise ValueError(
                    "targets must be an integer tensor of the shape of idx "
                    f"{tuple(idx.shape)}, got {_describe(targets)}"
                )
            self._check_token_range(targets, "targets", allow_ignore=True)
            if logits_to_keep is not None:
                raise ValueError(
                    "logits_to_keep cannot be combined with targets: the loss needs every position"
                )
        if logits_to_keep is not None and not 1 <= logits_to_keep <= T:
            raise ValueError(f"logits_to_keep must be in [1, T={T}], got {logits_to_keep}")
        return offset

    def _check_token_range(self, ids: torch.Tensor, name: str, allow_ignore: bool = False) -> None:
        valid = (ids >= 0) & (ids < self.config.vocab_size)
        if allow_ignore:
            valid |= ids == IGNORE_INDEX
        if not bool(valid.all()):
            bad = ids[~valid][:5].tolist()
            extra = f" or {IGNORE_INDEX} (ignored)" if allow_ignore else ""
            raise ValueError(
                f"{name} must lie in [0, vocab_size={self.config.vocab_size}){extra}; found {bad}"
            )

    def _attention_mask(self, T: int, offset: int, device: torch.device) -> torch.Tensor | None:
        """The additive mask for T queries at positions offset.. over keys 0..offset+T-1, or None
        when plain causal attention (or, for a single cached query, no mask at all) is exact."""
        if self.config.pos_encoding != "alibi" and (offset == 0 or T == 1):
            return None
        q_pos = torch.arange(offset, offset + T, device=device)[:, None]
        k_pos = torch.arange(offset + T, device=device)[None, :]
        future = k_pos > q_pos
        if self.config.pos_encoding == "alibi":
            # ALiBi: a query is penalised linearly in its distance to each key, slope m_h per head.
            bias = self.alibi_slopes[:, None, None] * (k_pos - q_pos).float()  # (n_head, T, T_keys)
        else:
            bias = torch.zeros(T, offset + T, device=device)
        return bias.masked_fill(future, float("-inf"))

    # --- inference helpers ---------------------------------------------------------------------

    def new_cache(self, batch_size: int, max_length: int | None = None) -> KVCache:
        """An empty `KVCache` for ``batch_size`` sequences of up to ``max_length`` (default
        ``block_size``) tokens, on the model's device and in its dtype."""
        max_length = self.config.block_size if max_length is None else max_length
        if not 1 <= max_length <= self.config.block_size:
            raise ValueError(
                f"max_length must be in [1, block_size={self.config.block_size}], got {max_length}"
            )
        weight = self.tok_emb.weight
        return KVCache(
            self.config.n_layer,
            batch_size,
            self.config.n_kv_head,
            self.config.head_dim,
            max_length,
            dtype=weight.dtype,
            device=weight.device,
        )

    def moe_stats(self) -> dict[int, Any]:
        """Layer index -> the ``stats`` of that MoE layer's latest forward pass."""
        return {i: block.ffn.stats for i, block in enumerate(self.blocks) if block.is_moe}

    # --- accounting ----------------------------------------------------------------------------

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Number of parameters (tied weights counted once).

        ``non_embedding=True`` leaves out the token and learned-position embedding tables, the
        count N of Kaplan et al. (2020) scaling laws. An untied output head is a matmul and stays
        in; a tied one is the embedding table and is left out with it.
        """
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.tok_emb.weight.numel()
            if self.config.pos_encoding == "learned":
                total -= self.pos_emb.weight.numel()
        return total

    def flops_per_token(self, seq_len: int) -> int:
        """Forward-pass FLOPs per token at context length ``seq_len`` (matmuls only, 2 per MAC).

        ``2 * (matmul weights used per token) + 4 * n_layer * seq_len * n_head * head_dim``:
        the first term covers the q/k/v/output projections, the feed-forward networks (for MoE
        layers their ``active_flops_per_token()``: router plus the experts a token visits) and the
        output head; the second is attention itself
        (``Q K^T`` and the weighted sum of ``V``), counted over the full ``T x T`` score matrix as
        in Kaplan et al. (2020) and Hoffmann et al. (2022); a causal kernel does about half.
        Norms, softmax, biases and embeddings lookups are left out.

        Training costs about three forward passes (the backward pass about two), hence the rule
        of thumb ``C = 6 N D`` for N parameters and D tokens when the attention term is small.
        """
        if not 1 <= seq_len <= self.config.block_size:
            raise ValueError(
                f"seq_len must be in [1, block_size={self.config.block_size}], got {seq_len}"
            )
        c = self.config
        per_layer = (
            2 * c.d_model * (c.n_head + 2 * c.n_kv_head) * c.head_dim
            + 2 * c.n_head * c.head_dim * c.d_model
        )
        ffn_flops = sum(
            block.ffn.active_flops_per_token() if block.is_moe else block.ffn.flops_per_token()
            for block in self.blocks
        )
        attention = 4 * c.n_layer * seq_len * c.n_head * c.head_dim
        return c.n_layer * per_layer + ffn_flops + attention + 2 * c.d_model * c.vocab_size

    # --- saving and loading --------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (Hugging Face layout) to ``directory``.

        A tied output head is stored once, as the token embedding (safetensors refuses tensors
        that share memory); `from_pretrained` ties it again.
        """
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            name: tensor.detach().contiguous()
            for name, tensor in self.state_dict().items()
            if not (self.config.tie_embeddings and name == "lm_head.weight")
        }
        (directory / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: torch.device | str = "cpu") -> GPT:
        """Load a model written by `save_pretrained`, with safetensors only (no pickle).

        Raises FileNotFoundError naming the missing directory or file, and ValueError when the
        weights do not fit the configuration.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"model directory not found: {directory}")
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(
                    f"{directory} has no {name} (expected {CONFIG_FILE} and {WEIGHTS_FILE})"
                )
        config = GPTConfig.from_dict(json.loads((directory / CONFIG_FILE).read_text()))
        model = cls(config)
        state = load_file(str(directory / WEIGHTS_FILE), device=str(device))
        if config.tie_embeddings and "tok_emb.weight" in state:
            state["lm_head.weight"] = state["tok_emb.weight"]
        model._load_exact(state, str(directory / WEIGHTS_FILE))
        return model.to(device).eval()

    def _load_exact(self, state: dict[str, torch.Tensor], source: str) -> None:
        expected = self.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(n for n in set(expected) & set(state) if state[n].shape != expected[n].shape)
        if missing or unexpected or wrong:
            shapes = [f"{n}: {tuple(state[n].shape)} vs {tuple(expected[n].shape)}" for n in wrong]
            raise ValueError(
                f"weights in {source} do not fit the config: missing {missing}, "
                f"unexpected {unexpected}, "
                f"wrong shapes {shapes}"
            )
        self.load_state_dict(state)

    @classmethod
    def from_huggingface(cls, hf_model: nn.Module) -> GPT:
        """Copy a `transformers` GPT-2 (``GPT2LMHeadModel``) or Llama (``LlamaForCausalLM``)
        model into an equivalent `GPT`, which then gives the same logits.

        GPT-2 must use exact GELU (``activation_function="gelu"``; the released checkpoints use
        the tanh approximation ``gelu_new``, which `shared.layers.FeedForward` does not offer),
        and Llama the default RoPE (no ``rope_scaling``) with ``head_dim = hidden_size / heads``.

        Used in: modules/04-llm-from-scratch/01-minimal-llm,
        modules/07-core-architectures/model-anatomy.
        """
        model_type = getattr(getattr(hf_model, "config", None), "model_type", None)
        if model_type == "gpt2":
            config, state = _from_hf_gpt2(hf_model)
        elif model_type == "llama":
            config, state = _from_hf_llama(hf_model)
        else:
            raise ValueError(
                f"from_huggingface supports model_type 'gpt2' and 'llama', got {model_type!r}"
            )
        model = cls(config)
        if config.tie_embeddings:
            state["lm_head.weight"] = state["tok_emb.weight"]
        model._load_exact(
            {k: v.detach().clone().float() for k, v in state.items()}, type(hf_model).__name__
        )
        return model.eval()


def _is_integer_tensor(value: object) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and not value.dtype.is_floating_point
        and not value.dtype.is_complex
        and value.dtype != torch.bool
    )


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _from_hf_gpt2(hf_model: nn.Module) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    cfg = hf_model.config
    _require(
        cfg.activation_function == "gelu",
        f"GPT-2 activation_function must be 'gelu' (exact), got {cfg.activation_function!r}",
    )
    _require(
        not cfg.scale_attn_by_inverse_layer_idx
        and not cfg.reorder_and_upcast_attn
        and cfg.scale_attn_weights,
        "GPT-2 attention options must be the defaults (scale_attn_weights only)",
    )
    config = GPTConfig(
        vocab_size=cfg.vocab_size,
        block_size=cfg.n_positions,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        d_model=cfg.n_embd,
        d_ff=cfg.n_inner or 4 * cfg.n_embd,
        norm_eps=cfg.layer_norm_epsilon,
        tie_embeddings=True,
    )
    src = hf_model.state_dict()
    state = {
        "tok_emb.weight": src["transformer.wte.weight"],
        "pos_emb.weight": src["transformer.wpe.weight"],
        "norm_f.weight": src["transformer.ln_f.weight"],
        "norm_f.bias": src["transformer.ln_f.bias"],
    }
    # GPT-2 stores its linear layers as Conv1D with (in, out) weights: transpose them.
    names = {
        "ln_1": "norm1",
        "ln_2": "norm2",
        "attn.c_attn": "attn.qkv",
        "attn.c_proj": "attn.proj",
        "mlp.c_fc": "ffn.up",
        "mlp.c_proj": "ffn.down",
    }
    for i in range(cfg.n_layer):
        for theirs, ours in names.items():
            weight = src[f"transformer.h.{i}.{theirs}.weight"]
            state[f"blocks.{i}.{ours}.weight"] = weight if theirs.startswith("ln") else weight.t()
            state[f"blocks.{i}.{ours}.bias"] = src[f"transformer.h.{i}.{theirs}.bias"]
    return config, state


def _from_hf_llama(hf_model: nn.Module) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    cfg = hf_model.config
    # transformers 5 keeps RoPE settings in `rope_parameters`; 4.x in `rope_theta` + `rope_scaling`.
    rope = getattr(cfg, "rope_parameters", None) or {
        "rope_type": (getattr(cfg, "rope_scaling", None) or {}).get("rope_type", "default"),
        "rope_theta": cfg.rope_theta,
    }
    _require(
        rope.get("rope_type", "default") == "default", f"only default RoPE is supported, got {rope}"
    )
    _require(
        cfg.hidden_act == "silu",
        f"Llama hidden_act must be 'silu' (SwiGLU), got {cfg.hidden_act!r}",
    )
    _require(
        not cfg.attention_bias and not cfg.mlp_bias,
        "Llama with attention_bias or mlp_bias is not supported",
    )
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    _require(
        head_dim * cfg.num_attention_heads == cfg.hidden_size,
        f"head_dim={head_dim} must equal hidden_size / num_attention_heads",
    )
    config = GPTConfig(
        vocab_size=cfg.vocab_size,
        block_size=cfg.max_position_embeddings,
        n_layer=cfg.num_hidden_layers,
        n_head=cfg.num_attention_heads,
        n_kv_head=cfg.num_key_value_heads,
        d_model=cfg.hidden_size,
        d_ff=cfg.intermediate_size,
        norm="rmsnorm",
        norm_eps=cfg.rms_norm_eps,
        pos_encoding="rope",
        rope_theta=float(rope["rope_theta"]),
        activation="swiglu",
        bias=False,
        tie_embeddings=bool(cfg.tie_word_embeddings),
    )
    src = hf_model.state_dict()
    state = {
        "tok_emb.weight": src["model.embed_tokens.weight"],
        "norm_f.weight": src["model.norm.weight"],
    }
    if not config.tie_embeddings:
        state["lm_head.weight"] = src["lm_head.weight"]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        state[f"blocks.{i}.norm1.weight"] = src[p + "input_layernorm.weight"]
        state[f"blocks.{i}.norm2.weight"] = src[p + "post_attention_layernorm.weight"]
        state[f"blocks.{i}.attn.qkv.weight"] = torch.cat(
            [src[p + f"self_attn.{n}_proj.weight"] for n in ("q", "k", "v")], dim=0
        )
        state[f"blocks.{i}.attn.proj.weight"] = src[p + "self_attn.o_proj.weight"]
        for n in ("gate", "up", "down"):
            state[f"blocks.{i}.ffn.{n}.weight"] = src[p + f"mlp.{n}_proj.weight"]
    return config, state
