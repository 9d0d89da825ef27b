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
# # A small GPT: the Transformer and its pretraining, in two frameworks
#
# Outline sections 2.1.1 (the Transformer), 2.1.3 (pretraining) and 4.1.3 (the pretraining
# loss). We build a GPT-style decoder once in PyTorch and once in TensorFlow/Keras, give both
# the same weights, check them against a float64 NumPy reference, then pretrain both on a
# corpus whose best possible loss we know in advance.
#
# A GPT maps token ids $x_1..x_T$ to next-token logits:
#
# $$h_0 = W_{te}[x] + W_{pe}[1..T]$$
# $$h'_l = h_{l-1} + \text{Attn}(\text{LN}_1(h_{l-1})), \qquad
#   h_l = h'_l + \text{MLP}(\text{LN}_2(h'_l))$$
# $$\text{logits} = \text{LN}_f(h_L)\, W_{te}^T$$
#
# The attention is *causal* (position $t$ sees positions $\le t$), the LayerNorm comes *before*
# each sub-layer (pre-LN, as GPT-2), and the output head reuses the token embedding matrix
# (tied weights).

# %%
import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.lm.corpora import MarkovChain, template_text
from duetrl.core.lm.data import TokenData
from duetrl.core.lm.tokenizers import CharTokenizer
from duetrl.core.lm.train import TrainConfig, plot_history, train
from duetrl.core.plots import plot_attention_heatmaps
from duetrl.core.reference.gpt import gpt_forward
from duetrl.core.tolerances import assert_close, max_abs_error
from duetrl.core.tutorial import figure_dir, quick_mode

QUICK = quick_mode()
backends = load_backends(["torch", "tf"])  # torch is imported first, always
for backend in backends.values():
    backend.set_num_threads(1)  # one per tutorial: the book build runs two at once on 2 cores

# %% [markdown]
# ## 1. One configuration, one set of weights, two models
#
# `GPTConfig` is a small dataclass in `core`; it can express GPT-2 exactly
# (`GPTConfig.gpt2_small()`). The initial weights are drawn with NumPy from one seed
# (GPT-2's $\mathcal{N}(0, 0.02^2)$, residual projections scaled by $1/\sqrt{2L}$) and copied
# into both frameworks through the canonical parameter dictionary.

# %%
config = GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=32)
params = init_gpt_params(config, seed=0, random_affine=True)
models = {}
for name, backend in backends.items():
    models[name] = backend.import_params(backend.GPT(config), params)
    print(name, type(models[name]).__mro__[1].__name__, models[name].num_parameters(), "parameters")
print("canonical names:", list(params)[:6], "...")

# %% [markdown]
# Same weights, same logits: both frameworks against the float64 reference.

# %%
idx = np.random.default_rng(0).integers(0, config.vocab_size, size=(2, 16))
reference = gpt_forward(params, idx, config)
for name, backend in backends.items():
    logits = backend.to_numpy(models[name](idx))
    assert_close(logits, reference, "float32_model", f"{name} logits")
    print(f"{name}: logits {logits.shape}, max |difference| to the reference "
          f"{max_abs_error(logits, reference)[0]:.1e}")

# %% [markdown]
# ## 2. The pretraining loss
#
# $$\mathcal{L}(\theta) = -\frac{1}{BT}\sum_{b,t} \log p_\theta(x_{b,t+1} \mid x_{b,\le t})$$
#
# Before training, every token is about equally likely, so the loss is close to
# $\log V$. Perplexity $e^{\mathcal{L}}$ is the effective number of choices per token.

# %%
targets = np.roll(idx, -1, axis=1)
for name, backend in backends.items():
    loss = float(backend.to_numpy(backend.cross_entropy_loss(models[name](idx),
                                                             backend.as_tensor(targets))))
    print(f"{name}: initial loss {loss:.4f} nats, log V = {np.log(config.vocab_size):.4f}")

# %% [markdown]
# ## 3. Pretraining on a corpus whose best loss we know
#
# A first-order Markov chain emits symbol $j$ after $i$ with probability $P_{ij}$. No model
# can predict it better than its *entropy rate*
#
# $$H = -\sum_i \pi_i \sum_j P_{ij} \log P_{ij},$$
#
# with $\pi$ the stationary distribution. We train both backends on the same batches (drawn
# in `core` from one seed) with AdamW, warm-up + cosine learning rate and gradient clipping,
# and watch the validation loss approach $H$.

