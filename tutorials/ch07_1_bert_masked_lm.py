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
# # BERT: a bidirectional encoder trained by masked-LM, in two frameworks
#
# Outline 7.1.2 (Google BERT), with the small GPT beside it. A GPT reads a text left to
# right and learns to predict the next token; BERT reads the whole text at once and learns
# to fill in tokens that were hidden from it. The two are the same stack of Transformer
# blocks. What differs is the attention mask, and with it the training objective:
#
# $$\text{GPT:}\quad M_{ij} = [\,j \le i\,], \qquad
#   \mathcal{L} = -\frac{1}{BT}\sum_{b,t} \log p_\theta(x_{b,t+1} \mid x_{b,\le t})$$
#
# $$\text{BERT:}\quad M_{bij} = a_{bj}, \qquad
#   \mathcal{L} = -\frac{1}{|S|}\sum_{(b,t) \in S} \log p_\theta(x_{b,t} \mid \tilde x_b)$$
#
# where $a_{bj}$ is 1 for a real token and 0 for padding, $S$ is a random 15% of the real
# tokens and $\tilde x$ is the text with those tokens rewritten (mostly to `[MASK]`). The mask
# and the objective go together: under BERT's mask the next-token objective is solved by
# copying $x_{t+1}$, which every position can read; under the GPT's mask no position could
# read the right-hand side of a blank. Here we build the encoder in PyTorch and in
# TensorFlow from the GPT's own blocks, check both against a float64 NumPy reference, train
# both on the same masked batches, and look at what each model attends to.

# %%
import inspect
import time

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.lm.mlm import MLMData, train_mlm
from duetrl.core.lm.train import TrainConfig, learning_rate_at
from duetrl.core.plots import plot_attention_heatmaps, pyplot, save_figure
from duetrl.core.reference import encoder as ref
from duetrl.core.reference.attention import causal_mask
from duetrl.core.reference.gpt import gpt_hidden_states
from duetrl.core.tolerances import assert_close, max_abs_error
from duetrl.core.tutorial import claim, figure_dir, quick_mode

QUICK = quick_mode()
backends = load_backends(["torch", "tf"])  # torch is imported first, always
for backend in backends.values():
    backend.set_num_threads(1)  # a small model: one thread per framework is fastest
from duetrl.backends.tf import encoder as tf_encoder  # noqa: E402
from duetrl.backends.torch import encoder as torch_encoder  # noqa: E402

encoders = {"torch": torch_encoder, "tf": tf_encoder}


def show(function, first_line=None):
    """Print ``function``'s source from the line that contains ``first_line`` on."""
    source = inspect.getsource(function)
    if first_line is not None:
        source = source[source.index(first_line):]
    print(f"# {function.__module__}.{function.__name__}\n{source}")

# %% [markdown]
# ## 1. One stack, two masks
#
# The reference `transformer_stack` runs the GPT's blocks under any mask. With the causal
# mask it *is* the GPT (the check below compares it with `gpt_hidden_states`); with the
# padding mask it is the encoder. The encoder's parameters are the GPT's, name for name
# (`wte`, `wpe`, `blocks.*`, `ln_f`), plus the masked-LM head.

# %%
config = GPTConfig(vocab_size=12, block_size=6, n_layer=2, n_head=2, n_embd=16)
params = ref.init_encoder_params(config, seed=0, dtype="float64", random_affine=True)
ids = np.array([[3, 1, 4, 1, 5, 10], [2, 7, 1, 10, 10, 10]])  # id 10 is padding here
a = (ids != 10).astype(int)
h0 = params["wte.embeddings"][ids] + params["wpe.embeddings"][:6]
as_gpt = ref.transformer_stack(params, h0, causal_mask(6), config)
assert_close(as_gpt, gpt_hidden_states(init_gpt_params(config, 0, "float64", True), ids, config),
             "float64", "the stack under a causal mask")
