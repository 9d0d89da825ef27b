"""The framework-neutral half of the learners: what an update does, written once.

Each backend's learner subclasses a base here and overrides only what touches its framework
(arrays to tensors, the forward pass, the gradient step), as Keras 3 keeps one base Trainer
and lets each backend override its ``train_step``.
"""
