"""Match predicted differences to gold ones within one (sample, actor) row.

The judge and the gold labels describe the same difference in different words, so rows are
paired by what they talk about, not by position:

1. Text of a difference: `aspect`, `actor_claim` and `reference_claim` joined (spans are left
   out: they repeat the claims' words).
2. Score (default `lexical_score`): Jaccard overlap |A ∩ B| / |A ∪ B| of the two token sets,
   where tokens are lower-cased runs of `[a-z0-9]`, without `STOPWORDS`, with a plural `s`
   folded (`dogs` -> `dog`, `berries` -> `berry`). A pluggable `Scorer` (e.g.
   `EmbeddingScorer` around a sentence encoder the caller supplies) can replace it.
3. Assignment: greedy one-to-one. Every pair with score > 0 and score >= threshold is a
   candidate; candidates are taken by descending score, ties broken by the lower predicted
   index, then the lower gold index; a pair whose predicted or gold row is already taken is
   skipped. Greedy rather than optimal (Hungarian) keeps the rule explainable in one sentence,
   and the two only differ when one difference is a near-paraphrase of two others.

The assignment ignores outcomes and judgments on purpose: a judge that finds the right
difference but decides it wrongly is a matched pair with disagreeing outcomes (visible in the
confusion matrix), not a miss plus a false alarm.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from claimdiff.schemas.rows import DifferenceRow

DEFAULT_THRESHOLD = 0.3

Scorer = Callable[[DifferenceRow, DifferenceRow], float]
"""Similarity of (predicted, gold) in [0, 1]; higher is more alike."""

# Function words and caption boilerplate that would make unrelated claims look alike.
STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "of", "in", "on", "at", "to", "for", "from", "with",
    "without", "by", "as", "into", "onto", "over", "under", "is", "are", "was", "were", "be",
    "been", "being", "it", "its", "this", "that", "these", "those", "there", "here", "which",
    "who", "whom", "has", "have", "had", "do", "does", "did", "not", "no", "nor", "so", "than",
    "then", "very", "just", "also", "only", "image", "picture", "photo", "shows", "showing",
    "shown", "depicts", "depicted", "caption", "describes",
})

_TOKEN = re.compile(r"[a-z0-9]+")


def _fold_plural(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


@functools.lru_cache(maxsize=65536)  # every difference is scored against each of its row's
def tokens(text: str) -> frozenset[str]:
    """Normalised content tokens of a text.

    >>> sorted(tokens("There are Two dogs on the sofa."))
    ['dog', 'sofa', 'two']
    """
    return frozenset(_fold_plural(t) for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS)


def match_text(row: DifferenceRow) -> str:
    return " ".join(p for p in (row.aspect, row.actor_claim, row.reference_claim) if p)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def lexical_score(predicted: DifferenceRow, gold: DifferenceRow) -> float:
    """Jaccard overlap of the normalised tokens of aspect + claims."""
    return jaccard(tokens(match_text(predicted)), tokens(match_text(gold)))


class EmbeddingScorer:
    """Cosine similarity (clipped to [0, 1]) of embeddings of `match_text`.

    `embed` maps texts to vectors; the caller brings the model (nothing is downloaded here).
    Embeddings are cached per text, so each difference is encoded once per evaluation.
    """

    name = "embedding cosine"

    def __init__(self, embed: Callable[[Sequence[str]], Sequence[Sequence[float]]]) -> None:
        self._embed = embed
        self._cache: dict[str, Sequence[float]] = {}

    def _vector(self, text: str) -> Sequence[float]:
        if text not in self._cache:
            (self._cache[text],) = self._embed([text])
        return self._cache[text]

    def __call__(self, predicted: DifferenceRow, gold: DifferenceRow) -> float:
        a, b = self._vector(match_text(predicted)), self._vector(match_text(gold))
        norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        if norm == 0:
            return 0.0
        return min(1.0, max(0.0, sum(x * y for x, y in zip(a, b, strict=True)) / norm))


def scorer_name(scorer: Scorer) -> str:
    if scorer is lexical_score:
        return "lexical token jaccard (aspect + claims)"
    return str(getattr(scorer, "name", getattr(scorer, "__name__", type(scorer).__name__)))


@dataclass(frozen=True)
class Match:
    predicted: int
    gold: int
    score: float


@dataclass(frozen=True)
class Alignment:
    """The predicted and gold differences of one row and their one-to-one matches."""

    predicted: tuple[DifferenceRow, ...]
    gold: tuple[DifferenceRow, ...]
    matches: tuple[Match, ...]

    def unmatched_predicted(self) -> list[int]:
        taken = {m.predicted for m in self.matches}
        return [i for i in range(len(self.predicted)) if i not in taken]

    def unmatched_gold(self) -> list[int]:
        taken = {m.gold for m in self.matches}
        return [i for i in range(len(self.gold)) if i not in taken]


def assign(scores: Sequence[Sequence[float]], threshold: float) -> tuple[Match, ...]:
    """Greedy one-to-one assignment over a predicted x gold score matrix (see module doc).

    >>> assign([[0.5, 0.5], [0.5, 0.4]], 0.3)  # three tie at 0.5: (0, 0) goes first
    (Match(predicted=0, gold=0, score=0.5), Match(predicted=1, gold=1, score=0.4))
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    candidates = sorted(
        ((score, p, g) for p, row in enumerate(scores) for g, score in enumerate(row)
         if score > 0 and score >= threshold),
        key=lambda c: (-c[0], c[1], c[2]))
    used_p: set[int] = set()
    used_g: set[int] = set()
    matches: list[Match] = []
    for score, p, g in candidates:
        if p in used_p or g in used_g:
            continue
        used_p.add(p)
        used_g.add(g)
        matches.append(Match(p, g, score))
    return tuple(sorted(matches, key=lambda m: (m.predicted, m.gold)))


def align(
    predicted: Sequence[DifferenceRow],
    gold: Sequence[DifferenceRow],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    scorer: Scorer = lexical_score,
) -> Alignment:
    """Match the differences of one row; both sides are taken in `difference_index` order."""
    p_rows = tuple(sorted(predicted, key=lambda r: r.difference_index))
    g_rows = tuple(sorted(gold, key=lambda r: r.difference_index))
    scores = [[scorer(p, g) for g in g_rows] for p in p_rows]
    return Alignment(p_rows, g_rows, assign(scores, threshold))
