"""The engineers' rating study: a blind sample of scenarios as one self-contained HTML page.

- :func:`sample_scenarios` draws examples spread over genres, stem pairs and labels (round
  robin, seeded), takes every system's advice on each, gives each scenario an opaque id and
  shuffles their order. The result is the study *key*: it maps scenario ids back to the
  example and system and is kept apart from the page, which never names a system.
- :func:`render_clips` makes each scenario's audio (the anchor, the target at its
  perturbed gain, and the mix of all stems with the target perturbed) as base64 data URIs;
  the three clips of a scenario share one scale factor, so their relative levels are those
  of the scenario.
- :func:`render_page` writes the page: audio players, the advice, 7-point Likert scales
  for the four criteria, an optional comment, progress, and a button that downloads the
  ratings as CSV (read back by :mod:`anchormix_kedro.evaluation.ratings`). Every text is escaped with
  :func:`html.escape`; the script is plain JavaScript; nothing is fetched from anywhere
  (a Content-Security-Policy forbids it), so the page works offline from a file.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from anchormix_kedro.evaluation.summaries import order_systems
from anchormix_kedro.instruction_data.advice import STEM_WORDS
from anchormix_kedro.vocabulary import CRITERIA, LIKERT_LABELS, LIKERT_MAX, LIKERT_MIN

logger = logging.getLogger(__name__)

#: The questions engineers answer, from the proposal (section 5.1).
HUMAN_QUESTIONS: dict[str, str] = {
    "effectiveness": "How well would this advice solve the given mixing problem?",
    "musicality": "Is the advice musically sensible and appropriate for the genre?",
    "actionability": "Is the advice clear, specific, and easy to implement in a DAW?",
    "helpfulness": "How helpful would this advice be in a real-world mixing session?",
}
#: Columns of the CSV the page downloads, in order.
PAGE_CSV_COLUMNS: tuple[str, ...] = ("study_id", "rater", "scenario_id", *CRITERIA, "comment")
KEY_COLUMNS: tuple[str, ...] = (
    "study_id",
    "position",
    "scenario_id",
    "example_id",
    "system",
    "excerpt_id",
    "genre",
    "anchor",
    "target",
    "label",
    "gain_db",
    "advice",
)
AUDIO_FORMATS = {"ogg": ("OGG", "VORBIS", "audio/ogg"), "wav": ("WAV", "PCM_16", "audio/wav")}
DEFAULT_TITLE = "AnchorMix: rate gain-balancing advice"
DEFAULT_INSTRUCTIONS = (
    "Each scenario is a multitrack mix in which one stem (the target) sits at a level that "
    "may be off relative to another stem (the anchor). Listen to the anchor, the target and "
    "the mix, read the advice, and rate it on the four criteria from 1 (very poor) to "
    "7 (excellent). Scenarios appear in random order and do not say who or what wrote the "
    "advice. Your ratings stay in this browser until you download them: when you are done "
    "(or want to stop), enter your name and press the download button, then send us the "
    "CSV file."
)


# --------------------------------------------------------------------------- sampling


def scenario_id(study_id: str, example_id: str, system: str, advice: str) -> str:
    """An opaque, stable id: the same study, example, system and advice give the same id.

    Changed advice gives a new id, so ratings of an earlier page never attach to new text.
    """
    digest = hashlib.sha256(f"{study_id}\x1f{example_id}\x1f{system}\x1f{advice}".encode())
    return "s-" + digest.hexdigest()[:12]


def _round_robin(frame: pd.DataFrame, levels: Sequence[str], rng: np.random.Generator) -> list:
    """Row labels in an order that cycles through the values of each level in turn.

    The first rows cover as many values of ``levels[0]`` as exist, then within each value
    as many of ``levels[1]``, and so on; ties and the leaf order are broken by ``rng``.
    """
    if not levels:
        labels = list(frame.index)
        return [labels[i] for i in rng.permutation(len(labels))]
    groups = [group for _, group in frame.groupby(levels[0], sort=True)]
    orders = [_round_robin(group, levels[1:], rng) for group in groups]
    orders = [orders[i] for i in rng.permutation(len(orders))]
    merged = []
    for depth in range(max((len(o) for o in orders), default=0)):
        merged.extend(order[depth] for order in orders if depth < len(order))
    return merged


def sample_scenarios(
    candidates: pd.DataFrame,
    n_examples: int,
    study_id: str,
    seed: int = 0,
    systems: Sequence[str] | None = None,
    strata: Sequence[str] = ("genre", "pair", "label"),
) -> pd.DataFrame:
    """The study key: ``n_examples`` examples, each with the advice of every system, shuffled.

    ``candidates`` is one row per (example, system) with the example's fields and
    ``advice`` (as :func:`anchormix_kedro.evaluation.summaries.join_advice` gives). Missing or empty
    advice is not shown to engineers. Examples are drawn among those with advice from every
    chosen system (``systems``; default all present), so each is compared across systems;
    where none has, among those with the most (with a warning). They are drawn round robin
    over ``strata`` (``pair`` is "anchor>target"). Columns :data:`KEY_COLUMNS`; ``position``
    is the 1-based place on the page. No advice at all gives an empty key (with a warning).
    """
    if n_examples < 1:
        raise ValueError(f"n_examples must be at least 1, got {n_examples}")
    present = order_systems(candidates["system"])
    chosen = list(systems) if systems else present
    unknown = sorted(set(chosen) - set(present))
    if unknown:
        raise ValueError(f"study systems {unknown} have no advice; systems present: {present}")
    rows = candidates[candidates["system"].isin(chosen)].copy()
    has_text = rows["advice"].map(lambda a: isinstance(a, str) and bool(a.strip()))
    if (~has_text).any():
        logger.info(
            "Rating study: %d empty or missing advice rows left out", int((~has_text).sum())
        )
    rows = rows[has_text]
    if rows.empty:
        logger.warning("Rating study: no system gave any advice; there is nothing to rate")
        return pd.DataFrame(columns=list(KEY_COLUMNS))
    coverage = rows.groupby("example_id")["system"].nunique()
    complete = coverage[coverage == coverage.max()].index
    if coverage.max() < len(chosen):
        logger.warning(
            "Rating study: no example has advice from every system %s; using examples with "
            "advice from %d of them",
            chosen,
            int(coverage.max()),
        )
    examples = (
        rows[rows["example_id"].isin(complete)]
        .drop_duplicates("example_id")
        .assign(pair=lambda f: f["anchor"] + ">" + f["target"])
        .set_index("example_id", drop=False)
        .sort_index()
    )
    rng = np.random.default_rng(int(seed))
    picked = _round_robin(examples, list(strata), rng)[: int(n_examples)]
    if len(picked) < n_examples:
        logger.warning(
            "Rating study: only %d examples have advice from every system (%d asked)",
            len(picked),
            n_examples,
        )
    key = rows[rows["example_id"].isin(picked)].copy()
    key["study_id"] = study_id
    key["scenario_id"] = [
        scenario_id(study_id, e, s, a)
        for e, s, a in zip(key["example_id"], key["system"], key["advice"], strict=True)
    ]
    key = key.sort_values(["example_id", "system"]).reset_index(drop=True)
    key = key.iloc[rng.permutation(len(key))].reset_index(drop=True)
    key["position"] = np.arange(1, len(key) + 1)
    logger.info(
        "Rating study %s: %d scenarios (%d examples, %d systems) over %d genres and %d pairs",
        study_id,
        len(key),
        len(picked),
        key["system"].nunique(),
        key["genre"].nunique(),
        (key["anchor"] + ">" + key["target"]).nunique(),
    )
    return key[list(KEY_COLUMNS)]


# --------------------------------------------------------------------------- audio


def encode_clip(samples: np.ndarray, sample_rate: int, audio_format: str = "ogg") -> str:
    """A mono float clip as a ``data:`` URI: OGG Vorbis (small) or 16-bit WAV (any browser)."""
    import soundfile

    if audio_format not in AUDIO_FORMATS:
        raise ValueError(f"unknown audio_format {audio_format!r}; use one of {list(AUDIO_FORMATS)}")
    container, subtype, mime = AUDIO_FORMATS[audio_format]
    buffer = io.BytesIO()
    soundfile.write(
        buffer, np.asarray(samples, dtype=np.float32), int(sample_rate), format=container,
        subtype=subtype,
    )  # fmt: skip
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def scenario_audio(
    stems: Mapping[str, np.ndarray],
    anchor: str,
    target: str,
    gain_db: float,
    sample_rate: int,
    max_seconds: float | None = 10.0,
    peak: float = 0.89,
    fade_seconds: float = 0.01,
) -> dict[str, np.ndarray]:
    """``{"anchor", "target", "mix"}``: the target at ``gain_db``, all with one scale factor.

    The mix sums every stem with the target perturbed. One factor for the three keeps their
    levels comparable; it only lowers them, where a clip would peak above ``peak``. Clips
    are cut to ``max_seconds`` and faded in and out over ``fade_seconds`` (no clicks).
    """
    for stem in (anchor, target):
        if stem not in stems:
            raise ValueError(f"the excerpt has no {stem!r} stem; it has {sorted(stems)}")
    length = min(len(clip) for clip in stems.values())
    if max_seconds:
        length = min(length, int(round(max_seconds * sample_rate)))
    gain = 10.0 ** (float(gain_db) / 20.0)
    clips = {name: np.asarray(stems[name][:length], dtype=np.float64) for name in stems}
    target_clip = clips[target] * gain
    mix = sum(clip for name, clip in clips.items() if name != target) + target_clip
    audio = {"anchor": clips[anchor], "target": target_clip, "mix": mix}
    loudest = max(float(np.max(np.abs(clip))) if clip.size else 0.0 for clip in audio.values())
    scale = min(1.0, peak / loudest) if loudest > 0 else 1.0
    fade = min(int(fade_seconds * sample_rate), length // 2)
    ramp = np.ones(length)
    if fade > 0:
        ramp[:fade] = np.linspace(0.0, 1.0, fade)
        ramp[-fade:] = np.linspace(1.0, 0.0, fade)
    return {name: (clip * scale * ramp).astype(np.float32) for name, clip in audio.items()}


def render_clips(
    key: pd.DataFrame,
    load_excerpt: Callable[[str], Mapping],
    audio_format: str = "ogg",
    max_seconds: float | None = 10.0,
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Audio for every scenario of the key, each example's clips made once.

    ``load_excerpt(excerpt_id)`` returns an excerpt record (``{"meta": {...}, "audio":
    {stem: array}}``, ``meta["sample_rate"]`` its rate). Returns ``(clips, by_scenario)``:
    ``clips`` maps opaque clip ids to data URIs, ``by_scenario`` maps each scenario id to
    ``{"anchor", "target", "mix"}`` clip ids. Scenarios of one example share their clips.
    """
    clips: dict[str, str] = {}
    by_example: dict[str, dict[str, str]] = {}
    records: dict[str, Mapping] = {}
    for row in key.drop_duplicates("example_id").itertuples(index=False):
        if row.excerpt_id not in records:
            try:
                records = {row.excerpt_id: load_excerpt(row.excerpt_id)}  # one in memory
            except KeyError:
                raise ValueError(
                    f"excerpt {row.excerpt_id!r} of example {row.example_id!r} is not among "
                    "the excerpts: run the ingestion pipeline again"
                ) from None
        record = records[row.excerpt_id]
        rate = int(record["meta"].get("sample_rate", 16000))
        audio = scenario_audio(
            record["audio"], row.anchor, row.target, row.gain_db, rate, max_seconds
        )
        ids = {}
        for name, samples in audio.items():
            clip_id = f"c{len(clips) + 1}"
            clips[clip_id] = encode_clip(samples, rate, audio_format)
            ids[name] = clip_id
        by_example[row.example_id] = ids
    by_scenario = {r.scenario_id: by_example[r.example_id] for r in key.itertuples(index=False)}
    return clips, by_scenario


