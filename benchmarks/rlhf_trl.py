"""Benchmark: duetrl's GRPO (torch and tf) against TRL's ``GRPOTrainer``, same weights, same task.

Run by hand (``python benchmarks/rlhf_trl.py``), never in the test suite; ``make bench`` runs
it through ``benchmarks/run_all.py``. For each model size (``--sizes``: ``reference``, the
sort-digits reference of ``core/rlhf/pi_ref.ModelSize``, and ``large``, about 100x its
parameters, where arithmetic rather than per-call overhead dominates):

1. a sort-digits reference GPT is pretrained in torch (``core/rlhf/pi_ref.pretrain_reference``;
   cached under ``--cache-dir``, so the large one pretrains once) or loaded from
   ``--reference-path``;
2. duetrl's GRPO trains from it in torch and in tf *interleaved* (one update of each in turn),
   until the mean reward of the last ``--smooth`` updates reaches ``--target``;
3. the same weights become a Hugging Face ``GPT2LMHeadModel`` (:func:`to_gpt2`, in code:
   nothing is downloaded) with a character tokenizer of duetrl's vocabulary built in code
   (:func:`digit_tokenizer`), and TRL's ``GRPOTrainer`` trains it with the settings matched
   (:func:`trl_config`; listed in the JSON under ``settings``) until the same criterion.

Reported per size and trainer: wall seconds to the target (first update, tracing and XLA
compile included; TRL's trainer construction and ours are both left out), the process CPU
seconds over the same span (a fairer figure on a loaded machine), the updates it took, and the
ratios ours / TRL (goal: at most 0.5 in both backends).

Matched settings (duetrl ``RLHFSettings`` -> TRL ``GRPOConfig``): k completions per prompt
(``group_size`` -> ``num_generations``), prompts per update (B = prompts * k ->
``per_device_train_batch_size``, one gradient step per generation batch:
``steps_per_generation=1``, ``num_iterations=1``), Adam (AdamW with weight decay 0, betas
0.9/0.999, eps 1e-8), the learning rate with duetrl's linear warm-up (lr * min(1, (u+1)/warmup),
given to TRL as the scheduler), gradient clipping at norm 1, beta (k3 KL in the loss), clip eps
0.2, loss normalisation ``grpo`` (per-sequence token mean, then batch mean) ->
``loss_type="grpo"``, group-std advantage scaling -> ``scale_rewards="group"``, temperature 1,
no top-k/top-p, the completion limit (8 digits + the stop = 9 tokens) ->
``max_completion_length``, the penalty for a completion that never stops
(``missing_stop_penalty``, in TRL's reward function), float32 on CPU, ``--threads`` threads
for each framework.
Not matched, because the trainers differ: the prompts (duetrl draws them from its own
seeded stream, TRL samples its dataset of the same task's prompts) and the sampling noise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.rlhf.mdp import SequenceMDP
from duetrl.core.rlhf.pi_ref import ModelSize, PretrainSettings, load_reference, pretrain_reference
from duetrl.core.rlhf.settings import RLHFSettings

HERE = Path(__file__).resolve().parent
TASK = "sort-digits"
SIZES = {  # name -> the GPT's size; "large" has ~100x the parameters of "reference"
    "reference": ModelSize(),
    "large": ModelSize(n_layer=4, n_head=4, n_embd=232),
}


# ---------------------------------------------------------------- the Hugging Face model


def to_gpt2_state_dict(config: GPTConfig, params: dict[str, np.ndarray]) -> dict[str, Any]:
    """duetrl's canonical GPT parameters as a ``GPT2LMHeadModel`` state dict (torch tensors).

    The inverse of ``core/interfaces/gpt_params.gpt2_to_canonical``: the q, k, v kernels
    ``(D, D)`` are joined into GPT-2's ``c_attn`` ``(D, 3D)`` (Conv1D keeps ``(in, out)``, the
    canonical layout), and ``lm_head`` is ``wte`` (the output head is tied in both).
    """
    import torch

    def t(x: np.ndarray) -> Any:
        return torch.tensor(np.asarray(x, dtype=np.float32))

    sd = {"transformer.wte.weight": t(params["wte.embeddings"]),
          "transformer.wpe.weight": t(params["wpe.embeddings"])}
    for i in range(config.n_layer):
        h, p = f"transformer.h.{i}", f"blocks.{i}"
        sd[f"{h}.ln_1.weight"], sd[f"{h}.ln_1.bias"] = t(params[f"{p}.ln_1.scale"]), t(
            params[f"{p}.ln_1.bias"])
        qkv = ("q_linear", "k_linear", "v_linear")
        sd[f"{h}.attn.c_attn.weight"] = t(np.concatenate(
            [params[f"{p}.attn.{n}.kernel"] for n in qkv], axis=1))
        sd[f"{h}.attn.c_attn.bias"] = t(np.concatenate(
            [params[f"{p}.attn.{n}.bias"] for n in qkv]))
        sd[f"{h}.attn.c_proj.weight"] = t(params[f"{p}.attn.out.kernel"])
        sd[f"{h}.attn.c_proj.bias"] = t(params[f"{p}.attn.out.bias"])
        sd[f"{h}.ln_2.weight"], sd[f"{h}.ln_2.bias"] = t(params[f"{p}.ln_2.scale"]), t(
            params[f"{p}.ln_2.bias"])
        sd[f"{h}.mlp.c_fc.weight"] = t(params[f"{p}.mlp.fc.kernel"])
        sd[f"{h}.mlp.c_fc.bias"] = t(params[f"{p}.mlp.fc.bias"])
        sd[f"{h}.mlp.c_proj.weight"] = t(params[f"{p}.mlp.proj.kernel"])
        sd[f"{h}.mlp.c_proj.bias"] = t(params[f"{p}.mlp.proj.bias"])
    sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"] = t(params["ln_f.scale"]), t(
        params["ln_f.bias"])
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    return sd


def to_gpt2(config: GPTConfig, params: dict[str, np.ndarray], stop_id: int | None = None) -> Any:
    """A Hugging Face ``GPT2LMHeadModel`` (float32, eval mode, no dropout) with duetrl's weights.

    GPT-2's defaults are duetrl's GPT: pre-LayerNorm blocks with eps 1e-5, GELU in its tanh
    form (``gelu_new``), learned positions, the head tied to ``wte``.

    :param stop_id: the stop token: GPT-2's bos, eos and pad ids (generation stops at it).
    """
    import transformers

    special = {} if stop_id is None else {
        "bos_token_id": stop_id, "eos_token_id": stop_id, "pad_token_id": stop_id}
    hf_config = transformers.GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, n_inner=config.mlp_ratio * config.n_embd,
        activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True, **special,
    )
    model = transformers.GPT2LMHeadModel(hf_config)
    missing, unexpected = model.load_state_dict(to_gpt2_state_dict(config, params), strict=False)
    missing = [k for k in missing if not k.endswith(("attn.bias", "attn.masked_bias"))]
    if missing or unexpected:
        raise ValueError(f"GPT-2 state dict: missing {missing}, unexpected {unexpected}")
    model.generation_config.update(**special)
    return model.eval()


def digit_tokenizer(mdp: SequenceMDP) -> Any:
    """A ``PreTrainedTokenizerFast`` with duetrl's character vocabulary (one id per character,
    the same ids); the stop character is its eos and pad token. Built in code."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(mdp.tokenizer.vocab)}
    core = Tokenizer(models.WordLevel(vocab, unk_token=None))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    stop = None if mdp.stop_id is None else mdp.tokenizer.vocab[mdp.stop_id]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=stop, pad_token=stop)
    tokenizer.padding_side = "left"
    return tokenizer


