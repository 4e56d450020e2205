"""A corpus of distinct sentences for the corpus-scale search rows, made offline from the data at hand.

No million-sentence corpus installs offline, so one is made from every real sentence of the given tasks
(all their splits) and Tang et al.'s perturbations of them (augment/perturb.py: words masked, n-grams
sampled), round-robin over the real sentences, each string kept once: the real sentences first, then
their variants, until `size`. Seeded, so the file is the same on every machine (its sha256 says so).

    python -m dse_lightning.bench.corpus --size 1000000 --out logs/corpus_1m.txt
    python -m dse_lightning.bench --search-corpus logs/corpus_1m.txt ...
"""

from __future__ import annotations

import argparse
import logging
import random
from pathlib import Path

from tqdm.auto import tqdm

from ..augment.generators import Sources
from ..augment.perturb import Perturb
from ..utils.io import atomic_path, sentences_checksum
from .data import real_sentences

log = logging.getLogger(__name__)
MASK = "[MASK]"  # the BERT tokenizers' mask token: what a masked word reads as
TRIES = 200  # rounds over the real sentences before giving up on reaching `size`


def distinct_corpus(
    sentences: list[str], size: int, seed: int = 0, perturb: Perturb | None = None
) -> list[str]:
    """`size` distinct sentences: `sentences` (deduplicated, in order), then perturbed copies of them."""
    perturb = perturb or Perturb(p_mask=0.15, p_ngram=0.3, ngram_max=8)
    out = dict.fromkeys(s for s in sentences if s.strip())
    sources = Sources([], [], MASK, random.Random(seed))
    real = list(out)
    with tqdm(total=size, initial=min(len(out), size), desc="corpus", unit="sentence") as bar:
        for _ in range(TRIES):
            for text in real:
                if len(out) >= size:
                    return list(out)[:size]
                variant = perturb.sentence(text, sources)
                if variant.strip() and variant not in out:
                    out[variant] = None
                    bar.update()
    raise ValueError(f"distinct_corpus: {len(out)} distinct sentences after {TRIES} rounds, not {size}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m dse_lightning.bench.corpus", description=__doc__.split("\n")[0]
    )
    p.add_argument("--size", type=int, default=1_000_000, help="distinct sentences")
    p.add_argument(
        "--tasks", nargs="+", default=["mrpc", "stsb", "rte"], help="tasks whose sentences seed it"
    )
    p.add_argument("--data-dir", default=None, help="glue_data folder (default: as `data.dir=null`)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="the text file written, one sentence per line")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sentences, _ = real_sentences(args.tasks, args.data_dir)
    corpus = distinct_corpus([" ".join(s.split()) for s in sentences], args.size, args.seed)
    with atomic_path(args.out) as tmp:
        tmp.write_text("".join(s + "\n" for s in corpus))
    log.info("%s: %d distinct sentences (%d real), sha256 %s", args.out, len(corpus), len(sentences),
             sentences_checksum(corpus))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
