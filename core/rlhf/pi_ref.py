"""Reference policies pi_ref for RL on a text task (outline 3.1.1, 9.1.2), for both backends.

Two kinds:

- **pretrained**: a small GPT trained in seconds on the task's corpus (prompt + an ordinary
  completion + stop) by the language-model loop of ``core/lm/train.py`` with the backend's
  ``LMTrainer``. It learns the format, not the goal. Training windows start at document
  starts, so the model sees prompts at position 0, exactly as it will during RL.
- **uniform**: a GPT over the task's ``action_alphabet`` only (sort-digits: the ten digits)
  whose token embeddings are zero. The output head is tied to them (logits = LN_f(h) W_te^T),
  so every logit is exactly 0 and pi_ref(y) = 10^-L for every answer: the reference under
  which ``core/rlhf/optimum.py`` knows the optimum exactly. The position embeddings are not
  zero, so gradients reach W_te at the first update and the policy can move away.

  Why this and not a zeroed output layer of the task's GPT: the task's vocabulary also holds
  ':' and the stop token, so zero logits would be uniform over 12 tokens, not 10 digits, and
  answers could stop early; with a vocabulary of exactly the action alphabet, "uniform over
  the ten digits" and "every answer has 8 digits" both hold by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.interfaces.settings import setting
from duetrl.core.rlhf.mdp import SequenceMDP
from duetrl.core.rlhf.tasks import TextTask, get_task


@dataclass(frozen=True)
class ModelSize:
    """The size of a task's GPT (tiny by default: it trains in seconds on a laptop CPU)."""

    n_layer: int = 2  # Transformer blocks
    n_head: int = 2  # attention heads per block
    n_embd: int = 32  # model width d_model

    def config(self, mdp: SequenceMDP) -> GPTConfig:
        """A GPTConfig for ``mdp``: its vocabulary, block_size = prompt + length limit."""
        return GPTConfig(
            vocab_size=mdp.vocab_size,
            block_size=mdp.sequence_length,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
        )


