"""The LM-based recommender trained by RL from logged data (outline 6.2.1-6.2.3)."""
