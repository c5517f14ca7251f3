"""The advice language: how gain advice is worded (:mod:`.wording`) and read back
(:mod:`.parsing`). It sits below the dataset, the model and the evaluation, which all speak
it, and imports nothing of the project but :mod:`anchormix_kedro.vocabulary`."""
