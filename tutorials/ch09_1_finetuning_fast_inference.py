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
# # Fine-tuning and fast inference, in two frameworks
#
# Outline section 9.1: how to fine-tune a pretrained model (9.1.2) and how to make its
# inference fast (9.1.3). We pretrain a small GPT on English prose that ships with Python,
# fine-tune it from its checkpoint on a new task (additions written out), then generate with
# and without a key/value cache, and with the usual sampling strategies. Both backends run
# side by side from the same weights and pick the same tokens.

# %%
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.lm.corpora import digits_text, pydoc_text
from duetrl.core.lm.data import TokenData
from duetrl.core.lm.tokenizers import CharTokenizer
from duetrl.core.lm.train import TrainConfig, evaluate, load_gpt_checkpoint, plot_history, train
from duetrl.core.plots import plot_curves
from duetrl.core.tutorial import figure_dir, quick_mode

QUICK = quick_mode()
backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # one per tutorial: the book build runs two at once on 2 cores
workdir = Path(tempfile.mkdtemp(prefix="duetrl_ch09_"))

# %% [markdown]
# ## 1. Pretraining, saved to a checkpoint
#
# One character tokeniser (printable ASCII) serves both corpora, so a model pretrained on one
# can be fine-tuned on the other. The checkpoint holds the weights, the config, the tokeniser
# and the AdamW moments; it is written atomically (a crash mid-save keeps the old file).

# %%
tokenizer = CharTokenizer.printable()
config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=2, n_head=4,
                   n_embd=64)
prose = TokenData(tokenizer.encode(pydoc_text(60_000 if QUICK else 400_000)), block_size=64)
pretrain_config = TrainConfig(steps=40 if QUICK else 500, batch_size=16, learning_rate=2e-3,
                              min_learning_rate=2e-4, warmup_steps=10, eval_every=20)
pretrained = {}
for name, backend in backends.items():
    path = workdir / f"pretrained_{name}.safetensors"
    result = train(backend, backend.GPT(config, seed=0), prose, pretrain_config, path,
                   metadata={"tokenizer": tokenizer.to_dict()}, progress=False)
    pretrained[name] = path
    print(f"{name}: prose val loss {result.val_loss:.3f} (perplexity {result.perplexity:.1f})")

# %% [markdown]
# ## 2. Fine-tuning from the checkpoint (9.1.2)
#
# Fine-tuning is the same loss, $\mathcal{L} = -\frac{1}{BT}\sum \log p_\theta(x_{t+1}\mid
# x_{\le t})$, minimised on the new data starting from the pretrained $\theta$ instead of a
# random one, usually with a smaller learning rate and fewer steps. We compare it with the
# same number of steps from scratch.

# %%
sums = TokenData(tokenizer.encode(digits_text(6000, seed=0)), block_size=64)
finetune_config = TrainConfig(steps=40 if QUICK else 200, batch_size=16, learning_rate=1e-3,
                              min_learning_rate=1e-4, warmup_steps=5, eval_every=10)
histories, finetuned = {}, {}
for name, backend in backends.items():
    _, checkpoint = load_gpt_checkpoint(pretrained[name], expected_config=config)
    model = backend.import_params(backend.GPT(config), checkpoint.tensors["params"])
    before = evaluate(backend.LMTrainer(model), sums, finetune_config)
    result = train(backend, model, sums, finetune_config, progress=False)
    histories[f"{name} fine-tuned"] = result.history
    finetuned[name] = model
    scratch = train(backend, backend.GPT(config, seed=0), sums, finetune_config, progress=False)
    histories[f"{name} from scratch"] = scratch.history
    print(f"{name}: digits loss {before:.3f} before fine-tuning -> {result.val_loss:.3f} after; "
          f"from scratch {scratch.val_loss:.3f}")
path = plot_history(histories, figure_dir() / "ch09_1_finetuning.png",
                    title="fine-tuning on additions: pretrained vs from scratch")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# Validation loss on the additions against the training step: each framework fine-tuned from
# its pretrained checkpoint and trained from scratch.
# ```
#
# **What to see.** Validation loss on the additions against the training step, four curves:
# each framework fine-tuned from its pretrained checkpoint and trained from scratch. The
# fine-tuned curves start lower (the model already knows the characters and how text is laid
# out) and stay below the from-scratch curves for the same number of steps: that head start
# is what pretraining buys. The torch and tf curves of each kind lie on top of each other.

