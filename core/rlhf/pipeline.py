"""The RLHF pipeline, its three stages measured (outline 3.1.1), once for both backends.

    0. pretrain   pi_ref: a GPT on the task's corpus (``core/rlhf/pi_ref.py``): the format
    1. SFT        pi_SFT: pi_ref fine-tuned on demonstrations, loss on completion tokens only
                  (``core/rlhf/sft.py``)
    2. reward     r_phi: Bradley-Terry on preference pairs (``core/rlhf/reward_training.py``),
                  pairs from the reference distribution plus pairs of pi_SFT's own samples
                  (two completions of one prompt, labelled by the task's rule)
    3. RL         RLOO (or PPO, ...) maximising E[r_phi] - beta KL(pi || pi_SFT), starting from
                  pi_SFT (``core/rlhf/train.py``, ``reward="learned"``); for contrast the same
                  run against the task's TRUE reward

Every stage is scored the same way (``core/rlhf/sft.policy_figures``): one sample per prompt on
the same fixed prompts and sampling noise, the task's TRUE reward and success rate, and the
learned reward r_phi of the same samples. :func:`run_pipeline` returns that table (one row per
stage) and the RL runs' histories (learned and true reward per update); the tutorial
``tutorials/ch03_1_the_rlhf_pipeline.py``, ``duetrl rlhf pipeline`` and the tests call it.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.interfaces.settings import setting
from duetrl.core.rlhf.mdp import SequenceMDP, rollout
from duetrl.core.rlhf.pi_ref import PretrainSettings, load_reference, pretrain_reference
from duetrl.core.rlhf.preferences import PreferencePairs, label_pairs
from duetrl.core.rlhf.reward_training import RewardModelSettings, train_reward_model
from duetrl.core.rlhf.sft import SFTSettings, demonstrator, policy_figures, supervised_fine_tune
from duetrl.core.rlhf.tasks import get_task
from duetrl.core.rlhf.train import RLHFRun, RLHFSettings
from duetrl.core.run import run

STAGES = ("pretrained", "sft", "rl_learned", "rl_true")
"""The rows of the table: pi_ref, pi_SFT, RL against r_phi, RL against the true reward."""


@dataclass(frozen=True)
class PipelineSettings:
    """The whole pipeline's sizes (``duetrl rlhf pipeline``'s flags)."""

    task: str = setting("sort-digits", "text task with demonstrations (core/rlhf/sft.py)")
    pretrain_steps: int = setting(150, "stage 0: AdamW updates of the reference on its corpus")
    sft_steps: int = setting(150, "stage 1: AdamW updates on the demonstrations")
    sft_learning_rate: float = setting(3e-3, "stage 1: peak learning rate")
    demonstrations: int = setting(256, "stage 1: demonstrations")
    reward_pairs: int = setting(256, "stage 2: preference pairs from the reference distribution")
    policy_pairs: int = setting(128, "stage 2: prompts whose two SFT samples make a pair")
    reward_steps: int = setting(300, "stage 2: Adam steps on the Bradley-Terry loss")
    algo: str = setting("rloo", "stage 3: RL objective (rloo, ppo, grpo, reinforce)")
    rl_updates: int = setting(40, "stage 3: RL updates")
    beta: float = setting(0.02, "stage 3: KL coefficient (KL to the SFT model)")
    rl_learning_rate: float = setting(2e-3, "stage 3: Adam step size")
    contrast: bool = setting(True, "also run stage 3 against the task's true reward")
    eval_prompts: int = setting(128, "prompts every stage is scored on (one sample each)")
    seed: int = setting(0, "seeds every stage")

    def __post_init__(self) -> None:
        demonstrator(self.task)  # a task without demonstrations is refused here
        for name in ("pretrain_steps", "sft_steps", "demonstrations", "reward_pairs",
                     "reward_steps", "rl_updates", "eval_prompts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if isinstance(self.policy_pairs, bool) or not isinstance(self.policy_pairs, int) \
                or self.policy_pairs < 0:
            raise ValueError(f"policy_pairs: expected an int >= 0, got {self.policy_pairs!r}")
        if self.algo == "dpo":
            raise ValueError("algo: expected a reward-maximising objective (rloo, ppo, grpo, "
                             "reinforce); dpo uses no reward model, got 'dpo'")
        for name in ("sft_learning_rate", "rl_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)!r}")
        self.rl_settings(reward="task")  # checks algo and beta

    def rl_settings(self, reward_model: str = "", reward: str = "learned") -> RLHFSettings:
        """Stage 3's RLHFSettings (r from ``reward_model``, or the task's with reward="task")."""
        # batch, warm-up and stop penalty pinned: the tutorial's figures were measured with
        # these, and RLHFSettings' own defaults may move (they did: a39dfe2)
        return RLHFSettings(
            task=self.task, algo=self.algo, beta=self.beta, updates=self.rl_updates,
            learning_rate=self.rl_learning_rate, seed=self.seed, prompts=8, group_size=8,
            warmup=10, missing_stop_penalty=0.0,
            epochs=4 if self.algo == "ppo" else 1, reward=reward,
            reward_model=reward_model if reward == "learned" else "",
        )


def policy_pairs(backend: ModuleType, model: Any, task: str, num: int,
                 seed: int) -> PreferencePairs:
    """Pairs of ``model``'s own samples: two completions of each of ``num`` prompts, labelled
    by the task's reward (ties dropped): the data that shows the reward model where the SFT
    policy writes, not only where the reference writes."""
    task_ = get_task(task)
    if num == 0:
        return PreferencePairs([], [], [], np.zeros(0))
    prompts = task_.prompts(num, np.random.default_rng((seed, 23)))
    data = rollout(backend, model, None, SequenceMDP.for_task(task_), prompts, 2, seed=seed + 1)
    first, second = data.completions[0::2], data.completions[1::2]  # prompt-major groups of 2
    return label_pairs(task_, prompts, first, second, np.random.default_rng((seed, 29)))


def run_pipeline(
    backend: ModuleType,
    settings: PipelineSettings = PipelineSettings(),
    out: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the stages of the module docstring in ``backend`` and measure each.

    :param out: the folder of the checkpoints (reference, sft, reward_model .safetensors) and
        of the RL run folders (rl_learned/, rl_true/); None: a temporary folder.
    :param log: called with one line per finished stage (progress), e.g. ``print``.
    :returns: ``{"rows": [...], "histories": {...}, "settings": {...}, "reward_model": {...},
        "checkpoints": {...}}``; each row: stage, true_reward, success, learned_reward, stopped,
        kl (to pi_SFT; 0 for the stages before RL), seconds. ``histories[stage]``: the RL run's
        metrics per update (``reward`` = the reward it was trained on, ``true_reward``).
    """
    if out is None:
        with tempfile.TemporaryDirectory(prefix="duetrl-pipeline-") as tmp:
            return run_pipeline(backend, settings, tmp, log)
    out, s = Path(out), settings
    say = log or (lambda line: None)
    timing: dict[str, float] = {}
    began = time.perf_counter()
    reference_path = out / "reference.safetensors"
    pretrain_reference(backend, s.task, reference_path,
                       PretrainSettings(steps=s.pretrain_steps, documents=1000, seed=s.seed),
                       progress=False)
    reference = backend.GPT(load_reference(reference_path, s.task)[0])
    backend.import_params(reference, load_reference(reference_path, s.task)[1])
    timing["pretrained"] = time.perf_counter() - began
    say(f"0. pretrained the reference ({s.pretrain_steps} steps, {timing['pretrained']:.1f} s)")

    began = time.perf_counter()
    sft_path = out / "sft.safetensors"
    sft_model, sft_summary = supervised_fine_tune(
        backend, s.task, reference_path, sft_path,
        SFTSettings(steps=s.sft_steps, learning_rate=s.sft_learning_rate,
                    demonstrations=s.demonstrations, seed=s.seed))
    timing["sft"] = time.perf_counter() - began
    say(f"1. SFT on {s.demonstrations} demonstrations ({s.sft_steps} steps, masked val loss "
        f"{sft_summary['val_loss']:.3f}, {timing['sft']:.1f} s)")

    began = time.perf_counter()
    reward_path = out / "reward_model.safetensors"
    extra = policy_pairs(backend, sft_model, s.task, s.policy_pairs, s.seed)
    reward_model, reward_figures = train_reward_model(
        backend, RewardModelSettings(task=s.task, pairs=s.reward_pairs, steps=s.reward_steps),
        reward_path, extra_pairs=extra)
    timing["reward_model"] = time.perf_counter() - began
    say(f"2. reward model on {reward_figures['pairs']} pairs ({len(extra)} of SFT samples): "
        f"held-out accuracy {reward_figures['held_out_accuracy']:.3f} "
        f"({timing['reward_model']:.1f} s)")

    sft_reference = load_reference(sft_path, s.task)
    models, histories = {"pretrained": reference, "sft": sft_model}, {}
    runs = [("rl_learned", "learned")] + ([("rl_true", "task")] if s.contrast else [])
    for stage, reward in runs:
        began = time.perf_counter()
        trainer = RLHFRun(backend, s.rl_settings(str(reward_path), reward), sft_reference)
        run(trainer, out / stage, quiet=True, unit="update")
        models[stage], histories[stage] = trainer.policy, trainer.history
        timing[stage] = time.perf_counter() - began
        say(f"3. RL ({s.algo}) against the {'learned' if reward == 'learned' else 'true'} "
            f"reward, {s.rl_updates} updates ({timing[stage]:.1f} s)")

    rows = []
    for stage, model in models.items():
        figures = policy_figures(backend, model, s.task, s.eval_prompts, s.seed + 1000,
                                 reward_model)
        kl = float(np.mean(histories[stage]["kl"][-max(1, math.ceil(0.1 * s.rl_updates)):])
                   ) if stage in histories else 0.0
        rows.append({"stage": stage, **figures, "kl": kl, "seconds": timing[stage]})
    return {
        "rows": rows, "histories": histories, "settings": asdict(s),
        "reward_model": {k: reward_figures[k] for k in ("pairs", "train_accuracy",
                                                        "held_out_accuracy", "loss")},
        "reward_model_seconds": timing["reward_model"],
        "checkpoints": {"reference": str(reference_path), "sft": str(sft_path),
                        "reward_model": str(reward_path)},
    }


