"""A reward model learned from preferences (outline 2.3.2, 3.1.4, 9.2.1), once for both backends.

RLHF rarely has the reward function; it has people's choices between two answers. A reward
model r_phi is a GPT with a scalar head (``backend.ValueHead``) read at the last completion
token, fitted to pairs (y_w preferred to y_l, same prompt x) with the Bradley-Terry model

    P(y_w > y_l | x) = sigmoid(r_phi(x, y_w) - r_phi(x, y_l)),
    L(phi) = -1/N sum_n log sigmoid(r_phi(x_n, y_w,n) - r_phi(x_n, y_l,n))

(``core/reference/rlhf.bradley_terry_loss``; each backend's ``RLHFLearner.update(batch,
"reward_model")``). Only differences of r_phi are identified, so after training it is
calibrated by an affine map that leaves every preference unchanged: on fresh samples of the
reference distribution its mean and std are set to those of the true reward there,

    r_learned(x, y) = mu_true + sigma_true (r_phi(x, y) - mu_phi) / sigma_phi,

so learned and true reward start equal on average and can be drawn on one axis.

Here the "annotator" is a rule the policy never sees: the task's own reward. Pairs are two
completions of one prompt drawn from the reference distribution (the task's corpus, which the
pretrained pi_ref imitates: on sort-digits, 8 uniform digits and the stop token); the one with
the higher true reward is chosen, ties are dropped, and with probability ``label_noise`` the
label is flipped. A small model, few pairs and pairs only from pi_ref make r_phi an imperfect,
exploitable proxy: RL against it at a small KL coefficient drives the policy where r_phi was
never trained, and the learned reward keeps rising while the true reward falls (Gao, Schulman
and Hilton 2022, "Scaling laws for reward model overoptimization").

Example:
    >>> backend = load_backend("torch")
    >>> model, figures = train_reward_model(backend, RewardModelSettings(pairs=512))
    >>> figures["held_out_accuracy"]  # share of held-out pairs ranked as the rule ranks them
    >>> model(["31415926:"], ["01234567\\n"])  # (1,) learned reward, usable as a RewardFn
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.interfaces.rlhf import init_value_head_params
from duetrl.core.rlhf.mdp import SequenceMDP, completion_mask
from duetrl.core.rlhf.tasks import TextTask, get_task

REWARD_MODEL_KIND = "duetrl.reward_model"
"""The ``kind`` of a reward-model checkpoint: tensor groups ``params`` (the GPT trunk) and
``head`` (the scalar head); metadata task, config, tokenizer, settings, calibration, figures."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class RewardModelSettings:
    """How a reward model is trained (every field is a ``duetrl rlhf reward-model`` flag)."""

    task: str = field(default="sort-digits", metadata=_help("text task whose reward labels"))
    pairs: int = field(default=256, metadata=_help("training preference pairs (ties dropped)"))
    held_out: int = field(default=1024, metadata=_help("held-out pairs for the accuracy"))
    label_noise: float = field(default=0.0, metadata=_help("probability a label is flipped"))
    steps: int = field(default=300, metadata=_help("Adam steps on the Bradley-Terry loss"))
    batch_size: int = field(default=64, metadata=_help("pairs per step"))
    learning_rate: float = field(default=3e-3, metadata=_help("Adam step size"))
    n_layer: int = field(default=1, metadata=_help("GPT blocks of the reward model"))
    n_head: int = field(default=2, metadata=_help("attention heads"))
    n_embd: int = field(default=16, metadata=_help("model width"))
    # seed 1: a reward model RL exploits within 80 updates at beta <= 0.01 (seeds 1 and 2 of
    # 0-3 do; 0 and 3 happen to reward repeated digits, which are sorted: see the tutorial)
    seed: int = field(default=1, metadata=_help("seeds the pairs, the weights and the batches"))

    def __post_init__(self) -> None:
        get_task(self.task)
        for name in ("pairs", "held_out", "steps", "batch_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not (isinstance(self.label_noise, int | float) and 0.0 <= self.label_noise < 0.5):
            raise ValueError(
                f"label_noise: expected a probability in [0, 0.5) (0.5 erases the labels), got "
                f"{self.label_noise!r}"
            )
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0):
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")


