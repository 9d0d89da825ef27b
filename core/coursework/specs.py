"""The assignments: which solution module each comes from, what the student writes, the statement.

An assignment is a chapter's exercise handed to a student in the framework of their choice.
Its reference solution is the project's own code, ``backends/<backend>/<module>.py``; the
student's copy is generated from it (:mod:`duetrl.core.coursework.extract`), and the grader
(:mod:`duetrl.core.coursework.grader`) checks the student's functions against the float64
oracle in ``core/reference`` on public and hidden cases (:mod:`duetrl.core.coursework.cases`).

To add an assignment: write (or mark) the solution in both backends, add an
:class:`Assignment` below, and a case builder in ``cases.py`` (see the instructor's guide,
``core/coursework/INSTRUCTORS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from duetrl.core.coursework import statements
from duetrl.core.coursework.extract import Todo

BACKEND_NAMES = ("torch", "tf")


@dataclass(frozen=True)
class LearningSpec:
    """A learning threshold: the student's update, in the framework's loop, must reach
    ``target`` (the mean return of the last 100 training episodes) within ``budget_steps``,
    and the grader's own evaluation of the trained parameters (greedy policy, 10 fresh
    episodes) must reach ``eval_fraction * target``: training can cross the line while the
    policy still wobbles (the project's TF solution, one seed: 476.6 in training, 463 greedy)."""

    algorithm: str = "reinforce"
    env_id: str = "CartPole-v1"
    target: float = 475.0
    budget_steps: int = 500_000
    seeds: int = 2
    points_per_seed: float = 5.0
    time_limit_s: float = 300.0
    eval_fraction: float = 0.9
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """One assignment.

    :param name: the command-line name (``duetrl assignments make NAME``).
    :param title: one line.
    :param sections: the outline's sections it comes from.
    :param module: the solution module in ``backends/<backend>/``; also the student's file name.
    :param todos: per backend, the definitions the student writes.
    :param keep: top-level helpers copied into the student's file as they are.
    :param extras: ``(module, Todo)``: functions of other solution modules added as TODOs.
    :param forbidden_modules: solution modules (of ``duetrl.backends.<backend>``) whose import
        makes a submission fail; ``duetrl.core.reference`` (the oracle) is always forbidden.
    :param forbidden_names: attribute or function names a submission may not use (a
        framework's ready-made version of what the student must write).
    :param statement: the README, in Markdown, with the equations.
    :param learning: a learning threshold graded instead of unit cases.
    """

    name: str
    title: str
    sections: str
    module: str
    todos: dict[str, tuple[Todo, ...]]
    keep: tuple[str, ...] = ()
    extras: tuple[tuple[str, Todo], ...] = ()
    forbidden_modules: tuple[str, ...] = ()
    forbidden_names: tuple[str, ...] = ()
    statement: str = ""
    learning: LearningSpec | None = None

    @property
    def student_file(self) -> str:
        return f"{self.module}.py"

    def todo_names(self, backend: str) -> list[str]:
        """The functions graded, as the student's file names them."""
        names = [t.rename or t.name for t in self.todos[backend]]
        return names + [t.rename or t.name for _, t in self.extras]


_REINFORCE_TODOS = {
    backend: (
        Todo("prepare", "G_t from compute_returns; standardise when settings say so; flatten"),
        Todo("compute_loss", "L = masked mean of -log pi(a|s) * advantages"),
        Todo("train_step", "gradients of the loss, then one optimizer step"),
        Todo("update", "to tensors, prepare, train_step; metrics as floats"),
    )
    for backend in BACKEND_NAMES
}

ASSIGNMENTS: dict[str, Assignment] = {
    a.name: a for a in (
        Assignment(
            name="attention", title="scaled dot-product and multi-head attention",
            sections="2.1.2, 5.1", module="attention",
            todos={
                "torch": (Todo("scaled_dot_product_attention",
                               "scores = q k^T / sqrt(d_k); masked scores replaced; softmax; @ v"),
                          Todo("MultiHeadAttention.forward",
                               "project, split heads, attend, merge heads, project")),
                "tf": (Todo("scaled_dot_product_attention",
                            "scores = q k^T / sqrt(d_k); masked scores replaced; softmax; @ v"),
                       Todo("MultiHeadAttention.call",
                            "project, split heads, attend, merge heads, project")),
            },
            keep=("head_broadcast_mask",),
            forbidden_modules=("attention", "gpt", "generation"),
            forbidden_names=("scaled_dot_product_attention", "MultiheadAttention",
                             "MultiHeadAttention", "fused_attention", "dot_product_attention"),
            statement=statements.ATTENTION_STATEMENT,
        ),
        Assignment(
            name="returns", title="discounted returns and GAE with terminations and truncations",
            sections="4.2.2", module="returns",
            todos={backend: (
                Todo("compute_returns", "one backward loop over t; bootstrap from next_values "
                     "where the episode is cut, never where it terminated"),
                Todo("compute_gae", "deltas first, then one backward loop over t"),
            ) for backend in BACKEND_NAMES},
            keep=("normalize_advantages",),
            forbidden_modules=("returns", "reinforce", "reinforce_baseline", "ppo", "rlhf"),
            forbidden_names=("compute_returns_listing", "discounted_sum", "episode_flags",
                             "token_gae", "kl_shaped_rewards"),
            statement=statements.RETURNS_STATEMENT,
        ),
        Assignment(
            name="reinforce", title="the REINFORCE loss and one update",
            sections="4.2.3, 5.2", module="reinforce", todos=_REINFORCE_TODOS,
            extras=(("reinforce_baseline", Todo("prepare", "V(s_t), V(s_{t+1}); G_t "
                                                "bootstrapped at cuts; A_t = G_t - V(s_t)",
                                                rename="prepare_with_baseline")),),
            forbidden_modules=("reinforce", "reinforce_baseline", "ppo", "rlhf"),
            forbidden_names=("reinforce_loss",),
            statement=statements.REINFORCE_STATEMENT,
        ),
        Assignment(
            name="ppo-clip", title="the PPO clipped objective",
            sections="2.3.3", module="ppo",
            todos={backend: (Todo("ppo_clip_loss", "ratio, clipped ratio, the pessimistic "
                                  "minimum, negated masked mean"),) for backend in BACKEND_NAMES},
            forbidden_modules=("ppo", "rlhf"),
            forbidden_names=("clipped_policy_loss", "clipped_surrogate", "ppo_lm_loss"),
            statement=statements.PPO_STATEMENT,
        ),
        Assignment(
            name="lm-agent", title="an LM that scores actions (GLAM), and returns-to-go tokens",
            sections="3.2.3, 3.2.5", module="lm_agent",
            todos={backend: (
                Todo("command_scores", "the masked sum over the columns: score = sum_t m_t "
                     "log p(token t+1)"),
                Todo("admissible_log_probs", "empty places filled with MASK_FILL_VALUE, a "
                     "log-softmax over the commands (the last axis), times admissible"),
                Todo("agent_outputs", "hidden states of tokens[:, :-1], the tied head, the "
                     "log-probs of tokens[:, 1:], scores (S, K), log pi; V at prompt_last"),
            ) for backend in BACKEND_NAMES},
            extras=(("decision_transformer", Todo("returns_to_go", "one backward loop over t: "
                                                  "R_t = r_t + gamma (1 - done_t) R_{t+1}")),
                    ("decision_transformer", Todo("return_tokens", "scale to [0, n - 1], "
                                                  "round half to even, clip, int64"))),
            forbidden_modules=("lm_agent", "decision_transformer", "returns"),
            forbidden_names=("sequence_log_probs", "token_log_probs", "inference_log_probs",
                             "inference_values", "policy_outputs", "inference_outputs"),
            statement=statements.LM_AGENT_STATEMENT,
        ),
        Assignment(
            name="scst", title="self-critical sequence training: the advantage, the loss, log pi",
            sections="6.3.2", module="translation",
            todos={backend: (
                Todo("scst_advantages", "each greedy reward repeated k times (source-major "
                     "rows: row i k + j is source i's); A = r(sample) - r(greedy)"),
                Todo("scst_loss", "the advantages; each sample's masked sum of log-probs; "
                     "-mean over the samples of A times it"),
            ) for backend in BACKEND_NAMES},
            keep=("_per_source",),
            extras=(("objectives", Todo("gather_log_probs", "log-softmax over the last axis, "
                                        "then the entry of each position's token")),
                    ("rlhf", Todo("token_log_probs", "logits of tokens[:, :-1] from the model; "
                                  "the log-probs of tokens[:, 1:]"))),
            forbidden_modules=("translation", "rlhf", "objectives"),
            forbidden_names=("sequence_log_probs", "inference_log_probs", "inference_outputs",
                             "policy_outputs", "scst_loss_gradient", "samples_per_source"),
            statement=statements.SCST_STATEMENT,
        ),
        Assignment(
            name="kg", title="knowledge-graph walks: the action mask, the masked log-softmax",
            sections="6.3.3", module="kg",
            todos={backend: (
                Todo("action_mask", "padding closed; in training, the edge (r_q, answer) where "
                     "the walker stands on the query's entity"),
                Todo("masked_log_softmax", "closed scores -> MASK_FILL_VALUE, log-softmax over "
                     "the last axis, times the mask"),
            ) for backend in BACKEND_NAMES},
            forbidden_modules=("kg", "lm_agent"),
            forbidden_names=("admissible_log_probs", "inference_step", "walk_log_probs"),
            statement=statements.KG_STATEMENT,
        ),
        Assignment(
            name="recommender", title="the top-K off-policy correction of a REINFORCE recommender",
            sections="6.2.2", module="recommender",
            todos={backend: (
                Todo("top_k_multiplier", "K (1 - pi)^(K - 1)"),
                Todo("importance_weights", "pi / beta, capped above at c"),
                Todo("event_weights", "1, w or lambda_K w by method; cut from the graph"),
                Todo("corrected_loss", "log pi of the logged items; f at pi = exp(log pi); "
                     "-masked mean of f R log pi"),
            ) for backend in BACKEND_NAMES},
            forbidden_modules=("recommender",),
            forbidden_names=("top_k_objective_grad", "corrected_loss_grad"),
            statement=statements.RECOMMENDER_STATEMENT,
        ),
        Assignment(
            name="reinforce-cartpole", title="a REINFORCE agent that solves CartPole-v1",
            sections="4.2.3, 5.2", module="reinforce", todos=_REINFORCE_TODOS,
            forbidden_modules=("reinforce", "reinforce_baseline", "ppo", "rlhf"),
            forbidden_names=("reinforce_loss",),
            statement=statements.CARTPOLE_STATEMENT,
            learning=LearningSpec(),
        ),
    )
}
"""Every assignment, by name."""


def get_assignment(name: str) -> Assignment:
    """The assignment ``name``; ValueError listing the known ones otherwise."""
    if name not in ASSIGNMENTS:
        raise ValueError(f"assignment: expected one of {sorted(ASSIGNMENTS)}, got {name!r}")
    return ASSIGNMENTS[name]
