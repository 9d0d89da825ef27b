"""Language models as agents (outline 3.2, 9.3): an LM that scores the admissible commands of a
text environment and learns by PPO, and offline RL as sequence modelling (the Decision
Transformer)."""
