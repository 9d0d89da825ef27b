"""Constants of the dialogue rewards (outline 6.1.2), shared by the float64 oracle
(``core/reference/dialogue.py``) and both backends (``backends/*/dialogue.py``)."""

REWARD_WEIGHTS = (0.25, 0.25, 0.5)
"""lambda_1, lambda_2, lambda_3 of r = sum_k lambda_k r_k (Li et al. 2016's)."""
COS_FLOOR = 0.1
"""The information-flow reward reads cos as max(cos, COS_FLOOR): r2 <= -log 0.1 = 2.30."""
