"""Median decoding: the model states the middle of its own belief about the imbalance.

Greedy decoding takes the likeliest token at each step. For advice that is a poor way to
choose: the verdict is spread over several words ("about 7 dB too loud", "well balanced"),
so greedy never weighs "balanced" as a whole against the two directions, and of the
amounts it says the single likeliest one (the mode), which does not follow the offset.

Here the model scores every sentence of the advice grammar it was fine-tuned on: each
phrasing of each verdict with each whole-dB amount (:func:`advice_phrasings`). Summed over
phrasings these are its belief over the signed imbalance, from "too soft by n dB" through
"balanced" to "too loud by n dB". It states the median of that belief: "balanced" when
neither direction holds half of it, otherwise the direction with the amount that errs
least in expectation, in the phrasing it finds likeliest. The output is still the model's
natural language; the real 7B path runs this same code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from anchormix_kedro.advice_language.wording import advice_phrasings
from anchormix_kedro.model.data import AudioChatCollator, FeatureStore, encode_conversation
from anchormix_kedro.model.front_end import AnchorLevel
from anchormix_kedro.vocabulary import BALANCED, TARGET_ONLY, TOO_LOUD, TOO_SOFT

GREEDY, MEDIAN = "greedy", "median"
DECODING_METHODS = (GREEDY, MEDIAN)


@dataclass(frozen=True)
class DecodingSettings:
    """How a package's advice is decoded (``inference.decoding`` in the parameters).

    ``method``: ``median`` (this module) or ``greedy`` (the likeliest token at each step).
    ``max_amount_db``: the largest whole-dB amount the grammar offers; the training
    offsets should lie within it.
    """

    method: str = MEDIAN
    max_amount_db: int = 12

    def __post_init__(self) -> None:
        if self.method not in DECODING_METHODS:
            raise ValueError(
                f"unknown decoding method {self.method!r}; expected one of {', '.join(DECODING_METHODS)}"
            )
        if int(self.max_amount_db) < 1:
            raise ValueError(
                f"decoding.max_amount_db must be at least 1 dB, got {self.max_amount_db}"
            )

    @classmethod
    def from_params(cls, params: dict | None) -> DecodingSettings:
        params = dict(params or {})
        unknown = set(params) - {"method", "max_amount_db"}
        if unknown:
            raise ValueError(
                f"unknown decoding setting(s) {', '.join(sorted(unknown))}; expected method, "
                "max_amount_db"
            )
        return cls(**params)


@dataclass(frozen=True)
class Outcome:
    """One point of the belief: a verdict and its stated amount (None for balanced)."""

    label: str
    amount_db: int | None

    @property
    def signed_db(self) -> int:
        """Too loud positive, too soft negative, balanced 0: the order the median runs in."""
        if self.label == BALANCED:
            return 0
        return self.amount_db if self.label == TOO_LOUD else -self.amount_db

    @classmethod
    def from_signed(cls, signed_db: int) -> Outcome:
        if signed_db == 0:
            return cls(BALANCED, None)
        return cls(TOO_LOUD if signed_db > 0 else TOO_SOFT, abs(int(signed_db)))


def advice_grammar(
    target: str, anchor: str | None, max_amount_db: int
) -> list[list[tuple[Outcome, str]]]:
    """Every sentence the advice grammar offers for one pair, grouped by phrasing.

    A group is one phrasing of one verdict with each amount from 1 to ``max_amount_db``
    (balanced: the phrasing alone), each sentence with the outcome it states.
    """
    groups: list[list[tuple[Outcome, str]]] = [
        [(Outcome(BALANCED, None), text)] for text in advice_phrasings(BALANCED, target, anchor)
    ]
    for label in (TOO_SOFT, TOO_LOUD):
        by_amount = [
            advice_phrasings(label, target, anchor, amount)
            for amount in range(1, int(max_amount_db) + 1)
        ]
        for phrasing in zip(*by_amount, strict=True):
            groups.append(
                [(Outcome(label, amount), text) for amount, text in enumerate(phrasing, start=1)]
            )
    return groups


@dataclass(frozen=True)
class Belief:
    """The model's probability of each outcome (summed over phrasings), and its best phrasing."""

    outcomes: tuple[Outcome, ...]  # ordered by signed dB
    probabilities: np.ndarray
    best_phrasing: dict[Outcome, str]

    def median(self) -> Outcome:
        """The verdict at the median of the signed belief (balanced unless one direction holds
        at least half of it), stating the median amount of that direction."""
        signed = self.outcomes[int(np.searchsorted(np.cumsum(self.probabilities), 0.5))]
        return signed if signed.label == BALANCED else self.median_amount(signed.label)

    def median_amount(self, label: str) -> Outcome:
        """``label`` (too loud or too soft) with the median amount of the belief in it."""
        side = sorted(
            (
                (o, p)
                for o, p in zip(self.outcomes, self.probabilities, strict=True)
                if o.label == label
            ),
            key=lambda item: item[0].amount_db,
        )
        mass = np.array([p for _, p in side])
        return side[int(np.searchsorted(np.cumsum(mass), 0.5 * mass.sum()))][0]

    def direction_probability(self, label: str) -> float:
        return float(
            sum(
                p
                for o, p in zip(self.outcomes, self.probabilities, strict=True)
                if o.label == label
            )
        )


