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
# # PPO: the policy optimiser that RL for language models reuses
#
# Outline sections 2.3.3 (policy optimisation methods) and 3.1.5 (training and convergence).
# REINFORCE takes one gradient step per batch of experience; Proximal Policy Optimisation
# takes many, on minibatches, and stays safe by clipping the probability ratio
# $\rho_t = \pi_\theta(a_t|s_t) / \pi_{\text{old}}(a_t|s_t)$:
#
# $$L^{\text{CLIP}}(\theta) = -\mathbb{E}_t\big[\min(\rho_t A_t,\;
#   \text{clip}(\rho_t, 1-\epsilon, 1+\epsilon) A_t)\big]$$
#
# plus a value loss $c_V \frac{1}{2}(V(s_t) - R_t)^2$ and an entropy bonus $-c_H H_t$.
# The advantages $A_t$ come from generalised advantage estimation (GAE).

# %%
import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.plots import plot_curves
from duetrl.core.reference.returns import gae
from duetrl.core.rl.compare import compare, format_results
from duetrl.core.tolerances import assert_close
from duetrl.core.tutorial import figure_dir, quick_mode

backends = load_backends(["torch", "tf"])

# %% [markdown]
# ## 1. The clipped objective, in both frameworks
#
# For $A > 0$ the objective stops rewarding a ratio above $1 + \epsilon$; for $A < 0$ it
# stops rewarding a ratio below $1 - \epsilon$. Pushing a probability further than that
# brings no gain, so many epochs on the same batch cannot run away. The published test
# vectors: $\epsilon = 0.2$, $A = +1, \rho = 1.3 \to -1.2$; $A = -1, \rho = 0.7 \to 0.8$;
# $A = -1, \rho = 1.3 \to 1.3$.

# %%
ratios = np.linspace(0.5, 1.5, 101)
curves = {}
for advantage in (1.0, -1.0):
    losses = {}
    for name, backend in backends.items():
        t = lambda x, b=backend: b.as_tensor(np.asarray(x, dtype="float64"))
        losses[name] = np.array([
            float(backend.to_numpy(backend.ppo_clip_loss(t([np.log(r)]), t([0.0]),
                                                         t([advantage]), 0.2)))
            for r in ratios])
    assert_close(losses["torch"], losses["tf"], "float64", "clip loss torch vs tf")
    curves[f"A = {advantage:+.0f}"] = (ratios, losses["torch"])
for advantage, ratio, expected in [(1, 1.3, -1.2), (-1, 0.7, 0.8), (-1, 1.3, 1.3)]:
    t = lambda x: backends["tf"].as_tensor(np.asarray([x], dtype="float64"))
    got = float(backends["tf"].to_numpy(
        backends["tf"].ppo_clip_loss(t(np.log(ratio)), t(0.0), t(float(advantage)), 0.2)))
    print(f"A={advantage:+d}, ratio={ratio}: loss {got:+.3f} (expected {expected:+.1f})")
path = plot_curves(curves, figure_dir() / "ch03_1_ppo_clip.png", "probability ratio",
                   "clipped loss", title="PPO's clipped objective (eps = 0.2)")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# PPO's clipped loss of one sample against its probability ratio, for a positive and a
# negative advantage ($\epsilon = 0.2$).
# ```
#
# **What to see.** The loss of one sample against its ratio $\rho = \pi/\pi_{\text{old}}$.
# For $A = +1$ the loss falls with $\rho$ (making the action likelier helps) until
# $\rho = 1.2$, then is flat: past $1 + \epsilon$ a larger ratio earns nothing, so the
# gradient stops pushing. For $A = -1$ it is flat below $\rho = 0.8$ and rises with $\rho$
# above it. The flat parts are where the clip switches the gradient off; the sloped parts are
# never clipped, on the side where the step would *undo* an overshoot.

# %% [markdown]
# ## 2. GAE, with terminations and truncations kept apart
#
# $\delta_t = r_t + \gamma (1 - \text{term}_t) V(s_{t+1}) - V(s_t)$ and
# $A_t = \delta_t + \gamma\lambda\, c_t A_{t+1}$, where $c_t = 0$ at any episode end. A
# *terminated* step adds nothing after $r_t$; a *truncated* one (a time limit) still adds
# $\gamma V(s_{t+1})$ of its true final observation: the episode was cut, not finished.
# The design card's test vector: $\gamma = 1, \lambda = 0.95$, rewards [0, 0, 1],
# values 0.5, last value 0 gives advantages [0.45125, 0.475, 0.5].

# %%
rewards = np.array([[0.0], [0.0], [1.0]])
values = np.full((3, 1), 0.5)
next_values = np.array([[0.5], [0.5], [0.0]])
no_end = np.zeros((3, 1), bool)
advantages, returns = gae(rewards, values, next_values, no_end, no_end, 1.0, 0.95)
print("advantages", advantages[:, 0], "returns", returns[:, 0])
for name, backend in backends.items():
    t = backend.as_tensor
    got, _ = backend.compute_gae(t(rewards), t(values), t(next_values), t(no_end), t(no_end),
                                 1.0, 0.95)
    assert_close(got, advantages, "float64", f"{name} GAE")

