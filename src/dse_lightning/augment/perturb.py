"""Tang et al. 2019's transfer set: perturbed copies of the gold pairs.

Each word is masked with probability `p_mask`; then, with probability `p_ngram`, the sentence is replaced by
a random n-gram of it (n from 1 to `ngram_max`). Their third rule, POS-guided word replacement, needs a
part-of-speech tagger; none with offline data is installed here (NLTK's and spaCy's taggers download their
models), so it is left out, as in the PaddleNLP reproduction (masking and n-grams only).
"""

from __future__ import annotations

from .generators import Pair, PairGenerator, Sources, quota


class Perturb(PairGenerator):
    name = "perturb"

    def __init__(self, per_gold: float = 1.0, p_mask: float = 0.1, p_ngram: float = 0.25, ngram_max: int = 5):
        if per_gold <= 0 or not 0 <= p_mask <= 1 or not 0 <= p_ngram <= 1 or ngram_max < 1:
            raise ValueError(
                "Perturb: per_gold > 0, p_mask and p_ngram in [0, 1], ngram_max >= 1; "
                f"got {per_gold}, {p_mask}, {p_ngram}, {ngram_max}"
            )
        self.per_gold, self.p_mask, self.p_ngram, self.ngram_max = per_gold, p_mask, p_ngram, ngram_max

    def sentence(self, text: str, sources: Sources) -> str:
        rng, words = sources.rng, text.split()
        words = [sources.mask_token if rng.random() < self.p_mask else w for w in words]
        if rng.random() < self.p_ngram and len(words) > 1:
            n = rng.randint(1, min(self.ngram_max, len(words)))
            start = rng.randrange(len(words) - n + 1)
            words = words[start : start + n]
        return " ".join(words)

    def pairs(self, sources: Sources) -> list[Pair]:
        out, want = [], quota(self.per_gold, sources)
        for i in range(10 * want):  # round-robin over the gold pairs; a perturbation may repeat one
            a, b = sources.gold[i % len(sources.gold)]
            pair = (self.sentence(a, sources), self.sentence(b, sources))
            if sources.take(pair):
                out.append(pair)
            if len(out) == want:
                break
        return out
