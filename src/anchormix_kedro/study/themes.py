"""Thematic analysis of what engineers wrote: blind export, human codes, agreement, shares.

Each non-empty feedback field is one comment, exported with its advice but blind to system
and rater, in hashed-id order (:func:`comments_for_coding`). Coders tag comments with codes
of a fixed codebook (:func:`codebook_table`), one file each (:func:`read_coder_files`).
Reliability is per code, on its presence in the comments all coders coded: Cohen's kappa
for two coders, Fleiss' for more (statsmodels), with a percentile bootstrap interval over
comments (:func:`code_agreement`). Unblinded (:func:`comment_systems`), a comment carries a
code when at least half of its coders gave it; each system's share per code comes with
quotes (:func:`theme_frequencies`). An LLM's first pass (:func:`propose_codes`) is only
compared with the humans (:func:`llm_agreement`); an unreadable answer is never guessed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from anchormix_kedro.study.effects import REFERENCE
from anchormix_kedro.study.kit.page_csv import FEEDBACK_COLUMNS

logger = logging.getLogger(__name__)

COMMENT_COLUMNS: tuple[str, ...] = ("comment_id", "scenario_id", "field", "advice", "text", "codes")
SYSTEM_MAP_COLUMNS: tuple[str, ...] = ("comment_id", "system", "genre", "rater")
CODEBOOK_COLUMNS: tuple[str, ...] = ("code", "definition", "example")
CODED_COLUMNS: tuple[str, ...] = ("coder", "comment_id", "code")
COVERAGE_COLUMNS: tuple[str, ...] = ("coder", "comment_id")
AGREEMENT_COLUMNS: tuple[str, ...] = ("code", "coders", "n_comments", "prevalence",
                                      "percent_agreement", "kappa", "ci_low", "ci_high",
                                      "statistic", "note")  # fmt: skip
FREQUENCY_COLUMNS: tuple[str, ...] = ("system", "code", "n_comments", "n_with_code", "share",
                                      "quotes")  # fmt: skip
LLM_AGREEMENT_COLUMNS: tuple[str, ...] = ("code", "human_coder", "n_comments", "kappa",
                                          "percent_agreement", "note")  # fmt: skip
MEAN_ROW = "(all codes, mean)"
MIN_SHARED_COMMENTS = 5  # kappa over fewer comments is noise, not agreement
QUOTE_CHARS = 200
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
_LISTED_PROBLEMS = 12


def _text(value: Any) -> str:
    """A cell as stripped text; missing (None, NaN, NA) is empty."""
    return "" if value is None or value is pd.NA or value != value else str(value).strip()


def _problems_error(what: str, problems: list[str]) -> ValueError:
    more = len(problems) - _LISTED_PROBLEMS
    shown = problems[:_LISTED_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
    return ValueError(f"{what}: {len(problems)} problem(s):" + "".join(f"\n  - {p}" for p in shown))


def _feedback(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    """Every non-empty feedback field with its scenario's advice, system, genre and rater."""
    for name, frame, needed in (("ratings", ratings, {"rater", "scenario_id"}),
                                ("study key", key, {"scenario_id", "system", "advice"})):  # fmt: skip
        if missing := sorted(needed - set(frame.columns)):
            raise ValueError(f"the {name} lack(s) {', '.join(missing)}: pass the validated ratings and the study key")  # fmt: skip
    scenarios = key.drop_duplicates("scenario_id").set_index("scenario_id")
    rows = []
    for number, rating in enumerate(ratings.to_dict("records"), start=1):
        rater, scenario = str(rating["rater"]), str(rating["scenario_id"])
        for field in (f for f in FEEDBACK_COLUMNS if _text(rating.get(f))):  # blank: no comment
            if scenario not in scenarios.index:
                raise ValueError(f"ratings row {number}: scenario {scenario!r} is not in the "
                                 "study key; merge the ratings against this study's key")  # fmt: skip
            info, digest = scenarios.loc[scenario], f"{rater}|{scenario}|{field}".encode()
            # A stable id that names neither rater nor system, so coders stay blind.
            rows.append({"comment_id": "c-" + hashlib.sha256(digest).hexdigest()[:10],
                         "scenario_id": scenario, "field": field, "advice": _text(info["advice"]),
                         "text": _text(rating[field]), "codes": "", "system": str(info["system"]),
                         "genre": _text(info.get("genre")), "rater": rater})  # fmt: skip
    frame = pd.DataFrame(rows, columns=[*COMMENT_COLUMNS, "system", "genre", "rater"])
    return frame.sort_values("comment_id", ignore_index=True)  # hides the system order


