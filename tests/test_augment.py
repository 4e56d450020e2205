"""Transfer sets: generators, never a dev sentence, labels cached and resumable, gold + transfer rows."""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import pytest
import torch

from conftest import MRPC_HEADER, make_cfg, mrpc_rows, write_tsv
from dse_lightning.augment import Perturb, Recombine, TransferSet
from dse_lightning.augment.generators import Sources
from dse_lightning.config import load_task
from dse_lightning.data.datamodule import GluePairDataModule
from dse_lightning.targets import ExportedLogits, TargetContext
from dse_lightning.train import train

GOLD = [
    ("a cat sat on the mat", "the cat is sitting on a mat"),
    ("shares rose five percent", "the stock gained five percent"),
    ("a man plays the guitar", "someone is playing an instrument"),
    ("the market fell sharply today", "stocks dropped a lot today"),
]


def sources(seed: int = 0, banned=frozenset()) -> Sources:
    pool = list(dict.fromkeys(s for p in GOLD for s in p))
    return Sources(list(GOLD), pool, "[MASK]", random.Random(seed), frozenset(banned))


def test_take_refuses_gold_self_repeat_and_banned_pairs() -> None:
    src = sources(banned={"a man plays the guitar"})
    assert not src.take(GOLD[0]) and not src.take(GOLD[0][::-1])  # a gold pair, in either order
    assert not src.take(("a cat sat on the mat", "a cat sat on the mat"))
    assert not src.take(("a man plays the guitar", "a cat sat on the mat"))  # a banned (dev) sentence
    assert src.take(("a cat sat on the mat", "shares rose five percent"))
    assert not src.take(("shares rose five percent", "a cat sat on the mat"))  # a repeat


def test_perturb_masks_words_and_samples_ngrams_of_the_gold_pairs() -> None:
    pairs = Perturb(per_gold=2.0, p_mask=0.5, p_ngram=0.5, ngram_max=3).pairs(sources(seed=1))
    assert len(pairs) == 8 and pairs == Perturb(per_gold=2.0, p_mask=0.5, p_ngram=0.5, ngram_max=3).pairs(
        sources(1)
    )
    words = {w for p in GOLD for s in p for w in s.split()} | {"[MASK]"}
    assert all(set(s.split()) <= words for p in pairs for s in p)
    assert any("[MASK]" in s for p in pairs for s in p)
    assert any(len(s.split()) <= 3 for p in pairs for s in p)  # an n-gram of its sentence


@pytest.mark.parametrize("sampler", ["semantic", "random"])  # bm25: the next test
def test_recombine_pairs_train_sentences_by_each_sampler(sampler: str, tiny_backbone: Path) -> None:
    src = sources()
    pairs = Recombine(per_gold=1.0, samplers=[sampler], top_k=3, encoder=str(tiny_backbone)).pairs(src)
    assert len({frozenset(p) for p in pairs}) == len(pairs) and 0 < len(pairs) <= 4
    assert not {frozenset(p) for p in pairs} & {frozenset(p) for p in GOLD}
    assert all(a != b and {a, b} <= set(src.pool) for a, b in pairs)


def test_recombine_describes_its_encoder_by_what_it_is(tiny_backbone: Path, tmp_path: Path) -> None:
    """The transfer-set key (describe) names the encoder folder by its weights, not its path here: a copy
    elsewhere keys the same; other weights do not."""
    copy = shutil.copytree(tiny_backbone, tmp_path / tiny_backbone.name)
    here, there = (Recombine(encoder=str(folder)).describe() for folder in (tiny_backbone, copy))
    assert here == there and str(tmp_path) not in json.dumps(there)
    assert here["encoder"] == tiny_backbone.name and set(here["encoder_weights"])
    (copy / next(iter(here["encoder_weights"]))).write_bytes(b"other weights")
    assert Recombine(encoder=str(copy)).describe() != here


