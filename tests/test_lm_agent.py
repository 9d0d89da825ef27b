"""An LM that scores actions (outline 3.2.3, GLAM): the spec (core/reference/lm_agent.py), both
backends against it and each other, the layout's mask, bad input, and learning.

The mask is where a one-character bug hides: a slice one column off adds the prompt's last
token (or drops the command's last), a mask that covers padding scores a short command with
its pads, a mean instead of a sum changes every command's weight by its length. Each case below
kills one of them: scores (not only pi: a constant added to every command's score of a state
leaves pi unchanged) are compared with the oracle, which scores each command on its own,
without padding; commands differ in length and only in their last word; the padding's ids are
changed and nothing may move; the gradient of log pi reaches exactly the command columns.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import gymnasium as gym
import numpy as np
import pytest

from duetrl.core.agents.batch import layout
from duetrl.core.agents.settings import AgentSettings
from duetrl.core.agents.tokenizer import WordTokenizer
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.interfaces.rlhf import init_value_head_params
from duetrl.core.reference import lm_agent as oracle
from duetrl.core.tolerances import TOLERANCES

BACKENDS = ["torch", "tf"]

# ---- a tiny text environment that follows core/interfaces/text_env.py ------------------------


class TinyKeyDoorEnv(gym.Env):
    """Take the key, then open the door (reward 1, success). Commands in a seeded order, of
    different lengths; 8 steps at most (a truncation)."""

    metadata: dict = {"render_modes": []}
    GOAL = "open the door"
    TEXTS = ("you are in a room . a key lies on the floor .",
             "you hold the key . the door is closed .")
    COMMANDS = (("take the key", "open the door", "wait", "go north"),
                ("open the door", "take the key", "wait", "go south"))

    def __init__(self) -> None:
        self.action_space = gym.spaces.Discrete(16)
        self.observation_space = gym.spaces.Dict({})
        self.state, self.order, self.steps = 0, np.arange(4), 0

    def vocabulary(self) -> list[str]:
        return [self.GOAL, *self.TEXTS, *(c for cs in self.COMMANDS for c in cs)]

    def oracle_action(self) -> int:
        return int(np.flatnonzero(self.order == 0)[0])

    def _observation(self) -> dict:
        commands = tuple(self.COMMANDS[self.state][i] for i in self.order)
        return {"goal": self.GOAL, "text": self.TEXTS[self.state], "admissible": commands}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state, self.steps = 0, 0
        self.order = self.np_random.permutation(4)
        return self._observation(), {}

    def step(self, action: int):
        from duetrl.core.interfaces.text_env import check_action

        command = self._observation()["admissible"][check_action(action, ["x"] * 4)]
        self.steps += 1
        success = self.state == 1 and command == "open the door"
        if self.state == 0 and command == "take the key":
            self.state = 1
        self.order = self.np_random.permutation(4)
        truncated = self.steps >= 8 and not success
        return (self._observation(), float(success), success, truncated,
                {"success": success})


class EvenTinyKeyDoorEnv(TinyKeyDoorEnv):
    """The same task with every command three words long. A policy that scores a command by
    the sum of its tokens' log-probabilities starts (random GPT) with a strong prior for the
    shortest command; here none is shorter, so where the learning starts depends less on the
    seed's draw of weights (see LEARN)."""

    COMMANDS = (("take the key", "open the door", "wait a moment", "go north now"),
                ("open the door", "take the key", "wait a moment", "go south now"))


TINY_ENV = "duetrl-test/TinyKeyDoor-v0"
EVEN_TINY_ENV = "duetrl-test/EvenTinyKeyDoor-v0"
for _id, _env in ((TINY_ENV, TinyKeyDoorEnv), (EVEN_TINY_ENV, EvenTinyKeyDoorEnv)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=_env, disable_env_checker=True)


def tiny_observation(state: int = 0) -> dict:
    env = TinyKeyDoorEnv()
    env.reset(seed=0)
    env.state = state
    return env._observation()


