"""Sentence encoders for the siamese student: token ids (B, L) -> one embedding (B, D) per sentence.

TransformerEncoder: a (distilled) BERT-style backbone + `Pooling`, the DSE student.
BiLSTMEncoder: the Tang et al. 2019 BiLSTM student with max pooling over time, whose embedding
table can be taken from the teacher's backbone so that both share one WordPiece tokenizer.

Every encoder is a `SentenceEncoder`: the same call signature, forward(input_ids, attention_mask,
token_type_ids=None), an `embed_dim`, and its own export (`export` writes it into an export folder,
`load_export` reads it back as a function of raw sentences), so the siamese wrapper, the heads and the
export code need not know which one they hold. Padding is assumed on the right (the HF default).
"""

from __future__ import annotations

import copy
import inspect
import logging
import shutil
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from ...embeddings.encode import EncodeFn
from ...options import layer_errors
from .pooling import Pooling, masked_max

log = logging.getLogger(__name__)
Backbone = str | Mapping | PretrainedConfig | PreTrainedModel


class SentenceEncoder(nn.Module, metaclass=ABCMeta):
    """Token ids of one sentence side -> (B, embed_dim); a class missing its export cannot be built."""

    @property
    @abstractmethod
    def embed_dim(self) -> int: ...

    @abstractmethod
    def export(self, folder: Path, tokenizer, max_length: int) -> dict:
        """Write what `load_export` needs into `folder`; the spec (kwargs) it needs besides."""

    @classmethod
    @abstractmethod
    def load_export(cls, folder: Path, spec: dict, max_length: int, device: str = "cpu") -> EncodeFn:
        """The exported encoder as a function of raw sentences (eval mode, no training code), on `device`
        (the embeddings it returns too)."""

    def _target(self) -> dict:
        return {"_target_": f"{type(self).__module__}.{type(self).__qualname__}"}


def _no_pooler_kwargs(config: PretrainedConfig) -> dict[str, bool]:
    """Ask for the backbone without its pooler head when the model class allows it.

    Our pooling never uses BERT's pooler; leaving it in gives parameters that never receive a
    gradient, which DDP (find_unused_parameters=False) rejects.
    """
    if type(config) not in MODEL_MAPPING:  # e.g. a remote-code model; keep whatever it builds
        return {}
    if "add_pooling_layer" in inspect.signature(MODEL_MAPPING[type(config)].__init__).parameters:
        return {"add_pooling_layer": False}
    return {}


def load_backbone(
    backbone: Backbone,
    num_layers: int | None = None,
    keep_layers: list[int] | None = None,
    config: Mapping | None = None,
) -> PreTrainedModel:
    """A model already built, a config or config dict (random init, for tests), or a name/path.

    num_layers keeps the first k transformer layers: the config asks for k (`num_hidden_layers`, which
    every BERT-style config maps to its own name), so loading pretrained weights skips the others.
    keep_layers keeps the listed ones instead (e.g. [1, 3, 5]: spread over the depth, the way DistilBERT
    and sentence-transformers' layer-reduction example initialise a shallower student).
    config: attributes of the backbone's config set before it is built (e.g. {"hidden_dropout_prob": 0.0});
    each must be one the config has.
    """
    if isinstance(backbone, PreTrainedModel):
        if num_layers is not None or keep_layers is not None or config:
            raise ValueError(
                "num_layers / keep_layers / backbone_config need a backbone name, path or config, not a "
                "built model"
            )
        return backbone
    if keep_layers is not None:
        if num_layers is not None:
            raise ValueError(layer_errors(1, num_layers, keep_layers, "")[0])
        return _kept(load_backbone(backbone, config=config), list(keep_layers), str(backbone))
    if isinstance(backbone, Mapping):  # e.g. {"model_type": "bert", "hidden_size": 32, ...}
        backbone = AutoConfig.for_model(**backbone)
    if isinstance(backbone, PretrainedConfig):
        built = _configured(_truncated(backbone, num_layers, "the config"), config, "the config")
        return AutoModel.from_config(built, **_no_pooler_kwargs(built))
    where = str(backbone)
    built = _configured(_truncated(AutoConfig.from_pretrained(backbone), num_layers, where), config, where)
    return AutoModel.from_pretrained(backbone, config=built, **_no_pooler_kwargs(built))


def _configured(config: PretrainedConfig, changes: Mapping | None, where: str) -> PretrainedConfig:
    """`config` with `changes` set (a copy); an attribute the config lacks is refused by name, since
    transformers would keep it without any layer reading it."""
    if not changes:
        return config
    if unknown := sorted(k for k in changes if not hasattr(config, k)):
        raise ValueError(
            f"student.encoder.backbone_config: {where} ({type(config).__name__}) has no {unknown}"
        )
    config = copy.deepcopy(config)
    for k, v in changes.items():
        setattr(config, k, v)
    return config