class DocumentData:
    """Token windows that start at document starts (the ``TokenData.batch`` interface).

    The corpus is one stream of documents ``prompt + completion + stop``; a window of
    ``block_size + 1`` tokens begins at a document's first token, so position 0 always holds a
    prompt's first character, as during RL. The last ``val_fraction`` of documents is held out.

    :param documents: the texts.
    :param tokenizer: maps text to ids.
    :param block_size: window length T (inputs x = w[:-1], targets y = w[1:]).
    """

    def __init__(
        self, documents: list[str], tokenizer: Any, block_size: int, val_fraction: float = 0.1
    ) -> None:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in (0, 1), got {val_fraction!r}")
        self.block_size = block_size
        split = int(len(documents) * (1.0 - val_fraction))
        self.splits = {}
        for name, docs in (("train", documents[:split]), ("val", documents[split:])):
            ids = tokenizer.encode("".join(docs))
            starts = np.cumsum([0] + [len(d) for d in docs[:-1]])  # first token of each doc
            starts = starts[starts + block_size + 1 <= len(ids)]
            if len(starts) == 0:
                raise ValueError(
                    f"documents: the {name} split is shorter than block_size + 1 = "
                    f"{block_size + 1} tokens; give more documents"
                )
            self.splits[name] = (ids, starts)

    def batch(
        self, split: str, batch_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)``, each ``(batch_size, block_size)`` int64, windows from document starts."""
        ids, starts = self.splits[split]
        chosen = starts[rng.integers(0, len(starts), size=batch_size)]
        windows = np.stack([ids[s : s + self.block_size + 1] for s in chosen])  # (B, T + 1)
        return windows[:, :-1], windows[:, 1:]


@dataclass(frozen=True)
class PretrainSettings:
    """How the pretrained reference is made (``duetrl rlhf pretrain``)."""

    steps: int = setting(300, "AdamW updates on the corpus")
    batch_size: int = setting(32, "windows per update")
    learning_rate: float = setting(3e-3, "peak learning rate (warm-up, then cosine)")
    documents: int = setting(4000, "documents in the corpus")
    seed: int = setting(0, "seed of the corpus, the initial weights and the batches")


def pretrain_reference(
    backend: ModuleType,
    task: str | TextTask,
    path: str | Path,
    settings: PretrainSettings = PretrainSettings(),
    size: ModelSize = ModelSize(),
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Train a reference GPT on ``task``'s corpus with ``core/lm/train.py`` and save it.

    :param backend: the backend module that trains it (the checkpoint loads in either).
    :param path: the checkpoint file to write (``.safetensors``, kind ``duetrl.gpt``); the
        run's log.csv and summary.json go to ``<path stem>_run/`` beside it.
    :param resume: continue an interrupted pretraining from ``path``.
    :returns: the run's summary (``duetrl.core.run.BASE_KEYS``, then ``val_loss``, ...), with
        ``task``, ``seconds`` and ``parameters``.
    """
    from duetrl.core.lm.train import TrainConfig, train

    task = get_task(task)
    mdp = SequenceMDP.for_task(task, "pretrained")
    config = size.config(mdp)
    data = DocumentData(task.corpus(settings.documents, settings.seed), mdp.tokenizer,
                        config.block_size)
    train_config = TrainConfig(
        steps=settings.steps,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        min_learning_rate=settings.learning_rate / 10,
        warmup_steps=max(1, settings.steps // 10),
        eval_every=settings.steps,
        eval_batches=4,
        seed=settings.seed,
    )
    model = backend.GPT(config, seed=settings.seed)
    result = train(
        backend, model, data, train_config, checkpoint_path=path, resume=resume,
        metadata={"tokenizer": mdp.tokenizer.to_dict(), "task": task.name, "reference": True},
        progress=progress, tensorboard=tensorboard,
    )
    return {**result.summary, "task": task.name, "seconds": result.summary["wall_s"]}


def load_reference(
    path: str | Path, task: str | TextTask
) -> tuple[GPTConfig, dict[str, np.ndarray]]:
    """A pretrained reference's ``(config, canonical params)``, checked against ``task``.

    :raises CheckpointError: for a missing or damaged file.
    :raises ValueError: naming ``reference`` when its vocabulary is not the task's tokeniser or
        its context is too short for prompt + completion.
    """
    from duetrl.core.lm.train import load_gpt_checkpoint

    task = get_task(task)
    config, checkpoint = load_gpt_checkpoint(path)
    mdp = SequenceMDP.for_task(task, "pretrained")
    saved_vocab = checkpoint.metadata.get("tokenizer", {}).get("vocab")
    if saved_vocab is not None and list(saved_vocab) != mdp.tokenizer.vocab:
        raise ValueError(
            f"reference: {str(path)!r} was trained with the tokeniser {''.join(saved_vocab)!r}, "
            f"task {task.name!r} uses {''.join(mdp.tokenizer.vocab)!r}"
        )
    mdp.check_policy(config, name="reference")
    return config, checkpoint.tensors["params"]


def uniform_reference_params(
    task: str | TextTask, size: ModelSize = ModelSize(), seed: int = 0
) -> tuple[GPTConfig, dict[str, np.ndarray]]:
    """``(config, params)`` of the uniform reference: GPT-2 initialisation with W_te = 0, so
    logits = LN_f(h) W_te^T = 0 and pi(a | s) = 1 / |action alphabet| in every state."""
    mdp = SequenceMDP.for_task(task, "uniform")
    config = size.config(mdp)
    params = init_gpt_params(config, seed)
    params["ln_f.scale"] = np.zeros_like(params["ln_f.scale"])  # LN_f(h) = 0 ...
    params["ln_f.bias"] = np.zeros_like(params["ln_f.bias"])  # ... so all logits are 0
    return config, params