# ---- helpers ----------------------------------------------------------------------------------
CONFIG = dict(block_size=40, n_layer=2, n_head=2, n_embd=16)


def _tokenizer() -> WordTokenizer:
    return WordTokenizer.from_words(TinyKeyDoorEnv().vocabulary())


def _config(tokenizer: WordTokenizer) -> GPTConfig:
    return GPTConfig(vocab_size=tokenizer.vocab_size, **CONFIG)


def _models(name: str, dtype: str, seed: int = 3):
    from duetrl.core.backend import load_backend

    backend = load_backend(name)
    tokenizer = _tokenizer()
    config = _config(tokenizer)
    model = backend.GPT(config, dtype=dtype, seed=seed)
    head = backend.ValueHead(config.n_embd, dtype=dtype, seed=seed)
    return backend, tokenizer, config, model, head


def _observations() -> list[dict]:
    # commands of 1, 3 and 4 words; two differing only in their last word; 2 and 4 commands
    return [{"goal": "open the door", "text": "you are in a room .",
             "admissible": ("wait", "go north", "go south", "take the key")},
            {"goal": "open the door", "text": "you hold the key . the door is closed .",
             "admissible": ("open the door", "wait")}]


def _oracle(tokenizer: WordTokenizer, config: GPTConfig, observations: list[dict], seed: int = 3):
    from duetrl.core.agents.batch import encode_observation

    params = init_gpt_params(config, seed, "float64")
    head = init_value_head_params(config.n_embd, seed, "float64")
    scores, log_pi, values = [], [], []
    for observation in observations:
        prompt, commands = encode_observation(tokenizer, observation)
        s = oracle.command_scores(params, config, prompt, commands)
        scores.append(s)
        log_pi.append(oracle.action_log_probs(s))
        values.append(oracle.state_value(params, head, config, prompt))
    return scores, log_pi, np.array(values)


def _forward(backend, model, head, grid):
    return backend.inference_outputs(model, head, grid["tokens"], grid["mask"],
                                     grid["admissible"], grid["prompt_last"])


# ---- the layout -------------------------------------------------------------------------------
def test_the_layout_marks_exactly_the_command_tokens():
    tokenizer = _tokenizer()
    observation = {"goal": "open the door", "text": "a key .", "admissible": ("wait",
                                                                               "take the key")}
    grid = layout(tokenizer, [observation], block_size=40)
    prompt = tokenizer.encode("goal : open the door . a key . action :")
    p = len(prompt)
    assert grid["prompt_last"].tolist() == [p - 1] and grid["counts"].tolist() == [2]
    assert grid["tokens"].shape == (2, p + 3) and grid["mask"].shape == (2, p + 2)
    np.testing.assert_array_equal(grid["tokens"][1, p:], tokenizer.encode("take the key"))
    assert grid["tokens"][0, p + 1:].tolist() == [tokenizer.pad_id] * 2  # "wait" + 2 pads
    # column t flags token t+1: "wait" is token p, so column p-1 only
    assert np.flatnonzero(grid["mask"][0]).tolist() == [p - 1]
    assert np.flatnonzero(grid["mask"][1]).tolist() == [p - 1, p, p + 1]


