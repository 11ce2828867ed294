"""Match predicted differences to gold ones within one (sample, actor) row.

The judge and the gold labels describe the same difference in different words, so rows are
paired by what they talk about, not by position:

1. Tokens: lower-cased runs of `[a-z0-9]`, without `STOPWORDS`, with a plural `s` folded
   (`dogs` -> `dog`, `berries` -> `berry`) and British spellings of common visual words mapped to
   American ones (`colour` -> `color`, `grey` -> `gray`: `SPELLINGS`).
2. Score (default `lexical_score`): the mean of two Jaccard overlaps |A ∩ B| / |A ∪ B|, one of
   the `aspect` tokens and one of the claim tokens (`actor_claim` and `reference_claim` pooled;
   spans are left out: they repeat the claims' words). The aspect names what a difference is
   about in a few words on both sides; claims carry the content and their length varies most
   (gold claims are often whole sentences: "There is a small pink triangle to the left of the
   house.", where a judge writes "A pink triangle."). Scoring the two apart keeps a long claim
   from drowning an agreeing aspect, and a shared aspect word from matching unrelated claims.
   A field with no tokens on either side is left out of the mean. Identical texts score 1.0,
   texts with no content word in common 0.0. A pluggable `Scorer` (e.g. `EmbeddingScorer` around
   a sentence encoder the caller supplies) can replace it.
3. Assignment (`assign`): optimal one-to-one. Candidates are pairs with score > 0 and score >=
   threshold; among all one-to-one sets of candidates, the one with the most matches wins, then
   the highest total score, then (ties) the one that pairs earlier rows first: sets compared by
   their (predicted, gold) index pairs in order, the first difference deciding for the lower
   pair. Found exactly (a Hungarian algorithm over these lexicographic gains, in exact
   arithmetic), so the result is deterministic and independent of floating-point summation order.
   Greedy matching by descending score can lose matches (scores [[0.9, 0.8], [0.85, 0]] give
   one greedy match where two exist); a lost match reads as a miss plus a false alarm.

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
from fractions import Fraction
from typing import Protocol

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
# British -> American spellings of words captions of images use, after plural folding.
SPELLINGS = {
    "colour": "color", "coloured": "colored", "colourful": "colorful", "colouring": "coloring",
    "multicoloured": "multicolored", "discoloured": "discolored",
    "grey": "gray", "greyish": "grayish", "greying": "graying",
    "centre": "center", "centred": "centered", "metre": "meter", "theatre": "theater",
    "aluminium": "aluminum", "tyre": "tire", "jewellery": "jewelry", "moustache": "mustache",
    "pyjama": "pajama", "armour": "armor", "harbour": "harbor", "neighbour": "neighbor",
    "favourite": "favorite", "doughnut": "donut", "kerb": "curb", "chequered": "checkered",
    "storey": "story", "plough": "plow", "cosy": "cozy", "mould": "mold", "odour": "odor",
    "vapour": "vapor", "catalogue": "catalog", "programme": "program",
}

_TOKEN = re.compile(r"[a-z0-9]+")


def _fold_plural(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def _normal(token: str) -> str:
    folded = _fold_plural(token)
    return SPELLINGS.get(folded, folded)


@functools.lru_cache(maxsize=65536)  # every difference is scored against each of its row's
def tokens(text: str) -> frozenset[str]:
    """Normalised content tokens of a text.

    >>> sorted(tokens("There are Two dogs on the sofa."))
    ['dog', 'sofa', 'two']
    >>> sorted(tokens("Grey colours"))
    ['color', 'gray']
    """
    return frozenset(_normal(t) for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS)


class Described(Protocol):
    """What the lexical matcher reads of a difference (a `DifferenceRow`, a `JudgedDifference`)."""

    @property
    def aspect(self) -> str: ...
    @property
    def actor_claim(self) -> str | None: ...
    @property
    def reference_claim(self) -> str | None: ...


def match_text(row: Described) -> str:
    """The whole text of a difference: aspect and both claims (what embedding scorers see)."""
    return " ".join(p for p in (row.aspect, claims_text(row)) if p)


def claims_text(row: Described) -> str:
    return " ".join(p for p in (row.actor_claim, row.reference_claim) if p)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def _field_mean(pairs: Sequence[tuple[frozenset[str], frozenset[str]]]) -> float:
    """Mean Jaccard over the fields that have a token on some side."""
    scores = [jaccard(a, b) for a, b in pairs if a or b]
    return sum(scores) / len(scores) if scores else 0.0


def lexical_score(predicted: Described, gold: Described) -> float:
    """Mean of the token Jaccard of the aspects and of the claims (see the module docstring)."""
    return _field_mean([
        (tokens(predicted.aspect), tokens(gold.aspect)),
        (tokens(claims_text(predicted)), tokens(claims_text(gold))),
    ])


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
        return "lexical: mean token jaccard of aspect and of claims"
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


# ---- optimal assignment ------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class _Gain:
    """What one pair adds to a set of matches, compared field by field (lexicographically).

    Adding and subtracting field-wise keeps the order (an ordered abelian group), which is all
    the Hungarian algorithm needs: it then maximises matches, then score, then `order` exactly.
    """

    matches: int
    score: Fraction
    order: int  # 2 ** (pairs after this one): earlier pairs outweigh all later ones together

    def __add__(self, other: _Gain) -> _Gain:
        return _Gain(self.matches + other.matches, self.score + other.score,
                     self.order + other.order)

    def __sub__(self, other: _Gain) -> _Gain:
        return _Gain(self.matches - other.matches, self.score - other.score,
                     self.order - other.order)


_ZERO = _Gain(0, Fraction(0), 0)


def _max_assignment(gain: list[list[_Gain]]) -> list[int]:
    """For each row, the column of a maximum-gain assignment; needs rows <= columns.

    The Hungarian algorithm (shortest augmenting paths with potentials) on cost = -gain.
    """
    n, m = len(gain), len(gain[0])
    u, v = [_ZERO] * (n + 1), [_ZERO] * (m + 1)
    owner = [0] * (m + 1)  # owner[j]: the row (1-based) holding column j; 0: free
    way = [0] * (m + 1)
    for row in range(1, n + 1):
        owner[0], j0 = row, 0
        slack: list[_Gain | None] = [None] * (m + 1)  # None: infinite
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = owner[j0], None, 0
            for j in range(1, m + 1):
                if used[j]:
                    continue
                reduced = _ZERO - gain[i0 - 1][j - 1] - u[i0] - v[j]
                current = slack[j]
                if current is None or reduced < current:
                    slack[j], way[j] = reduced, j0
                    current = reduced
                if delta is None or current < delta:
                    delta, j1 = current, j
            assert delta is not None  # rows <= columns: a free column is always left
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    value = slack[j]
                    assert value is not None
                    slack[j] = value - delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    columns = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            columns[owner[j] - 1] = j - 1
    return columns


def assign(scores: Sequence[Sequence[float]], threshold: float) -> tuple[Match, ...]:
    """Optimal one-to-one assignment over a predicted x gold score matrix (see module doc).

    >>> assign([[0.9, 0.8], [0.85, 0.0]], 0.3)  # greedy would stop at (0, 0)
    (Match(predicted=0, gold=1, score=0.8), Match(predicted=1, gold=0, score=0.85))
    >>> assign([[0.5, 0.5], [0.5, 0.5]], 0.3)  # all tie: earlier pairs first
    (Match(predicted=0, gold=0, score=0.5), Match(predicted=1, gold=1, score=0.5))
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    n_p = len(scores)
    n_g = len(scores[0]) if n_p else 0
    if not n_p or not n_g:
        return ()
    last = n_p * n_g - 1

    def gain(p: int, g: int) -> _Gain:
        score = scores[p][g]
        if not (score > 0 and score >= threshold):
            return _ZERO
        return _Gain(1, Fraction(score), 1 << (last - (p * n_g + g)))

    gains = [[gain(p, g) for g in range(n_g)] for p in range(n_p)]
    if n_p <= n_g:
        pairs = list(enumerate(_max_assignment(gains)))
    else:  # the algorithm wants rows <= columns: solve the transpose
        transposed = [list(column) for column in zip(*gains, strict=True)]
        pairs = [(p, g) for g, p in enumerate(_max_assignment(transposed))]
    # a row the assignment filled with a non-candidate is unmatched
    return tuple(Match(p, g, scores[p][g]) for p, g in sorted(pairs)
                 if gains[p][g].matches)


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
