"""Where each model family keeps its attention projections: the one table that knows module names.

Every measure works on a :class:`ModelLayout`, resolved once from a loaded Hugging Face
sequence-classification model. Nothing else in the package names a module.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


class UnsupportedModelError(ValueError):
    """The model's attention does not have a layout this package knows."""


@dataclass(frozen=True)
class AttentionAdapter:
    """Module paths of one model family, relative to the base model and to each encoder layer."""

    family: str
    model_types: tuple[str, ...]
    layers: str  # ModuleList of encoder layers, relative to model.base_model
    query: str  # relative to one layer
    key: str
    value: str
    output: str  # attention output projection; its input is the concatenation of head contexts
    # The encoder: modules of the base model that every theta0 of a model shares (pre-trained,
    # frozen by probing). Everything else (pooler, classifier) is the task head.
    encoder_modules: tuple[str, ...] = ("embeddings", "encoder")
    optional_encoder_modules: tuple[str, ...] = ()  # encoder parts only some model types have
    last_hidden: str = "encoder"  # its output's first tensor is the last hidden state [B, T, D]
    # True when the head reads only the first token of the last hidden state (BERT's pooler,
    # DeBERTa's ContextPooler, the RoBERTa/ELECTRA classification heads all take [:, 0]); then the
    # probe fits on [N, D] features and the theta0 sweep is shared by every seed and start.
    head_reads_first_token: bool = True


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
)


@dataclass(frozen=True)
class LayerModules:
    """The four linear maps of one layer's attention (weights are [out, in])."""

    layer: nn.Module
    query: nn.Linear
    key: nn.Linear
    value: nn.Linear
    output: nn.Linear


@dataclass(frozen=True)
class ModelLayout:
    """A resolved model: L encoder layers of H heads of size d (head h = features h*d:(h+1)*d)."""

    model_type: str
    family: str
    n_layers: int
    n_heads: int
    head_dim: int
    layers: tuple[LayerModules, ...]
    names: tuple[dict[str, str], ...]  # per layer: qualified module names of query/key/value/output


@dataclass(frozen=True)
class HeadLayout:
    """The split of a sequence-classification model into encoder and task head.

    ``head_parameters`` are the qualified names of every parameter outside the encoder modules
    (what probing trains); ``head_modules`` the modules holding them (e.g. ``bert.pooler`` and
    ``classifier`` for BERT, ``pooler`` and ``classifier`` for DeBERTa, ``classifier`` with its own
    dense layer for RoBERTa).
    """

    model_type: str
    encoder_prefixes: tuple[str, ...]  # qualified names of the encoder modules
    last_hidden: nn.Module  # output[0] is the last hidden state [B, T, D] that the head reads
    head_reads_first_token: bool
    head_parameters: tuple[str, ...]
    head_modules: tuple[str, ...]

    def is_encoder(self, name: str) -> bool:
        """Whether the parameter/buffer ``name`` belongs to the encoder."""
        return any(name == p or name.startswith(p + ".") for p in self.encoder_prefixes)


def _get(module: nn.Module, path: str) -> nn.Module | None:
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
        f"{a.family} ({', '.join(a.model_types)}): {a.layers}.N.{{{a.query}, {a.key}, {a.value}, "
        f"{a.output}}}"
        for a in ADAPTERS
    )
    raise UnsupportedModelError(
        f"model type '{model_type}' has no known attention layout. Looked for: {known}. "
        "Add an entry to headplast.model.adapters.ADAPTERS if the model keeps separate "
        "query/key/value projections and an attention output projection."
    )


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
            f"model type '{model_type}': no encoder layers at '{adapter.layers}' of the base model"
        )
    qualified = {id(m): name for name, m in model.named_modules()}
    n_heads = int(config.num_attention_heads)
    resolved, names = [], []
    for i, layer in enumerate(layers):
        mods = {k: _get(layer, getattr(adapter, k)) for k in ("query", "key", "value", "output")}
        bad = [getattr(adapter, k) for k, m in mods.items() if not isinstance(m, nn.Linear)]
        if bad:
            raise UnsupportedModelError(
                f"model type '{model_type}', layer {i}: expected nn.Linear at {bad} "
                f"(family {adapter.family})"
            )
        resolved.append(LayerModules(layer=layer, **mods))
        names.append({k: qualified[id(m)] for k, m in mods.items()})
    q = resolved[0].query
    if q.out_features % n_heads or resolved[0].output.in_features != q.out_features:
        raise UnsupportedModelError(
            f"model type '{model_type}': query width {q.out_features} is not {n_heads} heads "
            f"times a head size, or differs from the output projection's input "
            f"({resolved[0].output.in_features})"
        )
    return ModelLayout(
        model_type=model_type,
        family=adapter.family,
        n_layers=len(resolved),
        n_heads=n_heads,
        head_dim=q.out_features // n_heads,
        layers=tuple(resolved),
        names=tuple(names),
    )


def resolve_head(model: nn.Module) -> HeadLayout:
    """Encoder and head of ``model`` as the adapter table describes them.

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
    head = [
        n
        for n, _ in model.named_parameters()
        if not any(n == p or n.startswith(p + ".") for p in prefixes)
    ]
    if not head:
        raise UnsupportedModelError(
            f"model type '{model_type}': every parameter is in the encoder {prefixes}; "
            "there is no classifier head to probe"
        )
    base_name = qualified[id(base)]
    modules: list[str] = []
    for n in head:  # the top-level module: `classifier`, or `bert.pooler` inside the base model
        parts = n.split(".")
        parent = ".".join(parts[:2] if base_name and parts[0] == base_name else parts[:1])
        if parent not in modules:
            modules.append(parent)
    return HeadLayout(
        model_type=model_type,
        encoder_prefixes=tuple(prefixes),
        last_hidden=last,
        head_reads_first_token=adapter.head_reads_first_token,
        head_parameters=tuple(head),
        head_modules=tuple(modules),
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
