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
# # Choosing a language model, by measurement
#
# Outline section 9.1.1: how to choose a model. Three choices come first: how big, which
# kind (a decoder that predicts the next token or an encoder that fills in a masked one), and
# whether to start from a pretrained base model. Each is answered here with a measurement,
# on a corpus whose best possible loss is known exactly, so every loss below can be read
# against the floor that no model, however large, can beat.

# %%
import time

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.lm.data import TokenData
from duetrl.core.lm.scaling import (
    fit_power_law,
    non_embedding_parameters,
    random_source,
    related_source,
)
from duetrl.core.lm.train import TrainConfig, evaluate, train
from duetrl.core.plots import pyplot, save_figure
from duetrl.core.tutorial import claim, figure_dir, quick_mode

QUICK = quick_mode()
backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # tiny models: one thread per framework is fastest
BLOCK, BATCH = 16, 16

# %% [markdown]
# ## 1. A corpus with a known floor
#
# The text comes from an order-2 Markov source over $V = 8$ symbols: each context
# $c = (x_{t-2}, x_{t-1})$ allows 3 of the 8 next symbols, with random weights
# (`core/lm/scaling.py`). Its **entropy rate**
#
# $$H = -\sum_c \mu_c \sum_j P_{cj} \log P_{cj} \quad \text{(nats per token)},$$
#
# with $\mu$ the stationary distribution of the contexts, is the lowest expected next-token
# loss of *any* model: a model that knew the table $P$ exactly would score $H$, and nothing
# can do better on average. With fewer symbols of context the floor is higher:
# $h(m) = H(X_t \mid m \text{ symbols before it})$ falls from $h(0)$ (the symbol frequencies)
# to $H$ at $m = 2$, and stays there.

# %%
SOURCE = random_source(vocab_size=8, order=2, support=3, concentration=1.0, seed=0)
H = SOURCE.entropy_rate
K = SOURCE.order
print(f"entropy rate H = {H:.4f} nats/token (log V = {np.log(8):.4f} for uniform guessing)")
for m in range(4):
    print(f"  h({m}) = {SOURCE.conditional_entropy(m):.4f}  (best loss with {m} symbols of context)")
tokens = SOURCE.sample(60_000 if QUICK else 200_000, seed=1)
DATA = TokenData(tokens, block_size=BLOCK)
print(f"the source's own loss on the validation text: {SOURCE.cross_entropy(DATA.splits['val']):.4f}")
print("a sample:", SOURCE.text(60, seed=2))

# %% [markdown]
# Every window position $t \ge 1$ sees at least 2 symbols, so its floor is $H$; position 0
# sees one and its floor is $h(1)$. The evaluation below scores positions $t \ge 1$ only
# (a weight of 0 on position 0), so that its floor is exactly $H$. It uses the same 32
# validation batches for every model.

# %%
EVAL = [DATA.batch("val", BATCH, np.random.default_rng((7, i))) for i in range(8 if QUICK else 32)]
FULL_CONTEXT = np.ones((BATCH, BLOCK))
FULL_CONTEXT[:, : K - 1] = 0.0  # position t sees t + 1 symbols: t >= K - 1 has them all


def full_context_loss(trainer) -> float:
    """Mean next-token loss over the fixed validation batches, positions with K symbols."""
    return float(np.mean([trainer.eval_loss(x, y, FULL_CONTEXT) for x, y in EVAL]))


# %% [markdown]
# ## 2. A small scaling law
#
# Six GPTs, from 4 to 96 wide and 1 to 3 layers, each trained on the same tokens (600
# updates of $16 \times 16$ tokens; 20 in quick mode) in torch, and the four smallest (up to
# $d = 32$) in tf as well, from the same initial weights, to show that the two frameworks
# agree; the fit below uses torch's points.
# $N$ counts the **non-embedding** parameters, as the scaling-law papers do
# (Kaplan et al. 2020): per block $12 d^2 + 13 d$, plus $2d$ for the last LayerNorm. The
# learning rate shrinks with the width ($10^{-2} \cdot \min(1, 32/d)$): the widest model
# trains badly at $10^{-2}$ (measured in a trial run: a validation loss of 1.39, where the
# $d = 64$ model reached 0.95).