# %%
chain = MarkovChain.random(num_states=6, concentration=0.3, seed=0)
markov_data = TokenData(chain.sample(50_000, seed=1), block_size=32)
markov_config = GPTConfig(vocab_size=6, block_size=32, n_layer=1, n_head=2, n_embd=32)
train_config = TrainConfig(steps=100 if QUICK else 400, batch_size=16, learning_rate=3e-3,
                           min_learning_rate=3e-4, warmup_steps=20, weight_decay=0.0,
                           eval_every=25, eval_batches=8)
histories = {}
for name, backend in backends.items():
    result = train(backend, backend.GPT(markov_config, seed=0), markov_data, train_config,
                   progress=False)
    histories[name] = result.history
    print(f"{name}: val loss {result.val_loss:.4f}, entropy rate {chain.entropy_rate:.4f}, "
          f"gap {result.val_loss - chain.entropy_rate:+.4f} nats")
path = plot_history(histories, figure_dir() / "ch02_1_markov_loss.png", hline=chain.entropy_rate,
                    title="both backends approach the entropy rate (dashed)")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# Validation loss of the GPT on the Markov chain against the training step, PyTorch and
# TensorFlow, with the chain's entropy rate dashed: the floor no model can go below.
# ```
#
# The two curves lie on top of each other: same weights, same batches, same optimiser
# constants (pinned in `duetrl.core.constants`: torch and Keras have different defaults).
#
# ## 4. English text and what the model attends to
#
# A character-level model trained for a short while on template sentences; then the
# attention weights of the first block, one head, in both frameworks.

# %%
text = template_text(3000, seed=0)
tokenizer = CharTokenizer.printable()
text_config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=48, n_layer=2, n_head=2,
                        n_embd=48)
text_data = TokenData(tokenizer.encode(text), block_size=48)
text_train = TrainConfig(steps=60 if QUICK else 600, batch_size=16, learning_rate=3e-3,
                         min_learning_rate=3e-4, warmup_steps=20, eval_every=30)
trained = {}
for name, backend in backends.items():
    trained[name] = backend.GPT(text_config, seed=1)
    result = train(backend, trained[name], text_data, text_train, progress=False)
    generation = backend.generate(trained[name], tokenizer.encode("the cat "), 30, greedy=True)
    print(f"{name}: val loss {result.val_loss:.3f} | {tokenizer.decode(generation.tokens[0])!r}")

# %%
prompt = "a dog sees the moon."
ids = tokenizer.encode(prompt)[None, :]
weights = {}
for name, backend in backends.items():
    model = trained[name]
    block = model.blocks[0]
    x = model.wte(backend.as_tensor(ids)) + model.wpe(backend.as_tensor(np.arange(ids.shape[1])))
    z = block.ln_1(x)
    mask = backend.as_tensor(np.tril(np.ones((ids.shape[1],) * 2)), "float32")
    _, attention = block.attn(z, z, z, mask, return_attention_weights=True)
    weights[name] = backend.to_numpy(attention)[0, 0]  # (T, T): example 0, head 0
labels = list(prompt)
path = plot_attention_heatmaps(weights, figure_dir() / "ch02_1_attention.png", labels, labels,
                               title="block 0, head 0: causal attention")
print("saved", path)
for name, w in weights.items():  # where each query puts its largest weight, and how much
    print(f"{name:>5}: query -> its most attended key (weight):")
    print("       " + "  ".join(f"{labels[t]!r}->{labels[s]!r} ({w[t, s]:.2f})"
                                 for t, s in enumerate(w.argmax(axis=1))))