# ---- each backend against the oracle, and against each other ---------------------------------
@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_scores_log_probs_and_value_match_the_oracle(name, dtype):
    backend, tokenizer, config, model, head = _models(name, dtype)
    observations = _observations()
    grid = layout(tokenizer, observations, config.block_size)
    scores, log_pi, values = _oracle(tokenizer, config, observations)
    atol = TOLERANCES["float64"] if dtype == "float64" else TOLERANCES["float32_layer"]
    got_log_pi, got_values = _forward(backend, model, head, grid)
    for s, expected in enumerate(log_pi):
        k = len(expected)
        np.testing.assert_allclose(got_log_pi[s, :k], expected, rtol=0, atol=atol)
        assert np.all(got_log_pi[s, k:] == 0.0)  # the grid's empty places: log pi = 0
    np.testing.assert_allclose(got_values, values, rtol=0, atol=atol)
    # the raw scores too: pi alone would miss a constant added to all commands of a state
    import duetrl.core.reference.rlhf_policy as rp

    params = init_gpt_params(config, 3, "float64")
    token_logp = rp.token_log_probs(params, grid["tokens"], config)
    tensors = backend.as_tensor(token_logp.astype(dtype)), backend.as_tensor(
        grid["mask"].astype(dtype))
    got_scores = backend.to_numpy(backend.command_scores(*tensors)).reshape(2, 4)
    for s, expected in enumerate(scores):
        np.testing.assert_allclose(got_scores[s, : len(expected)], expected, rtol=0, atol=atol)


def test_the_score_is_the_sum_over_the_command_not_the_mean():
    tokenizer = _tokenizer()
    config = _config(tokenizer)
    params = init_gpt_params(config, 3, "float64")
    prompt = tokenizer.encode("goal : open the door . a key . action :")
    commands = [tokenizer.encode("wait"), tokenizer.encode("take the key")]
    scores = oracle.command_scores(params, config, prompt, commands)
    import duetrl.core.reference.rlhf_policy as rp

    tokens = np.concatenate([prompt, commands[1]])[None]
    per_token = rp.token_log_probs(params, tokens, config)[0][len(prompt) - 1:]
    assert len(per_token) == 3 and np.isclose(scores[1], per_token.sum(), atol=1e-12)
    assert not np.isclose(scores[1], per_token.mean())


def test_the_two_backends_agree():
    outs = {}
    for name in BACKENDS:
        backend, tokenizer, config, model, head = _models(name, "float32")
        outs[name] = _forward(backend, model, head, layout(tokenizer, _observations(),
                                                           config.block_size))
    for a, b in zip(outs["torch"], outs["tf"]):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCES["float32_layer"])


@pytest.mark.parametrize("name", BACKENDS)
def test_the_prompt_read_once_gives_the_grid_pass_outputs(name):
    """shared_prompt_outputs (the rollout's and the learner's pass: each prompt once, the
    commands on its keys and values) equals agent_outputs (every row in full) in float64:
    prompts of different lengths, commands of one to three words, empty grid places, padding
    of arbitrary ids, and a batch whose commands are all one word (no second pass)."""
    import importlib

    backend, tokenizer, config, model, head = _models(name, "float64")
    lm_agent = importlib.import_module(f"duetrl.backends.{name}.lm_agent")
    rng = np.random.default_rng(5)
    observations = [*_observations(), tiny_observation(1),
                    {"goal": "open the door", "text": "a key .", "admissible": ("wait",)}]
    one_word = [{"goal": "open the door", "text": "you are in a room . a key lies on the "
                 "floor .", "admissible": ("wait",)},
                {"goal": "open the door", "text": "a key .", "admissible": ("wait", "wait")}]
    for batch in (observations, one_word):
        grid = layout(tokenizer, batch, config.block_size, commands=5)
        pads = grid["tokens"] == tokenizer.pad_id
        tokens = np.where(pads, rng.integers(1, tokenizer.vocab_size, pads.shape), grid["tokens"])
        args = [backend.as_tensor(a) for a in (tokens, grid["mask"], grid["admissible"])]
        args.append(backend.as_tensor(grid["prompt_last"]))
        full = lm_agent.agent_outputs(model, head, *args)
        shared = lm_agent.shared_prompt_outputs(model, head, *args)
        for a, b in zip(full, shared):
            np.testing.assert_allclose(backend.to_numpy(b), backend.to_numpy(a), rtol=0,
                                       atol=TOLERANCES["float64"])