print("causal mask M[i, j] = [j <= i]:\n", causal_mask(6).astype(int))
print("padding mask of row 1, M[1, i, j] = a[1, j]:\n",
      np.broadcast_to(ref.padding_mask(a), (2, 6, 6))[1].astype(int))
print("head parameters:", {k: v.shape for k, v in params.items() if k.startswith("head")})

# %% [markdown]
# The padding mask says nothing about order: every query row is the same, one 1 per real
# token, so token 0 reads token 3 as easily as token 3 reads token 0. The MLM head is BERT's:
#
# $$\text{logits} = \text{LN}_m(\text{GELU}(H W_d + b_d))\, W_{te}^T + b_o,$$
#
# tied to the token embeddings as the GPT's head is, with a bias of its own.
#
# ## 2. Masking a sentence
#
# The data are the lines of a built-in corpus of template sentences (`core/lm/corpora.py`),
# one sentence per sequence, padded to 48 characters; the character vocabulary gets two
# extra ids, `[PAD]` and `[MASK]`. BERT's rule picks $\max(1, \text{round}(0.15\,n))$ of the
# $n$ real tokens of each sentence; each picked token becomes `[MASK]` with probability 0.8, a
# random token with probability 0.1, and stays itself with probability 0.1. The last two
# cases matter: the model may not learn that only `[MASK]` positions need predicting, so it
# must keep a good guess of every token it reads. Every draw comes from NumPy with the seed
# $(\text{seed}, \text{step})$, so the two frameworks see the same masks.

# %%
data = MLMData.from_corpus("templates", num_chars=60_000, block_size=48)
print(f"vocabulary: {data.vocab_size} ids ({data.tokenizer.vocab_size} characters, [PAD] = "
      f"{data.pad_id}, [MASK] = {data.mask_id}); {len(data.splits['train'])} training lines")
sentence, sentence_mask = data.encode(["the old man follows a green tree every day."])
for seed in range(3):
    b = ref.mask_tokens(sentence, data.mask_id, data.vocab_size, seed, sentence_mask,
                        special_ids=(data.pad_id,))
    where = np.flatnonzero(b.selected[0])
    kinds = ["[MASK]" if b.inputs[0, t] == data.mask_id else
             "kept" if b.inputs[0, t] == b.targets[0, t] else
             f"random {data.decode(b.inputs[0, t:t + 1])!r}" for t in where]
    print(f"seed {seed}: {data.decode(b.inputs[0])!r}  selected {where.tolist()}: {kinds}")
big, big_mask = data.batch("train", 2000, 0, 0)
chosen = big.inputs[big.selected]
print(f"2000 sentences: {big.selected.sum() / big_mask.sum():.3f} of the real tokens selected; "
      f"of those {np.mean(chosen == data.mask_id):.3f} [MASK], "
      f"{np.mean((chosen != data.mask_id) & (chosen != big.targets[big.selected])):.3f} "
      f"another token, {np.mean(chosen == big.targets[big.selected]):.3f} unchanged")

# %% [markdown]
# The rounding acts per sentence, so the share selected is close to 0.15 but not exactly it
# (a sentence of 43 characters gets round(6.45) = 6). A random replacement is drawn from the
# $C = 23$ ordinary characters, so one time in 23 it is the original character: "unchanged"
# expects $0.1 + 0.1/23 = 0.104$ and "another token" $0.096$, up to the noise of 2000
# sentences.
#
# ## 3. Same weights, same logits, in both frameworks
#
# `MaskedLM(config)` in each backend; the weights come from one NumPy draw and pass through
# the canonical dictionary. Both are compared with the float64 reference on a padded batch.

# %%
model_config = GPTConfig(vocab_size=data.vocab_size, block_size=48, n_layer=2, n_head=2,
                         n_embd=32 if QUICK else 64)
