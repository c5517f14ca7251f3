"""Analyses the documentation cites as evidence, each one ``anchormix analyse NAME``.

One module per analysis (:mod:`.belief_separation`, :mod:`.seed_ensemble`,
:mod:`.level_measures`, :mod:`.verdict_stability`, :mod:`.verdict_tradeoff`,
:mod:`.wording_policy`, :mod:`.shipped_conventions`), each with a ``command(args)`` that
:mod:`.cli` calls; :mod:`.project` opens a project's run through its Kedro catalog. This
wing reads the others (model, evaluation, instruction data, the inference pipeline's
helpers); none of them imports it.
"""