@pytest.mark.parametrize("name", BACKENDS)
def test_padding_changes_nothing_and_the_gradient_reaches_only_command_columns(name):
    backend, tokenizer, config, model, head = _models(name, "float64")
    grid = layout(tokenizer, _observations(), config.block_size)
    log_pi, values = _forward(backend, model, head, grid)
    pads = grid["tokens"] == tokenizer.pad_id  # id 0 is only ever padding
    other = dict(grid, tokens=np.where(pads, 7, grid["tokens"]))  # pads -> another word's id
    assert not np.array_equal(other["tokens"], grid["tokens"])
    log_pi_2, values_2 = _forward(backend, model, head, other)
    np.testing.assert_array_equal(log_pi_2, log_pi)
    np.testing.assert_array_equal(values_2, values)
    # d log pi(a | s) / d log p(token t+1): 1 - pi on the taken command's columns, -pi_j on
    # the others' command columns, exactly 0 on prompt and padding columns
    rng = np.random.default_rng(0)
    token_logp = rng.normal(size=grid["mask"].shape) - 3.0
    mask, admissible = grid["mask"], grid["admissible"]
    gradient = _grad_of_log_pi(name, token_logp, mask, admissible, actions=np.array([3, 0]))
    np.testing.assert_array_equal(gradient != 0, mask > 0)


def _grad_of_log_pi(name, token_logp, mask, admissible, actions):
    from duetrl.core.backend import load_backend

    b = load_backend(name)
    if name == "torch":
        import torch

        x = torch.tensor(token_logp, requires_grad=True)
        scores = b.command_scores(x, torch.tensor(mask)).reshape(admissible.shape)
        log_pi = b.admissible_log_probs(scores, torch.tensor(admissible))
        log_pi[np.arange(len(actions)), actions].sum().backward()
        return x.grad.numpy()
    import tensorflow as tf

    x = tf.Variable(token_logp)
    with tf.GradientTape() as tape:
        scores = tf.reshape(b.command_scores(x, tf.constant(mask)), admissible.shape)
        log_pi = b.admissible_log_probs(scores, tf.constant(admissible))
        picked = tf.gather(log_pi, actions[:, None], batch_dims=1)
        total = tf.reduce_sum(picked)
    return tape.gradient(total, x).numpy()


@pytest.mark.parametrize("name", BACKENDS)
def test_the_ppo_loss_matches_the_oracle(name):
    from duetrl.core.learners.lm_agent import FLOAT_KEYS

    backend, tokenizer, config, model, head = _models(name, "float64")
    observations = _observations()
    grid = layout(tokenizer, observations, config.block_size)
    _, log_pi, values = _oracle(tokenizer, config, observations)
    rng = np.random.default_rng(1)
    batch = {**grid, "actions": np.array([3, 1]), "old_logp": np.array([-1.2, -0.9]),
             "advantages": rng.normal(size=2), "returns": rng.normal(size=2)}
    expected, stats = oracle.ppo_agent_loss(log_pi, batch["actions"], batch["old_logp"],
                                            batch["advantages"], values, batch["returns"],
                                            0.2, 0.5, 0.01)
    learner = backend.LMAgentLearner(model, head, learning_rate=0.0, clip_eps=0.2, vf_coef=0.5,
                                     ent_coef=0.01)
    tensors = {k: learner._as_tensor(np.asarray(v), k in FLOAT_KEYS) for k, v in batch.items()
               if k != "counts"}
    coefficients = {k: learner._as_tensor(np.asarray(v), True)
                    for k, v in learner.coefficients.items()}
    loss, got = learner.loss(tensors, coefficients)
    assert abs(float(loss) - expected) <= TOLERANCES["float64"]
    for key, value in stats.items():
        assert abs(float(got[key]) - value) <= TOLERANCES["float64"], key
    result = learner.update({k: v for k, v in batch.items() if k != "counts"})
    assert abs(result["loss"] - expected) <= TOLERANCES["float64"]


