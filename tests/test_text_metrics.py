"""Text metrics on hand-worked examples: ROUGE-L, METEOR (with and without WordNet), BERTScore."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import nltk
import pytest

from anchormix_kedro.evaluation import text_metrics, word_overlap
from anchormix_kedro.evaluation.text_metrics import (
    METEOR_WITH_SYNONYMS,
    METEOR_WITHOUT_SYNONYMS,
    SCORE_COLUMNS,
    bertscore,
    library_bertscore,
    load_bertscore_scorer,
    meteor,
    meteor_variant,
    rouge_l,
    score_texts,
    wordnet_available,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "Relative to the drums, the vocal is about 4 dB too loud: pull the vocal fader down by about 4 dB."
PARAPHRASE = "The vocal is roughly 4 dB too hot against the drums. Bring the vocal fader down 4 dB."
UNRELATED = "Preheat the oven and bake the bread for forty minutes."


def test_rouge_l_is_the_lcs_f_measure():
    # LCS of "the cat sat on the mat" and "the cat lay on the mat" is 5 words of 6 each.
    assert rouge_l(["the cat sat on the mat"], ["the cat lay on the mat"]) == [pytest.approx(5 / 6)]
    # LCS "pull the fader down" = 4: precision 4/6, recall 4/5, F = 2PR/(P+R) = 8/11.
    assert rouge_l(["pull the fader down by four"], ["pull the vocal fader down"]) == [
        pytest.approx(8 / 11)
    ]
    # Stemming: "pulls"/"pull" and "faders"/"fader" match.
    assert rouge_l(["pulls the faders"], ["pull the fader"]) == [pytest.approx(1.0)]
    assert rouge_l(["completely different words"], ["pull the fader"]) == [0.0]


def test_meteor_identical_is_about_one_and_unrelated_is_zero():
    identical, unrelated = meteor(
        [REFERENCE, "Preheat oven; bake bread forty minutes."],
        [REFERENCE, "pull the vocal fader up"],
    )
    assert identical == pytest.approx(1.0, abs=1e-3)
    assert unrelated == 0.0


def test_meteor_without_wordnet_matches_exact_words_and_stems_only():
    assert meteor_variant(use_wordnet=False) == METEOR_WITHOUT_SYNONYMS
    (stems,) = meteor(["pulls the faders down"], ["pull the fader down"], use_wordnet=False)
    assert stems == pytest.approx(meteor(["pull the fader down"], ["pull the fader down"])[0])
    frame = score_texts([REFERENCE], [REFERENCE], use_wordnet=False)
    assert frame.attrs["variants"]["meteor"] == METEOR_WITHOUT_SYNONYMS


def test_meteor_synonyms_score_higher_with_wordnet():
    if not wordnet_available():
        pytest.skip("WordNet is not installed for NLTK (tools/install_wordnet.sh)")
    # NLTK looks synonyms up after stemming the leftovers, so the pair must stem to itself.
    candidate, reference = (
        ["drag the bass fader down by 3 dB"],
        ["pull the bass fader down by 3 dB"],
    )
    with_synonyms = meteor(candidate, reference)[0]
    exact = meteor(candidate, reference, use_wordnet=False)[0]
    assert meteor_variant() == METEOR_WITH_SYNONYMS
    assert with_synonyms > exact
    assert with_synonyms == pytest.approx(1.0, abs=1e-3)


def test_missing_wordnet_falls_back_to_exact_and_stem(monkeypatch, caplog):
    import nltk.corpus
    from nltk.corpus.reader import WordNetCorpusReader
    from nltk.corpus.util import LazyCorpusLoader

    absent = LazyCorpusLoader("no_such_wordnet_for_this_test", WordNetCorpusReader, None)
    monkeypatch.setattr(nltk.corpus, "wordnet", absent)
    assert word_overlap._wordnet_reader.__wrapped__() is None  # uncached: looks again
    assert "WordNet is not installed" in caplog.text

    monkeypatch.setattr(word_overlap, "_wordnet_reader", lambda: None)
    assert not wordnet_available()
    assert meteor_variant() == METEOR_WITHOUT_SYNONYMS
    candidate, reference = ["drag the bass fader down"], ["pull the bass fader down"]
    assert meteor(candidate, reference) == meteor(candidate, reference, use_wordnet=False)
    assert score_texts(candidate, reference).attrs["variants"]["meteor"] == METEOR_WITHOUT_SYNONYMS


def test_project_nltk_data_is_on_nltk_path():
    assert os.environ["NLTK_DATA"]
    for folder in os.environ["NLTK_DATA"].split(os.pathsep):
        assert folder in nltk.data.path


@pytest.mark.skipif(
    shutil.which("dpkg-query") is None
    or subprocess.run(
        ["dpkg-query", "-W", "wordnet-base", "wordnet-sense-index"], capture_output=True
    ).returncode,
    reason="Debian's WordNet packages are not installed",
)
def test_install_wordnet_script_builds_an_nltk_folder(tmp_path):
    script = PROJECT_ROOT / "tools" / "install_wordnet.sh"
    for _ in range(2):  # idempotent
        subprocess.run(["bash", str(script), str(tmp_path)], check=True, capture_output=True)
    wordnet = tmp_path / "corpora" / "wordnet"
    lexnames = (wordnet / "lexnames").read_text().splitlines()
    assert len(lexnames) == 45
    assert lexnames[0] == "00\tadj.all\t3" and lexnames[18] == "18\tnoun.person\t1"
    assert lexnames[29] == "29\tverb.body\t2" and lexnames[2] == "02\tadv.all\t4"
    for name in ("index.noun", "data.verb", "index.sense", "verb.exc", "cntlist.rev"):
        assert (wordnet / name).stat().st_size > 0


def test_bertscore_orders_identical_paraphrase_unrelated_and_loads_the_model_once():
    before = load_bertscore_scorer.cache_info()
    first = bertscore([REFERENCE, PARAPHRASE, UNRELATED], [REFERENCE] * 3, batch_size=2)
    second = bertscore([PARAPHRASE], [REFERENCE])
    after = load_bertscore_scorer.cache_info()
    assert after.misses - before.misses <= 1  # built at most once, here or earlier
    assert after.hits - before.hits >= 1
    assert after.currsize == 1

    identical, paraphrase, unrelated = first["bertscore_f1"]
    assert identical == pytest.approx(1.0, abs=1e-4)
    assert first.loc[0, "bertscore_precision"] == pytest.approx(1.0, abs=1e-4)
    assert identical > paraphrase > unrelated
    assert second.loc[0, "bertscore_f1"] == pytest.approx(paraphrase, abs=1e-5)


def test_bertscore_model_is_the_shipped_minilm_with_six_layers():
    model_dir = Path(text_metrics.default_bertscore_model())
    assert (model_dir / "config.json").is_file()
    assert text_metrics._layer_count(str(model_dir)) == 6
    assert text_metrics._layer_count("roberta-large") == 17  # bert_score's tuned layer


def test_score_texts_columns_missing_pairs_and_variants():
    candidates = [REFERENCE, PARAPHRASE, "", None, UNRELATED]
    references = [REFERENCE, REFERENCE, REFERENCE, REFERENCE, math.nan]
    frame = score_texts(candidates, references, batch_size=4)
    assert list(frame.columns) == list(SCORE_COLUMNS)
    assert len(frame) == 5
    assert frame.loc[0].to_numpy() == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.0], abs=1e-3)
    assert frame.loc[1, "bertscore_f1"] < frame.loc[0, "bertscore_f1"]
    assert frame.loc[2].to_numpy() == pytest.approx([0.0] * 5)  # an empty answer scores 0
    assert frame.loc[3].isna().all() and frame.loc[4].isna().all()  # missing stays missing
    variants = frame.attrs["variants"]
    assert variants["bertscore_model"] == text_metrics.default_bertscore_model()
    assert variants["bertscore_num_layers"] == 6
    assert variants["bertscore_rescaled_with_baseline"] is False
    assert variants["meteor"] in (METEOR_WITH_SYNONYMS, METEOR_WITHOUT_SYNONYMS)
    assert (variants["meteor"] == METEOR_WITH_SYNONYMS) == wordnet_available()


def test_score_texts_rejects_unpaired_input_and_accepts_none():
    with pytest.raises(ValueError, match="pair up"):
        score_texts(["a"], ["a", "b"])
    empty = score_texts([], [])
    assert empty.empty and list(empty.columns) == list(SCORE_COLUMNS)


# Pairs that exercise the fast path: repeats, lengths from one word to past the model's
# 512 tokens (truncated), accents, punctuation only, identical texts, empty answers.
LONG = " ".join(["the bass sits under the kick and the vocal rides on top"] * 60)
VARIED = [
    (REFERENCE, REFERENCE),
    (PARAPHRASE, REFERENCE),
    (UNRELATED, REFERENCE),
    (PARAPHRASE, REFERENCE),  # a repeat
    ("Louder.", "Pull the bass fader up by about 6 dB so it is heard under the drums."),
    ("Le chanteur est trop fort, baissez-le de 3 dB s'il vous plaît: déjà vu.", REFERENCE),
    ("?!", REFERENCE),
    (LONG, REFERENCE),
    (REFERENCE, LONG),
    ("", REFERENCE),
    (PARAPHRASE, "   "),
]


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_fast_bertscore_equals_bert_scores_own_to_1e_6(batch_size):
    candidates, references = zip(*VARIED, strict=True)
    fast = bertscore(list(candidates), list(references), batch_size=batch_size)
    library = library_bertscore(list(candidates), list(references), batch_size=batch_size)
    assert list(fast.columns) == list(library.columns)
    assert (fast - library).abs().to_numpy().max() <= 1e-6
    assert fast.loc[9].tolist() == [0.0, 0.0, 0.0] and fast.loc[10].tolist() == [0.0, 0.0, 0.0]
    assert fast.loc[0, "bertscore_f1"] == pytest.approx(1.0, abs=1e-6)


def test_score_texts_scores_each_distinct_pair_once_with_the_same_scores():
    rows = [VARIED[k % 4] for k in range(60)] + [(None, REFERENCE)]
    candidates, references = (list(column) for column in zip(*rows, strict=True))
    scorer = load_bertscore_scorer(text_metrics.default_bertscore_model(), 6, None)
    embedded: list[int] = []
    hook = scorer._model.register_forward_hook(
        lambda module, args, output: embedded.append(int(args[0].shape[0]))
    )
    try:
        frame = score_texts(candidates, references, use_wordnet=False)
    finally:
        hook.remove()
    assert frame.attrs["pairs"] == {"rows": 61, "scored": 60, "distinct": 3}
    assert sum(embedded) == 3  # each distinct text once: REFERENCE, PARAPHRASE, UNRELATED
    assert frame.loc[60].isna().all()
    # Row by row, as the metrics were computed before: the same numbers.
    per_row = library_bertscore(candidates[:60], references[:60])
    per_row["rouge_l"] = rouge_l(candidates[:60], references[:60])
    per_row["meteor"] = meteor(candidates[:60], references[:60], use_wordnet=False)
    assert (
        frame.loc[:59, list(SCORE_COLUMNS)] - per_row[list(SCORE_COLUMNS)]
    ).abs().max().max() <= 1e-6


@pytest.mark.skipif(not wordnet_available(), reason="WordNet is not installed for NLTK")
def test_meteor_with_remembered_synonyms_equals_nltk_per_pair():
    from nltk.corpus import wordnet
    from nltk.tokenize import wordpunct_tokenize
    from nltk.translate.meteor_score import meteor_score

    candidates = [PARAPHRASE, "drag the bass fader down", "lower the voice", PARAPHRASE]
    references = [REFERENCE, "pull the bass fader down", "turn the vocal down", REFERENCE]
    expected = [
        meteor_score([wordpunct_tokenize(r)], wordpunct_tokenize(c), wordnet=wordnet)
        for c, r in zip(candidates, references, strict=True)
    ]
    assert meteor(candidates, references) == expected


def test_lcs_length_is_rouge_scores_table_lcs():
    import random

    from rouge_score import rouge_scorer

    rng = random.Random(0)
    for _ in range(2000):
        a = [rng.choice("abcde") for _ in range(rng.randint(1, 70))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(1, 70))]
        assert word_overlap._lcs_length(a, b) == rouge_scorer._lcs_table(a, b)[-1][-1]
    assert word_overlap._lcs_length([], ["a"]) == 0
    assert word_overlap._lcs_length(["a", "b", "c", "b"], ["b", "c", "b", "a"]) == 3


def test_rouge_l_is_rouge_scores_number_exactly():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rows = [*VARIED, ("Pulls the faders, pulling harder!", "pull the fader: pulled"), ("", "")]
    candidates, references = (list(column) for column in zip(*rows, strict=True))
    expected = [
        scorer.score(r, c)["rougeL"].fmeasure for c, r in zip(candidates, references, strict=True)
    ]
    assert rouge_l(candidates, references) == expected


def test_meteor_is_nltks_number_exactly_without_wordnet():
    from nltk.tokenize import wordpunct_tokenize
    from nltk.translate.meteor_score import meteor_score

    rows = [*VARIED, ("Pulls the faders, pulling harder!", "pull the fader: pulled")]
    candidates, references = (list(column) for column in zip(*rows, strict=True))
    expected = [
        meteor_score(
            [wordpunct_tokenize(r)], wordpunct_tokenize(c), wordnet=word_overlap._NoSynonyms()
        )
        for c, r in zip(candidates, references, strict=True)
    ]
    assert meteor(candidates, references, use_wordnet=False) == expected


class _Synset:
    def __init__(self, *names):
        self._names = names

    def lemmas(self):
        return [type("Lemma", (), {"name": lambda _, n=n: n})() for n in self._names]


class _TinyWordNet:
    """A stand-in WordNet: repeated and multi-word lemma names, as the real one has."""

    SYNSETS = {
        "drag": [_Synset("drag", "pull", "haul"), _Synset("pull", "drag_out"), _Synset("drag")],
        "lower": [_Synset("lower", "turn_down", "reduce"), _Synset("lower", "dip")],
        "voice": [_Synset("voice", "vocal"), _Synset("voice", "part")],
    }

    def synsets(self, word):
        return self.SYNSETS.get(word, [])


def test_remembered_synonyms_give_nltks_meteor_exactly():
    from nltk.tokenize import wordpunct_tokenize
    from nltk.translate.meteor_score import meteor_score

    wordnet = _TinyWordNet()
    candidates = ["drag the bass fader down", "lower the voice", "drag it, drag it", PARAPHRASE]
    references = ["pull the bass fader down", "reduce the vocal", "haul it, pull it", REFERENCE]
    remembered = word_overlap._RememberedSynonyms(wordnet)
    for c, r in zip(candidates, references, strict=True):
        words = wordpunct_tokenize(c), wordpunct_tokenize(r)
        assert meteor_score([words[1]], words[0], wordnet=remembered) == meteor_score(
            [words[1]], words[0], wordnet=wordnet
        )
    pulled, dragged = [["pull", "the", "bass"]], ["drag", "the", "bass"]
    assert meteor_score(pulled, dragged, wordnet=remembered) > meteor_score(
        pulled, dragged, wordnet=word_overlap._NoSynonyms()
    )
    (lemmas,) = remembered.synsets("drag")
    assert [lemma.name() for lemma in lemmas.lemmas()] == ["drag", "pull", "haul"]
    assert remembered.synsets("unknown") == []


def test_texts_that_tokenize_alike_are_embedded_once():
    # The default model is uncased and bert_score strips the text: these are one sequence.
    alike = [
        "Pull the vocal DOWN by 3 dB.",
        "pull the vocal down by 3 db.",
        "  Pull the vocal down by 3 dB. ",
    ]
    scorer = load_bertscore_scorer(text_metrics.default_bertscore_model(), 6, None)
    embedded_rows: list[int] = []
    hook = scorer._model.register_forward_hook(
        lambda module, args, output: embedded_rows.append(int(args[0].shape[0]))
    )
    try:
        fast = bertscore(alike, [REFERENCE] * 3)
    finally:
        hook.remove()
    assert sum(embedded_rows) == 2  # the three candidates once, the reference once
    embedded = text_metrics._embed_texts(scorer, alike, 32)
    assert len(set(embedded.starts.tolist())) == 1
    assert (fast.loc[0] == fast.loc[1]).all() and (fast.loc[0] == fast.loc[2]).all()
    library = library_bertscore(alike, [REFERENCE] * 3)
    assert (fast - library).abs().to_numpy().max() <= 1e-6


def test_many_batches_of_one_length_equal_bert_scores_own():
    # Texts of one token length fill several batches of 3; others pad nothing either.
    candidates = [f"Pull the vocal down by {n} dB." for n in range(10, 30)]
    candidates += [f"The bass is {n} dB too soft under the kick drum." for n in range(10, 20)]
    references = [REFERENCE if n % 2 else PARAPHRASE for n in range(len(candidates))]
    fast = bertscore(candidates, references, batch_size=3)
    library = library_bertscore(candidates, references, batch_size=3)
    assert (fast - library).abs().to_numpy().max() <= 1e-6


def test_batches_run_one_per_thread_and_the_thread_setting_comes_back():
    import threading

    import torch

    scorer = load_bertscore_scorer(text_metrics.default_bertscore_model(), 6, None)
    candidates, references = (list(column) for column in zip(*VARIED, strict=True))
    before = torch.get_num_threads()
    seen: list[tuple[bool, int]] = []
    hook = scorer._model.register_forward_hook(
        lambda module, args, output: seen.append(
            (threading.current_thread() is threading.main_thread(), torch.get_num_threads())
        )
    )
    try:
        torch.set_num_threads(2)
        side_by_side = bertscore(candidates, references, batch_size=2)
        assert torch.get_num_threads() == 2
        assert seen and all(not main and threads == 1 for main, threads in seen)
        seen.clear()
        torch.set_num_threads(1)
        in_turn = bertscore(candidates, references, batch_size=2)
        assert seen and all(main for main, _ in seen)
    finally:
        hook.remove()
        torch.set_num_threads(before)
    assert (side_by_side - in_turn).abs().to_numpy().max() <= 1e-6


def test_a_failing_batch_raises_and_restores_the_thread_setting():
    import torch

    class Failing(torch.nn.Module):
        def forward(self, tokens, attention_mask):
            if tokens.shape[1] == 2:
                raise RuntimeError("batch of length 2 failed")
            return (tokens[..., None].float(),)

    before = torch.get_num_threads()
    stored: dict[int, object] = {}
    try:
        torch.set_num_threads(2)
        batches = [torch.ones(1, 3, dtype=torch.long), torch.ones(2, 2, dtype=torch.long)]
        with pytest.raises(RuntimeError, match="length 2 failed"):
            text_metrics._forward(Failing(), batches, torch.device("cpu"), stored.__setitem__)
        assert torch.get_num_threads() == 2
        text_metrics._forward(Failing(), batches[:1], torch.device("cpu"), stored.__setitem__)
        assert list(stored) == [0] and stored[0].shape == (1, 3, 1)
    finally:
        torch.set_num_threads(before)