check_params = ref.init_encoder_params(model_config, seed=1, random_affine=True)
batch, attention_mask = data.batch("val", 4, 0, 0)
expected = ref.mlm_forward(check_params, batch.inputs, model_config, attention_mask)
for name, backend in backends.items():
    model = backend.import_params(encoders[name].MaskedLM(model_config, seed=None), check_params)
    logits = backend.to_numpy(model(batch.inputs, attention_mask))
    assert_close(logits, expected, "float32_model", f"{name} logits")
    print(f"{name}: logits {logits.shape}, max |difference| to the reference "
          f"{max_abs_error(logits, expected)[0]:.1e}, {model.num_parameters()} parameters")

# %% [markdown]
# ## 4. Masked-LM training, side by side
#
# Both frameworks start from the same weights (seed 0), read the same masked batches and
# take AdamW steps with the same warm-up and cosine schedule. The loop is written once, in
# core (`train_mlm`, printed below); each step calls the backend's `MLMTrainer.train_step`
# (the loss at the selected positions only, clipping, the update). Every few steps, the loss
# and the accuracy at the selected positions of a fixed validation batch.

# %%
train_config = TrainConfig(steps=24 if QUICK else 600, batch_size=16 if QUICK else 32,
                           learning_rate=3e-3, min_learning_rate=3e-4,
                           warmup_steps=4 if QUICK else 30, weight_decay=0.0,
                           eval_every=8 if QUICK else 50, seed=0)
show(train_mlm, "trainer =")
trained, history = {}, {}
for name, backend in backends.items():
    began = time.perf_counter()
    trained[name] = encoders[name].MaskedLM(model_config, seed=0)
    history[name] = train_mlm(backend, trained[name], data, train_config)
    print(f"{name}: {train_config.steps} steps in {time.perf_counter() - began:.1f} s, "
          f"val loss {history[name]['val_loss'][-1]:.3f}, masked-token accuracy "
          f"{history[name]['accuracy'][-1]:.3f}")
val_batch, val_mask = data.batch("val", 64, train_config.seed + 1, 0)  # train_mlm's
val_targets = val_batch.targets[val_batch.selected]
no_context = np.bincount(val_targets).max() / val_targets.size  # always guess the commonest
print(f"chance 1/{data.vocab_size - 2} = {1 / (data.vocab_size - 2):.3f}; the commonest "
      f"target always: {no_context:.3f}; uniform loss log V = {np.log(data.vocab_size):.3f}")
for name, loss in (("torch", 0.449), ("tf", 0.450)):  # the text's figures (full run)
    claim(f"{name}'s validation loss", history[name]["val_loss"][-1], loss, 0.0005)
    claim(f"{name}'s masked-token accuracy", history[name]["accuracy"][-1], 0.862, 0.0005)

plt = pyplot()
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for name, style in (("torch", "-"), ("tf", "--")):
    h = history[name]
    axes[0].plot(h["step"], h["loss"], style, alpha=0.5, label=f"{name}: train (one batch)")
    axes[0].plot(h["eval_step"], h["val_loss"], style, marker="o", label=f"{name}: validation")
    axes[1].plot(h["eval_step"], h["accuracy"], style, marker="o", label=name)
axes[0].axhline(np.log(data.vocab_size), color="grey", linewidth=1, label="log V (uniform)")
axes[1].axhline(no_context, color="grey", linewidth=1, label="commonest target, no context")
axes[0].set(xlabel="step", ylabel="masked-LM loss (nats)", title="loss at the selected tokens")
axes[1].set(xlabel="step", ylabel="accuracy", ylim=(0, 1), title="masked-token accuracy")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
print("saved", save_figure(fig, figure_dir() / "ch07_1_mlm_training.png"))