# ---- bad input ------------------------------------------------------------------------------
def test_bad_input_gets_a_clear_message():
    from duetrl.core.learners.lm_agent import check_agent_batch

    tokenizer = _tokenizer()
    with pytest.raises(ValueError, match="vocabulary mismatch.*'dragon'"):
        tokenizer.encode("slay the dragon")
    with pytest.raises(ValueError, match="admissible: expected 1 to"):
        layout(tokenizer, [{"goal": "open the door", "text": "a key .", "admissible": ()}], 40)
    with pytest.raises(ValueError, match="block_size 8"):
        layout(tokenizer, _observations(), 8)
    with pytest.raises(ValueError, match="observations: expected at least one"):
        layout(tokenizer, [], 40)
    grid = layout(tokenizer, _observations(), 40)
    batch = {**grid, "actions": np.array([0, 3]), "old_logp": np.zeros(2),
             "advantages": np.zeros(2), "returns": np.zeros(2)}
    with pytest.raises(ValueError, match="actions: state 1 took action 3, which is not "
                                         "admissible"):
        check_agent_batch(batch)
    from duetrl.core.interfaces.text_env import check_action

    with pytest.raises(ValueError, match="action: expected an index in"):
        check_action(5, ("wait", "go north"))
    with pytest.raises(ValueError, match="policy: expected one of"):
        AgentSettings(policy="mlp-please")


def test_a_pretrained_lm_with_another_vocabulary_is_refused(tmp_path):
    from duetrl.core.agents.train import LMAgentRun
    from duetrl.core.backend import load_backend
    from duetrl.core.checkpoint import Checkpoint, save_checkpoint

    small = WordTokenizer.from_words(["take the key"])
    config = GPTConfig(vocab_size=small.vocab_size, **CONFIG)
    path = tmp_path / "lm.safetensors"
    save_checkpoint(path, Checkpoint("duetrl.gpt", {"params": init_gpt_params(config, 0)},
                                     {"config": config.to_dict(), "tokenizer": small.to_dict()}))
    settings = AgentSettings(env=TINY_ENV, lm_checkpoint=str(path), num_envs=1)
    with pytest.raises(ValueError, match="vocabulary mismatch.*'door'"):
        LMAgentRun(load_backend("torch"), settings)


# ---- learning -------------------------------------------------------------------------------
LEARN = dict(env=EVEN_TINY_ENV, policy="lm-scratch", num_envs=8, updates=60, epochs=4,
             learning_rate=1e-2, n_layer=1, n_head=2, n_embd=16, block_size=40,
             eval_episodes=16, seed=1)
"""PPO's default entropy bonus (0.03) and clip (0.1), on the task whose commands are all three
words long (EvenTinyKeyDoorEnv). On TinyKeyDoorEnv a random GPT's scores are far from uniform
(entropy ~0.3 nats over 4 commands: the sum over a command's tokens favours the short "wait"),
and which seeds found the door moved with each CPU's float kernels and each change of
summation order: 4 of 8 seeds in torch on an AMD EPYC (Dec 2026), others on an Intel machine,
even at entropy bonus 0.1. With every command of one length, 60 updates: greedy success 1.0 in
all of seeds 0-11 (torch) and 0-7 (tf) on that AMD machine, 1 thread, ~3 s (torch) and ~5 s
(tf) a run; at clip 0.2 one seed in 12 failed, so the defaults stay."""


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKENDS)
def test_the_lm_policy_learns_the_tiny_key_door_task(name, tmp_path):
    from duetrl.core.agents.train import train
    from duetrl.core.backend import load_backend

    backend = load_backend(name)
    backend.set_num_threads(1)
    summary = train(backend, AgentSettings(**LEARN), tmp_path, progress=False)
    print(name, summary["success_rate"], summary["env_steps"], summary["env_steps_per_s"])
    assert summary["success_rate"] >= 0.9, summary
