"""Word-overlap metrics of advice against its reference: ROUGE-L and METEOR.

Both tokenize each text and stem each word once per call and give rouge_score's and
NLTK's numbers exactly. METEOR uses WordNet synonyms when WordNet is installed for NLTK
(``tools/install_wordnet.sh`` builds it in ``.nltk_data`` of the project, which this
module puts on NLTK's path unless ``NLTK_DATA`` says otherwise); without WordNet it
matches exact words and stems only, and :func:`meteor_variant` says which ran.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import nltk

logger = logging.getLogger(__name__)

PROJECT_NLTK_DATA = Path(__file__).resolve().parents[3] / ".nltk_data"
os.environ.setdefault("NLTK_DATA", str(PROJECT_NLTK_DATA))
for _folder in reversed(os.environ["NLTK_DATA"].split(os.pathsep)):
    # nltk reads NLTK_DATA only when first imported, which may have happened before this.
    if _folder and _folder not in nltk.data.path:
        nltk.data.path.insert(0, _folder)

METEOR_WITH_SYNONYMS = "exact+stem+synonyms"
METEOR_WITHOUT_SYNONYMS = "exact+stem"


class _RememberedStems:
    """A stemmer that stems each word once: ROUGE-L and METEOR stem the same words again."""

    def __init__(self, stemmer):
        self._stemmer = stemmer
        self._stems: dict[str, str] = {}

    def stem(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            stem = self._stems[word] = self._stemmer.stem(word)
        return stem


class _RememberedTokens:
    """rouge_score's default tokenizer with the Porter stemmer, once per distinct text."""

    def __init__(self):
        from nltk.stem import porter

        self._stemmer = _RememberedStems(porter.PorterStemmer())
        self._tokens: dict[str, list[str]] = {}

    def tokenize(self, text: str) -> list[str]:
        from rouge_score import tokenize

        tokens = self._tokens.get(text)
        if tokens is None:
            tokens = self._tokens[text] = tokenize.tokenize(text, self._stemmer)
        return tokens


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists, bit-parallel.

    Hyyroe's bit-vector form of the LCS recurrence (one big-integer step per token of
    ``b``): the same integer as rouge_score's table, without filling the table.
    """
    positions: dict[str, int] = {}
    for i, token in enumerate(a):
        positions[token] = positions.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        matched = row & positions.get(token, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(a) - row.bit_count()


def rouge_l(candidates: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-L F-measure (longest common subsequence of stemmed words) of each pair.

    rouge_score's ``RougeScorer(["rougeL"], use_stemmer=True)`` to the last bit: its
    tokenizer and F-measure, each text tokenized and each word stemmed once per call, and
    the LCS length by :func:`_lcs_length`.
    """
    from rouge_score import scoring

    tokenizer = _RememberedTokens()
    scores = []
    for candidate, reference in zip(candidates, references, strict=True):
        target, prediction = tokenizer.tokenize(reference), tokenizer.tokenize(candidate)
        if not target or not prediction:
            scores.append(0.0)
            continue
        common = _lcs_length(target, prediction)
        scores.append(scoring.fmeasure(common / len(prediction), common / len(target)))
    return scores


class _NoSynonyms:
    """Stands in for WordNet in METEOR: no word has synonyms, so only exact and stem match."""

    def synsets(self, *args, **kwargs) -> list:
        return []


class _Lemma:
    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def name(self) -> str:
        return self._name


class _Lemmas:
    """Stands in for a word's synsets in METEOR: the lemma names it can match, each once."""

    def __init__(self, names):
        self._lemmas = tuple(_Lemma(name) for name in names)

    def lemmas(self) -> tuple[_Lemma, ...]:
        return self._lemmas


class _RememberedSynonyms:
    """WordNet's ``synsets`` looked up once per word: METEOR asks again for every pair.

    METEOR reads only the names of the synsets' lemmas, as a set, and drops multi-word
    names (those with ``_``): each word's other names are kept once, in one stand-in
    synset, so the set comes out the same from fewer names.
    """

    def __init__(self, wordnet):
        self._wordnet = wordnet
        self._synsets: dict[tuple, list] = {}

    def synsets(self, *args, **kwargs) -> list:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in self._synsets:
            names = dict.fromkeys(
                lemma.name()
                for synset in self._wordnet.synsets(*args, **kwargs)
                for lemma in synset.lemmas()
                if "_" not in lemma.name()
            )
            self._synsets[key] = [_Lemmas(names)] if names else []
        return self._synsets[key]


@functools.lru_cache(maxsize=1)
def _wordnet_reader():
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except LookupError:
        logger.warning(
            "WordNet is not installed for NLTK (searched %s): METEOR matches exact words and "
            "stems only. Run tools/install_wordnet.sh to add synonym matching.",
            os.pathsep.join(map(str, nltk.data.path)),
        )
        return None
    except (OSError, ValueError, AssertionError) as error:
        logger.warning("WordNet for NLTK is unreadable (%s): METEOR without synonyms", error)
        return None
    return wordnet


def wordnet_available() -> bool:
    """Whether NLTK can read WordNet (loads it once per process; a few seconds)."""
    return _wordnet_reader() is not None


def meteor_variant(use_wordnet: bool | None = None) -> str:
    """Which METEOR :func:`meteor` computes: with synonyms only where WordNet is readable."""
    wanted = wordnet_available() if use_wordnet is None else use_wordnet
    return METEOR_WITH_SYNONYMS if wanted and wordnet_available() else METEOR_WITHOUT_SYNONYMS


def meteor(
    candidates: Sequence[str], references: Sequence[str], use_wordnet: bool | None = None
) -> list[float]:
    """METEOR of each candidate against its reference (NLTK, words by ``wordpunct_tokenize``).

    ``use_wordnet=None`` uses synonyms when WordNet is available; ``False`` forces exact and
    stem matching only (see :func:`meteor_variant`).
    """
    from nltk.stem.porter import PorterStemmer
    from nltk.tokenize import wordpunct_tokenize
    from nltk.translate.meteor_score import meteor_score

    reader = _wordnet_reader() if meteor_variant(use_wordnet) == METEOR_WITH_SYNONYMS else None
    synonyms = _RememberedSynonyms(reader) if reader is not None else _NoSynonyms()
    stemmer = _RememberedStems(PorterStemmer())
    words = {text: wordpunct_tokenize(text) for text in dict.fromkeys((*candidates, *references))}
    return [
        meteor_score([words[reference]], words[candidate], stemmer=stemmer, wordnet=synonyms)
        for candidate, reference in zip(candidates, references, strict=True)
    ]
