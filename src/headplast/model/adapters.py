"""Where each model family keeps its attention projections: the one table that knows module names.

Every measure works on a :class:`ModelLayout`, resolved once from a loaded Hugging Face
sequence-classification model. Nothing else in the package names a module, and nothing else cuts
a projection into heads: a layer's query, key, value and output projections are
:class:`Projection` s, each a run of head-sized slices of one module's weight (and bias). That
covers separate ``nn.Linear`` maps (BERT, DeBERTa, Llama), one fused query/key/value map sliced by
the table (ModernBERT's ``Wqkv``, GPT-2's ``c_attn``), GPT-2's ``Conv1D`` (weight stored
transposed, [in, out]) and grouped-query attention (Llama, Qwen2, Mistral: ``n_kv_heads`` key/value
heads, each serving ``n_heads / n_kv_heads`` consecutive query heads; docs/methods.md,
"Grouped-query attention").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class UnsupportedModelError(ValueError):
    """The model's attention does not have a layout this package knows."""


#: What a task head can read of the last hidden state [B, T, D]: the first token (BERT-like),
#: the last non-padding token (decoders' sequence classification: the rightmost token whose id is
#: not the pad token id), or the mean over the non-padding tokens (ModernBERT with
#: ``classifier_pooling: mean``). See docs/methods.md, "The token the task head reads".
POOLINGS: tuple[str, ...] = ("first", "last", "mean")


@dataclass(frozen=True)
class AttentionAdapter:
    """Module paths of one model family, relative to the base model and to each layer.

    ``query``, ``key`` and ``value`` name one module each, or the same module when the family
    fuses them (``fused``): its output features are then the query heads, the key heads and the
    value heads in that order (ModernBERT's ``Wqkv``, viewed as [3, H, d]; GPT-2's ``c_attn``,
    split in three). ``transposed``: the projections are ``Conv1D`` s whose weight is [in, out]
    (GPT-2), not ``nn.Linear`` 's [out, in].
    """

    family: str
    model_types: tuple[str, ...]
    layers: str  # ModuleList of layers, relative to model.base_model
    query: str  # relative to one layer
    key: str
    value: str
    output: str  # attention output projection; its input is the concatenation of head contexts
    fused: bool = False
    transposed: bool = False
    # The config attribute that gives the number of key/value heads (grouped-query attention);
    # None: as many as query heads.
    kv_heads: str | None = None
    # The encoder: modules of the base model that every theta0 of a model shares (pre-trained,
    # frozen by probing). Everything else (pooler, classifier, score) is the task head.
    encoder_modules: tuple[str, ...] = ("embeddings", "encoder")
    optional_encoder_modules: tuple[str, ...] = ()  # encoder parts only some model types have
    # The module whose output's first tensor is the last hidden state [B, T, D] that the task
    # head pools; "" is the base model itself (its whole forward is then stubbed when a head is
    # applied to stored features).
    last_hidden: str = "encoder"
    # What the task head reads (POOLINGS). BERT's pooler, DeBERTa's ContextPooler and the
    # RoBERTa/ELECTRA classification heads all take [:, 0].
    pooling: str = "first"
    # A family whose config chooses the pooling: the config key, and each value's pooling.
    pooling_key: str | None = None
    pooling_values: tuple[tuple[str, str], ...] = ()