# %% [markdown]
# ```{figcaption}
# Masked-LM training in both frameworks: left, the loss at the selected tokens (each training
# batch and the validation batch); right, the accuracy on the masked tokens.
# ```
#
# **What to see.** Left, the masked-LM loss of each training batch (faint) and of the fixed
# validation batch (dots); right, the share of the validation batch's selected tokens whose
# most likely prediction is the original character. The tf curves lie exactly on the torch
# ones (the legend says "equal to torch"): same weights, same batches, same masks. In the
# full run (600 steps, $D = 64$) torch prints a validation loss of 0.449 nats and tf 0.450
# (their float32 sums part in the fourth decimal over 600 steps), both the same accuracy,
# 0.862. The loss falls from $\log V = 3.2$ nats to 0.45 and the accuracy
# climbs from 0.30 at step 50 to 0.86: five times the 0.17 of always guessing the commonest
# character (a space), twenty times chance (1/23). Quick mode (24 steps) shows only the start
# of the descent: loss 2.8, accuracy at the level of the commonest character.
#
# ## 5. Filling in the blanks
#
# The trained encoders read sentences with `[MASK]`s (written `_`) and fill in the most
# likely character. Beside them, the most likely character of a GPT trained as long on the
# same sentences, which may only read what comes *before* the blank; then the two, scored on
# every selected character of the validation batch.

# %%
gpt_config = GPTConfig(vocab_size=data.vocab_size, block_size=48, n_layer=2, n_head=2,
                       n_embd=model_config.n_embd)
torch_backend = backends["torch"]
gpt = torch_backend.GPT(gpt_config, seed=0)
gpt_trainer = torch_backend.LMTrainer(gpt, weight_decay=0.0)
for step in range(train_config.steps):  # next-token loss on the same sentences, torch only
    lines = data.splits["train"][np.random.default_rng((0, step)).integers(
        0, len(data.splits["train"]), size=train_config.batch_size)]
    gpt_trainer.train_step(lines[:, :-1], lines[:, 1:], learning_rate_at(step, train_config),
                           weights=(lines[:, 1:] != data.pad_id))
puzzles = ["the _eacher finds a red ball today.", "_ small bird likes the moon.",
           "my sister _aints the garden again.", "a dog likes _he moon every day."]
puzzle_ids, puzzle_mask = data.encode(puzzles)
fills = {name: backend.to_numpy(trained[name](puzzle_ids, puzzle_mask)).argmax(-1)
         for name, backend in backends.items()}
gpt_next = torch_backend.to_numpy(gpt(np.where(puzzle_ids == data.mask_id, data.pad_id,
                                               puzzle_ids))).argmax(-1)
for row, puzzle in enumerate(puzzles):
    blanks = np.flatnonzero(puzzle_ids[row] == data.mask_id)
    answers = {name: "".join(data.decode(fills[name][row, blanks])) for name in fills}
    gpt_guess = "".join("?" if t == 0 else data.decode(gpt_next[row, t - 1:t]) for t in blanks)
    print(f"{puzzle!r}: encoder torch {answers['torch']!r}, tf {answers['tf']!r}; "
          f"GPT from the left {gpt_guess!r}")

# every selected position of the validation batch: the encoder reads the masked text on both
# sides; the GPT reads the original text, on the left only (position 0: no guess at all)
encoder_guess = torch_backend.to_numpy(trained["torch"](val_batch.inputs, val_mask)).argmax(-1)
gpt_guess = np.full(val_batch.targets.shape, -1)
gpt_guess[:, 1:] = torch_backend.to_numpy(gpt(val_batch.targets)).argmax(-1)[:, :-1]
space = data.tokenizer.index[" "]
word_start = np.ones(val_batch.targets.shape, bool)
word_start[:, 1:] = val_batch.targets[:, :-1] == space
for label, where in (("every selected character", val_batch.selected),
                     ("the first letter of a word", val_batch.selected & word_start),
                     ("any other letter or mark", val_batch.selected & ~word_start)):
    right = {"encoder": encoder_guess[where] == val_batch.targets[where],
             "GPT": gpt_guess[where] == val_batch.targets[where]}
    print(f"{label:>27} ({where.sum():3d}): encoder {right['encoder'].mean():.3f}, "
          f"GPT {right['GPT'].mean():.3f}")
    quoted = {"every selected character": (0.862, 0.868, 0.0005),  # the text's figures below
              "the first letter of a word": (0.82, 0.43, 0.005),  # (the full run)
              "any other letter or mark": (0.87, 0.99, 0.005)}[label]
    for model, figure in zip(("encoder", "GPT"), quoted[:2] if not QUICK else ()):
        claim(f"{model}'s accuracy on {label}", right[model].mean(), figure, quoted[2])

