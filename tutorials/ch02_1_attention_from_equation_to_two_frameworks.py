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
# # Attention, from the equation to two frameworks
#
# Outline sections 2.1.1 (the Transformer), 2.1.2 (self-attention), 4.1.1-4.1.2 (their
# mathematics) and listing 5.1 (multi-head attention in PyTorch), with its TensorFlow twin.
#
# The one equation of this chapter:
#
# $$\text{Attention}(Q, K, V) = \text{softmax}\left(\frac{QK^T}{\sqrt{d_k}}\right)V$$ (attention)
#
# $Q$ (queries), $K$ (keys) and $V$ (values) are matrices with one row per position; $d_k$ is
# the width of a key. We build equation {eq}`attention` three times: in float64 NumPy (the
# *reference*, our specification), in PyTorch and in TensorFlow, and we check that all three
# agree.

# %%
import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.plots import plot_attention_heatmaps
from duetrl.core.reference.attention import (
    causal_mask,
    init_multi_head_attention_params,
    multi_head_attention,
    scaled_dot_product_attention,
)
from duetrl.core.tolerances import assert_close, max_abs_error
from duetrl.core.tutorial import figure_dir, quick_mode

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The equation in NumPy
#
# Each query row of $QK^T$ holds its dot products with every key; dividing by $\sqrt{d_k}$
# keeps their variance near 1 whatever the width (the dot product of two random unit-variance
# vectors of width $d_k$ has variance $d_k$), so the softmax does not saturate.

# %%
d_k = 4
q = rng.normal(size=(3, d_k))  # 3 queries
k = rng.normal(size=(5, d_k))  # 5 keys
v = rng.normal(size=(5, 2))  # 5 values of width 2
output, weights = scaled_dot_product_attention(q, k, v, return_attention_weights=True)
print("weights (each row sums to 1):\n", weights.round(3))
print("row sums:", weights.sum(-1))
print("output = weights @ v:\n", output.round(3))

# %% [markdown]
# Why $\sqrt{d_k}$? Without it, wide keys make the scores large and the softmax almost one-hot.

# %%
for width in (4, 64, 1024):
    scores = rng.normal(size=(1000, width)) @ rng.normal(size=(width, 8))
    print(f"d_k={width:5d}  std of q.k = {scores.std():7.2f}   std of q.k/sqrt(d_k) = "
          f"{(scores / np.sqrt(width)).std():.2f}")

# %% [markdown]
# ## 2. Masks: who may look at whom
#
# A mask holds 1 where a query may attend and 0 where it may not. Listing 5.1 *replaces*
# masked scores by $-10^9$ before the softmax, so they get weight $e^{-10^9} \approx 0$.
# A causal mask lets position $t$ see only positions $\le t$: that is what makes a language
# model predict the next token without peeking.

# %%
mask = causal_mask(5)
_, causal_weights = scaled_dot_product_attention(
    rng.normal(size=(5, d_k)), k, v, mask, return_attention_weights=True
)
print(causal_weights.round(2))  # upper triangle is exactly 0

# %% [markdown]
# ## 3. Multi-head attention
#
# $$\text{MultiHead}(Q,K,V) = \text{Concat}(\text{head}_1, \dots, \text{head}_h)W_o, \qquad
# \text{head}_i = \text{Attention}(QW_q^i, KW_k^i, VW_v^i)$$
#
# Each head works on a slice of width $d_{model}/h$ and can learn a different pattern. The
# parameters are four dense layers named as in listing 5.1: `q_linear`, `k_linear`,
# `v_linear` and `out`. duetrl stores them in one *canonical* dictionary, kernel layout
# `(in, out)`, so the same numbers load into either framework.

# %%
d_model, heads = (16, 2) if quick_mode() else (64, 4)
batch, length = 2, 8
params = init_multi_head_attention_params(d_model, seed=0)
print({name: value.shape for name, value in params.items()})
x = rng.normal(size=(batch, length, d_model))
reference_out, reference_weights = multi_head_attention(
    params, x, x, x, heads, causal_mask(length), return_attention_weights=True
)
print("reference output:", reference_out.shape, "weights:", reference_weights.shape)