def test_bm25_pairs_each_sentence_with_its_lexical_neighbours_first() -> None:
    src = sources()
    src.pool += ["a black cat sat on a red mat", "five percent more shares today"]  # e.g. from a corpus
    pairs = Recombine(per_gold=0.5, samplers=["bm25"], top_k=3).pairs(src)
    # rank 0 of every sentence is itself (refused), and so is a gold partner: the corpus sentences that share
    # most words come first, one sentence's best before any sentence's second best
    assert pairs == [
        ("a cat sat on the mat", "a black cat sat on a red mat"),
        ("shares rose five percent", "five percent more shares today"),
    ]


def test_recombine_options_are_checked() -> None:
    with pytest.raises(ValueError, match="samplers from"):
        Recombine(samplers=["tfidf"])
    with pytest.raises(ValueError, match="semantic sampler needs `encoder`"):
        Recombine(samplers=["semantic"])


def disjoint_glue(tmp_path: Path) -> Path:
    """MRPC-format train and dev whose sentences differ, so a leak of a dev sentence is visible."""
    write_tsv(tmp_path / "g/MRPC/train.tsv", MRPC_HEADER, mrpc_rows(48), bom=True)
    dev = [
        ["1" if i % 2 else "0", str(9000 + i), str(9100 + i), f"Dev sentence {i}.", f"Dev other {i}."]
        for i in range(16)
    ]
    write_tsv(tmp_path / "g/MRPC/dev.tsv", MRPC_HEADER, dev, bom=True)
    return tmp_path / "g"


AUG = ["augment=both", "student.max_epochs=1", "augment.generators.recombine.samplers=[bm25,random]"]


def test_transfer_set_trains_is_cached_reused_and_never_holds_a_dev_sentence(tmp_path: Path, caplog) -> None:
    data = disjoint_glue(tmp_path)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Dev sentence 3.\nThe company said that shares rose sharply.\n")  # a dev sentence too
    first = train(make_cfg(tmp_path, data, "run1", *AUG, f"augment.corpus={corpus}"))
    assert first.student.targets == {"source": "logits", "augment": "both", "transfer_pairs": 192}
    stores = list((tmp_path / "cache" / "transfer" / "mrpc").glob("*/pairs.json"))
    pairs = [p for store in stores for p in json.loads(store.read_text())]
    assert len(stores) == 2 and len(pairs) == 192  # one labelled set per generator
    sentences = {s for p in pairs for s in p}
    assert not [s for s in sentences if s.startswith("Dev ")]
    with caplog.at_level(logging.INFO):  # another seed and alpha: the same transfer set, not labelled again
        again = train(
            make_cfg(
                tmp_path,
                data,
                "run2",
                *AUG,
                f"augment.corpus={corpus}",
                "seed=7",
                "teacher.seed=42",
                "distill.alpha=1",
            )
        )
    assert "transfer set: reusing" in caplog.text and again.student.targets["transfer_pairs"] == 192