# %% [markdown]
# ## 3. The whole update, one file per framework
#
# `backends/torch/ppo.py` and `backends/tf/ppo.py` hold PPO's update in the order of the math,
# each equation beside its line: values, GAE, standardised advantages, the clipped loss, and
# the Adam step for every minibatch of every epoch. `duetrl diff ppo` shows the two side by
# side; only the framework's calls differ. Here is the torch version of the loss and of the
# update loop:

# %%
import inspect  # noqa: E402

from duetrl.backends.torch import ppo as torch_ppo  # noqa: E402

print(inspect.getsource(torch_ppo.compute_loss))
print(inspect.getsource(torch_ppo.update))

# %% [markdown]
# ## 4. PPO on CartPole-v1, PyTorch and TensorFlow from the same start
#
# `duetrl compare ppo --env CartPole-v1` does exactly this: the same initial weights,
# environment seeds, sampling noise and minibatch order for both backends, stepped in
# alternation. The largest parameter difference stays tiny for the first updates, then grows:
# float32 rounding differs between the frameworks, and one flipped near-tie action sends the
# two runs down different (equally good) paths.

# %%
total_steps = 4096 if quick_mode() else 150_000
results = compare("ppo", "CartPole-v1", make_settings("ppo"), seed=0, total_steps=total_steps,
                  out=str(figure_dir()), quiet=True, report_every=4 if quick_mode() else 40)
print(format_results(results))

# %% [markdown]
# ```{figcaption}
# PPO on CartPole-v1 in PyTorch and TensorFlow, stepped in alternation from the same start:
# the mean return of the last 100 training episodes against environment steps.
# ```
#
# **What to see.** The table's two columns are the two frameworks' runs, stepped in
# alternation from the same start; the figure (`results["plot"]`) draws both learning
# curves, the mean return of the last 100 training episodes against environment steps, with
# CartPole's 475 dashed. The curves coincide while the parameters agree (the table's "max
# parameter difference" stays below the float32 model tolerance for the first updates, then
# grows); after they part, both still climb to the target: two equally good paths, not a
# better and a worse framework. Quick mode stops at 4096 steps, early in the climb.

# %% [markdown]
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it. A check
# compares your function with the float64 reference on fresh random inputs and prints ✓ or ✗
# with what it expected.
#
# 1. **The clipped loss, in the framework of your choice.** Write
#    $\ell(\rho, A) = -\min(\rho A,\ \text{clip}(\rho, 1-\epsilon, 1+\epsilon) A)$ for arrays of
#    ratios and advantages, in PyTorch *or* TensorFlow (both are below; the check reads your
#    tensor back, at float32 tolerance). Which of the three test vectors of section 1 does dropping the
#    $\min$ get wrong?
# 2. **Sweep the clip $\epsilon$.** However far one step pushes $\rho$, the objective
#    $\min(\rho A, \text{clip}(\rho, 1-\epsilon, 1+\epsilon) A)$ cannot exceed some value.
#    Which, as a function of $A$ and $\epsilon$? (Treat $A > 0$ and $A < 0$ apart.) The cell
#    then sweeps $\epsilon$: the largest gain of one batch grows linearly with it.
# 3. **GAE with $\lambda = 0$.** With $\lambda = 0$ the advantage is the one-step TD error
#    $\delta_t = r_t + \gamma (1 - \text{term}_t) V(s_{t+1}) - V(s_t)$. Write it for arrays
#    `(T, N)`; a truncation changes nothing here (why?).

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercises import exercise_checks  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = exercise_checks("ch03_1_ppo")


def best_objective(advantage, eps):
    """The largest value min(rho A, clip(rho, 1 - eps, 1 + eps) A) reaches over rho > 0."""
    return advantage + eps * abs(advantage)  # your code here


def td_error(rewards, values, next_values, terminations, gamma):
    """delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t), arrays (T, N)."""
    return rewards + gamma * (1 - terminations) * next_values - values  # your code here


assert check_exercise_2(best_objective)
for eps in (0.05, 0.1, 0.2, 0.3):  # the sweep
    print(f"  eps = {eps:.2f}: best objective {best_objective(1.0, eps):+.2f} for A = +1, "
          f"{best_objective(-1.0, eps):+.2f} for A = -1")
assert check_exercise_3(td_error)

# %% tags=["torch"]
def clip_loss_torch(ratio, advantage, eps):
    """Per-sample PPO loss -min(rho A, clip(rho, 1 - eps, 1 + eps) A) in torch, NumPy inputs."""
    ratio, advantage = torch.as_tensor(ratio), torch.as_tensor(advantage)
    return -torch.minimum(
        ratio * advantage, torch.clamp(ratio, 1 - eps, 1 + eps) * advantage
    )  # your code here


assert check_exercise_1(clip_loss_torch)

# %% tags=["tf"]
def clip_loss_tf(ratio, advantage, eps):
    """Per-sample PPO loss -min(rho A, clip(rho, 1 - eps, 1 + eps) A) in tf, NumPy inputs."""
    ratio, advantage = tf.constant(ratio, tf.float32), tf.constant(advantage, tf.float32)
    return -tf.minimum(
        ratio * advantage, tf.clip_by_value(ratio, 1 - eps, 1 + eps) * advantage
    )  # your code here


assert check_exercise_1(clip_loss_tf)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values (here: no $\min$, only the clipped term):

# %%
assert not check_exercise_1(
    lambda ratio, advantage, eps: -np.clip(ratio, 1 - eps, 1 + eps) * advantage
)