def comments_for_coding(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    """The blind export (:data:`COMMENT_COLUMNS`), with an empty ``codes`` column to fill."""
    return _feedback(ratings, key)[list(COMMENT_COLUMNS)]


def comment_systems(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    """Which system, genre and rater each comment is about: for the analysis only."""
    return _feedback(ratings, key)[list(SYSTEM_MAP_COLUMNS)]


def codebook_table(entries: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The codebook parameter (``code``/``definition``/``example`` entries) as a table, or a
    ValueError listing each bad entry by index and code."""
    if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
        raise ValueError("study_codebook (conf/base/parameters/study_codebook.yml) must be a non-empty list")  # fmt: skip
    problems, seen = [], set()
    for index, entry in enumerate(entries):
        entry = entry if isinstance(entry, Mapping) else {}  # then it lacks all three
        code = _text(entry.get("code"))
        where = f"entry {index} (code {code!r})"
        if missing := [c for c in CODEBOOK_COLUMNS if c not in entry]:
            problems.append(f"{where}: lacks {', '.join(missing)}")
        if not _CODE.match(code):
            problems.append(f"{where}: a code is lower-case letters, digits and _, from a letter")
        elif code in seen:
            problems.append(f"{where}: an earlier entry has this code; codes are unique")
        seen.add(code)
        if "definition" in entry and not _text(entry["definition"]):
            problems.append(f"{where}: the definition is empty; say when the code applies")
    if problems:
        raise _problems_error("study_codebook (conf/base/parameters/study_codebook.yml)", problems)
    return pd.DataFrame([{c: _text(e[c]) for c in CODEBOOK_COLUMNS} for e in entries], columns=list(CODEBOOK_COLUMNS))  # fmt: skip


def _code_list(codes: Iterable[str] | pd.DataFrame) -> list[str]:
    """Codes given as names or as the codebook table."""
    return list(dict.fromkeys(str(c) for c in (codes["code"] if isinstance(codes, pd.DataFrame) else codes)))  # fmt: skip


def _one_coder(source: str, frame: pd.DataFrame, codes: list[str], known_ids: set[str],
               coded: list[dict], covered: list[dict], problems: list[str]) -> None:  # fmt: skip
    """Add one coder file's codes, coded comments and problems to the lists."""
    name = str(source).replace("\\", "/").rsplit("/", 1)[-1]
    coder = name[:-4] if name.lower().endswith(".csv") else name
    if missing := [c for c in ("comment_id", "codes") if c not in frame.columns]:
        problems.append(f"coder file {source!r} lacks {', '.join(missing)}: it needs comment_id and codes")  # fmt: skip
        return
    rows_of: dict[str, list[int]] = {}
    cells = zip(frame["comment_id"], frame["codes"], strict=True)
    for number, (cid, cell) in enumerate(((_text(i), _text(c)) for i, c in cells), start=1):
        where = f"coder file {source!r} row {number}"
        if not cid:
            if cell:
                problems.append(f"{where}: codes {cell!r} without a comment_id")
            continue  # a blank line a spreadsheet left behind
        if cid not in known_ids:
            problems.append(f"{where}: comment_id {cid!r} is not in the current export; re-export the comments")  # fmt: skip
        rows_of.setdefault(cid, []).append(number)
        for code in dict.fromkeys(c.strip().lower() for c in re.split(r"[;,]", cell) if c.strip()):
            if code not in codes:
                problems.append(f"{where}: unknown code {code!r}; the codebook's codes are {', '.join(codes)}")  # fmt: skip
            coded.append({"coder": coder, "comment_id": cid, "code": code})
        covered.append({"coder": coder, "comment_id": cid})
    problems += [f"coder file {source!r} rows {', '.join(map(str, rows))}: comment {cid} is listed "
                 f"{len(rows)} times; keep one row per comment" for cid, rows in rows_of.items() if len(rows) > 1]  # fmt: skip


def read_coder_files(files: Mapping[str, Callable[[], pd.DataFrame]] | Mapping[str, pd.DataFrame],
                     codebook: pd.DataFrame, known_comment_ids: Iterable[str],
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Each coder's (file name without ``.csv``) codes, :data:`CODED_COLUMNS`, and comments
    coded, :data:`COVERAGE_COLUMNS` (an empty ``codes`` cell: no code applies). Every problem
    of every file is raised at once as a ValueError naming file, row and value."""
    codes, known = _code_list(codebook), {str(i) for i in known_comment_ids}
    coded, covered, problems = [], [], []
    for source, loaded in sorted(files.items()):
        frame = loaded if isinstance(loaded, pd.DataFrame) else loaded()  # a partition's loader
        _one_coder(source, frame, codes, known, coded, covered, problems)
    if problems:
        raise _problems_error("coder files (data/01_raw/study_codes)", problems)
    return (pd.DataFrame(coded, columns=list(CODED_COLUMNS)),
            pd.DataFrame(covered, columns=list(COVERAGE_COLUMNS)))  # fmt: skip


def _kappa(matrix: np.ndarray) -> float:
    """Cohen's (two columns) or Fleiss' (more) kappa of a comments x coders 0/1 matrix."""
    from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when undefined: NaN below
        if matrix.shape[1] == 2:
            table = np.bincount(matrix[:, 0] * 2 + matrix[:, 1], minlength=4).reshape(2, 2)
            value = cohens_kappa(table, return_results=False)
        else:
            value = fleiss_kappa(aggregate_raters(matrix, n_cat=2)[0], method="fleiss")
    return float(value) if np.isfinite(value) else math.nan


def _kappa_and_note(matrix: np.ndarray) -> dict[str, Any]:
    """The kappa (or NaN and why it is missing) and the share of comments all coders agree on."""
    agreed = (matrix.min(axis=1) == matrix.max(axis=1)).mean() if matrix.size else math.nan
    note = ("needs at least two coders" if matrix.shape[1] < 2
            else f"only {len(matrix)} comment(s) coded by all; kappa needs {MIN_SHARED_COMMENTS}"
            if len(matrix) < MIN_SHARED_COMMENTS
            else f"undefined: the code was given to {'every' if matrix.min() else 'no'} comment"
            if matrix.min() == matrix.max() else "")  # fmt: skip
    kappa = math.nan if note else _kappa(matrix)
    return {"kappa": kappa, "percent_agreement": float(agreed), "note": note}


def _presence(coded: pd.DataFrame, ids: Sequence[str], coders: Sequence[str], code: str):
    """A comments x coders 0/1 matrix: did the coder give ``code`` to the comment."""
    given = set(zip(*(coded.loc[coded["code"] == code, c] for c in ("comment_id", "coder")), strict=True))  # fmt: skip
    return np.array([[int((i, c) in given) for c in coders] for i in ids], dtype=int).reshape(len(ids), len(coders))  # fmt: skip


def _interval(values: Sequence[float] | np.ndarray, confidence: float) -> dict[str, float]:
    finite = np.asarray(values, dtype=float)
    finite, tail = finite[np.isfinite(finite)], 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail]) if finite.size else (math.nan,) * 2
    return {"ci_low": float(low), "ci_high": float(high)}


def code_agreement(coded: pd.DataFrame, coverage: pd.DataFrame, codes: Iterable[str] | pd.DataFrame,
                   coders: Sequence[str] | None = None, n_resamples: int = 1000,
                   confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Per code, the coders' agreement on its presence in the comments all of them coded
    (:data:`AGREEMENT_COLUMNS`), then the mean kappa over the codes with one. Every code
    uses the same bootstrap resamples of comments, which give the mean's interval too."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    coders = sorted(set(coverage["coder"])) if coders is None else list(coders)
    shared = [set(coverage.loc[coverage["coder"] == c, "comment_id"]) for c in coders]
    ids = sorted(set.intersection(*shared)) if shared else []
    draws = np.random.default_rng(seed).integers(0, max(len(ids), 1), (n_resamples, len(ids)))
    base = {"coders": ", ".join(coders), "n_comments": len(ids),
            "statistic": "" if len(coders) < 2 else "cohen" if len(coders) == 2 else "fleiss"}  # fmt: skip
    rows, resampled = [], []
    for code in _code_list(codes):
        matrix = _presence(coded, ids, coders, code)
        found = _kappa_and_note(matrix)
        boot = [] if math.isnan(found["kappa"]) else [_kappa(matrix[d]) for d in draws]
        resampled += [boot] if boot else []
        rows.append({"code": code, **base, **found, **_interval(boot, confidence),
                     "prevalence": float(matrix.mean()) if matrix.size else math.nan})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
    defined = table["kappa"].dropna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where every code is NaN
        means = np.nanmean(np.array(resampled), axis=0) if resampled else []
    mean = {"code": MEAN_ROW, **base, "kappa": defined.mean() if len(defined) else math.nan,
            "prevalence": table["prevalence"].mean(), "percent_agreement": table["percent_agreement"].mean(),
            "note": f"mean over the {len(defined)} code(s) with a defined kappa", **_interval(means, confidence)}  # fmt: skip
    return pd.concat([table, pd.DataFrame([mean], columns=table.columns)], ignore_index=True)


def _quotes(carried: pd.DataFrame, limit: int) -> str:
    """Up to ``limit`` texts: those every coder agreed on first, then the shorter."""
    if "text" not in carried or carried.empty or limit <= 0:
        return ""
    ranked = carried.assign(length=carried["text"].str.len(), split=~carried["unanimous"])
    ordered = [" ".join(t.split()) for t in ranked.sort_values(["split", "length", "comment_id"])["text"]]  # fmt: skip
    flat = list(dict.fromkeys(ordered))[:limit]  # one quote of words several raters wrote
    return " | ".join(t if len(t) <= QUOTE_CHARS else t[: QUOTE_CHARS - 1].rstrip() + "…" for t in flat)  # fmt: skip


def theme_frequencies(coded: pd.DataFrame, coverage: pd.DataFrame, systems_map: pd.DataFrame,
                      codes: Iterable[str] | pd.DataFrame, human_coders: Sequence[str] | None = None,
                      quotes_per_theme: int = 2,
                      comments: pd.DataFrame | None = None) -> pd.DataFrame:  # fmt: skip
    """Per system and code, every pair present (:data:`FREQUENCY_COLUMNS`): of the system's
    comments coded by a human, how many carry the code, and quotes from ``comments``."""
    if human_coders is not None:
        coded = coded[coded["coder"].isin(human_coders)]
        coverage = coverage[coverage["coder"].isin(human_coders)]
    system_of = systems_map.drop_duplicates("comment_id").set_index("comment_id")["system"]
    if unknown := sorted(set(coverage["comment_id"]) - set(system_of.index)):
        raise ValueError(f"coded comments {', '.join(unknown[:5])} are not in the system map; re-export the comments")  # fmt: skip
    coverage = coverage.drop_duplicates()
    given = coded.merge(coverage, on=["coder", "comment_id"])
    votes = given.groupby(["comment_id", "code"])["coder"].nunique().rename("n_gave").reset_index()
    n_coders = votes["comment_id"].map(coverage.groupby("comment_id")["coder"].nunique())
    # A comment carries a code that at least half of its coders gave; quotes prefer unanimity.
    votes = votes.assign(unanimous=votes["n_gave"] == n_coders, system=votes["comment_id"].map(system_of))  # fmt: skip
    carried = votes[2 * votes["n_gave"] >= n_coders]
    if comments is not None:
        text_of = comments.drop_duplicates("comment_id").set_index("comment_id")["text"]
        carried = carried.assign(text=carried["comment_id"].map(text_of).fillna("").astype(str))
    n_of = coverage.drop_duplicates("comment_id")["comment_id"].map(system_of).value_counts()
    rows = []
    for system in sorted(set(system_of), key=lambda s: (s != REFERENCE, s)):
        n = int(n_of.get(system, 0))
        for code in _code_list(codes):
            theirs = carried[(carried["system"] == system) & (carried["code"] == code)]
            rows.append({"system": system, "code": code, "n_comments": n,
                         "n_with_code": len(theirs), "share": len(theirs) / n if n else math.nan,
                         "quotes": _quotes(theirs, quotes_per_theme)})  # fmt: skip
    return pd.DataFrame(rows, columns=list(FREQUENCY_COLUMNS))


def coding_messages(advice: str, field: str, text: str, codebook: pd.DataFrame) -> list[dict]:
    """The chat prompt that asks a model to code one comment with the codebook."""
    entries = "\n".join(f"- {r.code}: {r.definition}" + (f' (e.g. "{r.example}")' if r.example else "")
                        for r in codebook.itertuples())  # fmt: skip
    system = ("You are a qualitative coder in a listening study. Mixing engineers rated advice "
              "on how to set one track's level against an anchor track, and wrote comments on "
              "it. Give the comment every code of the codebook whose definition fits what it "
              "says, and none if none fits.\n\nCodebook:\n" + entries + "\n\nAnswer with a "
              'JSON object only, for example {"codes": ["vague"]} or {"codes": []}.')  # fmt: skip
    user = f"Advice shown to the engineer:\n{advice}\n\nThe engineer's comment ({field}):\n{text}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_codes_answer(text: str | None, codes: Sequence[str]) -> list[str] | None:
    """The codebook codes in a ``{"codes": [...]}`` answer (plain or in a ```json fence),
    unknown ones dropped; ``None`` when the answer is not that shape."""
    try:
        answer = json.loads(_FENCE.sub(r"\1", (text or "").strip()))
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("codes"), list):
        return None
    given = (c.strip().lower() for c in answer["codes"] if isinstance(c, str))
    return [c for c in dict.fromkeys(given) if c in codes]


def propose_codes(comments: pd.DataFrame, codebook: pd.DataFrame, judge: Any,
                  coder_name: str = "llm") -> tuple[pd.DataFrame, pd.DataFrame, int]:  # fmt: skip
    """An LLM's ``(coded, coverage, n_failed)``, one ``judge.ask(messages)`` per comment; a
    failed call or an unreadable answer leaves the comment uncoded and counts as failed."""
    codes, coded, covered, failed = _code_list(codebook), [], [], 0
    for row in comments.itertuples():
        answer = judge.ask(coding_messages(row.advice, row.field, row.text, codebook))
        found = parse_codes_answer(answer.text, codes)
        if found is None:
            failed += 1
            logger.warning("LLM coding of %s failed: %s", row.comment_id, answer.error or "bad answer")  # fmt: skip
            continue
        covered.append({"coder": coder_name, "comment_id": row.comment_id})
        coded += [{"coder": coder_name, "comment_id": row.comment_id, "code": c} for c in found]
    return (pd.DataFrame(coded, columns=list(CODED_COLUMNS)),
            pd.DataFrame(covered, columns=list(COVERAGE_COLUMNS)), failed)  # fmt: skip


def llm_agreement(coded: pd.DataFrame, coverage: pd.DataFrame, llm_coded: pd.DataFrame,
                  llm_coverage: pd.DataFrame, codes: Iterable[str] | pd.DataFrame,
                  human_coders: Sequence[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """Cohen's kappa of the LLM against each human coder, per code, over the comments both
    coded (:data:`LLM_AGREEMENT_COLUMNS`)."""
    humans = sorted(set(coverage["coder"])) if human_coders is None else list(human_coders)
    llm = "\0llm"  # a name no human coder has
    parts = []
    for human in humans:
        pair = [pd.concat([frame[frame["coder"] == human], theirs.assign(coder=llm)])
                for frame, theirs in ((coded, llm_coded), (coverage, llm_coverage))]  # fmt: skip
        table = code_agreement(*pair, codes, coders=[human, llm], n_resamples=0)
        parts.append(table[table["code"] != MEAN_ROW].assign(human_coder=human))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return table.reindex(columns=list(LLM_AGREEMENT_COLUMNS))


def _cell(value: Any) -> str:
    """A table cell: a number to two decimals (n/a when missing), text with ``|`` escaped."""
    if isinstance(value, float | np.floating):
        return "n/a" if math.isnan(value) else f"{value:.2f}"
    return _text(value).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|",
            *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)]  # fmt: skip


def themes_markdown(agreement: pd.DataFrame, frequencies: pd.DataFrame,
                    llm: pd.DataFrame | None = None, simulated: bool = False) -> list[str]:  # fmt: skip
    """The report section on the written feedback: agreement, shares per system, quotes, and
    the LLM's agreement with the human coders when given."""
    lines = ["## What engineers wrote (themes)", ""]
    if simulated:
        lines += ["> Simulated data: these codes show the analysis, not what engineers wrote.", ""]
    lines += ["Coders' agreement on each code's presence (Cohen's kappa for two, Fleiss' for more; percentile bootstrap interval over comments):", ""]  # fmt: skip
    lines += _table(("code", "coders", "comments", "prevalence", "agreement", "kappa [CI]", "note"),
                    ((r.code, r.coders, r.n_comments, r.prevalence, r.percent_agreement,
                      _cell(r.kappa) + ("" if pd.isna(r.ci_low) else f" [{r.ci_low:.2f}, {r.ci_high:.2f}]"),
                      r.note) for r in agreement.itertuples()))  # fmt: skip
    systems = list(dict.fromkeys(frequencies["system"]))
    lines += ["", "Share of each system's comments that carry a code (at least half of their "
              "coders gave it): share (comments with the code/comments coded).", ""]  # fmt: skip
    shares = {(r.system, r.code): f"{_cell(r.share)} ({r.n_with_code}/{r.n_comments})" for r in frequencies.itertuples()}  # fmt: skip
    codes = list(dict.fromkeys(frequencies["code"]))
    lines += _table(("code", *systems), ((c, *(shares[s, c] for s in systems)) for c in codes))
    if len(quoted := frequencies[frequencies["quotes"].fillna("") != ""]):
        lines += ["", "What they wrote, per system and code:", ""]
        lines += [f"- **{r.system}**, `{r.code}`: {r.quotes}" for r in quoted.itertuples()]
    if llm is not None and len(llm):
        lines += ["", "An LLM's first-pass codes against each human coder (Cohen's kappa). Its "
                  "codes never replace the human ones: the shares above use human codes only.", ""]  # fmt: skip
        lines += _table(("code", "human coder", "comments", "kappa", "agreement", "note"),
                        ((r.code, r.human_coder, r.n_comments, r.kappa, r.percent_agreement, r.note)
                         for r in llm.itertuples()))  # fmt: skip
    return lines


def no_codes_markdown(n_comments: int, export_path_hint: str) -> list[str]:
    """The section while no coder file exists: what awaits coding and how to add codes."""
    head = ["## What engineers wrote (themes)", ""]
    return [*head, "No rater has written feedback yet."] if n_comments == 0 else [*head,
            f"{n_comments} written comment(s) await coding: the blind export is "
            f"`{export_path_hint}`, with the codebook beside it as `codebook.csv`. To add a "
            "coder, copy the export, fill its `codes` column with zero or more codebook codes "
            "separated by `;` (empty when none applies) and save it as "
            "`data/01_raw/study_codes/<coder>.csv` (columns `comment_id` and `codes`; others "
            "are ignored). Two or more coders give the agreement table."]  # fmt: skip