def belief_from_scores(grammar: Sequence[tuple[Outcome, str]], log_probs: np.ndarray) -> Belief:
    """Sum each outcome's phrasings (in probability) and normalise over the grammar."""
    scores: dict[Outcome, list[float]] = {}
    best: dict[Outcome, tuple[float, str]] = {}
    for (outcome, text), score in zip(grammar, log_probs, strict=True):
        scores.setdefault(outcome, []).append(float(score))
        if outcome not in best or score > best[outcome][0]:
            best[outcome] = (float(score), text)
    outcomes = tuple(sorted(scores, key=lambda o: o.signed_db))
    totals = np.array([np.logaddexp.reduce(scores[o]) for o in outcomes])
    probabilities = np.exp(totals - np.logaddexp.reduce(totals))
    return Belief(outcomes, probabilities, {o: text for o, (_, text) in best.items()})


def adapter_names(model) -> list[str]:
    """The adapters a model carries, the first (active) one first: several for an ensemble,
    none for a base without an adapter."""
    names = list(getattr(model, "peft_config", None) or {})
    first = getattr(model, "active_adapter", None)
    return sorted(names, key=lambda name: name != first)


def mixture_log_probs(members: Sequence[np.ndarray]) -> np.ndarray:
    """log of the average of the members' probabilities of each sentence, each member's
    normalised over the grammar first (so each weighs the same)."""
    normalised = [scores - np.logaddexp.reduce(scores) for scores in members]
    return np.logaddexp.reduce(np.stack(normalised), axis=0) - np.log(len(members))


