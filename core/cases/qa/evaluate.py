"""Held-out accuracy (outline 6.3.1): answer questions the model never trained on, greedily.

    pass@1      = 1/(n k) sum_q sum_j r_exact(y_qj),  y_qj ~ pi(. | q), k samples per question
    greedy      = 1/n sum_q r_exact(greedy completion of q)
    format rate = 1/(n k) sum_q sum_j r_format(y_qj)

pass@1 is what DeepSeek-R1 reports (k samples per question, the mean of their exact match):
the accuracy of the policy as it is used and trained, sampled from its own distribution
(temperature 1). Greedy decoding (the most likely token at each step) is reported beside it.
The held-out questions are a fixed list drawn once from the problems that
``problems.held_out`` keeps out of training, and the sampling noise is seeded, so every
evaluation of a run, and every run of one seed, asks the same questions with the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.qa.problems import draw, solve
from duetrl.core.cases.qa.rewards import exact_match, format_reward
from duetrl.core.cases.qa.tasks import careless_solution
from duetrl.core.rlhf.mdp import SequenceMDP


def held_out_questions(family: str, n: int, seed: int = 0) -> list[str]:
    """``n`` held-out questions of ``family`` (the same list for the same ``(n, seed)``)."""
    rng = np.random.default_rng((seed, 11))
    return [draw(family, rng, "held_out")[0] for _ in range(n)]


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate_policy` measured: the rates, and the greedy completions."""

    accuracy: float
    greedy_accuracy: float
    format_rate: float
    questions: list[str]
    completions: list[str]

    def examples(self, n: int = 4) -> list[dict[str, Any]]:
        """The first ``n`` (question, completion, right answer, correct) for a report."""
        return [{"question": q.strip(), "completion": c, "answer": solve(q).answer,
                 "correct": bool(exact_match(c, solve(q).answer))}
                for q, c in zip(self.questions[:n], self.completions[:n])]


SAMPLES = 4
"""k: samples per held-out question for pass@1."""


def slips(evaluation: Evaluation) -> dict[str, float]:
    """Greedy accuracy of ``evaluation`` split by what the careless demonstrator gets wrong:
    arithmetic problems with a carry (it forgets the carry) against those without, lookups
    of a later row (it reads the first) against the first row; and ``slip_rate``, the share of
    the former answered exactly as the careless demonstrator answers (its slip, imitated).
    NaN for a split with no question."""
    hard, easy, slipped = [], [], []
    for question, completion in zip(evaluation.questions, evaluation.completions):
        right, careless = solve(question).answer, careless_solution(question)[1]
        correct = exact_match(completion, right)
        if careless == right:
            easy.append(correct)
        else:
            hard.append(correct)
            slipped.append(exact_match(completion, careless))
    mean = lambda values: float(np.mean(values)) if values else float("nan")  # noqa: E731
    return {"slip_prone_accuracy": mean(hard), "other_accuracy": mean(easy),
            "slip_rate": mean(slipped), "slip_prone_share": len(hard) / len(evaluation.questions)}


def _complete(backend: ModuleType, model: Any, mdp: SequenceMDP, questions: list[str],
              **sampling: Any) -> list[str]:
    ids = np.stack([mdp.tokenizer.encode(q) for q in questions])  # (B, P)
    out = backend.generate(model, ids, mdp.max_new_tokens, **sampling)
    return [mdp.completion_text(row) for row in out.new_tokens]


def evaluate_policy(
    backend: ModuleType, model: Any, mdp: SequenceMDP, questions: list[str],
    samples: int = SAMPLES, seed: int = 0,
) -> Evaluation:
    """pass@1 over ``samples`` completions per question (noise seeded by ``seed``), greedy
    accuracy, format rate of the samples, of ``model`` on ``questions``."""
    mdp.check_policy(model.config)
    for q in questions:
        solve(q)  # an empty or unknown question is named before any decoding
    answers = [solve(q).answer for q in questions]
    greedy = _complete(backend, model, mdp, questions, greedy=True)
    repeated = [q for q in questions for _ in range(samples)]
    sampled = _complete(backend, model, mdp, repeated, seed=seed)
    exact = [exact_match(c, answers[i // samples]) for i, c in enumerate(sampled)]
    return Evaluation(
        accuracy=float(np.mean(exact)),
        greedy_accuracy=float(np.mean([exact_match(c, a) for c, a in zip(greedy, answers)])),
        format_rate=float(np.mean([format_reward(c) for c in sampled])),
        questions=list(questions), completions=greedy,
    )


def evaluate_checkpoint(
    backend: ModuleType, path: str, questions: list[str] | None = None, held_out: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """The figures of a QA checkpoint (an RL run's, or its warm-up's) on ``questions`` (padded
    to the prompt width) or, when None, on ``held_out`` held-out questions of its family.

    :raises CheckpointError: for a missing or damaged file, or one that is no QA model.
    :raises ValueError: naming ``question`` for an empty or unknown question.
    """
    from duetrl.core.cases.qa.problems import pad
    from duetrl.core.cases.qa.tasks import QA_TASKS
    from duetrl.core.checkpoint import CheckpointError, load_checkpoint
    from duetrl.core.interfaces.gpt_config import GPTConfig

    checkpoint = load_checkpoint(path)
    task = (checkpoint.metadata.get("settings") or {}).get("task") or checkpoint.metadata.get(
        "task")
    if task not in QA_TASKS or "params" not in checkpoint.tensors:
        raise CheckpointError(f"checkpoint {str(path)!r}: is no question-answering model (task "
                              f"{task!r}); give a `duetrl qa train` run's checkpoint or warm-up")
    mdp = SequenceMDP.for_task(task)
    saved_vocab = (checkpoint.metadata.get("tokenizer") or {}).get("vocab")
    if saved_vocab is not None and list(saved_vocab) != mdp.tokenizer.vocab:
        raise CheckpointError(f"checkpoint {str(path)!r}: was trained with another vocabulary "
                              f"({''.join(saved_vocab)!r}), not task {task}'s")
    model = backend.GPT(GPTConfig.from_dict(checkpoint.metadata["config"]))
    backend.import_params(model, checkpoint.tensors["params"])
    family = task.split("-")[1]
    if questions:
        split = "given"
        asked = [pad(q.strip()) if q.strip() else q for q in questions]
    else:
        split, asked = "held-out", held_out_questions(family, held_out, seed)
    result = evaluate_policy(backend, model, mdp, asked, seed=seed)
    return {"task": task, "checkpoint": str(path), "split": split, "questions": len(asked),
            "accuracy": result.accuracy, "greedy_accuracy": result.greedy_accuracy,
            "format_rate": result.format_rate, "examples": result.examples(len(asked))[:8]}
