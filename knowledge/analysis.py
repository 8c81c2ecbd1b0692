"""Lexical analysis for Korean and English: the terms that full-text search indexes.

PostgreSQL has no Korean parser, so terms are made here and stored in ``chunks.lexical_text``
(a generated ``tsvector`` with the ``simple`` configuration indexes them as they are):

- Korean: morphemes from kiwipiepy, keeping nouns, numerals, roots and verb/adjective
  stems (particles, endings and suffixes carry no topic), plus the character bigrams of
  every Hangul word, which catch compounds and segmentation slips.
- English and other Latin-script words: lower-cased, stop words dropped, Porter2 stems.
- Numbers as written (``2024``, ``3.5``).

The same analyzer runs on queries, so a query term matches a chunk term exactly.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["analyze", "analyze_many", "query_terms"]

_HANGUL_WORD = re.compile(r"[가-힣]+")
_LATIN_OR_NUMBER = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:'[a-z]+)?|[0-9]+(?:\.[0-9]+)?")
_KEEP_TAGS = frozenset({"NNG", "NNP", "NR", "XR", "VV", "VA", "SH"})

# English function words: the Lucene/SMART core plus the adverbs, conjunctions, pronouns and
# quantifiers of the Glasgow IR list. Its content words ("system", "interest", "fire", "bill",
# numbers, "due", "next", "back") stay searchable: a company's questions are about them.
_STOP_WORDS = frozenset(
    """a about above across after afterwards again against all almost alone along already also
    although always am among amongst an and another any anyhow anyone anything anyway anywhere
    are around as at be became because become becomes becoming been before beforehand behind
    being below beside besides between beyond both but by can cannot could did do does doing
    don down during each either else elsewhere enough etc even ever every everyone everything
    everywhere except few for from further had has have having he hence her here hereafter
    hereby herein hereupon hers herself him himself his how however i if in indeed into is it
    its itself just latter latterly many may me meanwhile might more moreover most mostly much
    must my myself namely neither nevertheless no nobody none noone nor not nothing now nowhere
    of off often on once only onto or other others otherwise our ours ourselves out over own
    perhaps rather s same seem seemed seeming seems several shall she should since so some
    somehow someone something sometime sometimes somewhere still such t than that the their
    theirs them themselves then thence there thereafter thereby therefore therein thereupon
    these they this those though through throughout thru thus to together too toward towards
    under until up upon very via was we were what whatever when whence whenever where
    whereafter whereas whereby wherein whereupon wherever whether which while whither who
    whoever whole whom whose why will with within without would yet you your yours yourself
    yourselves""".split()  # noqa: SIM905 - reads best as text
)

_kiwi: Any = None
_kiwi_lock = threading.Lock()


def _get_kiwi() -> Any:
    global _kiwi
    if _kiwi is None:
        with _kiwi_lock:
            if _kiwi is None:
                from kiwipiepy import Kiwi

                _kiwi = Kiwi()
    return _kiwi


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def _latin_terms(text: str) -> list[str]:
    terms = []
    for match in _LATIN_OR_NUMBER.finditer(text):
        word = match.group().lower()
        if word[0].isdigit():
            terms.append(word)
        elif word not in _STOP_WORDS and len(word) > 1:
            terms.append(_stem(word.split("'")[0]))
    return terms


def _korean_terms(tokens: Iterable[Any]) -> list[str]:
    terms = []
    for token in tokens:
        if token.tag in _KEEP_TAGS and (_HANGUL_WORD.search(token.form) or token.tag == "SH"):
            terms.append(token.form)
    return terms


def _bigrams(text: str) -> list[str]:
    grams: list[str] = []
    for word in _HANGUL_WORD.findall(text):
        grams.extend(word[i : i + 2] for i in range(len(word) - 1))
    return grams


def _terms(text: str, tokens: Iterable[Any] | None) -> list[str]:
    terms = _latin_terms(text)
    if tokens is not None:
        terms += _korean_terms(tokens)
        terms += _bigrams(text)
    return terms


def analyze(text: str) -> list[str]:
    """The index terms of ``text``, in order, repeats kept (they are term frequencies)."""
    tokens = _get_kiwi().tokenize(text) if _HANGUL_WORD.search(text) else None
    return _terms(text, tokens)


def analyze_many(texts: list[str]) -> list[list[str]]:
    """:func:`analyze` for a batch; kiwi tokenizes the Korean ones together."""
    korean = [i for i, text in enumerate(texts) if _HANGUL_WORD.search(text)]
    tokenized: dict[int, Any] = {}
    if korean:
        results = _get_kiwi().tokenize([texts[i] for i in korean])
        tokenized = dict(zip(korean, results, strict=True))
    return [_terms(text, tokenized.get(i)) for i, text in enumerate(texts)]


def query_terms(text: str) -> list[str]:
    """Distinct index terms of a query, in first-seen order."""
    return list(dict.fromkeys(analyze(text)))