@pytest.mark.slow  # two full runs with a transfer set (resume, as in tests/test_resume.py)
def test_transfer_labelling_resumes_from_its_last_chunk(tmp_path: Path, monkeypatch) -> None:
    data, calls = disjoint_glue(tmp_path), []
    real = TransferSet._label_chunk

    def predict_then_die(self, *args):
        calls.append(len(args[1]))  # the chunk's pairs
        if len(calls) == 2:
            raise KeyboardInterrupt("killed while labelling")
        return real(self, *args)

    monkeypatch.setattr(TransferSet, "_label_chunk", predict_then_die)
    chunked = [*AUG, "augment.chunk_size=64"]  # 96 recombined pairs (chunks of 64, 32), then 96 perturbed
    with pytest.raises(KeyboardInterrupt):
        train(make_cfg(tmp_path, data, "run1", *chunked))
    assert len(list((tmp_path / "cache" / "transfer" / "mrpc").glob("*.work/chunk*.pt"))) == 1
    calls.clear()
    monkeypatch.setattr(TransferSet, "_label_chunk", lambda self, *a: calls.append(1) or real(self, *a))
    train(make_cfg(tmp_path, data, "run2", *chunked))
    assert len(calls) == 3  # the saved chunk was not labelled again
    assert not list((tmp_path / "cache" / "transfer" / "mrpc").glob("*.work"))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["distill.alpha=0"], "no gold label; they teach only with distill.alpha > 0"),
        (["targets=online"], "extends exported logits: use targets=logits or targets=folds"),
        (["augment.corpus=/no/such/corpus.txt"], r"augment.corpus=/no/such/corpus.txt: no such file"),
        (  # it used to generate, silently, until memory ran out
            ["augment.generators.recombine.per_gold=1e9"],
            r"per_gold=1000000000.0: over augment.max_per_gold=32 .* raise augment.max_per_gold",
        ),
        (
            ["targets=ensemble", "targets.members=6", "targets.siamese=3"],
            r"targets.members=6 \+ targets.siamese=3: over targets.max_members=8 models; raise",
        ),
    ],
)
def test_transfer_set_options_refused_before_the_teacher(
    tmp_path: Path, mrpc_dir: Path, overrides, match
) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        train(make_cfg(tmp_path, mrpc_dir, "run", "augment=pairs", *overrides))
    assert not (tmp_path / "cache" / "teachers").exists()