# %% [markdown]
# ```{figcaption}
# Causal attention of block 0, head 0 on the prompt, in each framework: how much of each query
# character's output comes from each key character.
# ```
#
# **What to see.** Row $t$ is the query at character $t$ of the prompt, column $s$ a key;
# the colour is how much of row $t$'s output comes from position $s$. The upper right
# triangle is empty: the causal mask. The first row puts all its weight on the only key it
# may see; the later rows have more keys to share it among, and the printed line says which
# key each row favours and with what weight (a uniform row would give $1/(t+1)$). In quick
# mode (60 steps, seed 1) this head has not learned to read content yet: from the first
# space on, most rows favour one and the same early key, the `'g'` of "dog", with weights
# from about 0.6 down to 0.1 as the prefix grows: a pattern tied to positions. A longer
# run (`DUETRL_QUICK=0`, 600 steps) is where heads that look at the previous character or
# at the start of the word can appear; compare the map it draws. The two frameworks draw
# the same map here: the same weights, the same batches, and 60 steps are too few for float32
# rounding to part them.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it. A check
# compares your function with the float64 reference (or an analytic fact) and prints ✓ or ✗
# with what it expected.
#
# 1. **The loss before training, in the framework of your choice.** When all $V$ logits are
#    equal, what is $\mathcal{L} = -\frac{1}{BT}\sum \log p_\theta(x_{t+1} \mid x_{\le t})$?
#    Let PyTorch's `cross_entropy` *or* TensorFlow's
#    `sparse_softmax_cross_entropy_with_logits` compute it from all-zero logits (both are
#    below), then find the closed form. Compare with the initial losses of section 2.
# 2. **The best loss of a Markov corpus.** Write the entropy rate
#    $H = -\sum_i \pi_i \sum_j P_{ij} \log P_{ij}$ of a transition matrix $P$, with $\pi$ its
#    stationary distribution ($\pi P = \pi$, $\sum_i \pi_i = 1$: a left eigenvector of $P$).
#    Why does weighting the rows equally, $\pi_i = 1/S$, give the wrong number?
# 3. **Counting parameters.** How many parameters does `GPT(config)` have? Per block: two
#    LayerNorms (a scale and a bias each), attention ($4(D^2 + D)$) and an MLP of width $4D$;
#    plus the two embeddings and the final LayerNorm. Remember that the output head is tied.
#    Check your formula against `models["torch"].num_parameters()` too.

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercises import exercise_checks  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = exercise_checks(
    "ch02_1_transformer_pretraining")


def entropy_rate(P):
    """H in nats of the Markov chain with transition matrix P (S, S)."""
    values, vectors = np.linalg.eig(P.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    pi = pi / pi.sum()
    return -np.sum(pi[:, None] * P * np.log(P))  # your code here


def gpt_param_count(c):
    """The number of parameters of GPT(c), with c a GPTConfig (output head tied to wte)."""
    d = c.n_embd
    return (
        (c.vocab_size + c.block_size) * d + c.n_layer * (12 * d * d + 13 * d) + 2 * d
    )  # your code here


assert check_exercise_2(entropy_rate)
print(f"  this corpus: H = {entropy_rate(chain.transitions):.4f} nats, perplexity "
      f"{np.exp(entropy_rate(chain.transitions)):.2f} of {chain.transitions.shape[0]} symbols")
assert check_exercise_3(gpt_param_count)
print(f"  section 1's model: yours {gpt_param_count(config)}, torch "
      f"{models['torch'].num_parameters()}, tf {models['tf'].num_parameters()}")

# %% tags=["torch"]
def equal_logits_loss_torch(vocab_size):
    """The cross-entropy (nats) of all-zero logits over vocab_size tokens, by torch."""
    return torch.nn.functional.cross_entropy(
        torch.zeros(1, vocab_size), torch.zeros(1, dtype=torch.long)
    )  # your code here


assert check_exercise_1(equal_logits_loss_torch)
print(f"  V = {tokenizer.vocab_size}: {float(equal_logits_loss_torch(tokenizer.vocab_size)):.4f} "
      f"nats = log V")

# %% tags=["tf"]
def equal_logits_loss_tf(vocab_size):
    """The cross-entropy (nats) of all-zero logits over vocab_size tokens, by tf."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=[0], logits=tf.zeros((1, vocab_size))
    )[0]  # your code here


assert check_exercise_1(equal_logits_loss_tf)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values (here: rows weighted equally):

# %%
assert not check_exercise_2(lambda P: -np.mean(np.sum(P * np.log(P), axis=1)))