# ---------------------------------------------------------------- the settings, matched


def duetrl_settings(args: argparse.Namespace) -> RLHFSettings:
    """duetrl's GRPO settings of this benchmark (the defaults of ``RLHFSettings`` otherwise)."""
    return RLHFSettings(
        task=TASK, algo="grpo", beta=args.beta, prompts=args.prompts, group_size=args.group_size,
        updates=args.updates, learning_rate=args.learning_rate, seed=args.seed,
    )


def trl_config(settings: RLHFSettings, mdp: SequenceMDP, out: str, threads: int) -> Any:
    """TRL's ``GRPOConfig`` with ``settings`` matched (the module docstring lists them)."""
    from trl import GRPOConfig

    if settings.normalisation != "grpo" or settings.advantage_scale != "std":
        raise ValueError("trl_config: only normalisation 'grpo' with std scaling is mapped")
    if settings.kl_target != 0.0:
        raise ValueError("trl_config: only a fixed beta is mapped")
    batch = settings.prompts * settings.group_size
    return GRPOConfig(
        output_dir=out, num_generations=settings.group_size, per_device_train_batch_size=batch,
        gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=settings.epochs,
        max_steps=settings.updates, learning_rate=settings.learning_rate,
        max_grad_norm=settings.max_grad_norm, weight_decay=0.0, adam_beta1=0.9,
        adam_beta2=0.999, adam_epsilon=1e-8, beta=settings.beta, epsilon=settings.clip_eps,
        loss_type="grpo", scale_rewards="group", max_completion_length=mdp.max_new_tokens,
        temperature=1.0, top_k=0, top_p=1.0, mask_truncated_completions=False,
        bf16=False, fp16=False, use_cpu=True, seed=settings.seed, data_seed=settings.seed,
        report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0, log_completions=False,
    )


