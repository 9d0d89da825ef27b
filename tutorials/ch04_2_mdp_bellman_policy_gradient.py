# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MDPs, value functions and the policy gradient theorem
#
# Outline sections 2.2 and 4.2.1-4.2.3. A Markov decision process is
#
# $$\mathcal{M} = \langle\mathcal{S}, \mathcal{A}, \mathcal{P}, \mathcal{R}, \gamma\rangle .$$
#
# We build a tiny one whose every quantity we can compute exactly, then check three things:
# the Bellman equation, the policy gradient theorem, and that the REINFORCE estimator (the
# Monte Carlo form of the theorem) converges to the exact gradient. Returns are computed by
# the same `compute_returns` that PyTorch and TensorFlow use for training.

# %%
import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.plots import plot_curves
from duetrl.core.reference.returns import discounted_returns
from duetrl.core.tolerances import assert_close
from duetrl.core.tutorial import figure_dir, quick_mode

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. A two-state MDP with a terminal state
#
# States 0 and 1; actions 0 ("stay") and 1 ("move"). `P[s, a]` is a distribution over the
# next state in {0, 1, terminal}; `R[s, a]` is the expected reward. Episodes start in state 0.

# %%
gamma = 0.9
P = np.array([
    [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]],   # from state 0
    [[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]],   # from state 1
])
R = np.array([[0.0, 0.5], [1.0, -0.2]])
mu0 = np.array([1.0, 0.0])
n_states, n_actions = R.shape

# %% [markdown]
# ## 2. The Bellman equation (4.2.2)
#
# For a policy $\pi$,
# $V^{\pi}(s) = \sum_a \pi(a|s) \sum_{s'} \mathcal{P}^a_{ss'} [R^a_{ss'} + \gamma V^{\pi}(s')]$,
# a linear system: $V = R_\pi + \gamma P_\pi V$, so $V = (I - \gamma P_\pi)^{-1} R_\pi$
# (the terminal state has value 0 and drops out).