def reward_model_fields() -> list[dataclasses.Field]:
    """The fields of :class:`RewardModelSettings`, for building command-line flags."""
    return list(dataclasses.fields(RewardModelSettings))


# ---------------------------------------------------------------------------------------------
# Preference pairs, labelled by a rule the policy never sees
# ---------------------------------------------------------------------------------------------


@dataclass
class PreferencePairs:
    """N pairs of completions of one prompt each, the preferred one first.

    prompts: N prompt texts. chosen, rejected: N completion texts (y_w, y_l).
    true_margin: ``(N,)`` r(y_w) - r(y_l) under the labelling rule (negative where the label
    was flipped by noise).
    """

    prompts: list[str]
    chosen: list[str]
    rejected: list[str]
    true_margin: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)


def make_preference_pairs(
    task: str | TextTask, num_pairs: int, rng: np.random.Generator, label_noise: float = 0.0
) -> PreferencePairs:
    """``num_pairs`` pairs of reference-distribution completions, labelled by ``task``'s reward.

    Each pair: one prompt x, two completions y_1, y_2 from the task's corpus distribution (what
    the pretrained pi_ref imitates); chosen = argmax_i r(x, y_i); a tie (r_1 = r_2) says
    nothing and is dropped and redrawn; then the label is flipped with probability
    ``label_noise`` (an annotator who errs).
    """
    task = get_task(task)
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or num_pairs < 1:
        raise ValueError(f"num_pairs: expected a positive int, got {num_pairs!r}")
    if not 0.0 <= label_noise < 0.5:
        raise ValueError(f"label_noise: expected a probability in [0, 0.5), got {label_noise!r}")
    out = PreferencePairs([], [], [], np.zeros(0))
    for _ in range(1000):  # rounds of candidates; ties are rare on sort-digits (~15%)
        need = num_pairs - len(out)
        if need <= 0:
            break
        batch = task.prompts(2 * need, rng)[:need]
        first = [task.completion_fn(p, rng) for p in batch]
        second = [task.completion_fn(p, rng) for p in batch]
        more = label_pairs(task, batch, first, second, rng, label_noise)
        out = PreferencePairs(out.prompts + more.prompts, out.chosen + more.chosen,
                              out.rejected + more.rejected,
                              np.concatenate([out.true_margin, more.true_margin]))
    else:
        raise ValueError(f"task: {task.name!r} gave too many ties to build {num_pairs} pairs")
    return PreferencePairs(out.prompts[:num_pairs], out.chosen[:num_pairs],
                           out.rejected[:num_pairs], out.true_margin[:num_pairs])


def label_pairs(
    task: str | TextTask,
    prompts: Sequence[str],
    first: Sequence[str],
    second: Sequence[str],
    rng: np.random.Generator | None = None,
    label_noise: float = 0.0,
) -> PreferencePairs:
    """Label given completion pairs with ``task``'s reward (ties dropped, then a share
    ``label_noise`` flipped): how the policy's own samples join the data (iterated RLHF)."""
    task = get_task(task)
    if not 0.0 <= label_noise < 0.5:
        raise ValueError(f"label_noise: expected a probability in [0, 0.5), got {label_noise!r}")
    if not len(prompts) == len(first) == len(second):
        raise ValueError(
            f"second: expected one completion per prompt in first and second, got "
            f"{len(prompts)} prompts, {len(first)} and {len(second)} completions"
        )
    rng = rng if rng is not None else np.random.default_rng(0)
    r1, r2 = task.rewards(prompts, first), task.rewards(prompts, second)
    out = PreferencePairs([], [], [], np.zeros(0))
    margins = []
    for p, a, b, ra, rb in zip(prompts, first, second, r1, r2):
        if ra == rb:
            continue  # a tie: dropped
        (win, r_win), (lose, r_lose) = ((a, ra), (b, rb)) if ra > rb else ((b, rb), (a, ra))
        if rng.random() < label_noise:  # one draw per kept pair, noise or not
            (win, r_win), (lose, r_lose) = (lose, r_lose), (win, r_win)  # the annotator errs
        out.prompts.append(p)
        out.chosen.append(win)
        out.rejected.append(lose)
        margins.append(r_win - r_lose)
    out.true_margin = np.array(margins)
    return out