# %% [markdown]
# ## 3. Fast inference: the key/value cache (9.1.3)
#
# Generating token $t$ needs attention over all earlier positions. Recomputing the whole
# prefix for each new token costs $O(t)$ layer passes per token; a KV cache keeps every
# layer's keys $K$ and values $V$ of past positions, so each new token computes only its own
# $q, k, v$ and attends to the cache:
#
# $$\text{Attn}(q_t, [K_{<t}; k_t], [V_{<t}; v_t])$$
#
# The cache is preallocated to `block_size` positions and written at a position index, so the
# TensorFlow decode step keeps fixed shapes and is traced once. Same tokens either way:

# %%
prompt = tokenizer.encode("12+34=")[None, :]
lengths = [8, 24] if QUICK else [16, 32, 56]
speeds = {}
for name, backend in backends.items():
    model = finetuned[name]
    cached = backend.generate(model, prompt, 8, use_cache=True, greedy=True)
    uncached = backend.generate(model, prompt, 8, use_cache=False, greedy=True)
    assert np.array_equal(cached.tokens, uncached.tokens)
    print(f"{name}: {tokenizer.decode(cached.tokens[0])!r} (cached == uncached)")
    for use_cache in (True, False):
        rates = []
        for n in lengths:
            began = time.perf_counter()
            backend.generate(model, prompt, n, use_cache=use_cache, greedy=True)
            rates.append(n / (time.perf_counter() - began))
        speeds[f"{name} {'with' if use_cache else 'without'} cache"] = (lengths, rates)
        print(f"  {'with   ' if use_cache else 'without'} cache: "
              + ", ".join(f"{n} tokens {r:.0f}/s" for n, r in zip(lengths, rates)))
path = plot_curves(speeds, figure_dir() / "ch09_1_kv_cache.png", xlabel="generated tokens",
                   ylabel="tokens / s", title="generation speed with and without the KV cache")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# Generation speed in tokens per second against the number of tokens generated, with and
# without the KV cache, in each framework.
# ```
#
# **What to see.** Tokens per second against the number of tokens generated, with and
# without the cache, per framework. Without the cache the rate falls as generation goes on:
# each new token recomputes the whole prefix, so the cost per token grows with its position.
# With the cache the cost per token barely grows, and the gap widens with the length (at the
# short lengths of quick mode it can be small, since fixed overheads dominate). The rates are
# wall-clock times of one run on a shared machine: compare the shapes, not the last digit;
# `benchmarks/` measures speed properly.

# %% [markdown]
# ## 4. Sampling strategies, and the log-probabilities RL needs
#
# Logits $z$ become a choice in `core`, on NumPy arrays, from noise drawn from one seed, so
# both backends pick the same token. Greedy takes $\arg\max_i z_i$; sampling with temperature
# $\tau$ draws from $\text{softmax}(z/\tau)$ via the Gumbel-max trick
# $\arg\max_i (z_i/\tau + g_i)$, $g_i = -\log(-\log u_i)$; top-$k$ keeps the $k$ largest
# logits; top-$p$ keeps the smallest set of tokens whose probability reaches $p$.
# Each generated token comes with $\log p_\theta(x_t \mid x_{<t})$, what policy-gradient
# methods (later chapters) multiply by the advantage.

# %%
# The two fine-tuned models above trained separately, so their float32 weights have drifted
# apart a little. To compare the frameworks, give both the *same* weights: torch's, copied.
shared_weights = backends["torch"].export_params(finetuned["torch"])
same_weights = {name: backend.import_params(backend.GPT(config, seed=None), shared_weights)
                for name, backend in backends.items()}
strategies = {"greedy": dict(greedy=True), "temperature 0.8": dict(temperature=0.8),
              "top-k 5": dict(top_k=5), "top-p 0.9": dict(top_p=0.9)}
for label, sampling in strategies.items():
    texts = {}
    for name, backend in backends.items():
        out = backend.generate(same_weights[name], prompt, 12, seed=7, **sampling)
        texts[name] = tokenizer.decode(out.tokens[0])
    same = texts["torch"] == texts["tf"]
    print(f"{label:>16}: {texts['torch']!r}  same in both backends: {same}, "
          f"sum log p = {out.log_probs.sum():.2f}")

# %% [markdown]
# ## 5. GPT-2's weights
#
# `GPT.from_gpt2(state_dict, n_head)` loads a Hugging Face `GPT2LMHeadModel` state dict into
# either backend (GPT-2's `Conv1D` weights are already `(in, out)`; its fused `c_attn` is split
# into q, k, v). With the real GPT-2 small, downloaded separately:
#
# ```python
# from transformers import GPT2LMHeadModel
# state_dict = GPT2LMHeadModel.from_pretrained("gpt2").state_dict()
# model = backends["tf"].GPT.from_gpt2(state_dict, n_head=12)
# ```
#
# Here, without downloading anything, a tiny randomly initialised GPT-2 (if `transformers` is
# installed):