# ---------------------------------------------------------------- the runs


class _Clock:
    """Wall and process-CPU seconds since :meth:`start`."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_duetrl(
    backends: dict[str, Any], reference: tuple[GPTConfig, dict[str, np.ndarray]],
    settings: RLHFSettings, args: argparse.Namespace,
) -> dict[str, Any]:
    """GRPO in every backend, interleaved, until each reaches the target (or ``updates``)."""
    from duetrl.core.rlhf.train import RLHFRun

    runs = {name: RLHFRun(backend, settings, reference) for name, backend in backends.items()}
    out = {name: {"time_to_target_s": None, "cpu_to_target_s": None, "updates_to_target": None,
                  "rewards": []} for name in runs}
    spent = {name: [0.0, 0.0] for name in runs}
    clock = _Clock()
    for update in range(settings.updates):
        for name, run in runs.items():
            r = out[name]
            if r["time_to_target_s"] is not None:
                continue
            clock.start()
            metrics, _ = run.update(update)
            wall, cpu = clock.read()
            spent[name][0] += wall
            spent[name][1] += cpu
            r["rewards"].append(metrics["reward"])
            if len(r["rewards"]) >= args.smooth and (
                np.mean(r["rewards"][-args.smooth:]) >= args.target
            ):
                r["time_to_target_s"], r["cpu_to_target_s"] = spent[name]
                r["updates_to_target"] = update + 1
        if all(r["time_to_target_s"] is not None for r in out.values()):
            break
    for name, r in out.items():
        r["updates"] = len(r["rewards"])
        r["wall_s"], r["cpu_s"] = spent[name]
    return out


def run_trl(
    reference: tuple[GPTConfig, dict[str, np.ndarray]], settings: RLHFSettings,
    args: argparse.Namespace, out_dir: str,
) -> dict[str, Any]:
    """TRL's GRPOTrainer from the same weights until the target (or ``updates`` steps)."""
    import torch
    from datasets import Dataset
    from transformers import GPT2LMHeadModel, TrainerCallback
    from trl import GRPOTrainer

    mdp = SequenceMDP.for_task(TASK, "pretrained")
    config, params = reference
    # TRL builds its reference model from the policy's config path: a local folder here
    initial = Path(out_dir) / "initial"
    to_gpt2(config, params, mdp.stop_id).save_pretrained(initial)
    model = GPT2LMHeadModel.from_pretrained(initial, local_files_only=True)
    tokenizer = digit_tokenizer(mdp)
    rng = np.random.default_rng((settings.seed, 11))
    prompts = mdp.task.prompts(settings.prompts * settings.updates, rng)
    dataset = Dataset.from_dict({"prompt": [mdp.policy_prompt(p) for p in prompts]})
    rewards: list[float] = []

    def reward(prompts: list[str], completions: list[str], completion_ids: list[list[int]],
               **_: Any) -> list[float]:
        """duetrl's training signal (``RLHFRun.scores``): the task's reward of the completion
        up to its stop, minus ``missing_stop_penalty`` when it never stops. The task's reward
        alone is what the target is measured on, as in duetrl's runs."""
        ids = [np.asarray(row, dtype=np.int64) for row in completion_ids]
        r = mdp.task.rewards(prompts, [mdp.completion_text(row) for row in ids])
        stopped = np.array([bool(np.any(row == mdp.stop_id)) for row in ids])
        rewards.append(float(np.mean(r)))
        return [float(x) for x in r - settings.missing_stop_penalty * ~stopped]

    clock = _Clock()
    result: dict[str, Any] = {"time_to_target_s": None, "cpu_to_target_s": None,
                              "updates_to_target": None, "rewards": rewards}

    class Stop(TrainerCallback):
        def on_step_end(self, _args: Any, state: Any, control: Any, **__: Any) -> Any:
            if len(rewards) >= args.smooth and np.mean(rewards[-args.smooth:]) >= args.target:
                result["time_to_target_s"], result["cpu_to_target_s"] = clock.read()
                result["updates_to_target"] = state.global_step
                control.should_training_stop = True
            return control

    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    warmup = max(1, settings.warmup)  # duetrl's: lr * min(1, (u + 1) / warmup)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda u: min(1.0, (u + 1) / warmup))
    trainer = GRPOTrainer(
        model=model, reward_funcs=reward, args=trl_config(settings, mdp, out_dir, args.threads),
        train_dataset=dataset, processing_class=tokenizer, callbacks=[Stop()],
        optimizers=(optimizer, schedule),
    )
    clock.start()
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its summary: keep the JSON
        trainer.train()
    result["wall_s"], result["cpu_s"] = clock.read()
    result["updates"] = len(rewards)
    return result