ADAPTERS: tuple[AttentionAdapter, ...] = (
    AttentionAdapter(
        family="deberta-v2",  # DeBERTa-v2 and DeBERTa-v3 (model_type "deberta-v2")
        model_types=("deberta-v2",),
        layers="encoder.layer",
        query="attention.self.query_proj",
        key="attention.self.key_proj",
        value="attention.self.value_proj",
        output="attention.output.dense",
    ),
    AttentionAdapter(
        family="bert",
        model_types=("bert", "roberta", "xlm-roberta", "camembert", "electra", "data2vec-text"),
        layers="encoder.layer",
        query="attention.self.query",
        key="attention.self.key",
        value="attention.self.value",
        output="attention.output.dense",
        optional_encoder_modules=("embeddings_project",),  # ELECTRA: embedding -> hidden size
    ),
    AttentionAdapter(
        # Fused Wqkv, rotary positions and alternating local/global attention inside the attention
        # core, before the gate: the gate on Wo's input leaves them as they are.
        family="modernbert",
        model_types=("modernbert",),
        layers="layers",
        query="attn.Wqkv",
        key="attn.Wqkv",
        value="attn.Wqkv",
        output="attn.Wo",
        fused=True,
        encoder_modules=("embeddings", "layers", "final_norm"),
        optional_encoder_modules=("rotary_emb",),
        last_hidden="",
        pooling_key="classifier_pooling",
        pooling_values=(("cls", "first"), ("mean", "mean")),
    ),
    AttentionAdapter(
        # Decoders with grouped-query attention; their sequence-classification head (`score`)
        # reads the last non-padding token.
        family="llama",
        model_types=("llama", "qwen2", "mistral"),
        layers="layers",
        query="self_attn.q_proj",
        key="self_attn.k_proj",
        value="self_attn.v_proj",
        output="self_attn.o_proj",
        kv_heads="num_key_value_heads",
        encoder_modules=("embed_tokens", "layers", "norm"),
        optional_encoder_modules=("rotary_emb",),
        last_hidden="",
        pooling="last",
    ),
    AttentionAdapter(
        family="gpt2",
        model_types=("gpt2",),
        layers="h",
        query="attn.c_attn",
        key="attn.c_attn",
        value="attn.c_attn",
        output="attn.c_proj",
        fused=True,
        transposed=True,
        encoder_modules=("wte", "wpe", "h", "ln_f"),
        last_hidden="",
        pooling="last",
    ),
)

PARTS: tuple[str, ...] = ("query", "key", "value", "output")
"""The four parts of a layer's attention, in the order U and its components are listed."""


