"""Read a judgement back out of gain advice text.

:func:`parse_advice` turns advice, whether worded by :mod:`anchormix_kedro.advice_language.wording`'s
templates or freely by another model ("turn the vocals down 3dB", "sits well"), into a
direction (``too_loud`` / ``too_soft`` / ``balanced``, or ``None`` when the text does not
say) and an amount in dB (``None`` when no amount is given). :func:`truth_metrics` compares
that with the label and gain of the example; whatever the text does not say stays missing.

Directions come from cues: descriptions of the target ("too loud", "buried", "sits well")
and fader moves ("pull ... down", "raise"). Moves weigh twice as much as descriptions,
because a text may describe the anchor ("the drums are too loud, bring the vocal up") but
its move is about the target. Negated cues ("without overpowering") do not count.
Sentences quoting genre conventions ("In Rap mixes, the vocal usually sits about 3 dB above
the drums.") describe a norm, not the advice, and are skipped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from anchormix_kedro.vocabulary import BALANCED, TOO_LOUD, TOO_SOFT

DIRECTIONS: tuple[str, ...] = (TOO_LOUD, TOO_SOFT, BALANCED)

NUMBER_WORDS: dict[str, float] = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}

_NUMBER = r"\d+(?:\.\d+)?|\.\d+|half\s+an?|" + "|".join(NUMBER_WORDS)
_DB = r"(?:db|decibels?)\b"
_RANGE_AMOUNT = re.compile(
    rf"(?<![\w.])(?P<low>{_NUMBER})\s*(?:-|–|to|or)\s*(?P<high>{_NUMBER})\s*-?\s*{_DB}",
    re.IGNORECASE,
)
_AMOUNT = re.compile(
    rf"(?<![\w.])(?P<sign>[+\-−–]\s?)?(?P<value>{_NUMBER})\s*-?\s*{_DB}",
    re.IGNORECASE,
)

# A fader move: verb, up to five words (the stem, "fader", "by about"), then the particle.
_MOVE_VERBS = (
    r"pull|bring|take|turn|push|move|drop|ease|nudge|knock|dial|roll|come|crank|bump|notch"
)
_PHRASAL_MOVE = re.compile(
    rf"\b(?:{_MOVE_VERBS})(?:s|ed|ing)?\b(?:\s+[\w'-]+){{0,5}}?\s+(?P<particle>up|down)\b",
    re.IGNORECASE,
)

_LOUD_MOVES = (
    rf"\bdown\s+(?:by\s+)?(?:about\s+|around\s+|roughly\s+)?(?:{_NUMBER})\s*-?\s*{_DB}",
    rf"(?:{_NUMBER})\s*-?\s*{_DB}\s+down\b",
    # "4 dB lower than the drums" describes, it does not move.
    r"\blower(?:s|ed|ing)?\b(?!\s+(?:than|end|mids?|frequenc\w*|register|octave)\b)",
    r"\breduc(?:e|es|ed|ing)\b",
    r"\bdrop(?:s|ped|ping)?\b(?!\s+out\b)",
    r"\bcut(?:s|ting)?\b",
    r"\bdecreas(?:e|es|ed|ing)\b",
    r"\battenuat(?:e|es|ed|ing)\b",
    r"\btrim(?:s|med|ming)?\b",
    r"\btam(?:e|es|ed|ing)\b",
    r"\bpull\s+back\b",
    r"\bback\s+off\b",
)
_SOFT_MOVES = (
    rf"\bup\s+(?:by\s+)?(?:about\s+|around\s+|roughly\s+)?(?:{_NUMBER})\s*-?\s*{_DB}",
    rf"(?:{_NUMBER})\s*-?\s*{_DB}\s+up\b",
    r"\brais(?:e|es|ed|ing)\b",
    r"\blift(?:s|ed|ing)?\b",
    r"\bboost(?:s|ed|ing)?\b",
    r"\bincreas(?:e|es|ed|ing)\b",
)
_LOUD_DESCRIPTIONS = (
    r"\btoo\s+(?:loud|hot|prominent|strong|forward|dominant|much)\b",
    r"\b(?:a\s+(?:bit|little|touch)|slightly|rather|quite|very|way)\s+(?:loud|hot)\b",
    r"\bhot\b",
    r"\bloud\b",
    r"\boverpower(?:s|ed|ing)?\b",
    r"\bdominat(?:e|es|ed|ing)\b",
    r"\bdrown(?:s|ing)?\s+out\b",
    r"\bcrowd(?:s|ed|ing)?\b",
    r"\bsticks?\s+out\b",
    r"\bjumps?\s+out\b",
    r"\babove\b",
    r"\b(?:louder|hotter|higher)\s+than\s+(?:it|they)\s+should\b",
)
_SOFT_DESCRIPTIONS = (
    r"\btoo\s+(?:soft|quiet|low|weak|faint|thin|far\s+back)\b",
    r"\b(?:soft|quiet|faint|weak)\b",
    r"\blow\b(?![\s-]*(?:end|mids?|frequenc\w*|register|octave|pass|shelf|cut)\b)",
    r"\bburied\b",
    r"\bdisappear(?:s|ed|ing)?\b",
    r"\bget(?:s|ting)?\s+lost\b",
    r"\blost\b",
    r"\bmasked\b",
    r"\bdrowned\b",
    r"\bunder(?:neath)?\b",
    r"\bbelow\b",
    r"\b(?:lower|quieter|softer)\s+than\s+(?:it|they)\s+should\b",
    r"\bhard\s+to\s+hear\b",
    r"\bcan(?:'t|not)\s+(?:really\s+)?hear\b",
)
_BALANCED_CUES = (
    r"\b(?:well[\s-])?balanced\b",
    r"\bin\s+balance\b",
    r"\bsits?\s+(?:right|well|nicely|fine|perfectly)\b",
    r"\bsitting\s+(?:right|well|nicely|fine|perfectly)\b",
    r"\b(?:leave|keep)\b(?:\s+[\w'-]+){0,4}?\s+(?:where\s+(?:it|they)\s+(?:is|are)|as\s+(?:it|they)\s+(?:is|are)|as\s+is|alone|unchanged)\b",
    r"\b(?:good|fine|right)\s+as\s+(?:it\s+is|they\s+are|is)\b",
    r"\bno\s+(?:\w+\s+){0,2}?(?:change|adjustment|move|correction)s?\b",
    r"\bn(?:o|')t\s+need\s+(?:any\s+)?(?:\w+\s+)?(?:change|adjustment|move)s?\b",
    r"\bnothing\s+to\s+(?:change|adjust|fix)\b",
    r"\bneither\s+too\s+\w+\s+nor\s+too\s+\w+\b",
    r"\b(?:the\s+)?(?:right|good)\s+level\b",
    r"\bspot[\s-]on\b",
    r"\bjust\s+right\b",
)
_NEGATORS = frozenset(
    {"not", "no", "never", "without", "neither", "nor", "hardly", "barely", "isn't", "aren't"}
)
# A sentence quoting a genre convention describes a norm, not the advice.
_CONVENTION_SENTENCE = re.compile(
    r"^(?:in\s+[^,.]{1,60}\s+mixes,|across\s+genres,)|\busually\s+sits?\b", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")

# Words that name a stem: which stem the advice is about.
_STEM_MENTIONS: dict[str, re.Pattern[str]] = {
    "drums": re.compile(
        r"\b(?:drums?|drum\s+bus|kit|kick|snare|percussion|hi-?hats?|cymbals?|bass\s+drum)\b",
        re.IGNORECASE,
    ),
    "bass": re.compile(r"\bbass\b(?!\s+drum)", re.IGNORECASE),
    "vocals": re.compile(r"\b(?:vocals?|vox|voice|singer|singing)\b", re.IGNORECASE),
    "other": re.compile(
        r"\b(?:other\s+instruments?|instruments?|instrument\s+bus|guitars?|keys|keyboards?"
        r"|piano|synths?|pads?|chords?|accompaniment)\b",
        re.IGNORECASE,
    ),
}


def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern, re.IGNORECASE) for pattern in patterns)


_LOUD_MOVE_RES = _compile(_LOUD_MOVES)
_SOFT_MOVE_RES = _compile(_SOFT_MOVES)
_LOUD_DESCRIPTION_RES = _compile(_LOUD_DESCRIPTIONS)
_SOFT_DESCRIPTION_RES = _compile(_SOFT_DESCRIPTIONS)
_BALANCED_RES = _compile(_BALANCED_CUES)

_MOVE_WEIGHT, _DESCRIPTION_WEIGHT = 2, 1


@dataclass(frozen=True)
class ParsedAdvice:
    """What a piece of advice says: a direction and an amount, each ``None`` when unsaid."""

    direction: str | None
    amount_db: float | None
    # Every distinct amount stated, whether the cues contradict each other (a description
    # one way, a move the other), and the stems the advice names.
    # Left out of equality: two readings agree when they state the same judgement.
    amounts_db: tuple[float, ...] = field(default=(), compare=False)
    contradictory: bool = field(default=False, compare=False)
    stems_named: tuple[str, ...] = field(default=(), compare=False)

    @property
    def self_consistent(self) -> bool:
        """One direction, at most one amount, and a fader move that agrees with both:
        "balanced" names no amount to move; unparsed advice is never self-consistent."""
        if self.direction is None or self.contradictory:
            return False
        if self.direction == BALANCED:
            return not any(amount > 0 for amount in self.amounts_db)
        return len(self.amounts_db) <= 1

    def names_wrong_stem(self, target: str, anchor: str | None) -> bool:
        """Whether the advice speaks of a stem that is neither the target nor the anchor
        ("the vocal is buried" about the bass); unparsed advice counts as wrong."""
        if self.direction is None:
            return True
        return bool(set(self.stems_named) - {target, anchor})

    @property
    def fader_move_db(self) -> float | None:
        """The fader move the advice asks for: down is negative; 0 for "leave it"."""
        if self.direction == BALANCED:
            return 0.0
        if self.direction is None or self.amount_db is None:
            return None
        return -self.amount_db if self.direction == TOO_LOUD else self.amount_db


def _number(word: str) -> float:
    word = word.lower().strip()
    if word.startswith("half"):
        return 0.5
    return float(NUMBER_WORDS[word]) if word in NUMBER_WORDS else float(word)


def _negated(text: str, start: int) -> bool:
    """Whether one of the three words before ``start`` (same clause) negates the cue."""
    clause = re.split(r"[.,;:!?]", text[max(0, start - 40) : start])[-1]
    words = clause.lower().split()[-3:]
    return any(w in _NEGATORS or w.endswith("n't") for w in words)


def _without_overlaps(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest spans first, so "too loud" counts once and not again as "loud"."""
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda span: span[0] - span[1]):
        if all(end <= s or start >= e for s, e in kept):
            kept.append((start, end))
    return sorted(kept)