# --------------------------------------------------------------------------- the page


def _script_json(value: object) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` can close it."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _stem_noun(stem: str) -> str:
    return STEM_WORDS[stem].noun if stem in STEM_WORDS else stem


def _likert(scenario: str, criterion: str) -> str:
    e = html.escape
    options = []
    for value in range(LIKERT_MIN, LIKERT_MAX + 1):
        input_id = f"{scenario}-{criterion}-{value}"
        options.append(
            f'<label for="{e(input_id)}"><input type="radio" id="{e(input_id)}" '
            f'name="{e(scenario)}:{e(criterion)}" value="{value}" '
            f'data-criterion="{e(criterion)}"><span class="n">{value}</span>'
            f'<span class="word">{e(LIKERT_LABELS[value])}</span></label>'
        )
    return (
        f'<fieldset class="likert" data-criterion="{e(criterion)}"><legend><b>'
        f"{e(criterion.capitalize())}</b>: {e(HUMAN_QUESTIONS[criterion])}</legend>"
        f'<div class="scale">{"".join(options)}</div></fieldset>'
    )


def _scenario_section(row, total: int, clip_ids: Mapping[str, str]) -> str:
    e = html.escape
    sid = str(row.scenario_id)
    anchor, target = _stem_noun(row.anchor), _stem_noun(row.target)
    players = "".join(
        f'<figure><figcaption>{e(caption)}</figcaption><audio controls preload="none" '
        f'data-clip="{e(clip_ids[name])}"></audio></figure>'
        for name, caption in (
            ("anchor", f"Anchor: {anchor}"),
            ("target", f"Target: {target}"),
            ("mix", "The mix (all stems)"),
        )
    )
    criteria = "".join(_likert(sid, criterion) for criterion in CRITERIA)
    return (
        f'<section class="scenario" id="{e(sid)}" data-scenario="{e(sid)}">'
        f'<h2>Scenario {int(row.position)} of {total}<span class="done-mark" aria-hidden="true">'
        f" &#10003;</span></h2>"
        f'<p class="facts">Genre: <b>{e(str(row.genre))}</b>. Anchor: <b>{e(anchor)}</b>. '
        f"Target: <b>{e(target)}</b>.</p>"
        f'<div class="players">{players}</div>'
        f'<p class="advice-label">Advice:</p><blockquote class="advice">{e(str(row.advice))}'
        f"</blockquote>{criteria}"
        f'<label class="comment">Comment (optional): <textarea name="{e(sid)}:comment" '
        f'rows="2" data-comment="1"></textarea></label></section>'
    )


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:0 auto;
padding:0 1rem 4rem;line-height:1.4;color:#222}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ccc;padding:.5rem 0;z-index:1}
h1{font-size:1.3rem;margin:.4rem 0}progress{width:100%;height:.8rem}
.scenario{border:1px solid #ccc;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
.scenario.done{border-color:#2a7;background:#f4fbf7}.done-mark{display:none;color:#2a7}
.scenario.done .done-mark{display:inline}
.players{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0}figcaption{font-size:.9rem}
blockquote.advice{margin:.2rem 0 .8rem;padding:.5rem .8rem;background:#f3f3f3;border-left:4px solid #888;
white-space:pre-wrap}
fieldset.likert{border:0;padding:0;margin:.4rem 0}legend{padding:0;font-size:.95rem}
.scale{display:flex;flex-wrap:wrap;gap:.25rem}.scale label{display:flex;flex-direction:column;
align-items:center;min-width:4.2rem;font-size:.75rem;border:1px solid #ddd;border-radius:4px;padding:.2rem;
cursor:pointer}.scale .n{font-weight:bold;font-size:.95rem}
label.comment{display:block;margin-top:.4rem}textarea{width:100%}
#status{min-height:1.2rem;font-weight:bold}.controls{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("study-config").textContent);
  var clips = JSON.parse(document.getElementById("study-clips").textContent);
  var criteria = config.criteria;
  var storageKey = "anchormix-study:" + config.study_id;
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.scenario"));
  var status = document.getElementById("status");
  var rater = document.getElementById("rater");

  document.querySelectorAll("audio[data-clip]").forEach(function (audio) {
    audio.src = clips[audio.getAttribute("data-clip")];
  });

  function state(section) {
    var ratings = {};
    criteria.forEach(function (criterion) {
      var checked = section.querySelector(
        'input[data-criterion="' + criterion + '"]:checked');
      ratings[criterion] = checked ? checked.value : "";
    });
    var comment = section.querySelector("textarea[data-comment]").value;
    return {ratings: ratings, comment: comment};
  }

  function complete(current) {
    return criteria.every(function (criterion) { return current.ratings[criterion] !== ""; });
  }

  function update() {
    var done = 0;
    sections.forEach(function (section) {
      var finished = complete(state(section));
      section.classList.toggle("done", finished);
      if (finished) { done += 1; }
    });
    document.getElementById("progress").value = done;
    document.getElementById("progress-text").textContent =
      done + " of " + sections.length + " scenarios rated";
    return done;
  }

  function save() {
    var saved = {rater: rater.value, scenarios: {}};
    sections.forEach(function (section) {
      saved.scenarios[section.getAttribute("data-scenario")] = state(section);
    });
    try { window.localStorage.setItem(storageKey, JSON.stringify(saved)); } catch (e) { }
  }

  function restore() {
    var saved = null;
    try { saved = JSON.parse(window.localStorage.getItem(storageKey) || "null"); } catch (e) { }
    if (!saved) { return; }
    rater.value = saved.rater || "";
    sections.forEach(function (section) {
      var entry = saved.scenarios && saved.scenarios[section.getAttribute("data-scenario")];
      if (!entry) { return; }
      criteria.forEach(function (criterion) {
        var value = entry.ratings && entry.ratings[criterion];
        if (!value) { return; }
        section.querySelectorAll('input[data-criterion="' + criterion + '"]').forEach(
          function (input) { input.checked = input.value === String(value); });
      });
      section.querySelector("textarea[data-comment]").value = entry.comment || "";
    });
  }

  function safeName(text) {
    return String(text).replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 40);
  }

  function csvField(value) {
    return '"' + String(value).replace(/"/g, '""') + '"';
  }

  function download() {
    var name = rater.value.trim();
    if (!name) {
      status.textContent = "Please enter your name (or initials) before downloading.";
      rater.focus();
      return;
    }
    var lines = [config.columns.map(csvField).join(",")];
    var incomplete = 0;
    sections.forEach(function (section) {
      var current = state(section);
      if (!complete(current)) {
        var touched = criteria.some(function (c) { return current.ratings[c] !== ""; });
        if (touched || current.comment.trim()) { incomplete += 1; }
        return;
      }
      var row = [config.study_id, name, section.getAttribute("data-scenario")];
      criteria.forEach(function (criterion) { row.push(current.ratings[criterion]); });
      row.push(current.comment.trim());
      lines.push(row.map(csvField).join(","));
    });
    if (lines.length === 1) {
      status.textContent = "No scenario is fully rated yet: rate all four criteria first.";
      return;
    }
    var blob = new Blob([lines.join("\r\n") + "\r\n"], {type: "text/csv;charset=utf-8"});
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = "ratings_" + safeName(config.study_id) + "_" + safeName(name) + ".csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    status.textContent = "Downloaded " + (lines.length - 1) + " rated scenarios" +
      (incomplete ? "; " + incomplete + " partly rated scenarios were left out." : ".");
  }

  restore();
  update();
  document.addEventListener("change", function () { update(); save(); });
  document.addEventListener("input", function (event) {
    if (event.target.tagName === "TEXTAREA" || event.target === rater) { save(); }
  });
  document.getElementById("download").addEventListener("click", download);
})();
"""


def render_page(
    key: pd.DataFrame,
    clips: Mapping[str, str],
    clips_by_scenario: Mapping[str, Mapping[str, str]],
    title: str = DEFAULT_TITLE,
    instructions: str = DEFAULT_INSTRUCTIONS,
) -> str:
    """The study page: one self-contained HTML document, scenarios in the key's order.

    Shows no system name, example id or true gain; every text from the data or the
    configuration is escaped. The download button writes :data:`PAGE_CSV_COLUMNS`.
    """
    if key.empty:
        raise ValueError("the study key holds no scenario")
    studies = key["study_id"].unique()
    if len(studies) != 1:
        raise ValueError(f"a page shows one study; the key holds {sorted(studies)}")
    missing = sorted(set(key["scenario_id"]) - set(clips_by_scenario))
    if missing:
        raise ValueError(f"no audio for scenarios {missing[:5]}")
    e = html.escape
    ordered = key.sort_values("position")
    sections = "\n".join(
        _scenario_section(row, len(ordered), clips_by_scenario[row.scenario_id])
        for row in ordered.itertuples(index=False)
    )
    config = {
        "study_id": str(studies[0]),
        "criteria": list(CRITERIA),
        "columns": list(PAGE_CSV_COLUMNS),
    }
    csp = (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "media-src data: blob:; img-src data:"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>{e(title)}</h1>
<div class="controls">
<label>Your name or initials: <input id="rater" type="text" autocomplete="name" maxlength="80"></label>
<button id="download" type="button">Download my ratings (CSV)</button>
</div>
<progress id="progress" max="{len(ordered)}" value="0"></progress>
<div id="progress-text">0 of {len(ordered)} scenarios rated</div>
<div id="status" role="status" aria-live="polite"></div>
</header>
<main>
<p class="instructions">{e(instructions)}</p>
<p>Study: <code>{e(str(studies[0]))}</code>. Scale: {
        e(", ".join(f"{value} = {word}" for value, word in LIKERT_LABELS.items()))
    }.</p>
{sections}
</main>
<script type="application/json" id="study-config">{_script_json(config)}</script>
<script type="application/json" id="study-clips">{_script_json(dict(clips))}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""


def empty_page(title: str = DEFAULT_TITLE) -> str:
    """A page saying there is nothing to rate (no system gave any advice)."""
    e = html.escape
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"</head><body><h1>{e(title)}</h1><p>There is nothing to rate: no system gave any "
        "advice.</p></body></html>\n"
    )


def page_size_mb(page: str) -> float:
    """The page's size in MB (UTF-8)."""
    return len(page.encode("utf-8")) / 1e6