def reference_for(size: str, args: argparse.Namespace, backend: Any) -> tuple[GPTConfig, dict]:
    """The pretrained reference of ``size`` (``--reference-path`` for "reference"), cached."""
    if size == "reference" and args.reference_path:
        return load_reference(args.reference_path, TASK)
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    model = SIZES[size]
    path = cache / f"{TASK}_{model.n_layer}x{model.n_embd}_s{args.pretrain_steps}.safetensors"
    if not path.is_file():
        pretrain_reference(backend, TASK, path, PretrainSettings(steps=args.pretrain_steps),
                           size=model, progress=False)
    return load_reference(path, TASK)


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return None if ours is None or theirs is None or theirs <= 0 else ours / theirs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="reference,large")
    parser.add_argument("--backends", default="torch,tf")
    parser.add_argument("--no-trl", action="store_true", help="duetrl only")
    parser.add_argument("--updates", type=int, default=150, help="at most this many updates")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=RLHFSettings.learning_rate)
    parser.add_argument("--beta", type=float, default=0.01)
    parser.add_argument("--target", type=float, default=0.9, help="mean reward to reach")
    parser.add_argument("--smooth", type=int, default=5, help="updates the reward is averaged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-path", default=None, help="the reference size's checkpoint")
    parser.add_argument("--pretrain-steps", type=int, default=PretrainSettings.steps)
    parser.add_argument("--cache-dir", default=str(HERE.parent / "build" / "bench" / "rlhf_trl"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["HF_HUB_OFFLINE"] = "1"  # nothing is downloaded: every model is built here
    from duetrl.core.backend import load_backends

    backends = load_backends(args.backends.split(","))
    for backend in backends.values():
        backend.set_num_threads(args.threads)
    settings = duetrl_settings(args)
    results: dict[str, Any] = {"threads": args.threads, "target": args.target,
                               "smooth": args.smooth, "sizes": {}}
    trl_version = None
    if not args.no_trl and importlib.util.find_spec("trl") is not None:
        from importlib import metadata

        trl_version = metadata.version("trl")
    results["trl"] = trl_version
    for size in args.sizes.split(","):
        trainer = backends.get("torch") or next(iter(backends.values()))
        reference = reference_for(size, args, trainer)
        mdp = SequenceMDP.for_task(TASK, "pretrained")
        entry: dict[str, Any] = {
            "model": vars(SIZES[size]) | {"vocab_size": reference[0].vocab_size},
            "parameters": int(sum(np.size(v) for v in reference[1].values())),
        }
        entry["settings"] = {
            "group_size (num_generations)": settings.group_size,
            "prompts per update": settings.prompts,
            "completions per update (per_device_train_batch_size)": settings.batch_size,
            "learning_rate": settings.learning_rate, "warmup (linear, updates)": settings.warmup,
            "beta (k3 KL in the loss)": settings.beta, "clip eps (epsilon)": settings.clip_eps,
            "max_grad_norm": settings.max_grad_norm, "max completion tokens": mdp.max_new_tokens,
            "temperature": 1.0, "epochs (num_iterations)": settings.epochs,
            "loss (normalisation / loss_type)": settings.normalisation,
            "advantages (scale_rewards)": "group std", "optimizer": "Adam(W, decay 0)",
            "missing stop penalty (in TRL's reward function)": settings.missing_stop_penalty,
        }
        entry.update(run_duetrl(backends, reference, settings, args))
        if trl_version is not None:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                entry["trl"] = run_trl(reference, settings, args, tmp)
            for name in backends:
                for key in ("time_to_target_s", "cpu_to_target_s"):
                    entry.setdefault("vs_trl", {}).setdefault(name, {})[key] = _ratio(
                        entry[name][key], entry["trl"][key])
        results["sizes"][size] = entry
    for entry in results["sizes"].values():  # keep the reward curves short in the JSON
        for v in entry.values():
            if isinstance(v, dict) and "rewards" in v:
                v["rewards"] = [round(x, 4) for x in v["rewards"]]
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return results


def format_table(results: dict[str, Any]) -> str:
    """One row per size and trainer: seconds (wall, CPU) and updates to the target, ours / TRL."""
    lines = [f"{'size':<10} {'params':>9} {'trainer':<6} {'wall s':>8} {'cpu s':>8} "
             f"{'updates':>8} {'wall/TRL':>9} {'cpu/TRL':>8}"]
    fmt = lambda x, f: "-" if x is None else format(x, f)  # noqa: E731
    for size, entry in results["sizes"].items():
        for name in ("torch", "tf", "trl"):
            if name not in entry:
                continue
            r, ratio = entry[name], (entry.get("vs_trl") or {}).get(name, {})
            lines.append(
                f"{size:<10} {entry['parameters']:>9} {name:<6} "
                f"{fmt(r['time_to_target_s'], '.2f'):>8} {fmt(r['cpu_to_target_s'], '.2f'):>8} "
                f"{fmt(r['updates_to_target'], 'd'):>8} "
                f"{fmt(ratio.get('time_to_target_s'), '.2f'):>9} "
                f"{fmt(ratio.get('cpu_to_target_s'), '.2f'):>8}")
    lines.append(f"TRL: {results['trl'] or 'not installed'}; threads {results['threads']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