def _cue_spans(text: str, patterns: tuple[re.Pattern[str], ...]) -> list[tuple[int, int]]:
    spans = []
    for pattern in patterns:
        for match in pattern.finditer(text):
            if not _negated(text, match.start()):
                spans.append(match.span())
    return _without_overlaps(spans)


def _advice_part(text: str) -> str:
    sentences = _SENTENCE_END.split(text.strip())
    return " ".join(s for s in sentences if not _CONVENTION_SENTENCE.search(s))


def _amounts(text: str) -> list[tuple[int, float, int]]:
    """``(position, amount, sign)`` of every dB amount; a range counts as its midpoint."""
    found: list[tuple[int, float, int]] = []
    taken: list[tuple[int, int]] = []
    for match in _RANGE_AMOUNT.finditer(text):
        low, high = _number(match["low"]), _number(match["high"])
        found.append((match.start(), (low + high) / 2, 0))
        taken.append(match.span())
    for match in _AMOUNT.finditer(text):
        if any(start <= match.start() < end for start, end in taken):
            continue
        sign = match["sign"].strip() if match["sign"] else ""
        found.append(
            (
                match.start(),
                _number(match["value"]),
                -1 if sign and sign != "+" else 1 if sign else 0,
            )
        )
    return sorted(found)


def stems_named(text: str) -> tuple[str, ...]:
    """The stems a text names, in the vocabulary's order."""
    return tuple(stem for stem, pattern in _STEM_MENTIONS.items() if pattern.search(text))


