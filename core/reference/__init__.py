"""The oracle: float64 NumPy references, the specification every backend is tested against.

Each function carries its equation in its docstring and is written for clarity, not speed.
"Reference" in duetrl means this and only this; the frozen policy that RL for language models
measures its KL against is pi_ref (``core/rlhf/pi_ref.py``).

Who may import the oracle at run time, and why (tests/test_layers.py checks the first rule):

* **Never the backends.** ``backends/torch`` and ``backends/tf`` are tested against this code;
  a backend that called it would be tested against itself. They see only the contracts below
  both (``core/interfaces``, ``core/constants``, ...).
* **Host-side math that has no framework twin**, where one NumPy implementation serves both
  backends and is itself the tested spec: the initial weights drawn from a seed
  (``policy.init_agent_params``, ``dqn.init_q_params``: so torch and tf start equal), the
  advantages of RL on language models computed on host arrays (``core/rlhf``), the
  log-softmax of host-side sampling (``core/sampling.py``), a NumPy forward pass to check a
  policy loaded from RLlib (``core/scale/rllib.py``).
* **The tools that compare against the spec**: exercises and the coursework grader (outside
  the submission's process), and the commands that print a backend's error against the oracle
  (``duetrl compare attention``, ``compare lm``, ``value``).

Nothing here imports a training loop, the command line or a framework.
"""

from duetrl.core.reference.attention import (
    causal_mask,
    init_multi_head_attention_params,
    multi_head_attention,
    scaled_dot_product_attention,
    softmax,
)

__all__ = [
    "causal_mask",
    "init_multi_head_attention_params",
    "multi_head_attention",
    "scaled_dot_product_attention",
    "softmax",
]