def test_a_corpus_without_a_sentence_is_refused_before_the_teacher(tmp_path: Path, mrpc_dir: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n   \n")  # it used to add nothing to the pool, silently
    with pytest.raises(ValueError, match=rf"augment.corpus={empty}: no sentences"):
        train(make_cfg(tmp_path, mrpc_dir, "run", "augment=pairs", f"augment.corpus={empty}"))
    assert not (tmp_path / "cache" / "teachers").exists()


def test_the_pool_is_train_and_corpus_sentences_without_dev_ones(tmp_path: Path, tokenizer_path: str) -> None:
    task = load_task("mrpc")
    data = GluePairDataModule(
        task, tokenizer_path, dir=str(disjoint_glue(tmp_path)), cache_dir=str(tmp_path / "c")
    )
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Dev sentence 3.\nThe company said that shares rose sharply.\n\n")
    every = Recombine(per_gold=40.0, samplers=["random"])  # enough random pairs to reach every pool sentence
    source = TransferSet(base=ExportedLogits(), generators={"random": every}, corpus=str(corpus))
    ctx = TargetContext(cfg=None, task=task, teacher=None, data=data, rows={}, run_dir=tmp_path)
    sentences = {s for pair in source.generate(ctx, every) for s in pair}
    train = set(data.raw("train")["sentence1"]) | set(data.raw("train")["sentence2"])
    assert sentences == train | {"The company said that shares rose sharply."}  # and no dev sentence


def test_a_graph_backend_labels_the_transfer_set_as_the_teacher_does(tmp_path: Path) -> None:
    """`teacher.backend=onnx`: the same teacher (reused), its export's fp32 graph made once in the store,
    labels the transfer pairs within float noise of torch's labels; that is another transfer set and another
    student (their keys name the backend; torch's do not, so they stay as they were)."""
    data = disjoint_glue(tmp_path)
    aug = [*AUG, "augment=pairs", "augment.generators.recombine.samplers=[bm25]"]
    fp32 = train(make_cfg(tmp_path, data, "torch", *aug))
    graph = train(make_cfg(tmp_path, data, "onnx", *aug, "teacher.backend=onnx"))
    assert graph.teacher.reused and graph.teacher.key == fp32.teacher.key
    assert graph.student.key != fp32.student.key and not graph.student.reused
    sets = {}
    for folder in (tmp_path / "cache" / "transfer" / "mrpc").glob("*/pairs.json"):
        logits = torch.load(folder.parent / "logits.pt", weights_only=False)
        sets[folder.parent.name] = (json.loads(folder.read_text()), logits)
    assert len(sets) == 2  # one per backend, the same pairs
    (pairs_a, logits_a), (pairs_b, logits_b) = sets.values()
    assert pairs_a == pairs_b and len(pairs_a) == graph.student.targets["transfer_pairs"] > 0
    values = [x["logits"] for x in (logits_a, logits_b)]
    torch.testing.assert_close(values[0], values[1], rtol=0, atol=1e-4)
    graphs = list((tmp_path / "cache" / "teacher_graphs" / "mrpc").glob("*/onnx/model.onnx"))
    assert len(graphs) == 1  # made once, from the teacher's export
    # The graph judged on dev beside the fp32 teacher (fp32 onnx: the same metrics); torch records nothing.
    assert "teacher_backend" not in fp32.student.targets
    (served,) = graph.student.targets["teacher_backend"]
    assert served["backend"] == "onnx" and served["teacher"] == fp32.teacher.key and served["metrics"]
    assert served["fp32_metrics"] == {k: fp32.teacher.metrics[k] for k in served["metrics"]}
    for name, value in served["metrics"].items():
        assert value == pytest.approx(fp32.teacher.metrics[name], abs=1e-3), name


def test_every_ensemble_member_labels_through_the_graph_and_is_judged_on_dev(tmp_path: Path) -> None:
    """`targets=ensemble` with `teacher.backend=onnx`: each cross-encoder member gets its own graph, and
    the run's record holds each member's graph dev metrics beside that member's fp32 ones."""
    data = disjoint_glue(tmp_path)
    ens = ["targets=ensemble", "targets.members=2", "teacher.backend=onnx"]
    run = train(make_cfg(tmp_path, data, "ens", *AUG, "augment=pairs", *ens))
    served = run.student.targets["teacher_backend"]
    assert [s["teacher"] for s in served] == run.student.targets["members"]  # both members, in order
    for member, fp32 in zip(served, run.student.targets["member_metrics"], strict=True):
        assert member["fp32_metrics"] == {k: fp32[k] for k in member["metrics"]}
        assert member["metrics"] == pytest.approx(member["fp32_metrics"], abs=1e-3)  # fp32 onnx
    graphs = list((tmp_path / "cache" / "teacher_graphs" / "mrpc").glob("*/onnx/model.onnx"))
    assert len(graphs) == 2


def test_two_generators_share_one_graph_labeller_judged_on_dev_once(tmp_path: Path, monkeypatch) -> None:
    """augment=both through a graph: each generator's pairs are labelled, by labellers made once (the
    teacher's checkpoint loaded, its graph compiled and judged on dev once, not once per generator)."""
    from dse_lightning.augment import transfer

    made, real = [], transfer.labeller
    monkeypatch.setattr(transfer, "labeller", lambda *a: made.append(a[2].key) or real(*a))
    run = train(make_cfg(tmp_path, disjoint_glue(tmp_path), "both", *AUG, "teacher.backend=onnx"))
    assert made == [run.teacher.key]
    assert len(list((tmp_path / "cache" / "transfer" / "mrpc").glob("*/pairs.json"))) == 2
    (served,) = run.student.targets["teacher_backend"]
    assert served["backend"] == "onnx" and served["teacher"] == run.teacher.key


def test_teacher_backend_must_be_a_graph_backend(tmp_path: Path) -> None:
    from dse_lightning.pipeline.graph_teacher import graph_backend

    data = disjoint_glue(tmp_path)
    assert graph_backend(make_cfg(tmp_path, data, "r")) is None  # torch: the module itself
    assert (
        graph_backend(make_cfg(tmp_path, data, "r", "teacher.backend=openvino-int8")).name == "openvino-int8"
    )
    with pytest.raises(ValueError, match=r"backend='int4': expected one of"):
        graph_backend(make_cfg(tmp_path, data, "r", "teacher.backend=int4"))
    with pytest.raises(ValueError, match=r"backend='int4': expected one of"):  # by train(), before any work
        train(make_cfg(tmp_path, data, "r", "teacher.backend=int4", "augment=pairs"))
    assert not (tmp_path / "cache" / "teachers").exists()