# %% [markdown]
# ### Listing 5.1, as printed and repaired
#
# The outline's listing, as printed:
#
# ```python
# import torch
# import torch.nn as nn
#
# class MultiHeadAttention(nn.Module):
#     def __init__(self, d_model, num_heads):
#         super().__init__()
#         self.d_model = d_model
#         self.num_heads = num_heads
#         self.head_dim = d_model // num_heads
#
#         self.q_linear = nn.Linear(d_model, d_model)
#         self.k_linear = nn.Linear(d_model, d_model)
#         self.v_linear = nn.Linear(d_model, d_model)
#         self.out = nn.Linear(d_model, d_model)
#
#     def forward(self, q, k, v, mask=None):
#         bs = q.size(0)
#
#         q = self.q_linear(q).view(bs, -1, self.num_heads, self.head_dim)
#         k = self.k_linear(k).view(bs, -1, self.num_heads, self.head_dim)
#         v = self.v_linear(v).view(bs, -1, self.num_heads, self.head_dim)
#
#         q = q.transpose(1,2)
#         k = k.transpose(1,2)
#         v = v.transpose(1,2)
#
#         scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
#         if mask is not None:
#             mask = mask.unsqueeze(1)
#             scores = scores.masked_fill(mask == 0, -1e9)
#         scores = F.softmax(scores, dim=-1)
#
#         output = torch.matmul(scores, v)
#         output = output.transpose(1,2).contiguous().view(bs, -1, self.d_model)
#         output = self.out(output)
#         return output
# ```
#
# It does not run: `math` and `F` (`torch.nn.functional`) are never imported. The repaired
# class (`backends/torch/attention.py`), printed from the code this notebook runs, keeps its
# names and steps and adds: the two imports; a check of the inputs' shapes with a message
# that names the argument; pinned initial weights (Glorot, zero biases) so that it can match
# TensorFlow; a `dtype` argument; `reshape` after the transpose (`view` needs the
# `contiguous()` copy, `reshape` makes it when needed); the mask broadcast over the heads
# for both a `(T, T)` and a `(B, T, T)` mask; and the weights returned on request, while the
# default path calls PyTorch's fused attention kernel. The scores and the softmax now live in
# `scaled_dot_product_attention`, printed below it.

# %%
import inspect  # noqa: E402

from duetrl.backends.torch import attention as torch_attention  # noqa: E402

print(inspect.getsource(torch_attention.MultiHeadAttention))
print(inspect.getsource(torch_attention.scaled_dot_product_attention))

# %% [markdown]
# ## 4. The same layer in PyTorch and in TensorFlow
#
# Run `diff backends/torch/attention.py backends/tf/attention.py` in a terminal: the two files
# have the same names in the same order, so the diff shows only what differs between the
# frameworks. The essential lines, side by side:
#
# | step | PyTorch | TensorFlow / Keras 3 |
# |---|---|---|
# | the layer | `class MultiHeadAttention(nn.Module)` | `class MultiHeadAttention(keras.layers.Layer)` |
# | a dense layer | `nn.Linear(d, d)`: weight `(out, in)` | `keras.layers.Dense(d)`: kernel `(in, out)` |
# | split heads | `.view(bs, -1, h, hd).transpose(1, 2)` | `tf.transpose(tf.reshape(..), (0, 2, 1, 3))` |
# | scores | `torch.matmul(q, k.transpose(-2, -1))` | `tf.matmul(q, k, transpose_b=True)` |
# | mask | `scores.masked_fill(mask == 0, -1e9)` | `tf.where(tf.equal(mask, 0), -1e9, scores)` |
# | softmax | `F.softmax(scores, dim=-1)` | `tf.nn.softmax(scores, axis=-1)` |
# | forward | `forward(self, q, k, v, mask)` | `call(self, q, k, v, mask)` |
#
# torch's `Linear` stores its weight transposed; the converter in `backends/torch/weights.py`
# transposes it exactly once. Both frameworks' default initialisers also differ (Kaiming vs
# Glorot): loading the same canonical weights removes that difference.

# %%
modules = load_backends(["torch", "tf"])  # torch is always imported first
outputs, weights_by_backend = {}, {}
for name, backend in modules.items():
    layer = backend.MultiHeadAttention(d_model, heads, dtype="float64")
    backend.import_params(layer, params)
    xt = backend.as_tensor(x)
    out, w = layer(xt, xt, xt, backend.as_tensor(causal_mask(length)), return_attention_weights=True)
    outputs[name], weights_by_backend[name] = backend.to_numpy(out), backend.to_numpy(w)
    assert_close(outputs[name], reference_out, "float64", f"{name} vs reference")
    print(f"{name:5s} vs reference: max abs error {max_abs_error(outputs[name], reference_out)[0]:.1e}")
print(f"torch vs tf: max abs error {max_abs_error(outputs['torch'], outputs['tf'])[0]:.1e}")

# %% [markdown]
# In float64 the three agree to about $10^{-15}$: the same formula, only the order of
# rounding differs. In float32 they agree to about $10^{-6}$ (the test suite checks $10^{-5}$).