def format_table(result: dict[str, Any]) -> str:
    """The table of :func:`run_pipeline` as text, one line per stage."""
    lines = [f"{'stage':<12} {'true r':>7} {'success':>8} {'learned r':>10} {'KL':>6} "
             f"{'s':>6}"]
    for r in result["rows"]:
        lines.append(f"{r['stage']:<12} {r['true_reward']:7.3f} {r['success']:8.3f} "
                     f"{r['learned_reward']:10.3f} {r['kl']:6.2f} {r['seconds']:6.1f}")
    return "\n".join(lines)


def plot_pipeline(results: dict[str, dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Left: each stage's true reward (bars) and success rate (hatched) per backend; right:
    during RL, the learned reward (solid) and the true reward (dashed) of the run against
    r_phi, and the true reward of the run against the task's rule (dotted)."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / (2 * len(results))
    for i, (name, result) in enumerate(results.items()):
        stages = [r["stage"] for r in result["rows"]]
        x = np.arange(len(stages))
        color = colors[i % len(colors)]
        axes[0].bar(x + (2 * i) * width, [r["true_reward"] for r in result["rows"]], width,
                    color=color, label=f"{name} true reward")
        axes[0].bar(x + (2 * i + 1) * width, [r["success"] for r in result["rows"]], width,
                    color=color, alpha=0.45, hatch="//", label=f"{name} success")
        axes[0].set_xticks(x + width * (len(results) - 0.5), stages)
        h = result["histories"].get("rl_learned")
        if h:
            axes[1].plot(h["update"], h["reward"], color=color, label=f"{name} learned r")
            axes[1].plot(h["update"], h["true_reward"], color=color, linestyle="--",
                         label=f"{name} true r (RL on learned)")
        t = result["histories"].get("rl_true")
        if t:
            axes[1].plot(t["update"], t["reward"], color=color, linestyle=":",
                         label=f"{name} true r (RL on true)")
    lowest = min(line.get_ydata().min() for line in axes[1].get_lines()) if \
        axes[1].get_lines() else 0.0
    axes[1].set_ylim(lowest - 0.3, 1.02)  # room for the legend below the curves
    axes[0].set_ylabel("on fixed prompts")
    axes[0].set_title("each stage: true reward and success")
    axes[1].set_xlabel("RL update")
    axes[1].set_ylabel("mean reward of the batch")
    axes[1].set_title("during RL (from the SFT model)")
    for ax, where in zip(axes, ("upper left", "lower right")):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc=where)
    if title:
        fig.suptitle(title)
    with plt.rc_context({"legend.fontsize": 7}):  # a legend save_figure redraws keeps the size
        return save_figure(fig, path)
