"""Qwen2-Audio for anchor-conditioned advice: construction, features, data, training, generation."""
