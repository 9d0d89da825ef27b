"""Dialogue generation with reinforcement learning (outline 6.1; Li et al., EMNLP 2016)."""
