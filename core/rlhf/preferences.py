"""Preference pairs for a reward model (outline 2.3.2, 9.2.1), labelled by a rule the policy
never sees: the task's own reward.

Each pair: one prompt x and two completions from the task's corpus distribution (what the
pretrained pi_ref imitates); the one with the higher true reward is chosen, ties are dropped,
and with probability ``label_noise`` the label is flipped (an annotator who errs). Here too
the pairs become the token batches of ``core/interfaces/rlhf.py``'s ``reward_model`` contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from duetrl.core.rlhf.mdp import SequenceMDP, completion_mask
from duetrl.core.rlhf.tasks import TextTask, get_task


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


def pair_batch(mdp: SequenceMDP, pairs: PreferencePairs, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The ``reward_model`` batch (core/interfaces/rlhf.py contract) of the pairs ``rows``."""
    prompts = [pairs.prompts[i] for i in rows]
    chosen_tokens, chosen_mask = encode_completions(mdp, prompts, [pairs.chosen[i] for i in rows])
    rejected_tokens, rejected_mask = encode_completions(
        mdp, prompts, [pairs.rejected[i] for i in rows]
    )
    return {"chosen_tokens": chosen_tokens, "rejected_tokens": rejected_tokens,
            "chosen_mask": chosen_mask, "rejected_mask": rejected_mask}