# %% [markdown]
# Where a word starts, the left context rarely decides it: after "the " comes "cat", "old
# man" or "teacher", after "my sister " any of six verbs. In the full run the encoder reads
# the rest of the word ("eacher", "aints") and fills the blank; the GPT guesses from the left
# ("c", "f"), and for a blank that opens the sentence it has nothing to read at all (`?`).
# Over the 319 selected characters of the validation batch the two are even, 0.862 against
# 0.868, but not at the same places: at the first letter of a word the encoder is right 0.82
# of the time and the GPT 0.43; inside a word, where the letters before a character all but
# fix it, the GPT is right 0.99 of the time and the encoder 0.87. Neither side of the
# comparison is quite fair: the GPT reads the original text, the encoder a text with 15% of
# its characters hidden or changed, the blank's neighbours among them. Quick mode's models
# are too young to fill anything (they print spaces).
#
# ## 6. What each model attends to
#
# The attention weights of block 0, head 0, for one sentence: the trained encoder (its
# weights exported from torch into the float64 reference) beside the trained GPT.

# %%
sentence_text = "a dog sees the moon."
sentence_ids, sentence_mask = data.encode([sentence_text])
length = len(sentence_text)
encoder_params = torch_backend.export_params(trained["torch"])
gpt_params = torch_backend.export_params(gpt)
encoder_weights, gpt_weights = [], []
ref.encoder_hidden_states(encoder_params, sentence_ids[:, :length], model_config,
                          attention=encoder_weights)
h0 = gpt_params["wte.embeddings"][sentence_ids[:, :length]] + gpt_params["wpe.embeddings"][:length]
ref.transformer_stack({k: v.astype(np.float64) for k, v in gpt_params.items()}, h0,
                      causal_mask(length), gpt_config, attention=gpt_weights)
maps = {"encoder (bidirectional)": encoder_weights[0][0, 0],
        "GPT decoder (causal)": gpt_weights[0][0, 0]}
labels = list(sentence_text)
print("saved", plot_attention_heatmaps(maps, figure_dir() / "ch07_1_attention_maps.png", labels,
                                       labels, title="block 0, head 0"))
for name, w in maps.items():
    later = np.triu(w, 1).sum(axis=1)  # weight each query puts on the keys after it
    print(f"{name}: mean weight on later tokens {later.mean():.3f}, largest {later.max():.3f}")
    if name.startswith("encoder"):  # the text's figures (full run)
        claim("the encoder's mean weight on later characters", later.mean(), 0.515, 0.0005)
        claim("the encoder's largest weight on later characters", later.max(), 0.94, 0.005)

# %% [markdown]
# ```{figcaption}
# Block 0, head 0 of the GPT and of the encoder on the same text: the decoder's map is
# lower-triangular, the encoder's fills both triangles.
# ```
#
# **What to see.** Row $i$ is the query at character $i$, column $j$ a key; each map has its
# own colour scale. The GPT's map is lower-triangular: the causal mask leaves no weight above
# the diagonal, so its first row puts all its weight on the first character, and the printed
# weight on later characters is exactly 0. The encoder's map fills both triangles: in the
# full run its queries put on average 0.515 of their weight on the characters after them,
# one of them 0.94. Its head 0 reads a band on both sides of the diagonal in "the moon.",
# and several queries of "a dog" look ahead to the letters of "sees"; the GPT's head reads
# the first characters near the diagonal and spreads its weight further on. The encoder's
# weights, computed here by the float64 reference from the weights trained in torch, are the
# torch model's own: one set of weights, three implementations.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which compares it on
# fresh inputs with the float64 reference and prints ✓ or ✗ with what it expected.
#
# 1. **The masked-LM loss, in the framework of your choice.** From logits $(B, T, V)$, the
#    original ids and the 0/1 selection $(B, T)$, return
#    $-\frac{1}{|S|}\sum_{(b,t)\in S}\log\text{softmax}(z_{bt})[x_{bt}]$ in PyTorch *or*
#    TensorFlow (both are below). The positions outside $S$ must not count at all.
# 2. **How many tokens are selected.** For a sentence of $n$ real tokens, how many does
#    BERT's rule select? (Round as Python's `round` does.) Why $\max(1, \cdot)$, and why is
#    $n$ the real tokens and not the padded length?
# 3. **A GPT's mask with padding.** A GPT reading a padded batch needs both masks at once:
#    return $M_{bij} = [\,j \le i\,]\, a_{bj}$ of shape $(B, T, T)$ from $a$ $(B, T)$.

