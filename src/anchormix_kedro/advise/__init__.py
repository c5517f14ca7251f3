"""`anchormix advise`: advice for your own stems from the command line.

``cli`` is the command (and re-exports the rest); ``songs`` loads a song's stems (with
``session`` mapping a session's track names to the four stem groups), ``analysis`` chooses
windows and measures each target, ``verdict`` words where the level sits among professional
mixes (the statistics are in :mod:`anchormix_kedro.evaluation.professional_range`) and
compares a model's verdict with it, ``model_advice`` asks a fine-tuned model (``--model``),
``quiet`` keeps the libraries' chatter out of it, and ``render`` writes the text report.
"""
