"""What every backend must provide: the contracts, with shapes, dtypes and equations.

Each interface here has a float64 NumPy reference in :mod:`duetrl.core.reference` and an
implementation of the same name in ``backends/torch`` and ``backends/tf``.
"""

from duetrl.core.interfaces.attention import (
    AttentionModule,
    check_attention_config,
    check_attention_inputs,
)

__all__ = ["AttentionModule", "check_attention_config", "check_attention_inputs"]