# %%
for name, backend in modules.items():
    layer = backend.MultiHeadAttention(d_model, heads, dtype="float32")
    backend.import_params(layer, {n: p.astype("float32") for n, p in params.items()})
    xt = backend.as_tensor(x.astype("float32"))
    out = backend.to_numpy(layer(xt, xt, xt, backend.as_tensor(causal_mask(length, "float32"))))
    print(f"float32 {name:5s} vs float64 reference: {max_abs_error(out, reference_out)[0]:.1e}")

# %% [markdown]
# ## 5. Looking at the weights
#
# Every row of a head's weight matrix is a probability distribution over the keys. With a
# causal mask, the upper triangle is zero. Here is head 0 of the first example, computed by
# both frameworks from the same parameters: the two maps are the same picture.

# %%
path = plot_attention_heatmaps(
    {f"{name}, head 0": w[0, 0] for name, w in weights_by_backend.items()},
    figure_dir() / "attention_heads_torch_vs_tf.png",
    title="causal self-attention: same weights, two frameworks",
)
print("saved", path)

# %% [markdown]
# ```{figcaption}
# The attention weights of head 0 in PyTorch and in TensorFlow, the same layer weights in
# both: row = query position, column = key position.
# ```
#
# ## 6. What next
#
# - `duetrl compare attention --mask padding` runs this comparison from the shell, with timings.
# - `benchmarks/attention.py` measures both layers against each framework's built-in attention.
# - The Transformer chapter stacks this layer into a GPT-style language model.

# %% [markdown]
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it. A check
# compares your function with the float64 reference on fresh random inputs and prints ✓ or ✗
# with what it expected (`inspect.getsource(check_exercise_1)` shows how).
#
# 1. **Drop the $\sqrt{d_k}$, in the framework of your choice.** Write
#    $\text{softmax}(QK^T)V$, without the scaling, in PyTorch *or* TensorFlow (both are
#    below; the check reads your tensor back, at float32 tolerance). Then
#    watch the softmax saturate: the cell prints the average largest weight of a row, with
#    and without the scaling, as $d_k$ grows. (Why does scaling $Q$ by $\sqrt{d_k}$ turn the
#    reference into your function?)
# 2. **A fully masked row.** A query whose every key is masked (a padded position) still gets
#    a row of weights, because masked scores are *replaced* by $-10^9$, not removed. What is
#    that row, for `k_len` keys?
# 3. **Counting parameters.** How many parameters does `MultiHeadAttention(d_model, heads)`
#    have? Does the answer depend on the number of heads $h$?

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercises import exercise_checks  # noqa: E402
from duetrl.core.reference.attention import softmax  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = exercise_checks(
    "ch02_1_attention_from_equation_to_two_frameworks")


def fully_masked_weights(k_len):
    """The attention weights (k_len,) of a query that may attend to none of k_len keys."""
    return np.full(k_len, 1.0 / k_len)  # your code here


def attention_param_count(d_model, heads):
    """The number of parameters of MultiHeadAttention(d_model, heads)."""
    return 4 * (d_model * d_model + d_model)  # your code here


for width in (4, 64, 1024):  # watch the softmax saturate
    q_, k_ = rng.normal(size=(200, width)), rng.normal(size=(16, width))
    unscaled = softmax(q_ @ k_.T).max(axis=-1).mean()
    scaled = softmax(q_ @ k_.T / np.sqrt(width)).max(axis=-1).mean()
    print(f"  d_k = {width:4d}: mean largest weight {unscaled:.3f} unscaled, {scaled:.3f} scaled")
assert check_exercise_2(fully_masked_weights)
assert check_exercise_3(attention_param_count)

# %% tags=["torch"]
def unscaled_attention_torch(q, k, v):
    """softmax(Q K^T) V in torch: NumPy q (q_len, d_k), k (k_len, d_k), v (k_len, d_v)."""
    q, k, v = (torch.as_tensor(a, dtype=torch.float32) for a in (q, k, v))
    return torch.softmax(q @ k.T, dim=-1) @ v  # your code here


assert check_exercise_1(unscaled_attention_torch)

# %% tags=["tf"]
def unscaled_attention_tf(q, k, v):
    """softmax(Q K^T) V in tf: NumPy q (q_len, d_k), k (k_len, d_k), v (k_len, d_v)."""
    q, k, v = (tf.constant(a, tf.float32) for a in (q, k, v))
    return tf.nn.softmax(tf.matmul(q, k, transpose_b=True), axis=-1) @ v  # your code here


assert check_exercise_1(unscaled_attention_tf)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values (here: forgetting the bias vectors):

# %%
assert not check_exercise_3(lambda d_model, heads: 4 * d_model * d_model)
print(inspect.getsource(check_exercise_3))
