"""Text environments (outline 3.2.2): Gymnasium's checker, seeding, oracles, held-out words,
vocabularies, rewards, bad input and ``duetrl play``."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import duetrl.core.envs  # noqa: F401  (registers the ids)
from duetrl.core.cli import main
from duetrl.core.envs import TEXT_ENV_IDS
from duetrl.core.envs.text import (
    SHAPING_BONUS,
    HouseholdEnv,
    KeyDoorEnv,
    TextFrozenLakeEnv,
    text_words,
    world_facts,
    world_sentences,
    world_vocabulary,
)
from duetrl.core.envs.text.vocabulary import COLOURS, OBJECTS, PLACES
from duetrl.core.interfaces.text_env import MAX_ADMISSIBLE, prompt, words

HELDOUT = set(COLOURS.heldout) | set(OBJECTS.heldout) | set(PLACES.heldout) | {
    "toolbox", "rack"}  # furniture found only in held-out rooms
WORLDS = {"duetrl/KeyDoor-v0": KeyDoorEnv, "duetrl/Household-v0": HouseholdEnv,
          "duetrl/TextFrozenLake-v0": TextFrozenLakeEnv}


def make(env_id: str, **kwargs):
    return gym.make(env_id, **kwargs).unwrapped


def episode(env, seed: int, policy: str, rng: np.random.Generator | None = None):
    """Play one episode; returns (observations, rewards, last info, terminated, truncated)."""
    observation, info = env.reset(seed=seed)
    observations, rewards = [observation], []
    terminated = truncated = False
    while not (terminated or truncated):
        if policy == "oracle":
            action = env.oracle_action()
        else:
            action = int(rng.integers(len(observation["admissible"])))
        observation, reward, terminated, truncated, info = env.step(action)
        observations.append(observation)
        rewards.append(reward)
    return observations, rewards, info, terminated, truncated


@pytest.mark.parametrize("env_id", TEXT_ENV_IDS)
@pytest.mark.parametrize("split", ["train", "heldout", "all"])
def test_gymnasiums_checker_passes(env_id: str, split: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning is a failure too
        check_env(gym.make(env_id, split=split).unwrapped, skip_render_check=True)
    env = gym.make(env_id, split=split, render_mode="ansi")
    env.reset(seed=0)
    assert env.render().startswith("goal: ")


@pytest.mark.parametrize("env_id", TEXT_ENV_IDS)
def test_same_seed_same_episode_other_seed_other_world(env_id: str) -> None:
    runs = [episode(make(env_id, split="all"), 7, "random", np.random.default_rng(1))[0]
            for _ in range(2)]
    assert runs[0] == runs[1]
    if env_id != "duetrl/TextFrozenLake-v0":  # the lake's map is fixed
        firsts = {str(make(env_id, split="all").reset(seed=s)[0]) for s in range(10)}
        assert len(firsts) > 1
    slippery = make(env_id, is_slippery=True) if "Frozen" in env_id else None
    if slippery is not None:  # the lake's own randomness follows the seed too
        a = episode(slippery, 3, "random", np.random.default_rng(2))[0]
        b = episode(slippery, 3, "random", np.random.default_rng(2))[0]
        assert a == b


@pytest.mark.parametrize("env_id", TEXT_ENV_IDS)
@pytest.mark.parametrize("split", ["train", "heldout"])
def test_oracle_always_succeeds_random_policy_rarely(env_id: str, split: str) -> None:
    env = make(env_id, split=split)
    for seed in range(50):
        _, rewards, info, terminated, truncated = episode(env, seed, "oracle")
        assert info["success"] and terminated and not truncated, seed
        assert rewards[-1] == 1.0 and sum(rewards) == 1.0, seed
        assert len(rewards) <= 6, seed  # a shortest path: every world needs at most 6 steps
    rng = np.random.default_rng(0)
    rate = np.mean([episode(env, seed, "random", rng)[2]["success"] for seed in range(300)])
    # measured over 2,000 episodes: KeyDoor 6%, Household 8%, FrozenLake 1.5%
    assert 0.0 <= rate < 0.15, rate


def test_slippery_lake_oracle_matches_frozenlakes_optimum() -> None:
    env = make("duetrl/TextFrozenLake-v0", is_slippery=True)
    rate = np.mean([episode(env, seed, "oracle")[2]["success"] for seed in range(300)])
    assert 0.64 < rate < 0.84, rate  # the optimal policy succeeds about 74% of the time


@pytest.mark.parametrize("env_id", ["duetrl/KeyDoor-v0", "duetrl/Household-v0"])
def test_heldout_words_only_with_heldout_split(env_id: str) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "heldout"):
        env = make(env_id, split=split)
        for seed in range(40):
            observations = episode(env, seed, "random", rng)[0]
            seen = set().union(*(text_words(o) for o in observations))
            if split == "train":
                assert not seen & HELDOUT, (seed, seen & HELDOUT)
            else:  # the goal itself turns on a held-out word
                assert set(words(observations[0]["goal"])) & HELDOUT, observations[0]["goal"]


@pytest.mark.parametrize("env_id", TEXT_ENV_IDS)
def test_every_word_is_in_the_vocabulary(env_id: str) -> None:
    env = make(env_id, split="all")
    vocabulary = set(env.vocabulary())
    rng = np.random.default_rng(0)
    for seed in range(60):
        for observation in episode(env, seed, "random" if seed % 2 else "oracle", rng)[0]:
            assert text_words(observation) <= vocabulary, text_words(observation) - vocabulary
            assert set(prompt(observation).split()) <= vocabulary
            assert 1 <= len(observation["admissible"]) <= MAX_ADMISSIBLE
    assert set(env.vocabulary()) <= set(world_vocabulary())
    if env_id != "duetrl/TextFrozenLake-v0":
        assert HELDOUT & vocabulary  # held-out words are in the vocabulary


@pytest.mark.parametrize("env_id", TEXT_ENV_IDS)
def test_the_article_follows_the_next_word(env_id: str) -> None:
    """'an orange key', 'a red key': every world's text and the corpus say 'a'/'an' through
    vocabulary.article (the LM reads in pretraining what RL shows it)."""
    from duetrl.core.agents.pretrain import prompt_sentences
    from duetrl.core.envs.text.vocabulary import article

    assert (article("orange"), article("apple"), article("red"), article("fridge")) == (
        "an", "an", "a", "a")
    with pytest.raises(ValueError, match="word: expected a non-empty string, got ''"):
        article("")
    env = make(env_id, split="all")
    rng = np.random.default_rng(1)
    texts = list(world_facts()) + prompt_sentences(0, 200, hall_facts=True)
    for seed in range(60):
        texts += [o["text"] for o in episode(env, seed, "random" if seed % 2 else "oracle",
                                             rng)[0]]
    pairs = [(a, b) for text in texts for a, b in zip(words(text), words(text)[1:])
             if a in ("a", "an") and b.isalpha()]
    assert pairs and all(a == article(b) for a, b in pairs), [
        p for p in pairs if p[0] != article(p[1])][:5]
    if env_id == "duetrl/KeyDoor-v0":  # a held-out colour starts with a vowel
        assert ("an", "orange") in pairs and ("a", "red") in pairs


@pytest.mark.parametrize("env_id", TEXT_ENV_IDS)
def test_first_state_offers_the_most_commands_one_step_on(env_id: str) -> None:
    # check_env samples an action one step after a reset and plays it after reset(seed=123)
    env = make(env_id, split="all")
    for seed in range(30):
        first = env.reset(seed=seed)[0]["admissible"]
        for action in range(len(first)):
            env.reset(seed=seed)
            assert len(env.step(action)[0]["admissible"]) <= len(first)
            assert env.action_space.sample() < len(env.admissible())


def test_shaped_reward_on_the_oracles_path() -> None:
    for env_id, bonuses in [("duetrl/KeyDoor-v0", 2), ("duetrl/Household-v0", 1),
                            ("duetrl/TextFrozenLake-v0", 6)]:
        env = make(env_id, reward="shaped")
        for seed in range(10):
            _, rewards, info, _, _ = episode(env, seed, "oracle")
            assert info["success"]
            assert sum(rewards) == pytest.approx(1.0 + bonuses * SHAPING_BONUS), (env_id, seed)


def test_shaped_bonus_is_paid_once_and_the_repeating_one_can_be_farmed() -> None:
    def farm(reward: str) -> float:
        env = make("duetrl/KeyDoor-v0", reward=reward)
        env.reset(seed=0)
        while not env.admissible()[env.oracle_action()].startswith("take"):
            env.step(env.oracle_action())
        total = 0.0
        for _ in range(5):  # take the right key, drop it, take it again ...
            take = next(i for i, c in enumerate(env.admissible()) if c.startswith("take"))
            total += env.step(take)[1]
            drop = next(i for i, c in enumerate(env.admissible()) if c.startswith("drop"))
            total += env.step(drop)[1]
        return total

    assert farm("shaped") == pytest.approx(SHAPING_BONUS)
    assert farm("shaped_repeating") == pytest.approx(5 * SHAPING_BONUS)
    assert farm("sparse") == 0.0


@pytest.mark.parametrize("env_id", TEXT_ENV_IDS)
def test_time_limit_truncates_at_exactly_max_steps(env_id: str) -> None:
    env = make(env_id, max_steps=3)
    env.reset(seed=0)
    stay = 0 if "Frozen" in env_id else None  # north from row 1: into the edge
    for step in range(1, 4):
        if stay is None:  # walk between the hall and a room: never a success
            action = 0
        else:
            action = stay
        _, reward, terminated, truncated, info = env.step(action)
        assert not terminated and reward == 0.0 and not info["success"]
        assert truncated == (step == 3), step
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_success_is_reported_on_the_step_that_reaches_it() -> None:
    env = make("duetrl/Household-v0")
    env.reset(seed=0)
    while True:
        command = env.admissible()[env.oracle_action()]
        _, reward, terminated, truncated, info = env.step(env.oracle_action())
        if command.startswith("put"):
            assert terminated and info["success"] and reward == 1.0
            break
        assert not terminated and not info["success"] and reward == 0.0


def test_a_hole_ends_the_lake_without_success() -> None:
    env = make("duetrl/TextFrozenLake-v0")
    env.reset(seed=0)
    env.step(1)  # east, to row 1 column 2
    observation, reward, terminated, truncated, info = env.step(2)  # south: the hole at 2,2
    assert terminated and not truncated and not info["success"] and reward == 0.0
    assert observation["text"] == "you fell into a hole at row 2 column 2."


def test_bad_input_is_a_clear_value_error_and_changes_nothing() -> None:
    env = make("duetrl/KeyDoor-v0")
    observation, _ = env.reset(seed=0)
    count = len(observation["admissible"])
    for bad in (count, -1, "go to the hall", 1.0, True):
        with pytest.raises(ValueError, match="action") as error:
            env.step(bad)
        assert "go to the" in str(error.value)  # the list is named
    assert env.steps == 0 and env._observation() == observation
    assert env.step(np.int64(0))[0] != observation  # a NumPy integer is an index too
    with pytest.raises(ValueError, match="split"):
        gym.make("duetrl/Household-v0", split="test")
    with pytest.raises(ValueError, match="reward"):
        gym.make("duetrl/KeyDoor-v0", reward="dense")
    with pytest.raises(ValueError, match="max_steps"):
        gym.make("duetrl/KeyDoor-v0", max_steps=0)
    with pytest.raises(ValueError, match="split"):
        gym.make("duetrl/TextFrozenLake-v0", split="heldin")
    with pytest.raises(ValueError, match="n"):
        world_sentences(0, -1)


def test_world_sentences_are_seeded_true_and_cover_heldout_words() -> None:
    assert world_sentences(3, 50) == world_sentences(3, 50) != world_sentences(4, 50)
    facts = set(world_facts())
    sentences = world_sentences(0, 2 * len(facts))
    assert set(sentences) == facts  # every fact at least once when n allows
    corpus_words = {w for s in sentences for w in words(s)}
    assert HELDOUT <= corpus_words and corpus_words <= set(world_vocabulary())
    for needed in ("the red key opens the red door.", "the apple belongs in the fridge.",
                   "the fridge is in the kitchen.", "there is a hole at row 2 column 2."):
        assert needed in facts
    # the facts agree with the worlds: every Household goal follows them
    env = make("duetrl/Household-v0", split="all")
    for seed in range(20):
        goal = env.reset(seed=seed)[0]["goal"]  # put the X in the Y
        _, _, thing, _, _, furniture = goal.split()
        assert f"the {thing} belongs in the {furniture}." in facts


def test_play_oracle_end_to_end(capsys: pytest.CaptureFixture) -> None:
    assert main(["play", "KeyDoor-v0", "--seed", "3", "--oracle", "--reward", "shaped"]) == 0
    out = capsys.readouterr().out
    assert "goal: open the" in out and "[0] go to the" in out
    assert "reward 0.1" in out
    assert out.rstrip().endswith("success: yes, return 1.2, steps 6")
    assert main(["play", "duetrl/Household-v0", "--split", "heldout", "--oracle"]) == 0
    assert "success: yes, return 1" in capsys.readouterr().out


def test_play_reads_numbers_and_quits(capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("9\nx\n0\nq\n"))
    assert main(["play", "TextFrozenLake-v0"]) == 0
    out = capsys.readouterr().out
    assert out.count("type a number from 0 to 3") == 2
    assert "go north: reward 0" in out and out.rstrip().endswith("quit")
    assert main(["play", "NoSuchWorld"]) == 2
    assert "env: expected one of" in capsys.readouterr().err


def test_lake_commands_move_as_they_say_and_the_text_tells_the_neighbours() -> None:
    env = make("duetrl/TextFrozenLake-v0")
    observation, _ = env.reset(seed=0)
    assert observation["text"] == ("you are at row 1 column 1. north is the edge, east is ice, "
                                   "south is ice, west is the edge.")
    moves = {"go east": "row 1 column 2", "go west": "row 1 column 1",
             "go south": "row 2 column 1", "go north": "row 1 column 1"}
    for command, where in moves.items():
        observation = env.step(env.admissible().index(command))[0]
        assert observation["text"].startswith(f"you are at {where}."), command


def test_the_wrong_key_does_not_open_the_door() -> None:
    env = make("duetrl/KeyDoor-v0")
    env.reset(seed=0)
    other = env.key_colours[1]
    env.step(env.admissible().index(f"go to the {env.state.keys[1]}"))
    env.step(env.admissible().index(f"take the {other} key"))
    env.step(env.admissible().index("go to the hall"))
    env.step(env.admissible().index(f"go to the {env.door_room}"))
    observation, reward, terminated, _, _ = env.step(
        env.admissible().index(f"open the {env.door_colour} door"))
    assert not env.state.door_open and reward == 0.0 and not terminated
    assert (f"the {env.door_colour} door does not open with the {other} key."
            in observation["text"])
    assert f"leave through the {env.door_colour} door" not in observation["admissible"]


def test_key_room_observations_show_each_key_where_it_lay_and_change_nothing() -> None:
    env = make("duetrl/KeyDoor-v0")
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.key_room_observations()
    env.reset(seed=4)
    door, other = env.key_colours
    first_room = env.state.keys[1]
    env.step(env.admissible().index(f"go to the {first_room}"))
    env.step(env.admissible().index(f"take the {other} key"))  # the episode moved on
    before = env.state
    views = env.unwrapped.key_room_observations()
    assert env.state == before  # the episode goes on unchanged
    for label, colour, room in (("matching", door, env.key_rooms[0]),
                                ("other", other, env.key_rooms[1])):
        view = views[label]
        assert view["goal"] == f"open the {door} door and leave"
        assert view["text"].startswith(f"you are in the {room}.")
        assert f"{colour} key lies on the floor." in view["text"]
        assert view["text"].endswith("you carry nothing.")
        assert view["admissible"] == ("go to the hall", f"take the {colour} key")


def _searcher(observation: dict) -> int:
    """A policy of the current text alone: take and use the key of the goal's colour, enter
    a room never searched, go back to the door once its key is in hand."""
    colour = observation["goal"].split()[2]
    commands, text = observation["admissible"], observation["text"]
    holding = f"you carry the {colour} key" in text
    wanted = [f"leave through the {colour} door"]
    wanted += ([f"open the {colour} door", f"go back to the {colour} door"] if holding
               else [f"take the {colour} key"])
    for command in wanted:
        if command in commands:
            return commands.index(command)
    unsearched = [i for i, c in enumerate(commands) if c.startswith("go to the ")
                  and c != "go to the hall"]
    return unsearched[0] if unsearched else commands.index("go to the hall")


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_the_key_door_hall_remembers_so_a_memoryless_greedy_policy_succeeds(split: str) -> None:
    env = make("duetrl/KeyDoor-v0", split=split)
    lengths = []
    for seed in range(200):
        observation, _ = env.reset(seed=seed)
        terminated = truncated = False
        while not (terminated or truncated):
            observation, reward, terminated, truncated, _ = env.step(_searcher(observation))
        assert terminated and reward == 1.0, (seed, observation)
        lengths.append(env.unwrapped.steps)
    assert max(lengths) <= 10 and min(lengths) == 6, (min(lengths), max(lengths))
    # the notes: what a searched room holds, and which rooms are not searched yet
    env.reset(seed=3)
    keydoor = env.unwrapped
    first = keydoor.rooms[0]
    env.step(0)
    observation, *_ = env.step(0)  # back in the hall
    assert f"the {first} " in observation["text"] and "you have not searched" in observation["text"]
    back = (f"go back to the {keydoor.door_colour} door" if first == keydoor.door_room
            else f"go back to the {first}")
    assert observation["admissible"][0] == back
    assert [c.startswith("go to the ") for c in observation["admissible"][1:3]] == [True, True]
    env.step(0)
    assert keydoor.state.location == first
