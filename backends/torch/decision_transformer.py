"""The Decision Transformer's one tensor piece (outline 3.2.1; Chen et al. 2021): the GPT's
logits of a batch of token windows, without gradient, as NumPy.

Everything else of the Decision Transformer is host-side and lives once in
``core/agents/decision_transformer.py`` (tokens, windows, loss mask, the acting loop): it is the
unchanged ``GPT`` on a shared vocabulary of return, state and action tokens, trained by
``LMTrainer.train_step(x, y, lr, weights)`` with weight 1 only where the target is an action.
The twin in the other backend has the same names, order and comments
(``duetrl diff decision_transformer``).
"""

from __future__ import annotations

import numpy as np
import torch

from duetrl.backends.torch.gpt import GPT
from duetrl.core.interfaces.gpt_config import check_token_ids


@torch.inference_mode()
def inference_logits(model: GPT, tokens: np.ndarray) -> np.ndarray:
    """Logits ``(B, T, V)`` of token ids ``tokens`` ``(B, T)``, dropout off, as NumPy.

    Under ``torch.inference_mode()``: no autograd graph is recorded.
    """
    tokens = np.asarray(tokens, np.int64)
    check_token_ids(tokens.shape, model.config, "tokens", tokens)
    model.eval()
    return model(torch.as_tensor(tokens)).numpy()  # (B, T, V)