def _kept(model: PreTrainedModel, layers: list[int], where: str) -> PreTrainedModel:
    """The model with only `layers` of its stack, renumbered 0..k-1 (what save_pretrained then writes)."""
    stack = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(stack, nn.ModuleList):
        raise ValueError(f"student.encoder.keep_layers: {where} has no BERT-style encoder.layer stack")
    if errors := layer_errors(len(stack), None, layers, where):
        raise ValueError(errors[0])
    model.encoder.layer = nn.ModuleList(stack[i] for i in layers)
    model.config.num_hidden_layers = len(layers)
    return model


def _truncated(config: PretrainedConfig, num_layers: int | None, where: str) -> PretrainedConfig:
    if num_layers is None:
        return config
    if errors := layer_errors(config.num_hidden_layers, num_layers, None, where):
        raise ValueError(errors[0])
    config = copy.deepcopy(config)  # the caller's config (a test's, a teacher's) keeps its depth
    config.num_hidden_layers = num_layers
    return config


class TransformerEncoder(SentenceEncoder):
    """HF backbone -> all hidden states -> `Pooling` -> optional Linear projection -> (B, D).

    num_layers: keep the backbone's first k layers (a smaller, faster student of the same teacher);
    keep_layers: keep those layers instead (load_backbone); backbone_config: config attributes set first.
    A top_k_mean pooling deeper than the kept stack pools every kept layer instead (its top layers are the
    kept ones), and with pool_embeddings the embeddings' output too (a 3-layer student of a top-4 pooling
    then pools 4 vectors, as its 6-layer source does: the lowest one the most lexical).
    """

    def __init__(
        self,
        backbone: Backbone,
        pooling: Pooling,
        projection_dim: int | None = None,
        num_layers: int | None = None,
        keep_layers: list[int] | None = None,
        backbone_config: Mapping | None = None,
        pool_embeddings: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = load_backbone(backbone, num_layers, keep_layers, backbone_config)
        depth = self.backbone.config.num_hidden_layers
        cut = num_layers is not None or keep_layers is not None
        if pooling.mode == "top_k_mean" and (pool_embeddings or cut):
            deepest = depth + 1 if pool_embeddings else depth  # hidden_states[0] is the embeddings' output
            k = min(pooling.k, deepest) if cut else pooling.k
            if k < pooling.k:
                log.info(
                    "TransformerEncoder: %d layers kept: top_k_mean pools %d not %d", depth, k, pooling.k
                )
            pooling = Pooling(pooling.mode, k, pooling.exclude_cls, embeddings=pool_embeddings)
        self.pooling = pooling
        pooled_dim = pooling.output_dim(self.backbone.config.hidden_size)
        self.projection = nn.Linear(pooled_dim, projection_dim) if projection_dim is not None else None
        self._embed_dim = projection_dim if projection_dim is not None else pooled_dim

    @property
    def embed_dim(self) -> int:
        return self._embed_dim

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None
    ) -> Tensor:
        return self.encode_states(input_ids, attention_mask, token_type_ids)[0]

    def encode_states(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        token_type_ids: Tensor | None = None,
        attentions: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...] | None]:
        """(B, D) embeddings, the backbone's hidden states, (num_layers + 1) x (B, L, H), and with
        `attentions` its attention weights, num_layers x (B, heads, L, L) (the backbone must run eager
        attention): what intermediate-layer distillation matches (models/components/intermediate.py)."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "output_hidden_states": True}
        if token_type_ids is not None:  # some backbones (DistilBERT) take no token types at all
            kwargs["token_type_ids"] = token_type_ids
        out = self.backbone(**kwargs, output_attentions=attentions)
        pooled = self.pooling(out.hidden_states, attention_mask)  # (B, pooled_dim)
        embeddings = self.projection(pooled) if self.projection is not None else pooled
        return embeddings, out.hidden_states, (out.attentions if attentions else None)

    def export(self, folder: Path, tokenizer, max_length: int) -> dict:
        """The folder becomes a sentence-transformers model: backbone, `DSEPooling`, a Dense projection."""
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules import Dense, Transformer

        from .st_modules import DSEPooling, native_pooling, ship_code  # sentence-transformers: when exporting

        backbone_dir = folder / ".backbone"
        self.backbone.save_pretrained(backbone_dir)
        tokenizer.save_pretrained(backbone_dir)
        word = Transformer(
            str(backbone_dir), config_kwargs={"output_hidden_states": True}, max_seq_length=max_length
        )
        p, hidden = self.pooling, self.backbone.config.hidden_size
        pooling = native_pooling(p, hidden) or DSEPooling(
            p.mode, p.k, p.exclude_cls, p.output_dim(hidden), p.embeddings
        )
        modules = [word, pooling]
        if self.projection is not None:
            proj = self.projection
            weight, bias = proj.weight.detach().clone(), proj.bias.detach().clone()
            identity = nn.Identity()
            modules.append(
                Dense(
                    proj.in_features,
                    proj.out_features,
                    activation_function=identity,
                    init_weight=weight,
                    init_bias=bias,
                )
            )
        SentenceTransformer(modules=modules, device="cpu").save(str(folder))
        shutil.rmtree(backbone_dir)  # the SentenceTransformer folder now holds its own copy
        if isinstance(pooling, DSEPooling):
            ship_code(folder)  # loadable with trust_remote_code=True by sentence-transformers alone
        return self._target()

    @classmethod
    def load_export(cls, folder: Path, spec: dict, max_length: int, device: str = "cpu") -> EncodeFn:
        from sentence_transformers import SentenceTransformer

        # trust_remote_code: modules.json names the DSEPooling shipped in the folder (older exports: ours).
        model = SentenceTransformer(str(folder), device=str(device), trust_remote_code=True)
        # the caller batches (ExportedStudent.encode): one sentence-transformers batch per call
        return lambda batch: model.encode(
            batch, batch_size=len(batch), convert_to_tensor=True, show_progress_bar=False
        )


class BiLSTMEncoder(SentenceEncoder):
    """Embedding -> BiLSTM -> masked max over time -> (B, 2 * hidden_dim)  (Tang et al. 2019)."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_dim: int = 300,
        num_layers: int = 1,
        dropout: float = 0.1,
        pretrained_embeddings: Tensor | None = None,
        freeze_embeddings: bool = False,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        if num_layers not in (1, 2):
            raise ValueError(f"BiLSTMEncoder: num_layers must be 1 or 2, got {num_layers}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        if pretrained_embeddings is not None:
            if tuple(pretrained_embeddings.shape) != (vocab_size, embedding_dim):
                raise ValueError(
                    f"BiLSTMEncoder: pretrained_embeddings has shape {tuple(pretrained_embeddings.shape)}, "
                    f"expected (vocab_size, embedding_dim) = ({vocab_size}, {embedding_dim})"
                )
            with torch.no_grad():
                self.embedding.weight.copy_(pretrained_embeddings)
        self.embedding.weight.requires_grad_(not freeze_embeddings)
        self.dropout = nn.Dropout(dropout)
        # nn.LSTM's own dropout acts only between stacked layers, hence 0 for a single layer.
        self.lstm = nn.LSTM(
            embedding_dim,
            hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.hidden_dim = hidden_dim

    @classmethod
    def from_backbone(cls, backbone: Backbone, **kwargs) -> BiLSTMEncoder:
        """Initialise the embedding table from a transformer's WordPiece input embeddings.

        The student then reads the teacher tokenizer's ids directly. padding_idx defaults to the
        backbone config's pad_token_id (0 for BERT).
        """
        model = load_backbone(backbone)
        weight = model.get_input_embeddings().weight.detach().clone()  # (V, E)
        pad_id = model.config.pad_token_id
        kwargs.setdefault("padding_idx", pad_id if pad_id is not None else 0)
        return cls(
            vocab_size=weight.size(0), embedding_dim=weight.size(1), pretrained_embeddings=weight, **kwargs
        )

    @property
    def embed_dim(self) -> int:
        return 2 * self.hidden_dim

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None
    ) -> Tensor:
        """token_type_ids is accepted for a uniform encoder signature and ignored."""
        seq_len = input_ids.size(1)
        embedded = self.dropout(self.embedding(input_ids))  # (B, L, E)
        # pack_padded_sequence wants lengths on the CPU; clamp so an empty row cannot crash it.
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        # total_length keeps L, so `output` lines up with attention_mask even with trailing padding.
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=seq_len)  # (B, L, 2 * hidden)
        return masked_max(self.dropout(output), attention_mask)  # (B, 2 * hidden)

    def export(self, folder: Path, tokenizer, max_length: int) -> dict:
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, folder / "encoder.safetensors")
        tokenizer.save_pretrained(folder / "tokenizer")
        emb = self.embedding
        sizes = {
            "vocab_size": emb.num_embeddings,
            "embedding_dim": emb.embedding_dim,
            "padding_idx": emb.padding_idx,
        }
        return {**self._target(), **sizes, "hidden_dim": self.hidden_dim, "num_layers": self.lstm.num_layers}

    @classmethod
    def load_export(cls, folder: Path, spec: dict, max_length: int, device: str = "cpu") -> EncodeFn:
        encoder = cls(**{k: v for k, v in spec.items() if k != "_target_"}, dropout=0.0)
        encoder.load_state_dict(load_file(folder / "encoder.safetensors"))
        encoder.eval().to(device)
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")

        def encode(batch: list[str]) -> Tensor:
            feats = tokenizer(
                batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            )
            return encoder(feats["input_ids"].to(device), feats["attention_mask"].to(device))

        return encode