def parse_advice(text: str | None) -> ParsedAdvice:
    """The direction and dB amount that a piece of gain advice states.

    Returns ``ParsedAdvice(None, None)`` for empty or unreadable text, and a ``None``
    direction when the text's cues contradict each other evenly. The amount is the one
    given with the fader move where the text names several ("too loud by 4 dB, pull it
    down 3 dB" gives 3); a range ("3-4 dB") gives its midpoint; "balanced" has no amount.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
        return ParsedAdvice(None, None)
    advice = _advice_part(str(text))

    loud_moves = _cue_spans(advice, _LOUD_MOVE_RES)
    soft_moves = _cue_spans(advice, _SOFT_MOVE_RES)
    for match in _PHRASAL_MOVE.finditer(advice):
        if _negated(advice, match.start()):
            continue
        (loud_moves if match["particle"].lower() == "down" else soft_moves).append(match.span())
    loud_moves, soft_moves = _without_overlaps(loud_moves), _without_overlaps(soft_moves)
    loud = _MOVE_WEIGHT * len(loud_moves) + _DESCRIPTION_WEIGHT * len(
        _cue_spans(advice, _LOUD_DESCRIPTION_RES)
    )
    soft = _MOVE_WEIGHT * len(soft_moves) + _DESCRIPTION_WEIGHT * len(
        _cue_spans(advice, _SOFT_DESCRIPTION_RES)
    )
    balanced = len(_cue_spans(advice, _BALANCED_RES))
    amounts = _amounts(advice)

    direction: str | None
    if loud == soft:
        # No direction, or an even contradiction: a signed fader amount ("-3 dB") may decide.
        signed = [sign for _, _, sign in amounts if sign]
        if loud == 0 and balanced:
            direction = BALANCED
        elif signed and len(set(signed)) == 1:
            direction = TOO_LOUD if signed[0] < 0 else TOO_SOFT
        else:
            direction = None
    else:
        direction = TOO_LOUD if loud > soft else TOO_SOFT
        # "Balanced, leave it" outweighs a stray cue unless the text names an amount to move.
        if balanced and not any(amount > 0 for _, amount, _ in amounts):
            direction = BALANCED

    distinct = tuple(dict.fromkeys(round(amount, 2) for _, amount, _ in amounts))
    details = {
        "amounts_db": distinct,
        "contradictory": bool(loud and soft)
        or (balanced > 0 and direction not in (None, BALANCED)),
        "stems_named": stems_named(advice),
    }
    if direction in (None, BALANCED) or not amounts:
        return ParsedAdvice(direction, None, **details)
    moves = sorted(start for start, _ in loud_moves + soft_moves)
    after_move = [amount for start, amount, _ in amounts if moves and start >= moves[0]]
    return ParsedAdvice(direction, after_move[0] if after_move else amounts[0][1], **details)