def encode_completions(
    mdp: SequenceMDP, prompts: Sequence[str], completions: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``(tokens (N, T), mask (N, T-1))`` of prompt + completion, right-padded with the stop id.

    T = prompt + length limit (the MDP's ``sequence_length``); a completion longer than the
    limit is cut to it. mask[n, t] = 1 when tokens[n, t+1] is a completion token (the batch
    contract of ``core/interfaces/rlhf.py``).
    """
    if len(prompts) != len(completions):
        raise ValueError(
            f"completions: expected one per prompt ({len(prompts)}), got {len(completions)}"
        )
    n, limit = len(prompts), mdp.max_new_tokens
    pad = mdp.stop_id if mdp.stop_id is not None else 0
    prompt_ids = [mdp.reset(p) for p in prompts]
    lengths = sorted({len(p) for p in prompt_ids})
    if len(lengths) > 1:
        raise ValueError(f"prompts: expected prompts of one length, got lengths {lengths}")
    width = (lengths[0] if lengths else mdp.prompt_length) + limit
    tokens = np.full((n, width), pad, dtype=np.int64)
    new = np.full((n, limit), pad, dtype=np.int64)
    used = np.zeros((n, limit))
    for i, (ids, text) in enumerate(zip(prompt_ids, completions)):
        ids_c = mdp.tokenizer.encode(text)[:limit]
        new[i, : len(ids_c)] = ids_c
        used[i, : len(ids_c)] = 1.0
        tokens[i, : len(ids)] = ids
    tokens[:, width - limit :] = new
    mask = np.zeros((n, width - 1))
    mask[:, width - limit - 1 :] = completion_mask(new, mdp.stop_id) * used
    return tokens, mask


# ---------------------------------------------------------------------------------------------
# The model: a GPT trunk and a scalar head, in one backend
# ---------------------------------------------------------------------------------------------


class RewardModel:
    """r(x, y): a backend's GPT trunk, a scalar head read at the last completion token, and
    the affine calibration of the module docstring. Call it as a ``RewardFn``.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param task: the task whose texts it scores (its tokeniser and length limit).
    :param config: the trunk's GPTConfig (the task's vocabulary).
    :param params: canonical trunk parameters (None: GPT-2 initialisation with ``seed``).
    :param head_params: canonical head parameters (None: core's initialiser with ``seed``).
    :param calibration: ``(mu_phi, sigma_phi, mu_true, sigma_true)``; None: the identity.
    """

    def __init__(
        self,
        backend: ModuleType,
        task: str | TextTask,
        config: GPTConfig,
        params: dict[str, np.ndarray] | None = None,
        head_params: dict[str, np.ndarray] | None = None,
        calibration: tuple[float, float, float, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.backend, self.task = backend, get_task(task)
        self.mdp = SequenceMDP.for_task(self.task, "pretrained")
        self.mdp.check_policy(config, name="reward model")
        self.config = config
        self.trunk = backend.GPT(config)
        self.head = backend.ValueHead(config.n_embd, seed=None)
        backend.import_params(self.trunk, params if params is not None else
                              init_gpt_params(config, seed))
        backend.import_params(self.head, head_params if head_params is not None else
                              init_value_head_params(config.n_embd, seed))
        self.calibration = calibration or (0.0, 1.0, 0.0, 1.0)

    def raw_scores(self, tokens: np.ndarray, mask: np.ndarray, batch: int = 512) -> np.ndarray:
        """r_phi ``(N,)``: the head's value at each row's last completion token (no gradient)."""
        b, out = self.backend, []
        for start in range(0, len(tokens), batch):
            rows = slice(start, start + batch)
            values = self.head(b.hidden_states(self.trunk, tokens[rows]))  # (n, T)
            out.append(b.to_numpy(b.sequence_scores(values, mask[rows])).astype(np.float64))
        return np.concatenate(out) if out else np.zeros(0)

    def scores(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Calibrated r_learned = mu_true + sigma_true (r_phi - mu_phi) / sigma_phi, ``(N,)``."""
        mu_phi, sigma_phi, mu_true, sigma_true = self.calibration
        return mu_true + sigma_true * (self.raw_scores(tokens, mask) - mu_phi) / sigma_phi

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The learned reward of each completion: a ``RewardFn`` ``(N,)`` float64."""
        from duetrl.core.rlhf.tasks import check_rewards

        tokens, mask = encode_completions(self.mdp, prompts, completions)
        return check_rewards(self.scores(tokens, mask), len(completions), name="reward model")

    def pair_accuracy(self, pairs: PreferencePairs) -> float:
        """Share of ``pairs`` with r(y_w) > r(y_l): the pairwise (held-out) accuracy."""
        chosen = self.raw_scores(*encode_completions(self.mdp, pairs.prompts, pairs.chosen))
        rejected = self.raw_scores(*encode_completions(self.mdp, pairs.prompts, pairs.rejected))
        return float(np.mean(chosen > rejected))

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """Tensor groups of a checkpoint: the trunk's and the head's canonical parameters."""
        return {"params": self.backend.export_params(self.trunk),
                "head": self.backend.export_params(self.head)}


def pair_batch(mdp: SequenceMDP, pairs: PreferencePairs, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The ``reward_model`` batch (core/interfaces/rlhf.py contract) of the pairs ``rows``."""
    prompts = [pairs.prompts[i] for i in rows]
    chosen_tokens, chosen_mask = encode_completions(mdp, prompts, [pairs.chosen[i] for i in rows])
    rejected_tokens, rejected_mask = encode_completions(
        mdp, prompts, [pairs.rejected[i] for i in rows]
    )
    return {"chosen_tokens": chosen_tokens, "rejected_tokens": rejected_tokens,
            "chosen_mask": chosen_mask, "rejected_mask": rejected_mask}


def calibrate(model: RewardModel, num: int, rng: np.random.Generator) -> tuple[float, ...]:
    """``(mu_phi, sigma_phi, mu_true, sigma_true)`` on ``num`` fresh reference completions."""
    task = model.task
    prompts = task.prompts(num, rng)
    completions = [task.completion_fn(p, rng) for p in prompts]
    raw = model.raw_scores(*encode_completions(model.mdp, prompts, completions))
    true = task.rewards(prompts, completions)
    return (float(raw.mean()), float(raw.std()) or 1.0, float(true.mean()),
            float(true.std()) or 1.0)


def train_reward_model(
    backend: ModuleType, settings: RewardModelSettings | None = None,
    path: str | Path | None = None, progress: bool = False,
    extra_pairs: PreferencePairs | None = None,
) -> tuple[RewardModel, dict[str, Any]]:
    """Fit a reward model to ``settings.pairs`` labelled pairs with the Bradley-Terry loss.

    Pairs, weights and the order of the batches come from NumPy with ``settings.seed``, so
    both backends start from the same model and see the same batches.

    :param path: where to save it (kind ``duetrl.reward_model``); None: not saved.
    :param extra_pairs: more training pairs, appended to the ``settings.pairs`` drawn from
        the reference distribution (e.g. the policy's own samples, :func:`label_pairs`).
    :returns: ``(model, figures)``: figures hold ``train_accuracy``, ``held_out_accuracy``
        (on ``settings.held_out`` fresh pairs, labelled without noise), ``loss`` (mean of the
        last 10% of steps), ``seconds``, ``parameters`` and ``checkpoint``.
    """
    s = settings = settings if settings is not None else RewardModelSettings()
    task = get_task(s.task)
    mdp = SequenceMDP.for_task(task, "pretrained")
    config = GPTConfig(vocab_size=mdp.vocab_size, block_size=mdp.sequence_length,
                       n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd)
    rng = np.random.default_rng((s.seed, 11))
    train_pairs = make_preference_pairs(task, s.pairs, rng, s.label_noise)
    if extra_pairs is not None and len(extra_pairs):
        train_pairs = PreferencePairs(
            train_pairs.prompts + list(extra_pairs.prompts),
            train_pairs.chosen + list(extra_pairs.chosen),
            train_pairs.rejected + list(extra_pairs.rejected),
            np.concatenate([train_pairs.true_margin, extra_pairs.true_margin]),
        )
    held_out = make_preference_pairs(task, s.held_out, np.random.default_rng((s.seed, 12)))
    model = RewardModel(backend, task, config, seed=s.seed)
    learner = backend.RLHFLearner(model.trunk, model.head, learning_rate=s.learning_rate)
    batch_rng = np.random.default_rng((s.seed, 13))
    size = min(s.batch_size, len(train_pairs))  # one batch shape: TF traces once
    losses, began = [], time.perf_counter()
    from tqdm.auto import tqdm

    bar = tqdm(range(s.steps), desc=f"reward model ({backend.NAME})", disable=not progress)
    for step in bar:
        # linear warm-up over the first 10% of steps, then constant
        learner.learning_rate = s.learning_rate * min(1.0, (step + 1) / max(1, s.steps // 10))
        rows = batch_rng.choice(len(train_pairs), size=size, replace=False)
        stats = learner.update(pair_batch(mdp, train_pairs, rows), "reward_model")
        if not math.isfinite(stats["loss"]):
            raise FloatingPointError(f"reward model diverged at step {step + 1}: {stats}")
        losses.append(stats["loss"])
        bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['accuracy']:.2f}")
    bar.close()
    model.calibration = calibrate(model, 2048, np.random.default_rng((s.seed, 14)))
    tail = max(1, math.ceil(0.1 * len(losses)))
    figures: dict[str, Any] = {
        "task": task.name,
        "backend": backend.NAME,
        "pairs": len(train_pairs),
        "train_accuracy": model.pair_accuracy(train_pairs),
        "held_out_accuracy": model.pair_accuracy(held_out),
        "loss": float(np.mean(losses[-tail:])),
        "seconds": time.perf_counter() - began,
        "parameters": int(sum(v.size for group in model.state().values()
                              for v in group.values())),
        "checkpoint": None,
    }
    if path is not None:
        figures["checkpoint"] = str(save_reward_model(path, model, settings, figures))
    return model, figures


def save_reward_model(
    path: str | Path, model: RewardModel, settings: RewardModelSettings | None = None,
    figures: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (kind ``duetrl.reward_model``) through ``core/checkpoint.py``."""
    metadata = {
        "task": model.task.name,
        "config": model.config.to_dict(),
        "tokenizer": model.mdp.tokenizer.to_dict(),
        "calibration": list(model.calibration),
        "settings": asdict(settings) if settings is not None else {},
        "figures": {k: v for k, v in (figures or {}).items() if k != "checkpoint"},
    }
    return save_checkpoint(path, Checkpoint(REWARD_MODEL_KIND, model.state(), metadata))


def load_reward_model(
    backend: ModuleType, path: str | Path, task: str | TextTask | None = None
) -> RewardModel:
    """A saved reward model in ``backend`` (either backend loads a file of the other).

    :param task: the task it must score (None: the file's).
    :raises CheckpointError: for a missing or damaged file, another kind of checkpoint (an RL
        run, a reference GPT) or a reward model of another task.
    """
    checkpoint = load_checkpoint(path, REWARD_MODEL_KIND)
    saved_task = checkpoint.metadata.get("task")
    if task is not None and get_task(task).name != saved_task:
        raise CheckpointError(
            f"reward_model: {str(path)!r} scores task {saved_task!r}, not {get_task(task).name!r}"
        )
    config = GPTConfig.from_dict(checkpoint.metadata["config"])
    calibration = tuple(float(v) for v in checkpoint.metadata["calibration"])
    return RewardModel(backend, saved_task, config, checkpoint.tensors["params"],
                       checkpoint.tensors["head"], calibration)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# RL against the learned reward: over-optimisation (Gao et al. 2022)
# ---------------------------------------------------------------------------------------------


def overoptimisation_sweep(
    backend: ModuleType,
    reference: tuple[GPTConfig, dict[str, np.ndarray]],
    reward_model_path: str | Path,
    betas: Sequence[float],
    updates: int = 80,
    algo: str = "rloo",
    seed: int = 0,
    progress: bool = False,
) -> dict[float, dict[str, list[float]]]:
    """RL against the learned reward at each beta: ``{beta: history}`` (core/rlhf/train.py's
    metrics per update, ``reward`` the learned one and ``true_reward`` the task's).

    The policy maximises E[r_learned] - beta KL(pi || pi_ref); the smaller beta, the further
    it may move from the samples r_learned was fitted on, and the more of r_learned's errors
    it finds.
    """
    from duetrl.core.rlhf.train import RLHFRun, RLHFSettings

    if not betas:
        raise ValueError("betas: expected at least one KL coefficient")
    histories: dict[float, dict[str, list[float]]] = {}
    for beta in betas:
        settings = RLHFSettings(algo=algo, beta=float(beta), updates=updates, seed=seed,
                                reward="learned", reward_model=str(reward_model_path))
        run = RLHFRun(backend, settings, reference)
        history: dict[str, list[float]] = {}
        for update in range(updates):
            metrics, _ = run.update(update)
            for key, value in metrics.items():
                history.setdefault(key, []).append(value)
        histories[float(beta)] = history
        if progress:
            row = overoptimisation_table({float(beta): history})[0]
            print(f"beta {beta:g}: learned {row['learned_reward']:.3f}, true "
                  f"{row['true_reward']:.3f}, KL {row['kl']:.2f} nats")
    return histories


def overoptimisation_table(
    histories: dict[float, dict[str, list[float]]], last_fraction: float = 0.1
) -> list[dict[str, float]]:
    """One row per beta: learned and true reward and KL, each averaged over the last
    ``last_fraction`` of updates, and the true reward's peak (a 10-update moving average)."""
    rows = []
    for beta, h in histories.items():
        n = len(h["reward"])
        tail = max(1, math.ceil(last_fraction * n))
        true = np.asarray(h["true_reward"])
        window = min(10, n)
        smooth = np.convolve(true, np.ones(window) / window, mode="valid")
        rows.append({
            "beta": beta,
            "kl": float(np.mean(h["kl"][-tail:])),
            "learned_reward": float(np.mean(h["reward"][-tail:])),
            "true_reward": float(np.mean(true[-tail:])),
            "initial_true_reward": float(np.mean(true[:window])),
            "peak_true_reward": float(smooth.max()),
        })
    return rows


def plot_overoptimisation(
    histories: dict[float, dict[str, list[float]]], path: str | Path, title: str = ""
) -> Path:
    """Learned (solid) and true (dashed) reward: left, against updates for each beta (10-update
    moving averages); right, the end of each run against its KL(pi || pi_ref)."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()

    def smooth(values: list[float]) -> np.ndarray:
        window = min(10, len(values))
        return np.convolve(values, np.ones(window) / window, mode="valid")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (beta, h) in enumerate(histories.items()):
        color = colors[i % len(colors)]
        steps = np.asarray(h["update"])[len(h["update"]) - len(smooth(h["reward"])):]
        axes[0].plot(steps, smooth(h["reward"]), color=color, label=f"beta {beta:g} learned")
        axes[0].plot(steps, smooth(h["true_reward"]), color=color, linestyle="--",
                     label=f"beta {beta:g} true")
    rows = sorted(overoptimisation_table(histories), key=lambda r: r["kl"])
    kls = [r["kl"] for r in rows]
    axes[1].plot(kls, [r["learned_reward"] for r in rows], "o-", label="learned reward")
    axes[1].plot(kls, [r["true_reward"] for r in rows], "s--", label="true reward")
    for r in rows:
        axes[1].annotate(f"beta {r['beta']:g}", (r["kl"], r["true_reward"]), fontsize=8,
                         textcoords="offset points", xytext=(4, -10))
    axes[0].set_xlabel("update")
    axes[1].set_xlabel("KL(pi || pi_ref) (nats), last 10% of updates")
    for ax, name in ((axes[0], "during training"), (axes[1], "end of each run")):
        ax.set_ylabel("reward")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
