"""The settings of a question-answering run (``duetrl qa train``'s flags), and their checks.

A run is two phases on the run loop: the supervised warm-up (``core/lm/train.py`` on gold
"reasoning, then answer" completions) and GRPO with the verifiable reward
(``core/rlhf/train.py``). :meth:`QASettings.rl_settings` is the second phase's
``RLHFSettings``; the warm-up's fields start with ``warmup_``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from duetrl.core.cases.qa.problems import check_family
from duetrl.core.cases.qa.rewards import FORMAT_WEIGHT
from duetrl.core.cases.qa.tasks import QA_TASKS, make_qa_task, task_name
from duetrl.core.interfaces.settings import setting
from duetrl.core.rlhf.pi_ref import ModelSize, PretrainSettings
from duetrl.core.rlhf.settings import RLHFSettings
from duetrl.core.rlhf.tasks import register_task

QA_KIND = "duetrl.rlhf"
"""A QA run's checkpoint is an RLHF run's (``RLHFRun.state``), with ``qa`` in its metadata."""


@dataclass
class QASettings:
    """Settings of a question-answering run (every field is a ``duetrl qa train`` flag)."""

    family: str = setting("arithmetic", "questions: arithmetic, lookup or mixed")
    scratchpad: bool = setting(True, "the warm-up writes the reasoning (off: <t></t>, answer)")
    format_weight: float = setting(FORMAT_WEIGHT, "w of r = exact match + w format")
    warmup_steps: int = setting(2000, "supervised warm-up: AdamW updates on the demonstrations")
    warmup_learning_rate: float = setting(3e-3, "supervised warm-up: peak learning rate")
    warmup_batch_size: int = setting(32, "supervised warm-up: sequences per update")
    warmup_documents: int = setting(20000, "supervised warm-up: gold completions in the corpus")
    n_layer: int = setting(2, "GPT blocks")
    n_head: int = setting(2, "attention heads")
    n_embd: int = setting(32, "model width")
    algo: str = setting("grpo", "RL objective after the warm-up (grpo; rloo, reinforce, ppo)")
    group_size: int = setting(8, "completions per question, k")
    prompts: int = setting(16, "questions per update")
    updates: int = setting(100, "RL updates")
    learning_rate: float = setting(2e-4, "RL: Adam step size")
    beta: float = setting(0.0, "RL: KL coefficient toward the warm-up model")
    held_out: int = setting(200, "held-out questions in each evaluation")
    eval_every: int = setting(25, "RL updates between held-out evaluations")
    seed: int = setting(0, "seeds the questions, the weights and the sampling noise")
    checkpoint_every: int = setting(0, "RL updates between checkpoints")

    def __post_init__(self) -> None:
        check_family(self.family)
        if self.algo == "dpo":
            raise ValueError("algo: expected a policy-gradient objective (grpo, rloo, reinforce "
                             "or ppo); dpo needs preference pairs, not a verifiable reward")
        for name in ("warmup_steps", "warmup_batch_size", "warmup_documents", "held_out",
                     "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not self.warmup_learning_rate > 0:
            raise ValueError(
                f"warmup_learning_rate: expected > 0, got {self.warmup_learning_rate!r}")
        if not (isinstance(self.format_weight, int | float) and self.format_weight >= 0):
            raise ValueError(f"format_weight: expected a float >= 0, got {self.format_weight!r}")
        self.rl_settings()  # every RL field checked by RLHFSettings

    @property
    def task(self) -> str:
        """The registered task: ``qa-<family>[-direct]``, ``-w<w>`` for a non-default weight."""
        name = task_name(self.family, self.scratchpad)
        if self.format_weight == FORMAT_WEIGHT:
            return name
        custom = f"{name}-w{self.format_weight:g}"
        if custom not in QA_TASKS:
            QA_TASKS[custom] = register_task(make_qa_task(
                self.family, self.scratchpad, float(self.format_weight), name=custom))
        return custom

    def rl_settings(self) -> RLHFSettings:
        """The RL phase's settings (pretrained reference: the warm-up model)."""
        return RLHFSettings(
            task=self.task, algo=self.algo, beta=self.beta, reference="pretrained",
            group_size=self.group_size, prompts=self.prompts, updates=self.updates,
            learning_rate=self.learning_rate, warmup=5, seed=self.seed,
            epochs=4 if self.algo == "ppo" else 1, checkpoint_every=self.checkpoint_every,
        )

    def warmup_settings(self) -> PretrainSettings:
        """The supervised warm-up's settings."""
        return PretrainSettings(self.warmup_steps, self.warmup_batch_size,
                                self.warmup_learning_rate, self.warmup_documents, self.seed)

    @property
    def size(self) -> ModelSize:
        return ModelSize(self.n_layer, self.n_head, self.n_embd)


def qa_fields() -> list[dataclasses.Field]:
    """The fields of :class:`QASettings`, for command-line flags."""
    return list(dataclasses.fields(QASettings))