@dataclass(frozen=True)
class PackedGrammar:
    """One pair's grammar, tokenised and packed into one sequence scored after the prompt.

    Each phrasing's sentences share the words before the amount (the phrasing's stem) and
    differ in the amount's tokens (a branch). A branch keeps the words after the amount
    up to the one that closes the number ("1" then " dB" is not "1" then "0") and, where
    a phrasing of the other verdict shares the stem, up to the word where the two part
    ("about 4 dB too loud in the mix" against "... too soft in the mix", the target-only
    advice): without it both directions would weigh the same. The words after that are
    the same either way and are not scored. A phrasing without an amount (balanced) is all
    stem. The stems, then the branches, are packed one after another: a
    tree mask lets each token see the prompt, the tokens before it in its own stem and, in a
    branch, its whole stem, each at its position in its own sentence. So the whole grammar
    is one pass over a few hundred tokens.
    """

    sentences: tuple[tuple[Outcome, str], ...]
    token_ids: torch.Tensor  # (N,) packed stems then branches
    predicted_by: torch.Tensor  # (N,) packed index predicting each token (-1: the prompt)
    offsets: torch.Tensor  # (N,) position after the prompt
    tree: torch.Tensor  # (N, N) bool: token i may attend to packed token j
    sentence_of: torch.Tensor  # (N,) sentence a branch token belongs to, -1 for stem tokens
    stem_of_token: torch.Tensor  # (N,) stem a stem token belongs to, -1 for branch tokens
    stem_of_sentence: torch.Tensor  # (sentences,)

    @classmethod
    def build(cls, groups: Sequence[Sequence[tuple[Outcome, str]]], tokenizer) -> PackedGrammar:
        ids, predicted_by, offsets, seen, sentence_of, stem_of_token = [], [], [], [], [], []
        stems, stem_of_sentence, branches = [], [], []
        tokenised = [
            [tokenizer(text, add_special_tokens=False)["input_ids"] for _, text in group]
            for group in groups
        ]
        # Each amount group's stem (the words before the amount) and tail (the words after
        # it, the same for every amount).
        shapes = []
        for tokens in tokenised:
            stem_length = len(tokens[0]) if len(tokens) == 1 else _shared_prefix(tokens)
            tail = 0 if len(tokens) == 1 else _shared_suffix(tokens, stem_length)
            shapes.append((stem_length, tail))
        for index, (group, tokens) in enumerate(zip(groups, tokenised, strict=True)):
            stem_length, tail = shapes[index]
            stems.append(tokens[0][:stem_length])
            kept = _tail_to_score(index, groups, tokenised, shapes)
            for sentence in tokens:
                stem_of_sentence.append(len(stems) - 1)
                branches.append(
                    sentence[stem_length : len(sentence) - tail + kept] if len(group) > 1 else []
                )
        stem_starts = []
        for index, stem in enumerate(stems):
            stem_starts.append(len(ids))
            for k, token in enumerate(stem):
                ids.append(token)
                predicted_by.append(len(ids) - 2 if k else -1)
                offsets.append(k)
                seen.append(list(range(stem_starts[-1], len(ids))))
                sentence_of.append(-1)
                stem_of_token.append(index)
        for sentence, branch in enumerate(branches):
            stem = stem_of_sentence[sentence]
            start, length = stem_starts[stem], len(stems[stem])
            first = len(ids)
            for k, token in enumerate(branch):
                ids.append(token)
                predicted_by.append(len(ids) - 2 if k else start + length - 1)
                offsets.append(length + k)
                seen.append([*range(start, start + length), *range(first, len(ids))])
                sentence_of.append(sentence)
                stem_of_token.append(-1)
        tree = torch.zeros(len(ids), len(ids), dtype=torch.bool)
        for token, visible in enumerate(seen):
            tree[token, visible] = True
        return cls(
            sentences=tuple(sentence for group in groups for sentence in group),
            token_ids=torch.tensor(ids),
            predicted_by=torch.tensor(predicted_by),
            offsets=torch.tensor(offsets),
            tree=tree,
            sentence_of=torch.tensor(sentence_of),
            stem_of_token=torch.tensor(stem_of_token),
            stem_of_sentence=torch.tensor(stem_of_sentence),
        )


def _shared_suffix(tokens: Sequence[Sequence[int]], prefix: int) -> int:
    shortest = min(len(t) for t in tokens)
    length = 0
    while length < shortest - prefix and len({t[-1 - length] for t in tokens}) == 1:
        length += 1
    return length


def _tail_to_score(index: int, groups, tokenised, shapes) -> int:
    """How many of an amount group's tail tokens to score: the first (it closes the
    number), and on to the first token where the tail parts from that of a group with the
    same stem and another verdict ("about 4 dB too loud" against "... too soft"), so the
    words that state the direction weigh in; the rest is the same either way."""
    stem_length, tail = shapes[index]
    if tail == 0:
        return 0
    own = tokenised[index][0]
    own_tail = own[len(own) - tail :]
    kept = 1
    for other, tokens in enumerate(tokenised):
        other_stem, other_tail = shapes[other]
        if (
            other == index
            or other_tail == 0
            or groups[other][0][0].label == groups[index][0][0].label
            or tokens[0][:other_stem] != own[:stem_length]
        ):
            continue
        their_tail = tokens[0][len(tokens[0]) - other_tail :]
        shared = _shared_prefix([own_tail, their_tail])
        kept = max(kept, min(shared + 1, tail))
    return kept


def _shared_prefix(tokens: Sequence[Sequence[int]]) -> int:
    shortest = min(len(t) for t in tokens)
    length = 0
    while length < shortest and len({t[length] for t in tokens}) == 1:
        length += 1
    return length