# %%
SIZES = [(1, 1, 4), (1, 1, 8), (1, 2, 16)] if QUICK else [
    (1, 1, 4), (1, 1, 8), (1, 2, 16), (2, 2, 32), (2, 4, 64), (3, 4, 96)]
STEPS = 20 if QUICK else 600
# tf repeats torch only to show the frameworks agree: in quick mode on the smallest size
# (tracing), in full mode on the four smallest; the two largest train in torch only, as
# they cost most and torch's points are the ones fitted
TF_SIZES = SIZES[:1] if QUICK else SIZES[:4]


def size_config(n_layer, n_head, n_embd, vocab_size=8):
    return GPTConfig(vocab_size=vocab_size, block_size=BLOCK, n_layer=n_layer, n_head=n_head,
                     n_embd=n_embd)


def train_config(steps, learning_rate, eval_every=None):
    return TrainConfig(steps=steps, batch_size=BATCH, learning_rate=learning_rate,
                       min_learning_rate=learning_rate / 10, warmup_steps=min(20, steps // 5),
                       eval_every=eval_every or steps, eval_batches=4)


scaling, models = {}, {}
for size in SIZES:
    config = size_config(*size)
    n = non_embedding_parameters(config)
    for name, backend in backends.items():
        if name == "tf" and size not in TF_SIZES:
            continue
        began = time.perf_counter()
        model = backend.GPT(config, seed=0)
        train(backend, model, DATA, train_config(STEPS, 1e-2 * min(1.0, 32 / size[2])),
              progress=False)
        loss = full_context_loss(backend.LMTrainer(model))
        scaling[name, n], models[name, size] = loss, model
        print(f"{name:>5} L={size[0]} d={size[2]:>3}: N = {n:>7,}  loss {loss:.4f}  "
              f"(H + {loss - H:.4f})  {time.perf_counter() - began:.1f} s")
both = [n for (name, n) in scaling if name == "tf"]
gaps = [abs(scaling["torch", n] - scaling["tf", n]) for n in both]
print(f"torch vs tf after {STEPS} updates, same weights and batches: max |loss difference| "
      f"{max(gaps):.1e} over {len(both)} size(s)")
if not QUICK:  # the text's figures (section 2's "What to see", the full run)
    for n, loss in ((252, 1.826), (3_312, 0.956), (100_096, 0.901), (335_712, 0.904)):
        claim(f"torch's loss at N = {n:,}", scaling["torch", n], loss, 0.0005)
    claim("torch vs tf after 600 updates, max |loss difference|", max(gaps), 1.7e-3, 1e-4)

# %% [markdown]
# The fit: $L(N) = E + a N^{-\alpha}$ by least squares (the exponent by a search, $E$ and $a$
# linear for each exponent; `fit_power_law`), once with $E$ free, to compare with $H$, and once
# with $E = H$ given.

# %%
sizes = np.array(sorted({n for _, n in scaling}), dtype=float)
losses = np.array([scaling["torch", int(n)] for n in sizes])
free = fit_power_law(sizes, losses)
pinned = fit_power_law(sizes, losses, floor=H)
print(f"E free : E = {free.floor:.4f} (H = {H:.4f}), a = {free.coefficient:.3g}, "
      f"alpha = {free.exponent:.3f}, rss {free.rss:.2e}")
print(f"E = H  : a = {pinned.coefficient:.3g}, alpha = {pinned.exponent:.3f}, "
      f"rss {pinned.rss:.2e}")
tokens_seen = STEPS * BATCH * BLOCK
for n, loss in zip(sizes, losses):
    gain = free.predict(n) - free.predict(2 * n)  # what doubling N buys, by the fit
    print(f"N = {int(n):>7,}: excess over H {loss - H:.4f}, doubling N buys {gain:.4f} nats, "
          f"training compute 6 N D = {6 * n * tokens_seen:.1e} FLOPs")
claim("the fitted floor E", free.floor, 0.883, 0.0005)
claim("E above H", free.floor - H, 0.031, 0.0005)
if not QUICK:
    claim("doubling N = 252 buys", free.predict(252) - free.predict(504), 0.38, 0.005)
    claim("doubling N = 335,712 buys", free.predict(335_712) - free.predict(671_424), 0.002,
          0.0005)

# %%
plt = pyplot()
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
grid = np.geomspace(sizes[0] / 2, sizes[-1] * 2, 100)
for name, marker in (("torch", "o"), ("tf", "x")):
    points = sorted((n, loss) for (b, n), loss in scaling.items() if b == name)
    left.plot(*zip(*points), marker, label=f"{name}", markersize=8)
    right.loglog([n for n, _ in points], [loss - H for _, loss in points], marker,
                 label=name, markersize=8)
left.plot(grid, free.predict(grid), "-", color="grey",
          label=f"fit: {free.floor:.3f} + {free.coefficient:.3g} N^-{free.exponent:.2f}")
left.axhline(H, color="black", linestyle="--", label=f"entropy rate H = {H:.3f}")
left.set(xscale="log", xlabel="non-embedding parameters N", ylabel="loss (nats/token)",
         title=f"loss after {tokens_seen:,} training tokens")
right.loglog(grid, pinned.predict(grid) - H, "-", color="grey",
             label=f"fit with E = H: {pinned.coefficient:.3g} N^-{pinned.exponent:.2f}")
right.set(xlabel="non-embedding parameters N", ylabel="loss - H (nats/token)",
          title="the excess over the floor")
for ax in (left, right):
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
path = save_figure(fig, figure_dir() / "ch09_1_scaling_law.png")  # shown in a notebook
print("saved", path)

# %% [markdown]
# ```{figcaption}
# A scaling law: left, the loss of each model size after the same number of training tokens,
# with the fit and the entropy rate $H$; right, the excess $L - H$ on log-log axes.
# ```
#
# **What to see.** Left: the loss of each size after the same number of training tokens,
# torch (circles) and tf (crosses, on the four smallest sizes, dashed where they hide under
# the circles), the fit in grey and the entropy rate dashed. Right: the excess $L - H$ on
# log-log axes, where a power law with floor $H$ would be a straight line of slope $-\alpha$.
# Measured in the full run (600 updates, 153,600 tokens): the loss falls from 1.826 at
# $N = 252$ to 0.956 at $N = 3{,}312$, then only to 0.901 at $N = 100{,}096$, and the largest
# model (335,712) is no better (0.904). The two frameworks agree to $1.8 \times 10^{-7}$
# after 20 updates (quick mode) and to $1.7 \times 10^{-3}$ after 600 (the largest difference
# over the four sizes tf trains, at $N = 25{,}472$), where float32 rounding, summed in a
# different order in each, has had time to grow.
#
# The fit with $E$ free puts the floor at $E = 0.883$, 0.031 nats *above* the true
# $H = 0.852$: with a fixed token budget the largest models are held back by the tokens they
# saw, not by their size, and that shortfall looks like an irreducible loss to a fit that
# sees only these points. On the right the excess is no straight line: steep up to about
# 3,000 parameters (where the model can hold the table of 64 contexts), then nearly flat.
#
# What it says about choosing a size: **diminishing returns**. By the fit, doubling $N$ buys
# 0.38 nats at $N = 252$ and 0.002 at $N = 335{,}712$, while the compute of training,
# $\approx 6ND$ for $D$ tokens, doubles every time. And **the floor**: $H$ is a property of
# the data, not of the model; no size goes below it, and past the knee a bigger model only
# shaves hundredths. The sensible size sits near the knee for the tokens you can afford; to
# go further, spend on tokens as well as parameters (Hoffmann et al. 2022 measure the best
# split of a compute budget between the two).

# %% [markdown]
# ## 3. A base model against training from scratch
#
# A base model is one pretrained on plenty of text; fine-tuning continues its training on the
# small data of the job. Here the base model is the $d = 32$ GPT of section 2 (torch), trained
# on the source of section 1 (call it A). Two target sources, each with only 2,000 training
# tokens:
#
# * **related**: A with a quarter of its contexts' rows drawn again (`related_source(A, 0.25)`);
# * **unrelated**: every row drawn again (`related_source(A, 1.0)`): same alphabet, same kind
#   of rule (order 2, 3 symbols allowed per context), a different table.
#
# Each is trained from the base model and from scratch (the same initial weights as the base
# model had before pretraining), with the same settings.

# %%
BASE_SIZE = SIZES[1] if QUICK else (2, 2, 32)
base = models["torch", BASE_SIZE]
torch_backend = backends["torch"]
base_params = torch_backend.export_params(base)
FT_STEPS = 10 if QUICK else 300
targets = {"related": related_source(SOURCE, 0.25, seed=1),
           "unrelated": related_source(SOURCE, 1.0, seed=2)}
finetuning, floors = {}, {}
for label, target in targets.items():
    stream = target.sample(2_000 + 20_000, seed=3)  # 2,000 to train on, 20,000 to validate
    small = TokenData(stream, block_size=BLOCK, val_fraction=20_000 / 22_000)
    floors[label] = target.window_floor(BLOCK)  # the floor of the loss over all positions
    for start in ("base model", "scratch"):
        model = torch_backend.GPT(size_config(*BASE_SIZE), seed=0)
        if start == "base model":
            torch_backend.import_params(model, base_params)
        settings = train_config(FT_STEPS, 3e-3, eval_every=max(1, FT_STEPS // 12))
        before = evaluate(torch_backend.LMTrainer(model), small, settings)  # at update 0
        h = train(torch_backend, model, small, settings, progress=False).history
        finetuning[label, start] = ([0, *h["eval_step"]], [before, *h["val_loss"]])
        print(f"{label:>9} from {start:>10}: val loss {before:.3f} at update 0, "
              f"{h['val_loss'][0]:.3f} after {h['eval_step'][0]}, best {min(h['val_loss']):.3f}, "
              f"last {h['val_loss'][-1]:.3f} (floor {floors[label]:.3f}, H {target.entropy_rate:.3f})")
        # the text's figures (section 3's "What to see", the full run: 300 updates)
        quoted = {("related", "base model"): (1.90, 1.29, 1.02, 1.02),
                  ("related", "scratch"): (2.10, 1.85, 1.43, 1.43),
                  ("unrelated", "base model"): (3.12, 1.585, 1.03, 1.04),
                  ("unrelated", "scratch"): (None, 1.968, 1.37, 1.37)}[label, start]
        measured = (before, h["val_loss"][0], min(h["val_loss"]), h["val_loss"][-1])
        for what, value, figure in zip(("at update 0", "after 25 updates", "best", "last"),
                                       measured, quoted):
            if figure is not None:
                claim(f"{label} target from {start}: val loss {what}", value, figure,
                      0.0005 if what == "after 25 updates" and label == "unrelated" else 0.005)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, label in zip(axes, targets):
    for start, style in (("base model", "-"), ("scratch", "--")):
        ax.plot(*finetuning[label, start], style, marker=".", label=f"from {start}")
    ax.axhline(floors[label], color="black", linestyle=":", label="floor of the window")
    ax.set(title=f"{label} target, 2,000 training tokens", xlabel="update",
           ylabel="validation loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
path = save_figure(fig, figure_dir() / "ch09_1_base_vs_scratch.png")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# Validation loss on a related and an unrelated target against the update, fine-tuned from the
# base model and trained from scratch.
# ```
#
# **What to see.** Validation loss on each target against the update, from the base model
# (solid) and from scratch (dashed), with the floor of the loss over a whole window dotted.
# Measured (full run, 300 updates): on the related target the base model starts at 1.90
# (its 16 changed contexts are predicted confidently wrong) but is at 1.29 after 25 updates
# and ends at 1.02; from scratch 2.10, 1.85 and 1.43. On the unrelated target the base model
# starts *worse* than guessing (3.12: its whole table is wrong, and sure of itself), yet it
# is ahead after 25 updates (1.585 against 1.968) and ends at 1.03 (best; 1.04 at the last
# update, it starts to overfit the 2,000 tokens) against 1.37 from scratch. So what
# transfers is not only the table: it is the machinery (read the last two tokens, map a
# context to a sparse next-symbol distribution), which a new table can reuse. With a small
# target set, start from a base model; watch the validation loss and stop when it turns up.

# %% [markdown]
# ## 4. An encoder against a decoder
#
# A decoder (the GPT) is trained to predict each token from the ones *before* it; an encoder
# (BERT, `backends/*/encoder.py`) sees the whole window, *both* sides, and is trained to fill
# in tokens replaced by a [MASK] symbol. Which suits which job? Two jobs, each with its exact
# floor:
#
# * **fill in the middle**: predict $x_t$ of a window from everything else. The best possible
#   loss is $H(X_t \mid X_{t-2}, X_{t-1}, X_{t+1}, X_{t+2})$ (for an order-2 source those 4
#   neighbours carry all the information; `masked_entropy`), far below $H$;
# * **continue the text**: predict the next token from the ones before it, floor $H$ for both.
#
# Same body for both (2 layers, $d = 64$, 4 heads, the same initial weights: the encoder's
# body starts from the GPT's numbers), the same windows, the same updates. In training the
# encoder replaces 4 random positions of each window by [MASK] (BERT's rule masks 15%) and
# learns from those 4; the decoder learns from all 16 positions of every window. In the
# evaluation one token is masked, so the encoder's floor is exact.

# %%
from duetrl.backends.torch.encoder import MaskedLM, MLMTrainer  # noqa: E402

MASK = SOURCE.vocab_size  # the [MASK] id: one symbol past the alphabet
ENC_STEPS, ENC_BATCH, MASKED = (20, 8, 4) if QUICK else (4000, 32, 4)
H_MASKED = SOURCE.masked_entropy()
print(f"floors: fill in the middle {H_MASKED:.4f} nats, continue the text H = {H:.4f}")
pair_config = size_config(2, 4, 64, vocab_size=SOURCE.vocab_size + 1)
encoder, decoder = MaskedLM(pair_config, seed=0), torch_backend.GPT(pair_config, seed=0)
encoder_trainer, decoder_trainer = MLMTrainer(encoder), torch_backend.LMTrainer(decoder)
pair_curves, crossings = {"encoder": [], "decoder": []}, {}
began = time.perf_counter()
for step in range(ENC_STEPS):
    rng = np.random.default_rng((11, step))
    x, y = DATA.batch("train", ENC_BATCH, rng)
    lr = 3e-3 * min(1.0, (step + 1) / 20)  # warm-up, then constant
    order = np.argsort(rng.random((ENC_BATCH, BLOCK)), axis=1)  # a random order per window
    selected = np.zeros((ENC_BATCH, BLOCK))
    np.put_along_axis(selected, order[:, :MASKED], 1.0, axis=1)  # MASKED positions each
    pair_curves["encoder"].append(
        encoder_trainer.train_step(np.where(selected > 0, MASK, x), x, selected, lr)[0])
    pair_curves["decoder"].append(decoder_trainer.train_step(x, y, lr)[0])
print(f"{ENC_STEPS} updates of each in {time.perf_counter() - began:.1f} s")
for who, curve in pair_curves.items():  # where the mean of 100 updates first reaches a level
    smooth = np.convolve(curve, np.ones(100) / 100, mode="valid") if len(curve) >= 100 else []
    reached = {level: next((u + 100 for u, v in enumerate(smooth) if v <= level), None)
               for level in (1.9, 1.0, H)}
    print(f"  {who}: the training loss (mean of 100 updates) first at or below "
          + ", ".join(f"{level:.2f} at update {u}" for level, u in reached.items()))
    crossings[who] = reached
if not QUICK:  # the text's figures (section 4's "What to see", the full run: the crossings)
    for who, level, update in (("decoder", 1.0, 382), ("encoder", 1.9, 2_336),
                               ("encoder", 1.0, 3_482), ("encoder", H, 3_696)):
        claim(f"the {who}'s first update at or below {level:.2f} nats",
              crossings[who][level], update, 0.5)


def job_losses(t: int) -> tuple[float, float]:
    """(encoder, decoder) loss of predicting x_t on the validation windows: the encoder with
    x_t masked, the decoder from x_0..x_{t-1} (its logits at position t - 1)."""
    at = np.zeros((BATCH, BLOCK))
    at[:, t] = 1.0
    before = np.zeros((BATCH, BLOCK))
    before[:, t - 1] = 1.0
    enc = [encoder_trainer.evaluate(np.where(at > 0, MASK, x), x, at)[0] for x, _ in EVAL]
    dec = [decoder_trainer.eval_loss(x, y, before) for x, y in EVAL]
    return float(np.mean(enc)), float(np.mean(dec))


jobs = {"fill in the middle (t = 8)": (job_losses(BLOCK // 2), H_MASKED),
        "continue the text (t = 15)": (job_losses(BLOCK - 1), H)}
for job, ((enc, dec), floor) in jobs.items():
    print(f"{job:>27}: encoder {enc:.4f}, decoder {dec:.4f}; the encoder's floor {floor:.4f}, "
          f"the decoder's {H:.4f}")
for job, model, figure in (("fill in the middle (t = 8)", 0, 0.29),
                           ("fill in the middle (t = 8)", 1, 0.90),
                           ("continue the text (t = 15)", 0, 1.04),
                           ("continue the text (t = 15)", 1, 0.88)):  # the text's figures
    claim(f"{('encoder', 'decoder')[model]}: {job}", jobs[job][0][model], figure, 0.005)

# %%
fig, (curves, ax) = plt.subplots(1, 2, figsize=(12, 4.2))
window = min(100, ENC_STEPS)  # a trailing mean of 100 updates
for who, label in (("encoder", "encoder: masked tokens"), ("decoder", "decoder: next tokens")):
    smooth = np.convolve(pair_curves[who], np.ones(window) / window, mode="valid")
    curves.plot(np.arange(window, ENC_STEPS + 1), smooth, label=label)
for level, style, label in ((SOURCE.conditional_entropy(0), ":", "h(0): symbol frequencies"),
                            (H, "--", "H"), (H_MASKED, "-.", "masked-token floor")):
    curves.axhline(level, color="black", linestyle=style, linewidth=1, label=label)
curves.set(xlabel="update", ylabel="training loss (nats/token)",
           title=f"training, mean of the last {window} updates")
offsets = np.arange(len(jobs))
for shift, (who, index) in zip((-0.2, 0.2), (("encoder (masked LM)", 0), ("decoder (GPT)", 1))):
    ax.bar(offsets + shift, [losses[index] for losses, _ in jobs.values()], width=0.4,
           label=who)
for i, (_, floor) in enumerate(jobs.values()):
    ax.hlines(floor, i - 0.4, i, color="black", linestyle="--")
    ax.hlines(H, i, i + 0.4, color="black", linestyle="--")
ax.set_xticks(offsets, list(jobs))
ax.set(ylabel="validation loss (nats/token)", title=f"two jobs after {ENC_STEPS} updates")
for axis in (curves, ax):
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3, axis="y")
path = save_figure(fig, figure_dir() / "ch09_1_encoder_vs_decoder.png")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# Encoder and decoder: left, the training loss of each against the update, with their floors;
# right, each model on each of the two jobs after training.
# ```
#
# **What to see.** Left: the training loss of each model (a mean over 100 updates), with
# $h(0)$ (the symbol frequencies), $H$ and the masked-token floor. Measured in the full run
# (the printed crossings): the decoder leaves $h(0)$ at once and is down to 1 nat by update
# 382 (its training loss counts position 0 too, so it cannot reach $H$). The encoder sits on
# the $h(0)$ plateau for over 2,000 updates (first below 1.9 nats at update 2,336: its
# [MASK] query carries nothing until attention has learned where the neighbours are), then
# falls: 1 nat at update 3,482, $H$ at update 3,696. Its training loss stays above its
# evaluation loss because 4 masks per window often hide a neighbour too.
#
# Right: each model on each job after 4,000 updates, each model's floor dashed over its
# bar. Filling in the middle, the encoder scores 0.29 nats (floor 0.11) and the decoder 0.90
# (floor $H = 0.85$): the encoder reads the tokens after the gap, and no amount of training
# takes the decoder below $H$. Continuing the text, both have the floor $H$, and the decoder
# is better, 0.88 against 1.04: it learned from 16 positions per window to the encoder's 4,
# and the encoder rarely trained on a window whose right side was empty.
#
# So: an encoder for a text that is all there (classification, tagging, filling gaps,
# retrieval embeddings), a decoder for writing one (generation, dialogue, and everything RL
# fine-tunes in the later chapters), where each token depends only on those before it and a
# KV cache makes each new one cheap. And the masked objective is the slower to learn: here
# the encoder's training loss took 2,800 updates to come down to 1 nat, the decoder's 382.

# %% [markdown]
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it, which
# compares it on fresh inputs with the float64 reference (`core/lm/scaling.py`) and prints ✓
# or ✗ with what it expected.
#
# 1. **The loss of the perfect model, in the framework of your choice.** Given the source's
#    table $P$ `(V^k, V)`, the context index $c_t$ of each position and the token $x_t$ that
#    followed, return the cross-entropy $-\frac{1}{n}\sum_t \log P_{c_t x_t}$ in nats, by
#    handing $\log P_{c_t}$ to the framework's cross-entropy as logits, in PyTorch *or*
#    TensorFlow (both are below). On a long sample it comes out near $H$: no trained model
#    can do better on average.
# 2. **The entropy rate of a chain, in NumPy.** For an order-1 transition matrix $P$
#    (rows sum to 1), find the stationary $\mu$ ($\mu P = \mu$) and return
#    $H = -\sum_i \mu_i \sum_j P_{ij}\log P_{ij}$ in nats.
# 3. **Reading the fit.** With $L(N) = E + a N^{-\alpha}$, how many parameters does a model
#    need to come within `excess` nats of $E$? Use it on the fit of section 2: how much
#    bigger must a model be to halve its excess over the floor?

# %%
import tensorflow as tf  # noqa: E402  (both frameworks are already loaded)
import torch  # noqa: E402

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare  # noqa: E402
from duetrl.core.lm.scaling import MarkovSource  # noqa: E402
from duetrl.core.reference.gpt import cross_entropy as reference_cross_entropy  # noqa: E402


def entropy_rate(transitions):
    """H = -sum_i mu_i sum_j P_ij log P_ij of an order-1 chain, in nats."""
    values, vectors = np.linalg.eig(transitions.T)
    mu = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    mu = mu / mu.sum()
    logs = np.log(np.where(transitions > 0, transitions, 1.0))
    return float(-mu @ np.sum(transitions * logs, axis=1))  # your code here


def size_for_excess(coefficient, exponent, excess):
    """The N with a N^-alpha = excess."""
    return (coefficient / excess) ** (1.0 / exponent)  # your code here


def oracle_cases(seed):
    """(P, contexts, next tokens) of a fresh source's sample: order 1 and 2, dense and sparse."""
    cases = []
    for vocab_size, order, support in ((4, 1, 4), (6, 2, 2), (5, 2, 3)):
        source = random_source(vocab_size, order, support, seed=seed + vocab_size)
        x = source.sample(300, seed=seed)
        cases.append((source.transitions, source.contexts(x), x[order:]))
    return cases


def oracle_loss_reference(transitions, contexts, next_tokens):
    """The float64 reference cross-entropy (core/reference/gpt.py) of the logits log P[c_t]."""
    with np.errstate(divide="ignore"):  # log 0 = -inf: a symbol the context never allows
        return reference_cross_entropy(np.log(transitions[contexts])[None], next_tokens[None])


chains = [(random_source(n, 1, support, concentration=0.5, seed=s).transitions,)
          for n, support, s in ((2, 2, 31), (5, 3, 32), (8, 8, 33))]
fits = [(5.0, 0.45, 0.1), (1.47, 0.3, 0.02), (12.0, 0.8, 0.5)]
assert compare(2, entropy_rate, lambda p: MarkovSource(p).entropy_rate, chains,
               "the entropy rate")
assert compare(3, lambda a, alpha, e: a * size_for_excess(a, alpha, e) ** -alpha,
               lambda a, alpha, e: e, fits, "the excess of your N, a N^-alpha", 1e-9, 1e-9)
ratio = size_for_excess(pinned.coefficient, pinned.exponent, 0.05) / size_for_excess(
    pinned.coefficient, pinned.exponent, 0.1)
print(f"  by the fit with E = H: halving the excess from 0.1 to 0.05 nats takes "
      f"{ratio:.1f}x the parameters (2^(1/alpha), alpha = {pinned.exponent:.2f})")

# %% tags=["torch"]
def oracle_loss_torch(transitions, contexts, next_tokens):
    """-mean log P[c_t, x_t] with torch's cross-entropy on the logits log P[c_t]."""
    logits = torch.log(torch.as_tensor(transitions, dtype=torch.float32))[contexts]  # (n, V)
    return torch.nn.functional.cross_entropy(logits, torch.as_tensor(next_tokens))  # your code here


assert compare(1, oracle_loss_torch, oracle_loss_reference, oracle_cases(40),
               "the perfect model's cross-entropy", FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)
x = SOURCE.sample(20_000, seed=9)
print(f"  the perfect model on 20,000 fresh tokens: "
      f"{float(oracle_loss_torch(SOURCE.transitions, SOURCE.contexts(x), x[K:])):.4f} "
      f"(H = {H:.4f})")

# %% tags=["tf"]
def oracle_loss_tf(transitions, contexts, next_tokens):
    """-mean log P[c_t, x_t] with tf's cross-entropy on the logits log P[c_t]."""
    logits = tf.gather(tf.math.log(tf.constant(transitions, tf.float32)), contexts)  # (n, V)
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(next_tokens, logits)
    )  # your code here


assert compare(1, oracle_loss_tf, oracle_loss_reference, oracle_cases(41),
               "the perfect model's cross-entropy", FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here the entropy rate with every state
# weighted the same, $\frac{1}{V}\sum_i$, instead of by how often the chain is in it, $\mu_i$:

# %%
assert not compare(2, lambda p: float(-np.mean(np.sum(p * np.log(np.where(p > 0, p, 1.0)), 1))),
                   lambda p: MarkovSource(p).entropy_rate, chains, "the entropy rate")
