"""Text environments (outline 3.2.2): worlds described in words, commands chosen in words
(the contract: core/interfaces/text_env.py)."""
