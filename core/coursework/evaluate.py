"""The grader's own evaluation of a trained policy: float64 NumPy, in the grader's process.

A learning case does not trust figures reported by the student's process: the child returns
the trained parameters and the grader runs the greedy policy itself on fresh episodes.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.reference.policy import mlp_forward


def greedy_return(params: dict[str, np.ndarray], env_id: str, seed: int,
                  episodes: int = 10) -> float:
    """Mean return of argmax_a pi(a|s) over ``episodes`` episodes seeded from ``seed``.

    :param params: canonical ``policy.fc1.kernel``, ... arrays (a categorical policy).
    :param env_id: a registered Gymnasium id (duetrl's own are registered on import).
    :returns: the mean undiscounted return; ``-inf`` when the parameters are unusable.
    """
    import gymnasium as gym

    import duetrl.core.envs  # noqa: F401  (registers duetrl/Identity-v0)

    needed = ("policy.fc1.kernel", "policy.fc1.bias", "policy.fc2.kernel", "policy.fc2.bias")
    if not all(k in params for k in needed):
        return float("-inf")
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    if not all(np.all(np.isfinite(params[k])) for k in needed):
        return float("-inf")
    env = gym.make(env_id)
    total = 0.0
    try:
        for episode in range(episodes):
            observation, _ = env.reset(seed=seed + episode)
            done = False
            while not done:
                state = np.asarray(observation, dtype=np.float64).reshape(1, -1)
                logits, _ = mlp_forward(params, "policy", state)
                observation, reward, terminated, truncated, _ = env.step(int(np.argmax(logits)))
                total += float(reward)
                done = terminated or truncated
    except (ValueError, IndexError):  # parameters of the wrong shape for this environment
        return float("-inf")
    finally:
        env.close()
    return total / episodes