# %%
import tensorflow as tf  # noqa: E402  (both frameworks are already loaded)
import torch  # noqa: E402

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare  # noqa: E402


def selected_count(n):
    """How many of n real tokens BERT's rule selects."""
    return max(1, round(0.15 * n)) if n > 0 else 0  # your code here


def padded_causal_mask(a):
    """M[b, i, j] = [j <= i] a[b, j], shape (B, T, T), from the padding mask a (B, T)."""
    return np.tril(np.ones((a.shape[1], a.shape[1])))[None] * a[:, None, :]  # your code here


rng = np.random.default_rng(71)
loss_cases = []
for shape in ((2, 5, 7), (3, 8, 26), (1, 4, 3)):
    picks = (rng.random(shape[:2]) < 0.3).astype(np.float32)
    picks[0, 0] = 1.0  # at least one position selected
    loss_cases.append((rng.normal(0, 3, shape), rng.integers(0, shape[2], shape[:2]), picks))
count_cases = [(n,) for n in (0, 1, 2, 3, 6, 7, 20, 33, 48, 64)]
padding_cases = [((np.arange(6)[None] < np.array([[6], [4], [1]])).astype(float),),
                 ((rng.random((2, 9)) < 0.7).astype(float),)]


def reference_count(n):
    return int(ref.select_positions(np.arange(64)[None] < n, np.random.default_rng(0)).sum())


assert compare(2, selected_count, reference_count, count_cases, "the number selected",
               atol=0.0, rtol=0.0)
assert compare(3, padded_causal_mask,
               lambda a: causal_mask(a.shape[1])[None] * ref.padding_mask(a), padding_cases,
               "the padded causal mask")

# %% tags=["torch"]
def masked_lm_loss_torch(logits, targets, selected):
    """The MLM loss in torch: (B, T, V), (B, T) ids, (B, T) 0/1 -> a scalar tensor."""
    logp = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)
    picked = logp.gather(-1, torch.as_tensor(targets)[..., None])[..., 0]
    return (
        -(picked * torch.as_tensor(selected)).sum() / torch.as_tensor(selected).sum()
    )  # your code here


assert compare(1, masked_lm_loss_torch, ref.masked_lm_loss, loss_cases, "the masked-LM loss",
               FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)

# %% tags=["tf"]
def masked_lm_loss_tf(logits, targets, selected):
    """The MLM loss in tf: (B, T, V), (B, T) ids, (B, T) 0/1 -> a scalar tensor."""
    logp = tf.nn.log_softmax(tf.constant(logits, tf.float32), axis=-1)
    picked = tf.gather(logp, targets, batch_dims=2)
    return -tf.reduce_sum(picked * selected) / tf.reduce_sum(selected)  # your code here


assert compare(1, masked_lm_loss_tf, ref.masked_lm_loss, loss_cases, "the masked-LM loss",
               FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here the loss averaged over *every*
# position, the selected and the rest, as a plain cross-entropy would:

# %%
assert not compare(1, lambda z, x, s: torch.nn.functional.cross_entropy(
    torch.as_tensor(z).flatten(0, 1), torch.as_tensor(x).flatten()), ref.masked_lm_loss,
    loss_cases, "the masked-LM loss", FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)
