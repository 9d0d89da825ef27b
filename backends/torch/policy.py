"""Policy and value networks: the outline's listing 5.2 ``PolicyNet``, and its kin.

    pi(a|s) = softmax(fc2(relu(fc1(s))))_a                      (categorical, logits out)
    pi(a|s) = N(a; fc2(relu(fc1(s))), exp(log_std)^2)            (Gaussian, continuous actions)
    V(s)    = fc2(relu(fc1(s)))                                   (value network, one output)

Sampling takes its noise from core (NumPy, seeded), so both backends pick the same actions
from the same weights: Gumbel-max for categories, mu + sigma * eps for Gaussians.
``duetrl diff policy`` shows this file beside its twin in the other backend.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from duetrl.backends.torch.runtime import resolve_dtype
from duetrl.core.interfaces.rl import check_loss_inputs, check_policy_config

LOG_2PI = math.log(2.0 * math.pi)


def flatten(tensor: Tensor) -> Tensor:
    """(T, N, ...) -> (T * N, ...): a time-major rollout as one batch of B = T * N steps."""
    return torch.reshape(tensor, (-1,) + tuple(tensor.shape[2:]))


def masked_mean(values: Tensor, mask: Tensor | None = None) -> Tensor:
    """sum(values * mask) / max(sum(mask), 1): the mean over real (unpadded) steps."""
    if mask is None:
        return torch.mean(values)
    return torch.sum(values * mask) / torch.clamp(torch.sum(mask), min=1.0)


def value_loss(
    values: Tensor, returns: Tensor, mask: Tensor | None = None
) -> Tensor:
    """L_V = mean_t (V(s_t) - R_t)^2 / 2, half the squared error to the target; (B,) -> ()."""
    return 0.5 * masked_mean((values - returns) ** 2, mask)


def categorical_log_prob(logits: Tensor, actions: Tensor) -> Tensor:
    """log pi(a|s) = log softmax(logits)_a; (B, A), (B,) -> (B,)."""
    return -F.cross_entropy(logits, actions.long(), reduction="none")


def categorical_entropy(logits: Tensor) -> Tensor:
    """H = -sum_a pi(a|s) log pi(a|s); (B, A) -> (B,)."""
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)


def sample_categorical(logits: Tensor, gumbel_noise: Tensor) -> Tensor:
    """Gumbel-max: argmax_a (logits_a + g_a) is a sample of softmax(logits); (B, A) -> (B,)."""
    return torch.argmax(logits + gumbel_noise, dim=-1)


def gaussian_log_prob(
    mean: Tensor, log_std: Tensor, actions: Tensor
) -> Tensor:
    """sum_d [-((a - mu) / sigma)^2 / 2 - log sigma - log(2 pi) / 2]; -> (B,)."""
    z = (actions - mean) / log_std.exp()
    return (-0.5 * z**2 - log_std - 0.5 * LOG_2PI).sum(dim=-1)


def gaussian_entropy(mean: Tensor, log_std: Tensor) -> Tensor:
    """H = sum_d [log sigma + (1 + log 2 pi) / 2], the same for every state; -> (B,)."""
    return (log_std + 0.5 * (1.0 + LOG_2PI)).expand_as(mean).sum(dim=-1)


def sample_gaussian(
    mean: Tensor, log_std: Tensor, normal_noise: Tensor
) -> Tensor:
    """a = mu + sigma * eps, eps ~ N(0, 1) drawn by core."""
    return mean + log_std.exp() * normal_noise


class PolicyNet(nn.Module):
    """Categorical policy (listing 5.2): ``fc1`` (ReLU) then ``fc2`` giving action logits.

    Args:
        state_dim: observation size; hidden_dim: width of fc1; action_dim: number of actions.
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).

    Example:
        >>> policy = PolicyNet(state_dim=4, hidden_dim=64, action_dim=2)
        >>> logits = policy(states)  # (B, 4) -> (B, 2)
    """

    continuous = False

    def __init__(
        self, state_dim: int, hidden_dim: int, action_dim: int, dtype: str | None = None,
    ) -> None:
        super().__init__()
        check_policy_config(state_dim, hidden_dim, action_dim)
        self.state_dim, self.hidden_dim, self.action_dim = state_dim, hidden_dim, action_dim
        dtype = resolve_dtype(dtype or "float32")
        # initial weights come from core (duetrl.core.reference.policy.init_agent_params)
        self.fc1 = nn.Linear(state_dim, hidden_dim, dtype=dtype)
        self.fc2 = nn.Linear(hidden_dim, action_dim, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.fc1(x))
        return self.fc2(x)

    def log_prob_entropy(
        self, states: Tensor, actions: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``(log pi(a|s), H(pi(.|s)))``, each (B,)."""
        logits = self(states)
        return categorical_log_prob(logits, actions), categorical_entropy(logits)

    def sample(
        self, states: Tensor, noise: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``(actions (B,), log pi(actions|s) (B,))`` with Gumbel ``noise`` (B, action_dim)."""
        logits = self(states)
        actions = sample_categorical(logits, noise)
        return actions, categorical_log_prob(logits, actions)

    def compute_loss(
        self, states: Tensor, actions: Tensor, returns: Tensor,
        mask: Tensor | None = None,
    ) -> Tensor:
        """The listing's REINFORCE loss, mean_t[-log pi(a_t|s_t) G_t], over mask == 1."""
        check_loss_inputs(states.shape, actions.shape, returns.shape, self.state_dim)
        log_probs, _ = self.log_prob_entropy(states, actions)
        return masked_mean(-log_probs * returns, mask)


class GaussianPolicyNet(PolicyNet):
    """Gaussian policy for continuous actions: ``fc2`` gives the mean, ``log_std`` is learned.

    Same arguments as :class:`PolicyNet`; ``action_dim`` is the action vector's size.
    """

    continuous = True

    def __init__(
        self, state_dim: int, hidden_dim: int, action_dim: int, dtype: str | None = None,
    ) -> None:
        super().__init__(state_dim, hidden_dim, action_dim, dtype)
        self.log_std = nn.Parameter(torch.zeros(action_dim, dtype=self.fc2.weight.dtype))

    def log_prob_entropy(
        self, states: Tensor, actions: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``(log pi(a|s), H(pi(.|s)))``, each (B,)."""
        mean = self(states)
        return gaussian_log_prob(mean, self.log_std, actions), gaussian_entropy(mean, self.log_std)

    def sample(
        self, states: Tensor, noise: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``(actions (B, A), log pi(actions|s) (B,))`` with N(0, 1) ``noise`` (B, A)."""
        mean = self(states)
        actions = sample_gaussian(mean, self.log_std, noise)
        return actions, gaussian_log_prob(mean, self.log_std, actions)


class ValueNet(nn.Module):
    """State-value network V(s): ``fc1`` (ReLU) then ``fc2`` with one output; (B, S) -> (B,)."""

    def __init__(
        self, state_dim: int, hidden_dim: int, dtype: str | None = None
    ) -> None:
        super().__init__()
        check_policy_config(state_dim, hidden_dim, 1)
        self.state_dim, self.hidden_dim = state_dim, hidden_dim
        dtype = resolve_dtype(dtype or "float32")
        self.fc1 = nn.Linear(state_dim, hidden_dim, dtype=dtype)
        self.fc2 = nn.Linear(hidden_dim, 1, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.fc1(x))
        return self.fc2(x)[..., 0]  # (B, 1) -> (B,)