@torch.inference_mode()
def grammar_log_probs(model, prompt_inputs: dict, grammar: PackedGrammar) -> np.ndarray:
    """log P(sentence | prompt) for every sentence of ``grammar`` (up to the words that
    close its amount and state its direction), in two forward passes: the prompt (batch of 1, audio included),
    then the packed grammar on its key-value cache."""
    out = model(**prompt_inputs, use_cache=True)
    device = prompt_inputs["input_ids"].device
    prompt_length = prompt_inputs["input_ids"].shape[1]
    count = len(grammar.token_ids)
    allowed = torch.cat([torch.ones(count, prompt_length, dtype=torch.bool), grammar.tree], dim=1)
    # The additive form, which eager and SDPA attention both take as it is, in the dtype of
    # the model's activations (its embeddings are never quantised).
    dtype = model.get_input_embeddings().weight.dtype
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    packed = model(
        input_ids=grammar.token_ids[None].to(device),
        attention_mask=mask[None, None].to(device),
        position_ids=(prompt_length + grammar.offsets)[None].to(device),
        cache=_cache_of(out),
    )
    log_probs = torch.log_softmax(
        torch.cat([out.logits[0, -1:], packed.logits[0]]).float(), dim=-1
    ).cpu()
    token_scores = log_probs[grammar.predicted_by + 1, grammar.token_ids]
    is_stem = grammar.stem_of_token >= 0
    stem_scores = torch.zeros(int(grammar.stem_of_sentence.max()) + 1).index_add_(
        0, grammar.stem_of_token[is_stem], token_scores[is_stem]
    )
    scores = torch.zeros(len(grammar.sentences)).index_add_(
        0, grammar.sentence_of[~is_stem], token_scores[~is_stem]
    )
    return (scores + stem_scores[grammar.stem_of_sentence]).double().numpy()


def _cache_of(output):
    """The key-value cache of a forward pass (``cache`` in newer transformers)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def stem_pairs(
    formulation: str, anchors: Sequence[str], targets: Sequence[str]
) -> list[tuple[str | None, str]]:
    """Each conversation's ``(anchor, target)`` as its grammar names them: the target-only
    formulation hears no anchor, so its advice names none."""
    return [
        (None if formulation == TARGET_ONLY else anchor, target)
        for anchor, target in zip(anchors, targets, strict=True)
    ]


@lru_cache(maxsize=64)
def packed_grammar(tokenizer, target: str, anchor: str | None, max_amount_db: int) -> PackedGrammar:
    """One pair's grammar, tokenised once per tokenizer (every decoder and window shares it)."""
    return PackedGrammar.build(advice_grammar(target, anchor, max_amount_db), tokenizer)


class MedianDecoder:
    """Median decoding for one package."""

    def __init__(self, model, processor, settings: DecodingSettings) -> None:
        self.model = model
        self.processor = processor
        self.settings = settings

    def belief(self, prompt_inputs: dict, target: str, anchor: str | None) -> Belief:
        """The model's belief about one conversation (``anchor=None``: the target-only grammar).
        An ensemble's belief is the average of its members' (:func:`mixture_log_probs`)."""
        grammar = packed_grammar(
            self.processor.tokenizer, target, anchor, int(self.settings.max_amount_db)
        )
        adapters = adapter_names(self.model)
        if len(adapters) < 2:
            return belief_from_scores(
                grammar.sentences, grammar_log_probs(self.model, prompt_inputs, grammar)
            )
        members = []
        try:
            for name in adapters:
                self.model.set_adapter(name)
                members.append(grammar_log_probs(self.model, prompt_inputs, grammar))
        finally:
            self.model.set_adapter(adapters[0])
        return belief_from_scores(grammar.sentences, mixture_log_probs(members))

    def beliefs(
        self,
        conversations: Sequence[list[dict]],
        pairs: Sequence[tuple[str | None, str]],
        store: FeatureStore,
        anchor_level: AnchorLevel | None = None,
    ) -> Iterator[tuple[Belief, float]]:
        """The belief about each conversation, with seconds taken. ``pairs`` gives each one's
        ``(anchor, target)`` stems, the anchor ``None`` for the target-only formulation
        (its grammar names no anchor)."""
        if len(pairs) != len(conversations):
            raise ValueError(f"{len(conversations)} conversations but {len(pairs)} stem pairs")
        collator = AudioChatCollator(self.processor.tokenizer.pad_token_id, padding_side="left")
        device = next(self.model.parameters()).device
        for messages, (anchor, target) in zip(conversations, pairs, strict=True):
            started = time.perf_counter()
            item = encode_conversation(messages, self.processor, store, False, anchor_level)
            item.pop("labels")
            inputs = {k: v.to(device) for k, v in collator([item]).items()}
            belief = self.belief(inputs, target, anchor)
            yield belief, time.perf_counter() - started

    def advise_all(
        self,
        conversations: Sequence[list[dict]],
        pairs: Sequence[tuple[str | None, str]],
        store: FeatureStore,
        anchor_level: AnchorLevel | None = None,
    ) -> list[tuple[str, float]]:
        """The median of each conversation's belief (:meth:`beliefs`) in the model's likeliest
        phrasing of it, with seconds per item."""
        return [
            (belief.best_phrasing[belief.median()], seconds)
            for belief, seconds in self.beliefs(conversations, pairs, store, anchor_level)
        ]
