"""Pretraining an LM policy's GPT on sentences about the text worlds (outline 3.2.3, 9.3.2).

What the LM is meant to contribute (GLAM's hypothesis) is knowledge of the world before any
RL: which key opens which door, where things are kept. This module makes that knowledge, in
code, and trains the agent's GPT on it with the ordinary LM loop (``core/lm/train.py``):

* the tokeniser: one id per word of ``world_vocabulary()`` (every word of every world and of
  the corpus, held-out words included), so the LM can read any episode of any split;
* the corpus, a mix of two kinds of true sentences (``prompt_fraction`` of the second):

  1. ``world_sentences`` (core/envs/text/corpus.py): "the red key opens the red door.",
     "the apple belongs in the fridge.", ...;
  2. the same facts said in the policy's own prompt format, so that the words the LM will
     score in RL sit where it will read them:
     "goal : open the red door and leave . you are in the study . a red key lies on the
     floor . you carry nothing . action : take the red key". Each is a KeyDoor state built
     from the world's rules (core/envs/text/keydoor.py renders it), ending with the one
     command a world fact prescribes there: take the key of the door's colour, open the door
     when holding it, leave through an open door, and go back to the hall from a room where
     nothing can be done (the locked door with empty hands: only its key opens it; a key of
     another colour: it opens no door here). Which room to enter from the hall is *not* in
     the corpus: it is not a fact of the world (the rooms are drawn anew each episode; the
     hall's notes say what the searched ones hold), and it is what RL has to find. No
     sentence comes from an RL rollout or from the oracle's episodes; the colours run over
     every colour, held-out ones included (seen in pretraining, never in RL with
     ``split="train"``: the generalisation test of 9.3.2).

  Why the second kind: in a tiny GPT trained on the first kind only, "take the red key" after
  "a red key lies on the floor" is not more likely than "take the blue key": the facts are in
  another sentence shape, and a 2-layer, 32-wide model does not transfer between shapes.
  Why the two "go to the hall" facts: with only the first three, "action :" is never followed
  by a move, and the pretrained LM gives "go to the hall" a probability near 0 in every room
  (measured: 1e-4 at a locked door with empty hands, where it tries "open" for ever); PPO
  cannot explore a command its policy never samples.

  What the two kinds alone do not teach the agent's GPT (measured; benchmarks/lm_agent.py has
  the figures): to compare the goal's colour with the colour of the key that lies in a room.
  After 600 steps "take the K key" gets 0.11 whether K is the door's colour or not (no colour
  is copied from the prompt), and PPO stalls near greedy success 0.57, every failure a key of
  the other colour taken. Hence two more families, on by default (``match_fraction`` 0.25:
  :func:`matching_sentences`, the comparison in a shape of its own; ``hall_facts``: the hall's
  notes read aloud, and a room with both keys), and 4000 steps at batch 32: with them, then
  ``duetrl agent train``'s PPO (lr 3e-4, c_H 0.03, clip 0.1), the greedy success on KeyDoor
  reaches 0.95 in 41-63 s of CPU of PPO in 4 of 6 (seed, backend) runs (seeds 0-2; torch at
  update 100 and 60, tf at 60 and 100; benchmarks/lm_agent.py), but not in every seed
  (torch seed 2 and tf seed 1: not within 120 updates).
  :func:`take_probabilities` measures the comparison: P(take) of the door's key against
  another's, 0.47 against 0.36 (held-out colours 0.63 against 0.39) after this pretraining,
  0.115 against 0.116 after 600 steps at batch 16 (with the families or without them).

* the GPT of the agent's default size (``AgentSettings``: 2 layers, 2 heads, width 32, 128
  positions), saved as a ``duetrl.gpt`` checkpoint with ``params``, ``config`` and the word
  ``tokenizer`` in its metadata: what ``core/agents/train.load_pretrained`` reads
  (``duetrl agent train --policy lm --pretrained FILE``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.agents.settings import AgentSettings
from duetrl.core.agents.tokenizer import WordTokenizer
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.settings import setting
from duetrl.core.interfaces.text_env import prompt


@dataclass
class PretrainSettings:
    """Settings of ``duetrl agent pretrain`` (each field a flag)."""

    sentences: int = setting(4000, "sentences in the corpus (both kinds together)")
    prompt_fraction: float = setting(0.5, "share of prompt-format sentences (0: world facts only)")
    steps: int = setting(4000, "optimiser updates")
    batch_size: int = setting(32, "windows per batch")
    window: int = setting(64, "tokens per training window (at most the GPT's block_size)")
    learning_rate: float = setting(3e-3, "peak learning rate (warm-up, then cosine)")
    n_layer: int = setting(AgentSettings.n_layer, "GPT blocks (the agent's default)")
    n_head: int = setting(AgentSettings.n_head, "attention heads")
    n_embd: int = setting(AgentSettings.n_embd, "model width")
    block_size: int = setting(AgentSettings.block_size, "GPT context")
    match_fraction: float = setting(0.25, "share of colour-matching sentences ('the red door "
                                          "and the blue key : it does not open .'; at most "
                                          "1 - prompt_fraction)")
    hall_facts: bool = setting(True, "prompt-format sentences also say where the hall's notes "
                                     "send the agent (go back to the key's room, then the door)")

    def __post_init__(self) -> None:
        for name in ("sentences", "steps", "batch_size", "window", "n_layer", "n_head",
                     "n_embd", "block_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not 0.0 <= self.prompt_fraction <= 1.0:
            raise ValueError(f"prompt_fraction: expected a float in [0, 1], got "
                             f"{self.prompt_fraction!r}")
        if self.window > self.block_size:
            raise ValueError(f"window: expected at most block_size {self.block_size}, got "
                             f"{self.window}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")
        if not 0.0 <= self.match_fraction <= 1.0 - self.prompt_fraction:
            raise ValueError(f"match_fraction: expected a float in [0, 1 - prompt_fraction = "
                             f"{1.0 - self.prompt_fraction}], got {self.match_fraction!r}")


def world_tokenizer() -> WordTokenizer:
    """One id per word of every text world and of the corpus (held-out words included)."""
    from duetrl.core.envs.text import world_vocabulary

    return WordTokenizer.from_words(world_vocabulary())


def matching_sentences(seed: int, n: int) -> list[str]:
    """``n`` colour-matching sentences, a key and a door of the same colour in half of them:

        the red door and the red key : it opens .
        the red door and the blue key : it does not open .

    The verdict comes after both colours, so predicting it is the equality test a KeyDoor room
    asks for ("take the blue key" or "go to the hall" when the goal's door is red), in a shape
    of its own (measured, benchmarks/lm_agent.py: learnt in that shape, carried to the
    prompt's only in part)."""
    from duetrl.core.envs.text.vocabulary import COLOURS

    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n: expected an int >= 0, got {n!r}")
    rng = np.random.default_rng([seed, 31])
    sentences = []
    for _ in range(n):
        key = str(rng.choice(COLOURS.all))
        door = key if rng.random() < 0.5 else str(rng.choice(
            [c for c in COLOURS.all if c != key]))
        verdict = "it opens ." if key == door else "it does not open ."
        sentences.append(f"the {door} door and the {key} key : {verdict}")
    return sentences


def prompt_sentences(seed: int, n: int, hall_facts: bool = False) -> list[str]:
    """``n`` KeyDoor facts in the policy's prompt format ("goal : ... action : take the red
    key"), any colour and room (held-out ones included): a state is drawn, set to one where a
    world fact says what to do, rendered by the environment, and the fact's command appended.

    ``hall_facts``: three more cases, in the hall when its notes name the room of the door's
    key (hands empty: go back there) or the door's room (its key in hand: go back to the
    door), and in a room where both keys lie (take the door's).
    """
    from duetrl.core.envs.text.keydoor import HALL, HAND, KeyDoorEnv

    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n: expected an int >= 0, got {n!r}")
    env = KeyDoorEnv(split="all")
    rng = np.random.default_rng([seed, 17])
    sentences = []
    for i in range(n):
        env.reset(seed=int(rng.integers(2**31)))
        door, state = env.door_colour, env.state
        key_room = state.keys[0]
        case = i % (8 if hall_facts else 5)
        # the hall's notes may recall the other rooms too (a seeded subset)
        also = (frozenset(r for r in env.rooms if rng.random() < 0.5) if case in (5, 7)
                else frozenset())
        if case == 0:  # the key of the door's colour lies here: take it
            state = state._replace(location=key_room)
            command = f"take the {door} key"
        elif case == 1:  # at the door, holding its key: open it
            state = state._replace(location=env.door_room, keys=(HAND, state.keys[1]))
            command = f"open the {door} door"
        elif case == 2:  # at the open door: leave through it
            state = state._replace(location=env.door_room, door_open=True,
                                   keys=(HAND, state.keys[1]))
            command = f"leave through the {door} door"
        elif case == 3:  # at the locked door with empty hands: it opens only with its key
            state = state._replace(location=env.door_room)
            command = "go to the hall"
        elif case == 4:  # only a key of another colour here: it does not open the door
            state = state._replace(location=state.keys[1])
            command = "go to the hall"
        elif case == 5:  # the hall recalls where the door's key lies, hands empty: fetch it
            state = state._replace(location=HALL, searched=also | {key_room})
            command = env._go(state, key_room)
        elif case == 6:  # two keys here (one was dropped): only the door's colour opens it
            state = state._replace(location=state.keys[1], keys=(state.keys[1],) * 2)
            command = f"take the {door} key"
        else:  # the hall recalls the door's room, its key in hand: go back to the door
            state = state._replace(location=HALL, keys=(HAND, state.keys[1]),
                                   searched=also | {env.door_room})
            command = env._go(state, env.door_room)
        env.state = state
        observation = env._observation()
        assert command in observation["admissible"], (command, observation)
        sentences.append(f"{prompt(observation)} {command}")
    return sentences


def take_probabilities(probabilities: Callable[[dict[str, Any]], np.ndarray], n: int = 48,
                       seed: int = 0, split: str = "all") -> dict[str, float]:
    """The KeyDoor recipe's diagnosis, as a number: in a room where one key lies (hands empty,
    commands "go to the hall" and "take the K key"), the policy's mean probability of taking
    the key when K is the door's colour (``"matching"``) and when it is not (``"other"``), over
    ``n`` seeded worlds of ``split`` (the same world read twice, standing by each key).

    An LM that compares the goal's colour with the key's gives the first more than the second;
    one that does not gives both the same, and PPO then raises "take" for either colour (the
    wrong key taken, every failure of the default corpus measured in benchmarks/lm_agent.py).

    :param probabilities: pi(a_k | s) of one observation (``LMAgentRun.probabilities``).
    """
    from duetrl.core.envs.text.keydoor import KeyDoorEnv

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    env = KeyDoorEnv(split=split)
    rng = np.random.default_rng([seed, 23])
    found: dict[str, list[float]] = {"matching": [], "other": []}
    for _ in range(n):
        env.reset(seed=int(rng.integers(2**31)))
        for label, observation in env.key_room_observations().items():
            take = [c.startswith("take ") for c in observation["admissible"]].index(True)
            found[label].append(float(probabilities(observation)[take]))
    return {label: float(np.mean(values)) for label, values in found.items()}


def pretraining_corpus(seed: int, sentences: int, prompt_fraction: float,
                       match_fraction: float = 0.0, hall_facts: bool = False) -> list[str]:
    """The corpus: world facts, colour-matching sentences (``match_fraction``) and
    prompt-format facts (``prompt_fraction``), shuffled together (seeded)."""
    from duetrl.core.envs.text import world_sentences

    if not 0.0 <= match_fraction <= 1.0 - prompt_fraction:
        raise ValueError(f"match_fraction: expected a float in [0, 1 - prompt_fraction], got "
                         f"{match_fraction!r}")
    n_prompt = int(round(sentences * prompt_fraction))
    n_match = int(round(sentences * match_fraction))
    corpus = (world_sentences(seed, sentences - n_prompt - n_match)
              + matching_sentences(seed, n_match)
              + prompt_sentences(seed, n_prompt, hall_facts))
    order = np.random.default_rng([seed, 19]).permutation(len(corpus))
    return [corpus[i] for i in order]


def pretrain(backend: ModuleType, settings: PretrainSettings, out: str | Path, seed: int = 0,
             progress: bool = True) -> dict[str, Any]:
    """Train the agent's GPT on :func:`pretraining_corpus` with ``core/lm/train.train``; save it
    to ``out`` (a ``duetrl.gpt`` checkpoint with the word tokeniser); the run's summary.

    ``settings.match_fraction`` and ``settings.hall_facts`` are the corpus families of
    :func:`pretraining_corpus` that the KeyDoor recipe needs (on by default;
    ``benchmarks/lm_agent.py`` measured them: see its docstring).
    """
    from duetrl.core.lm.data import TokenData
    from duetrl.core.lm.train import TrainConfig, train

    s = settings
    tokenizer = world_tokenizer()
    corpus = pretraining_corpus(seed, s.sentences, s.prompt_fraction, s.match_fraction,
                                s.hall_facts)
    ids = np.concatenate([tokenizer.encode(sentence, "corpus") for sentence in corpus])
    data = TokenData(ids, s.window)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=s.block_size,
                       n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd)
    model = backend.GPT(config, seed=seed)
    warmup = max(1, s.steps // 10)
    train_config = TrainConfig(steps=s.steps, batch_size=s.batch_size,
                               learning_rate=s.learning_rate,
                               min_learning_rate=s.learning_rate / 10, warmup_steps=warmup,
                               eval_every=max(1, s.steps // 5), eval_batches=4, seed=seed)
    metadata = {"tokenizer": tokenizer.to_dict(),
                "corpus": {"kind": "world sentences + prompt-format facts",
                           "sentences": s.sentences, "prompt_fraction": s.prompt_fraction,
                           "match_fraction": s.match_fraction, "hall_facts": s.hall_facts,
                           "tokens": int(ids.size), "seed": seed}}
    result = train(backend, model, data, train_config, checkpoint_path=out, metadata=metadata,
                   progress=progress)
    return {**result.summary, "checkpoint": str(out), "corpus_tokens": int(ids.size),
            "vocab_size": tokenizer.vocab_size}


STORED_WORLD_LM = "ch09_3_world_lm.safetensors"
"""The world LM the tutorials' full build reads (in ``tutorials/results``): ``duetrl agent
pretrain``'s defaults, the checkpoint chapter 9.3's stored sweep started from."""
WORLD_LM_MADE_BY = (f"duetrl agent pretrain --out runs/agent/world_lm.safetensors, copied to "
                    f"tutorials/results/{STORED_WORLD_LM}")


def tutorial_world_lm(backend: ModuleType, quick: PretrainSettings | None,
                      folder: str | Path) -> tuple[Path, dict[str, Any]]:
    """The world LM a tutorial starts from, and the record of its pretraining
    (``corpus_tokens``, ``steps``, ``val_loss``: the last validation loss).

    :param quick: quick mode's small settings: pretrain them here (seconds), in ``folder``.
        ``None`` (the full build): the stored :data:`STORED_WORLD_LM`, made with
        :class:`PretrainSettings`' defaults (about a minute of CPU saved per tutorial); with
        ``DUETRL_RETRAIN=1``, those defaults pretrained here instead.
    :raises FileNotFoundError: the full build, and no stored world LM (the message says how
        to make it).
    """
    from duetrl.core.checkpoint import read_file
    from duetrl.core.tutorial import results_dir, retrain, stored_path

    if quick is not None or retrain():
        settings = quick or PretrainSettings()
        path = Path(folder) / "world_lm.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        summary = pretrain(backend, settings, path, progress=False)
        return path, {"corpus_tokens": summary["corpus_tokens"], "steps": settings.steps,
                      "val_loss": float(summary["val_loss"])}
    path = stored_path(results_dir() / STORED_WORLD_LM, WORLD_LM_MADE_BY)
    saved = read_file(path)[1]
    return path, {"corpus_tokens": saved["corpus"]["tokens"],
                  "steps": saved["train_config"]["steps"],
                  "val_loss": float(saved["history"]["val_loss"][-1])}


def quick_sweep(source: str | Path, out: str | Path, pretrained: str | Path, seeds: int = 2,
                updates: int = 2, eval_episodes: int = 4) -> Path:
    """The quick mode of a sweep file such as ``sweeps/lm_agent.toml``: the same file with
    ``seeds``, ``updates``, ``eval-episodes`` and the ``pretrained`` checkpoint replaced,
    written to ``out`` (what a test runs in seconds). A block's own list of seeds keeps the
    seeds below ``seeds``; a block left with none is dropped (the file's later seeds)."""
    import re

    text = Path(source).read_text()
    header, *blocks = re.split(r"(?m)^(?=\[\[run\]\])", text)
    header, count = re.subn(r"(?m)^seeds = .*$", f"seeds = {seeds}", header)
    if count == 0:
        raise ValueError(f"source: {str(source)!r} has no line 'seeds = ...' to shorten")
    kept = []
    for block in blocks:
        own = re.search(r"(?m)^seeds = \[([0-9, ]*)\][ \t]*$", block)
        if own:
            chosen = [int(s) for s in own.group(1).split(",") if s.strip() and int(s) < seeds]
            if not chosen:
                continue
            block = f"{block[:own.start()]}seeds = {chosen}{block[own.end():]}"
        kept.append(block)
    text = header + "".join(kept)
    for key, value in (("updates", updates), ("eval-episodes", eval_episodes),
                       ("pretrained", f'"{pretrained}"')):
        text, count = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value}", text)
        if key == "updates" and count == 0:
            raise ValueError(f"source: {str(source)!r} has no line '{key} = ...' to shorten")
    Path(out).write_text(text)
    return Path(out)


__all__ = ["PretrainSettings", "matching_sentences", "pretrain", "pretraining_corpus",
           "prompt_sentences", "quick_sweep", "take_probabilities", "world_tokenizer"]
