"""TensorFlow traces each hot step once (issue 21, start-up): no retrace between later updates.

A ``tf.function`` traces again when its inputs change shape, dtype or Python value; each trace
costs seconds on this machine (benchmarks/startup.py measures the first update). These tests
count traces (``experimental_get_tracing_count``, and the concrete functions the RLHF and
decoding caches hold) after updates 2 and 3 of GRPO on a GPT, PPO and DQN on CartPole: equal
counts say update 3 reused every graph. A test of behaviour, not of time.

The learner's forward pass is the decoder's functional form of the GPT (fewer traced nodes);
it must be the model's forward exactly: checked in float64 against ``GPT.hidden_states``, with
its gradients, in both backends.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.tolerances import assert_close


def _rlhf_graph_counts(run) -> dict[str, int]:
    from duetrl.backends.tf import generation

    states = generation._FREE_STATES.get(run.policy, {})
    return {
        "learner step": run.learner.compiled_step.experimental_get_tracing_count(),
        "reference pass": len(run.reference.__dict__.get("_inference_graphs", {})),
        "decoding steps": sum(len(s.steps) for free in states.values() for s in free),
    }


def test_grpo_tf_traces_nothing_after_its_first_update(backends):
    from duetrl.core.rlhf.train import RLHFRun, RLHFSettings

    settings = RLHFSettings(algo="grpo", reference="uniform", prompts=2, group_size=2,
                            updates=3, seed=0)
    run = RLHFRun(backends["tf"], settings)
    run.update(0)
    run.update(1)
    after_two = _rlhf_graph_counts(run)
    assert after_two == {"learner step": 1, "reference pass": 1, "decoding steps": 1}
    run.update(2)
    assert _rlhf_graph_counts(run) == after_two


def test_ppo_tf_traces_nothing_after_its_first_update(backends):
    from duetrl.backends.tf import ppo
    from duetrl.core.interfaces.rl_settings import make_settings
    from duetrl.core.rl.train import PolicyGradientTrainer

    settings = make_settings("ppo", num_envs=2, num_steps=8, update_epochs=2)
    trainer = PolicyGradientTrainer("ppo", "CartPole-v1", "tf", settings, seed=0,
                                    total_steps=1000)
    functions = {"prepare": ppo.prepare, "train_epochs": ppo.train_epochs}
    trainer.step()
    trainer.step()
    after_two = {k: f.experimental_get_tracing_count() for k, f in functions.items()}
    trainer.step()  # a new learning rate (annealed) and new rollouts: the same graphs
    assert {k: f.experimental_get_tracing_count() for k, f in functions.items()} == after_two
    trainer.close()


def test_dqn_tf_traces_nothing_after_its_first_training_phase(backends):
    from duetrl.core.rl.dqn import DQNTrainer, make_dqn_settings

    settings = make_dqn_settings(num_envs=2, learning_starts=16, batch_size=8, train_freq=4,
                                 gradient_steps=4, target_update_interval=2, hidden_dim=16)
    trainer = DQNTrainer("CartPole-v1", "tf", settings, 0, 2000)
    agent = trainer.agent
    functions = {"update_loop": agent.update_loop, "q_step": agent.q_step}
    phases = 0
    while phases < 2:  # steps before learning_starts collect only: their loss is NaN
        phases += not np.isnan(trainer.step()["loss"])
    after_two = {k: f.experimental_get_tracing_count() for k, f in functions.items()}
    while np.isnan(trainer.step()["loss"]):
        pass
    assert {k: f.experimental_get_tracing_count() for k, f in functions.items()} == after_two
    trainer.close()


CONFIG = GPTConfig(vocab_size=11, block_size=9, n_layer=2, n_head=2, n_embd=8)
TOKENS = np.random.default_rng(0).integers(0, CONFIG.vocab_size, (3, 7))


def _model(backend):
    params = init_gpt_params(CONFIG, 0, "float64", random_affine=True)
    return backend.import_params(backend.GPT(CONFIG, dtype="float64"), params)


def test_the_tf_learners_forward_is_the_models_forward_with_its_gradients(backends):
    """float64: the tf learner's rlhf.hidden_states (the decoder's functional ops, no cache)
    equals GPT.hidden_states, and so do the gradients of a loss on it."""
    import tensorflow as tf

    backend = backends["tf"]
    model = _model(backend)
    weights = np.random.default_rng(1).normal(size=(3, 7, CONFIG.n_embd))
    results = []
    for forward in (lambda t: backend.hidden_states(model, t), model.hidden_states):
        with tf.GradientTape() as tape:
            hidden = forward(tf.constant(TOKENS))
            loss = tf.reduce_sum(hidden * weights)
        grads = tape.gradient(loss, model.trainable_variables)
        results.append((hidden.numpy(), [tf.convert_to_tensor(g).numpy() for g in grads]))
    (got, got_grads), (want, want_grads) = results
    assert_close(got, want, "float64", "hidden states")
    for variable, g, w in zip(model.trainable_variables, got_grads, want_grads):
        assert_close(g, w, "float64", f"gradient of {variable.path}")


def test_decoding_without_a_cache_is_the_models_forward(backends):
    """decode_hidden with cache None (a whole sequence) equals GPT.hidden_states, float64."""
    import importlib

    for name, backend in backends.items():
        generation = importlib.import_module(f"duetrl.backends.{name}.generation")
        model = _model(backend)
        tokens = backend.as_tensor(TOKENS)
        hidden, cache = generation.decode_hidden(
            CONFIG, generation.decoding_weights(model), tokens, None, 0)
        assert cache is None
        want = backend.to_numpy(model.hidden_states(tokens))
        assert_close(backend.to_numpy(hidden), want, "float64", f"{name} decode_hidden")
