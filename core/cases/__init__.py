"""Case studies of outline chapter 6: an LM writes text and a sequence-level reward judges it."""
