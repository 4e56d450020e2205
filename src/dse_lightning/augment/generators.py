"""What a transfer-set generator is given and returns."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

Pair = tuple[str, str]


def unordered(pair: Pair) -> frozenset[str]:
    return frozenset(pair)


@dataclass
class Sources:
    """A generator's inputs: the gold train pairs, the sentences it may pair (train, plus an optional
    corpus; never a dev sentence), the tokenizer's mask token, and a seeded random generator. `take`
    accepts a new pair once: not a gold pair (in either order), not a sentence with itself, no banned
    (dev) sentence, not a repeat."""

    gold: list[Pair]
    pool: list[str]
    mask_token: str
    rng: random.Random
    banned: frozenset[str] = frozenset()
    seen: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.seen |= {unordered(p) for p in self.gold}

    def take(self, pair: Pair) -> bool:
        key = unordered(pair)
        if len(key) < 2 or key in self.seen or key & self.banned or not all(s.strip() for s in pair):
            return False
        self.seen.add(key)
        return True


class PairGenerator:
    """Makes new pairs, each accepted by `Sources.take` (no gold pair, repeat, self-pair or dev sentence)."""

    name = ""

    def pairs(self, sources: Sources) -> list[Pair]:
        raise NotImplementedError

    def describe(self) -> dict:
        """Everything that changes the pairs it makes (it keys the cached, teacher-labelled transfer set)."""
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


def quota(per_gold: float, sources: Sources) -> int:
    return round(per_gold * len(sources.gold))
