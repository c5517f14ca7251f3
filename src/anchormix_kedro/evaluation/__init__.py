"""Evaluating advice: parsing, truth metrics, text metrics, the LLM judge, statistics and
summaries, the DSP baseline, ratings, correlation and the rating study kit."""
