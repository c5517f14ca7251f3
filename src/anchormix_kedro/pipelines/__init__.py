"""AnchorMix pipelines."""