# %%
def softmax_policy(theta):
    z = np.exp(theta - theta.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def exact_values(theta):
    pi = softmax_policy(theta)
    P_pi = np.einsum("sa,sat->st", pi, P[:, :, :n_states])  # non-terminal part
    R_pi = (pi * R).sum(axis=1)
    V = np.linalg.solve(np.eye(n_states) - gamma * P_pi, R_pi)
    Q = R + gamma * P[:, :, :n_states] @ V
    return V, Q, P_pi


theta = rng.normal(size=(n_states, n_actions))
V, Q, P_pi = exact_values(theta)
V_iter = np.zeros(n_states)
for _ in range(500):  # repeated Bellman backups converge to the same fixed point
    V_iter = (softmax_policy(theta) * (R + gamma * P[:, :, :n_states] @ V_iter)).sum(axis=1)
assert_close(V_iter, V, 1e-10, "Bellman backups vs linear solve")
print("V^pi =", V)

# %% [markdown]
# ## 3. The policy gradient theorem (4.2.3)
#
# $$\nabla_\theta J(\theta) = \mathbb{E}_{\tau \sim p_\theta}\Big[\sum_t \gamma^t
#   \nabla_\theta \log \pi_\theta(a_t|s_t)\, Q^{\pi}(s_t, a_t)\Big]
#   = \sum_s d^{\pi}(s) \sum_a \pi(a|s)\, \nabla_\theta \log \pi(a|s)\, Q^{\pi}(s, a),$$
#
# with $d^\pi = \mu_0^T (I - \gamma P_\pi)^{-1}$ the discounted state visitation. For a softmax
# policy $\partial \log \pi(a|s) / \partial \theta_{s b} = 1[a = b] - \pi(b|s)$. We compare the
# theorem with a finite-difference gradient of $J(\theta) = \mu_0^T V^\pi$.

# %%
def objective(theta):
    return mu0 @ exact_values(theta)[0]


def theorem_gradient(theta):
    pi = softmax_policy(theta)
    _, Q, P_pi = exact_values(theta)
    d = mu0 @ np.linalg.inv(np.eye(n_states) - gamma * P_pi)
    advantage_weight = pi * (Q - (pi * Q).sum(axis=1, keepdims=True))  # sum_a pi grad log pi Q
    return d[:, None] * advantage_weight


numeric = np.zeros_like(theta)
for index in np.ndindex(theta.shape):
    step = np.zeros_like(theta)
    step[index] = 1e-6
    numeric[index] = (objective(theta + step) - objective(theta - step)) / 2e-6
exact_gradient = theorem_gradient(theta)
assert_close(exact_gradient, numeric, 1e-8, "policy gradient theorem vs finite differences")
print("exact gradient:\n", exact_gradient)

# %% [markdown]
# ## 4. REINFORCE: the theorem by sampling, returns in both frameworks
#
# Replace $Q^\pi(s_t, a_t)$ by the sampled return $G_t = \sum_{k \ge t} \gamma^{k-t} r_k$:
# $\hat g = \sum_t \gamma^t \nabla \log \pi(a_t|s_t) G_t$ is unbiased. Each episode ends in
# the terminal state (a *termination*: nothing is bootstrapped). The returns come from the
# float64 reference and from `compute_returns` in PyTorch and in TensorFlow: all three agree.

# %%
backends = load_backends(["torch", "tf"])


def sample_episode(theta, rng):
    pi = softmax_policy(theta)
    s, states, actions, rewards = 0, [], [], []
    while s < n_states:
        a = rng.choice(n_actions, p=pi[s])
        states.append(s)
        actions.append(a)
        rewards.append(R[s, a])
        s = rng.choice(n_states + 1, p=P[s, a])
    return np.array(states), np.array(actions), np.array(rewards)


def reinforce_gradient(episode, returns):
    pi = softmax_policy(theta)
    states, actions, _ = episode
    g = np.zeros_like(theta)
    for t, (s, a) in enumerate(zip(states, actions)):
        grad_log_pi = -pi[s]
        grad_log_pi[a] += 1.0
        g[s] += gamma**t * grad_log_pi * returns[t]
    return g


num_episodes = 4000 if quick_mode() else 40000
estimates, errors, counts, total = [], [], [], np.zeros_like(theta)
for i in range(num_episodes):
    episode = sample_episode(theta, rng)
    rewards = episode[2][:, None]  # (T, 1): one environment
    terminations = np.zeros_like(rewards, bool)
    terminations[-1] = True
    truncations = np.zeros_like(terminations)
    returns = discounted_returns(rewards, terminations, truncations, gamma)
    if i < 20:  # both frameworks compute the very same returns
        for backend in backends.values():
            t = backend.as_tensor
            got = backend.compute_returns(t(rewards), t(terminations), t(truncations), gamma)
            assert_close(got, returns, "float64", f"{backend.NAME} returns")
    total += reinforce_gradient(episode, returns[:, 0])
    if (i + 1) % 100 == 0:
        counts.append(i + 1)
        errors.append(np.abs(total / (i + 1) - exact_gradient).max())
print(f"after {num_episodes} episodes: max error {errors[-1]:.4f} "
      f"(gradient entries up to {np.abs(exact_gradient).max():.3f})")
assert errors[-1] < 0.25 * np.abs(exact_gradient).max() + 0.05

# %% [markdown]
# The Monte Carlo error shrinks like $1/\sqrt{n}$: the reason for baselines (chapter 5.2's
# REINFORCE with a learned baseline) and for PPO's many small steps on one batch.

# %%
path = plot_curves({"max |REINFORCE estimate - exact gradient|": (counts, errors),
                    "c / sqrt(n)": (counts, errors[0] * np.sqrt(counts[0] / np.array(counts)))},
                   figure_dir() / "ch04_2_policy_gradient_estimator.png", "episodes",
                   "max abs error", title="REINFORCE converges to the policy gradient theorem")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# The largest error of the averaged REINFORCE estimate against the exact policy gradient, as
# the number of episodes grows, beside a $c/\sqrt{n}$ curve.
# ```
#
# **What to see.** The largest error of the averaged REINFORCE estimate against the number of
# episodes it averages, beside the curve $c/\sqrt{n}$ drawn through the first point. The
# measured error follows that curve down, with the wobble of a random quantity: four times
# the episodes halve the error, and no number of episodes makes it zero. An estimate that did
# not follow it (one that levelled off above zero) would be biased.

# %% [markdown]
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it. A check
# prints ✓ or ✗ with what it expected.
#
# 1. **Solve the Bellman equation.** Given $P_\pi$ (non-terminal part, rows may sum to less
#    than 1) and $R_\pi$, return the $V$ with $V = R_\pi + \gamma P_\pi V$. The check
#    measures the Bellman residual on fresh MDPs.
# 2. **Add a baseline, with the framework's autograd.** On a one-step bandit
#    ($\pi = \text{softmax}(\theta)$, reward $r_a$ for arm $a$), write the score-function
#    estimate with a constant baseline $b$, $\hat g = \nabla_\theta \log \pi(a)\,(r_a - b)$,
#    letting PyTorch's `autograd` *or* TensorFlow's `GradientTape` compute
#    $\nabla_\theta \log \pi(a)$ (both are below; use float64, since the check compares
#    variances to $10^{-9}$). By hand it is $e_a - \pi$.
#    The check proves it unbiased for every $b$: $\sum_a \pi_a \hat g(a) = \nabla J$. Then the
#    cell measures the variance of the REINFORCE estimate on this chapter's MDP with and
#    without the baseline $V^\pi(s_t)$ of section 2.
# 3. **The best constant baseline.** $\mathbb{E}\|\hat g - \nabla J\|^2$ is a parabola in $b$.
#    Find its minimum, $b^* = \frac{\mathbb{E}[\|\nabla \log \pi(a)\|^2 r_a]}
#    {\mathbb{E}[\|\nabla \log \pi(a)\|^2]}$, and see that it is not quite $V = \mathbb{E}[r_a]$.

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercises import estimator_moments, exercise_checks  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = exercise_checks(
    "ch04_2_mdp_bellman_policy_gradient")


def solve_values(P_pi, R_pi, gamma):
    """V with V = R_pi + gamma P_pi V."""
    return np.linalg.solve(np.eye(len(R_pi)) - gamma * P_pi, R_pi)  # your code here


def optimal_baseline(theta_b, rewards_b):
    """The constant b minimising the variance of score_function_estimate."""
    pi_b = np.exp(theta_b - theta_b.max()) / np.exp(theta_b - theta_b.max()).sum()
    weight = pi_b * ((np.eye(len(theta_b)) - pi_b) ** 2).sum(axis=1)  # pi_a |e_a - pi|^2
    return weight @ rewards_b / weight.sum()  # your code here


assert check_exercise_1(solve_values)
print("  this chapter's MDP: max |yours - V of section 2| =",
      np.abs(solve_values(P_pi, (softmax_policy(theta) * R).sum(axis=1), gamma) - V).max())

# Measure: REINFORCE on this chapter's MDP, with and without the baseline V(s_t)
plain, with_baseline = [], []
for _ in range(300 if quick_mode() else 3000):
    episode = sample_episode(theta, rng)
    rewards = episode[2][:, None]
    ends = np.zeros_like(rewards, bool)
    ends[-1] = True
    returns = discounted_returns(rewards, ends, np.zeros_like(ends), gamma)[:, 0]
    plain.append(reinforce_gradient(episode, returns))
    with_baseline.append(reinforce_gradient(episode, returns - V[episode[0]]))
for label, grads in (("no baseline", plain), ("baseline V(s_t)", with_baseline)):
    grads = np.array(grads)
    print(f"  {label:>16}: total variance {grads.var(axis=0).sum():.4f}, mean error "
          f"{np.abs(grads.mean(axis=0) - exact_gradient).max():.4f}")

assert check_exercise_3(optimal_baseline)

# %% tags=["torch"]
def score_function_estimate_torch(theta_b, rewards_b, action, baseline):
    """grad_theta log pi(action) (r_action - b), pi = softmax(theta_b), by torch's autograd."""
    theta_t = torch.tensor(theta_b, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(torch.log_softmax(theta_t, 0)[action], theta_t)
    return grad * (rewards_b[action] - baseline)  # your code here


assert check_exercise_2(score_function_estimate_torch)
theta_b, rewards_b = np.array([0.5, -1.0, 0.2]), np.array([1.0, 0.0, 3.0])
for label, b in (("b = 0", 0.0), ("b = V", softmax_policy(theta_b[None])[0] @ rewards_b),
                 ("b = b*", optimal_baseline(theta_b, rewards_b))):
    print(f"  bandit, {label:>6}: variance "
          f"{estimator_moments(score_function_estimate_torch, theta_b, rewards_b, b)[1]:.4f}")

# %% tags=["tf"]
def score_function_estimate_tf(theta_b, rewards_b, action, baseline):
    """grad_theta log pi(action) (r_action - b), pi = softmax(theta_b), by tf's GradientTape."""
    theta_t = tf.Variable(theta_b, dtype=tf.float64)
    with tf.GradientTape() as tape:
        log_pi = tf.nn.log_softmax(theta_t)[action]
    return tape.gradient(log_pi, theta_t) * (rewards_b[action] - baseline)  # your code here


assert check_exercise_2(score_function_estimate_tf)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values (here: forgetting the $-\pi$ of
# $\nabla \log \pi$, which biases the estimate):

# %%
assert not check_exercise_2(lambda th, r, a, b: np.eye(len(th))[a] * (r[a] - b))
