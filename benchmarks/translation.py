"""Benchmark: translation with a BLEU reward (outline 6.3.2), MLE then SCST, in both backends.

Run by hand (``python benchmarks/translation.py``), never in the test suite. Each backend runs
the same ``TranslationRun`` (``duetrl translate train``'s defaults: maximum likelihood, then
self-critical updates with sacrebleu's sentence BLEU), one after the other, never at the same
time. Per backend it reports

    mle_bleu, scst_bleu     held-out corpus BLEU (sacrebleu) at the switch and at the end
    gain                    scst_bleu - mle_bleu
    wall_s                  the whole run (MLE + SCST + evaluations), first updates included
    mle pairs/s             sentence pairs per second of the MLE phase (first step left out)
    scst samples/s          sampled translations per second of the SCST phase (decoding, the
                            rewards and the update; first update left out)

and tf / torch of the wall time (target: at most 1.5) and of the rates. With ``--control``,
torch also continues maximum likelihood from the switch for as long as its SCST phase took
(the MLE phase's last learning rate): the question is whether SCST beats *more MLE*, not only
the MLE model it started from.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.cases.translation.train import (
    TranslationRun,
    TranslationSettings,
    mle_learning_rate,
)


def run_backend(backend: Any, settings: TranslationSettings) -> tuple[dict[str, Any], Any]:
    """One whole run in ``backend``: its figures, and the MLE model's canonical weights and
    optimiser state at the switch (for the control)."""
    run = TranslationRun(backend, settings)
    began = time.perf_counter()
    switch: dict[str, Any] = {}
    while not run.finished():
        if run.updates == settings.mle_steps and not switch:
            switch = {"params": backend.export_params(run.model),
                      "optim": run.trainer.optimizer.state_arrays(),
                      "at_s": time.perf_counter() - began}
        run.step()
    wall = time.perf_counter() - began
    figures = run.evaluate()
    return {"mle_bleu": figures["mle_bleu"], "scst_bleu": figures["scst_bleu"],
            "gain": (figures["scst_bleu"] or 0.0) - figures["mle_bleu"],
            "copy_bleu": figures["copy_bleu"], "wall_s": wall,
            "scst_phase_s": wall - switch.get("at_s", wall),
            "mle_pairs_per_s": figures["mle_pairs_per_s"],
            "scst_samples_per_s": figures["scst_samples_per_s"],
            "bleu_by_length": {"mle": figures["mle"]["bleu_by_length"],
                               "scst": (figures["scst"] or {}).get("bleu_by_length")},
            "exposure": {k: {"teacher_forced": f["teacher_forced_accuracy"],
                             "free_running": f["free_running_accuracy"]}
                         for k, f in (("mle", figures["mle"]), ("scst", figures["scst"])) if f},
            }, switch


def mle_control(backend: Any, settings: TranslationSettings, switch: dict[str, Any],
                seconds: float) -> dict[str, Any]:
    """Maximum likelihood continued from the switch for ``seconds`` at the MLE phase's last
    learning rate: held-out BLEU and the steps it took."""
    run = TranslationRun(backend, replace(settings, scst_updates=0))
    backend.import_params(run.model, switch["params"])
    run.trainer.optimizer.load_state_arrays(switch["optim"])
    lr = mle_learning_rate(settings.mle_steps - 1, settings)
    began, steps = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        rng = np.random.default_rng((settings.seed, 1, settings.mle_steps + steps))
        rows = rng.integers(0, len(run.corpus.train), settings.batch_size)
        x, w = run.train_tokens[rows], run.train_weights[rows]
        run.trainer.train_step(x[:, :-1], x[:, 1:], lr, w)
        steps += 1
    return {"bleu": run.heldout()["bleu"], "steps": steps, "seconds": seconds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads per framework")
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"])
    parser.add_argument("--mle-steps", type=int, default=None)
    parser.add_argument("--scst-updates", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--control", action="store_true", help="torch: MLE continued instead")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"seed": args.seed}
    if args.quick:
        overrides.update(train_pairs=64, heldout_pairs=16, mle_steps=4, scst_updates=2,
                         sources=4, samples=2, eval_every=1000)
    for name in ("mle_steps", "scst_updates"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    settings = TranslationSettings(**overrides)
    results: dict[str, Any] = {"settings": asdict(settings), "threads": args.threads}
    backends = load_backends(args.backends)
    switches = {}
    for name, backend in backends.items():
        backend.set_num_threads(args.threads)
        results[name], switches[name] = run_backend(backend, settings)
    if "torch" in results and "tf" in results:
        t, f = results["torch"], results["tf"]
        results["tf_over_torch"] = {
            "wall_s": f["wall_s"] / t["wall_s"],
            "mle_pairs_per_s": f["mle_pairs_per_s"] / t["mle_pairs_per_s"],
            "scst_samples_per_s": f["scst_samples_per_s"] / t["scst_samples_per_s"]}
    if args.control and "torch" in results and switches["torch"]:
        results["torch_mle_control"] = mle_control(
            backends["torch"], settings, switches["torch"], results["torch"]["scst_phase_s"])
    if args.json:
        print(json.dumps(results, indent=2, default=float))
        return results
    print(f"{'':>6} {'MLE BLEU':>9} {'SCST BLEU':>10} {'gain':>6} {'wall s':>7} "
          f"{'MLE pairs/s':>12} {'SCST samples/s':>15}")
    for name in backends:
        r = results[name]
        print(f"{name:>6} {r['mle_bleu']:9.2f} {r['scst_bleu'] or 0:10.2f} {r['gain']:+6.2f} "
              f"{r['wall_s']:7.1f} {r['mle_pairs_per_s']:12.0f} {r['scst_samples_per_s']:15.0f}")
    if "tf_over_torch" in results:
        print("tf / torch:", {k: round(v, 2) for k, v in results["tf_over_torch"].items()})
    if "torch_mle_control" in results:
        c = results["torch_mle_control"]
        print(f"torch control: MLE continued {c['steps']} steps ({c['seconds']:.1f} s, the SCST "
              f"phase's time) -> held-out BLEU {c['bleu']:.2f}")
    return results


if __name__ == "__main__":
    main()