# %%
try:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    hf = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2,
                                    n_head=4, bos_token_id=0,
                                    eos_token_id=0)).eval()
    ids = np.arange(10)[None, :]
    with torch.no_grad():
        expected = hf(torch.as_tensor(ids)).logits.numpy()
    for name, backend in backends.items():
        ours = backend.to_numpy(backend.GPT.from_gpt2(hf.state_dict(), n_head=4)(ids))
        print(f"{name}: max |logits - Hugging Face| = {np.abs(ours - expected).max():.1e}")
except ImportError:
    print("transformers is not installed (pip install -e '.[test-hf]'); skipping")

# %%
shutil.rmtree(workdir)  # the checkpoints of this tutorial were temporary

# %% [markdown]
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it. A check
# compares your function with `duetrl.core.sampling` (what both backends sample with) or
# with the decoding loop itself, and prints ✓ or ✗ with what it expected.
#
# 1. **Top-$k$, in the framework of your choice.** Given logits `(B, V)`, set every logit
#    outside each row's $k$ largest to $-\infty$ (so $\text{softmax}$ gives it probability
#    0), in PyTorch *or* TensorFlow (both are below; `torch.topk` and `tf.math.top_k` give
#    the $k$-th largest value of each row).
# 2. **Top-$p$ (nucleus).** Sort each row's tokens by probability; keep the smallest prefix
#    whose total probability reaches $p$, and set the rest to $-\infty$. Careful with the
#    token that crosses $p$: it is kept (so the most likely token always is).
# 3. **What the cache saves.** Generating $n$ tokens after a prompt of $P$ tokens, how many
#    positions does the model compute, with a KV cache and without one (where each step runs
#    the whole prefix again)? The check counts them in the real decoding loop,
#    `core.sampling.generate`, with a model that only counts. Compare the ratio with the
#    speed-up measured in section 3.

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercises import exercise_checks  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = exercise_checks(
    "ch09_1_finetuning_fast_inference")


def top_p_filter(logits, p):
    """logits (B, V) with all but each row's nucleus of probability p set to -inf."""
    order = np.argsort(-logits, axis=-1)
    sorted_logits = np.take_along_axis(logits, order, axis=-1)
    probs = np.exp(sorted_logits - sorted_logits[:, :1])
    probs = probs / probs.sum(axis=-1, keepdims=True)
    keep_sorted = np.cumsum(probs, axis=-1) - probs < p  # your code here
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    return np.where(keep, logits, -np.inf)


def positions_computed(prompt_len, new_tokens, use_cache):
    """Positions the model computes to generate new_tokens after a prompt of prompt_len."""
    return (
        prompt_len + new_tokens - 1 if use_cache else sum(prompt_len + t for t in range(new_tokens))
    )  # your code here


assert check_exercise_2(top_p_filter)
assert check_exercise_3(positions_computed)
for n in lengths:  # compare with the tokens / s of section 3
    ratio = (positions_computed(prompt.shape[1], n, False)
             / positions_computed(prompt.shape[1], n, True))
    print(f"  {n} new tokens after a prompt of {prompt.shape[1]}: {ratio:.1f}x fewer positions "
          "with the cache")

# %% tags=["torch"]
def top_k_filter_torch(logits, k):
    """logits (B, V) NumPy -> a tensor with all but each row's k largest set to -inf."""
    logits = torch.as_tensor(logits)
    kth_largest = torch.topk(logits, k, dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))  # your code here


assert check_exercise_1(top_k_filter_torch)

# %% tags=["tf"]
def top_k_filter_tf(logits, k):
    """logits (B, V) NumPy -> a tensor with all but each row's k largest set to -inf."""
    logits = tf.constant(logits, tf.float32)
    kth_largest = tf.math.top_k(logits, k).values[:, -1:]  # (B, 1)
    return tf.where(logits < kth_largest, float("-inf"), logits)  # your code here


assert check_exercise_1(top_k_filter_tf)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values (here: forgetting that the last token
# needs no logits after it, so it is never fed back to the model):

# %%
assert not check_exercise_3(
    lambda prompt_len, new_tokens, use_cache: (
        prompt_len + new_tokens if use_cache else sum(prompt_len + t for t in range(new_tokens + 1))
    )
)