@dataclass(frozen=True)
class Projection:
    """One part of one layer's attention as head-sized slices of a module's parameters.

    Unit u (a query head for ``query`` and ``output``, a key/value head for ``key`` and
    ``value``) owns features ``offset + u*d`` to ``offset + (u+1)*d`` along the weight's axis
    ``axis`` (the output features of a query/key/value map, the input features of the output
    projection), and the same entries of the bias when ``bias_sliced`` (query/key/value biases;
    the output projection's bias is shared by all heads and belongs to none).
    """

    module: str  # qualified module name
    axis: int  # 0 or 1: the weight axis that holds the features
    offset: int  # first feature of this part (non-zero in a fused projection)
    units: int
    head_dim: int
    bias_sliced: bool

    def features(self, unit: int) -> slice:
        """Unit ``unit`` 's features along the weight's axis (and the bias)."""
        start = self.offset + unit * self.head_dim
        return slice(start, start + self.head_dim)

    def weight_index(self, unit: int) -> tuple[slice, slice]:
        """The index of unit ``unit`` 's entries in the weight (a 2-D tensor)."""
        rows = self.features(unit)
        return (rows, slice(None)) if self.axis == 0 else (slice(None), rows)

    def per_unit(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight's entries of every unit, [units, d, other dimension]: the part's slice of
        the features axis, moved first and cut into units."""
        w = weight.movedim(self.axis, 0)
        w = w[self.offset : self.offset + self.units * self.head_dim]
        return w.reshape(self.units, self.head_dim, -1)

    def per_unit_bias(self, bias: torch.Tensor) -> torch.Tensor:
        """The bias entries of every unit, [units, d] (only where ``bias_sliced``)."""
        return bias[self.offset : self.offset + self.units * self.head_dim].reshape(
            self.units, self.head_dim
        )


@dataclass(frozen=True)
class LayerModules:
    """The modules of one layer's attention. ``query``, ``key`` and ``value`` are one module in a
    fused family; :class:`Projection` says which of its features each part owns."""

    layer: nn.Module
    query: nn.Module
    key: nn.Module
    value: nn.Module
    output: nn.Module  # its forward input [B, T, H*d] is the concatenated head contexts


@dataclass(frozen=True)
class ModelLayout:
    """A resolved model: L layers of H query heads of size d (head h = features h*d:(h+1)*d of the
    output projection's input), sharing ``n_kv_heads`` key/value heads: query head h reads key/value
    head ``kv_group(h)`` (equal to h without grouped-query attention)."""

    model_type: str
    family: str
    n_layers: int
    n_heads: int
    head_dim: int
    layers: tuple[LayerModules, ...]
    names: tuple[dict[str, str], ...]  # per layer: qualified module names of query/key/value/output
    n_kv_heads: int
    projections: tuple[dict[str, Projection], ...]  # per layer: PARTS -> Projection

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 without grouped-query attention)."""
        return self.n_heads // self.n_kv_heads

    def kv_group(self, head: int) -> int:
        """The key/value head that query head ``head`` reads (``repeat_kv``'s order: consecutive
        query heads share one)."""
        return head // self.group_size


@dataclass(frozen=True)
class ClassifierLayout:
    """The split of a sequence-classification model into encoder and classifier (the task head
    on the pooled last hidden state; "head" alone means an attention head in this package).

    ``classifier_parameters`` are the qualified names of every parameter outside the encoder
    modules (what probing trains); ``classifier_modules`` the modules holding them (e.g.
    ``bert.pooler`` and ``classifier`` for BERT, ``pooler`` and ``classifier`` for DeBERTa,
    ``classifier`` with its own dense layer for RoBERTa, ``head`` and ``classifier`` for
    ModernBERT, ``score`` for decoders). ``pooling`` is what the classifier reads of the last hidden
    state (:data:`POOLINGS`), or None with ``pooling_problem`` saying why no supported pooling
    applies; ``pad_token_id`` is the id the ``last`` pooling skips (the model config's, as the
    model's own classifier reads it).
    """

    model_type: str
    encoder_prefixes: tuple[str, ...]  # qualified names of the encoder modules
    last_hidden: nn.Module  # output[0] is the last hidden state [B, T, D] that the classifier reads
    pooling: str | None
    classifier_parameters: tuple[str, ...]
    classifier_modules: tuple[str, ...]
    pad_token_id: int | None = None
    pooling_problem: str = ""

    def is_encoder(self, name: str) -> bool:
        """Whether the parameter/buffer ``name`` belongs to the encoder."""
        return any(name == p or name.startswith(p + ".") for p in self.encoder_prefixes)


def _get(module: nn.Module, path: str) -> nn.Module | None:
    if not path:
        return module
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def adapter_for(model_type: str) -> AttentionAdapter:
    """The adapter of a model type, or an error naming the type and the layouts that are known."""
    for adapter in ADAPTERS:
        if model_type in adapter.model_types:
            return adapter
    known = "; ".join(
        f"{a.family} ({', '.join(a.model_types)}): {a.layers}.N.{{"
        f"{', '.join(dict.fromkeys((a.query, a.key, a.value, a.output)))}}}"
        for a in ADAPTERS
    )
    raise UnsupportedModelError(
        f"model type '{model_type}' has no known attention layout. Looked for: {known}. "
        "Add an entry to headplast.model.adapters.ADAPTERS if the model keeps its query/key/value "
        "projections (separate or fused) and an attention output projection."
    )


def _widths(module: nn.Module, transposed: bool) -> tuple[int, int] | None:
    """(output features, input features) of a linear map's 2-D weight, or None."""
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        return None
    return (int(w.shape[1]), int(w.shape[0])) if transposed else (int(w.shape[0]), int(w.shape[1]))


def _bias(module: nn.Module) -> bool:
    return isinstance(getattr(module, "bias", None), torch.Tensor)


def _layer_projections(
    adapter: AttentionAdapter,
    model_type: str,
    index: int,
    mods: dict[str, nn.Module],
    names: dict[str, str],
    n_heads: int,
    n_kv: int,
) -> tuple[dict[str, Projection], int]:
    """The four parts of layer ``index`` as :class:`Projection` s, and their head size d; an
    :class:`UnsupportedModelError` when the widths do not make H query and ``n_kv`` key/value
    heads of one size."""
    out_axis, in_axis = (1, 0) if adapter.transposed else (0, 1)
    widths = {part: _widths(m, adapter.transposed) for part, m in mods.items()}
    bad = [getattr(adapter, p) for p, w in widths.items() if w is None]
    if bad:
        raise UnsupportedModelError(
            f"model type '{model_type}', layer {index}: expected a linear map with a 2-D weight at "
            f"{bad} (family {adapter.family})"
        )
    o_in = widths["output"][1]
    d = o_in // n_heads
    units = {"query": n_heads, "key": n_kv, "value": n_kv}
    if adapter.fused:
        offsets = {"query": 0, "key": n_heads * d, "value": (n_heads + n_kv) * d}
        expect = {p: (n_heads + 2 * n_kv) * d for p in units}
    else:
        offsets = dict.fromkeys(units, 0)
        expect = {p: units[p] * d for p in units}
    got = {p: widths[p][0] for p in units}
    if o_in % n_heads or got != expect:
        raise UnsupportedModelError(
            f"model type '{model_type}', layer {index}: the output projection's input "
            f"({o_in}) is not {n_heads} heads of one size, or the query/key/value widths {got} "
            f"are not {n_heads} query and {n_kv} key/value heads of size {d} ({expect}; family "
            f"{adapter.family}{', fused' if adapter.fused else ''})"
        )
    projections = {
        p: Projection(names[p], out_axis, offsets[p], units[p], d, _bias(mods[p])) for p in units
    }
    projections["output"] = Projection(names["output"], in_axis, 0, n_heads, d, False)
    return projections, d


def resolve_layout(model: nn.Module) -> ModelLayout:
    """Find layers, heads, head size and the q/k/v/output projections of ``model``.

    ``model`` is a Hugging Face model (``config.model_type`` names its family); it may live on the
    meta device. Raises :class:`UnsupportedModelError` naming the model type and the module names
    looked for when the layout is unknown or the modules are not where the table says.
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", type(model).__name__)
    adapter = adapter_for(model_type)
    base = getattr(model, "base_model", model)
    layers = _get(base, adapter.layers)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise UnsupportedModelError(
            f"model type '{model_type}': no layers at '{adapter.layers}' of the base model"
        )
    qualified = {id(m): name for name, m in model.named_modules()}
    n_heads = int(config.num_attention_heads)
    n_kv = n_heads
    if adapter.kv_heads is not None and getattr(config, adapter.kv_heads, None) is not None:
        n_kv = int(getattr(config, adapter.kv_heads))
    if n_kv < 1 or n_heads % n_kv:
        raise UnsupportedModelError(
            f"model type '{model_type}': {n_heads} query heads do not share {n_kv} key/value "
            f"heads in equal groups ({adapter.kv_heads})"
        )
    resolved, names, projections, dims = [], [], [], set()
    for i, layer in enumerate(layers):
        mods = {k: _get(layer, getattr(adapter, k)) for k in PARTS}
        missing = [getattr(adapter, k) for k, m in mods.items() if not isinstance(m, nn.Module)]
        if missing:
            raise UnsupportedModelError(
                f"model type '{model_type}', layer {i}: no module at {missing} "
                f"(family {adapter.family})"
            )
        resolved.append(LayerModules(layer=layer, **mods))
        names.append({k: qualified[id(m)] for k, m in mods.items()})
        parts, d = _layer_projections(adapter, model_type, i, mods, names[-1], n_heads, n_kv)
        projections.append(parts)
        dims.add(d)
    if len(dims) != 1:
        raise UnsupportedModelError(f"model type '{model_type}': head sizes differ by layer {dims}")
    return ModelLayout(
        model_type=model_type,
        family=adapter.family,
        n_layers=len(resolved),
        n_heads=n_heads,
        head_dim=dims.pop(),
        layers=tuple(resolved),
        names=tuple(names),
        n_kv_heads=n_kv,
        projections=tuple(projections),
    )


def _pooling(adapter: AttentionAdapter, config: object) -> tuple[str | None, str]:
    """(pooling, why none) of a model: the family's, or the one its config chooses."""
    if adapter.pooling_key is None:
        return adapter.pooling, ""
    value = getattr(config, adapter.pooling_key, None)
    choices = dict(adapter.pooling_values)
    if value in choices:
        return choices[value], ""
    return None, (
        f"its config's {adapter.pooling_key} is {value!r}, which is none of "
        f"{sorted(choices)} (headplast.model.adapters, family {adapter.family})"
    )


def resolve_classifier(model: nn.Module) -> ClassifierLayout:
    """Encoder, classifier (task head) and pooling of ``model`` as the adapter table describes
    them.

    Raises :class:`UnsupportedModelError` when an encoder module is missing or the model has no
    parameter outside the encoder (nothing to probe).
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", type(model).__name__)
    adapter = adapter_for(model_type)
    base = getattr(model, "base_model", model)
    qualified = {id(m): name for name, m in model.named_modules()}
    prefixes = []
    for path in (*adapter.encoder_modules, *adapter.optional_encoder_modules):
        module = _get(base, path)
        if module is None and path in adapter.optional_encoder_modules:
            continue
        if module is None:
            raise UnsupportedModelError(
                f"model type '{model_type}': no encoder module '{path}' in the base model "
                f"(family {adapter.family}, encoder_modules {adapter.encoder_modules})"
            )
        prefixes.append(qualified[id(module)])
    last = _get(base, adapter.last_hidden)
    if last is None:
        raise UnsupportedModelError(
            f"model type '{model_type}': no module '{adapter.last_hidden}' (last_hidden) in the "
            "base model"
        )
    outside = [
        n
        for n, _ in model.named_parameters()
        if not any(n == p or n.startswith(p + ".") for p in prefixes)
    ]
    if not outside:
        raise UnsupportedModelError(
            f"model type '{model_type}': every parameter is in the encoder {prefixes}; "
            "there is no classifier head to probe"
        )
    base_name = qualified[id(base)]
    modules: list[str] = []
    for n in outside:  # the top-level module: `classifier`, or `bert.pooler` inside the base model
        parts = n.split(".")
        parent = ".".join(parts[:2] if base_name and parts[0] == base_name else parts[:1])
        if parent not in modules:
            modules.append(parent)
    pooling, problem = _pooling(adapter, config)
    if pooling is not None and pooling not in POOLINGS:
        pooling, problem = (
            None,
            (
                f"its family's pooling {pooling!r} is none of {POOLINGS} "
                f"(headplast.model.adapters, family {adapter.family})"
            ),
        )
    pad = getattr(config, "pad_token_id", None)
    return ClassifierLayout(
        model_type=model_type,
        encoder_prefixes=tuple(prefixes),
        last_hidden=last,
        pooling=pooling,
        classifier_parameters=tuple(outside),
        classifier_modules=tuple(modules),
        pad_token_id=None if pad is None else int(pad),
        pooling_problem=problem,
    )


# Model types whose position ids start after the padding index (RoBERTa's
# create_position_ids_from_input_ids): pad_token_id + 1 of max_position_embeddings never hold a
# token.
PADDING_OFFSET_MODEL_TYPES = ("roberta", "xlm-roberta", "camembert", "data2vec-text")


class MaxLengthError(ValueError):
    """``max_length`` exceeds the longest input the model can embed."""


def max_input_length(config: object) -> int | None:
    """The most tokens (special tokens included) one input of the model can have, from its
    config: ``max_position_embeddings`` for absolute positions (BERT, ELECTRA), less
    ``pad_token_id + 1`` for RoBERTa-style position ids; None when the model adds no absolute
    position embeddings (DeBERTa-v2/v3 with ``position_biased_input: false``: relative
    positions only, any length) or its config states no limit."""
    if getattr(config, "position_biased_input", True) is False:
        return None
    n = getattr(config, "max_position_embeddings", None)
    if n is None:
        return None
    if getattr(config, "model_type", None) in PADDING_OFFSET_MODEL_TYPES:
        n -= int(getattr(config, "pad_token_id", None) or 0) + 1
    return int(n)


def check_max_length(config: object, max_length: int) -> None:
    """Raise :class:`MaxLengthError` naming the config key ``max_length``, its value and the
    model's limit when inputs of ``max_length`` tokens cannot be embedded."""
    limit = max_input_length(config)
    if limit is not None and int(max_length) > limit:
        model_type = getattr(config, "model_type", "?")
        offset = (
            f" = max_position_embeddings {config.max_position_embeddings} - (pad_token_id + 1)"
            if model_type in PADDING_OFFSET_MODEL_TYPES
            else " (max_position_embeddings)"
        )
        raise MaxLengthError(
            f"config key `max_length` is {int(max_length)}, but the model ({model_type}, absolute "
            f"position embeddings) takes at most {limit} tokens per input{offset}; set "
            f"`max_length` to {limit} or less"
        )
