"""`anchormix advise`: advice for your own stems from the command line.

``cli`` is the command (and re-exports the rest); ``songs`` loads a song's stems,
``analysis`` chooses windows and measures and judges each target, ``model_advice`` asks a
fine-tuned model (``--model``) and ``render`` writes the text report.
"""
