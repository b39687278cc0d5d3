"""Training throughput: the real ``MTLAugModule.training_step`` + backward + optimizer step, per system.

    .venv/bin/python benchmarks/bench_training.py [--quick] [--seconds 3] [--batch-size 32] [--rounds 7]
        [--candidates]

Systems and their settings come from the configs (``experiments/base.yaml`` + ``experiments/systems/*.yaml``
model sections, composed by ``mtl_aug.recipes.model_config``): STL (policy disabled, auxiliary weights 0),
STL+aug (policy enabled), MTL-AUG (policy enabled, reconstruction and augmentation-classification weights 1) and MTL-AUG + unlabelled (an unlabelled batch of the same size
merged into the step, as the CombinedLoader delivers it). Every step sees the same labelled batch of
``batch_size`` random speech-level waveforms of ``seconds`` (the cost does not depend on the content);
``self.log``/``self.log_dict`` are stubbed (no Trainer), the optimizer is the module's own
``configure_optimizers()``. Steps run on ONE torch thread, the systems interleaved round-robin; the
figure is the median step, and each system's ratio to STL is given (robust to the machine's load).

``--candidates`` also times the speed-up candidates that are not on by default (channels_last conv
weights, a faster masked GroupNorm proposed for encoder.py, cropping speed-perturbed rows, and with
``--compile`` ``torch.compile``) against the plain MTL-AUG step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

SYSTEMS = ("stl", "stl_aug", "mtl_aug", "mtl_aug_unlabelled")
LABELS = {"stl": "STL", "stl_aug": "STL+aug", "mtl_aug": "MTL-AUG", "mtl_aug_unlabelled": "MTL-AUG + unlabelled"}


def system_config(system: str, flags=()) -> tuple[dict, dict]:
    """(nested model config, data section) of ``experiments/base.yaml`` + ``experiments/systems/<system>.yaml``
    (+ ``--model.*`` flags), as LightningCLI composes them."""
    import yaml

    from mtl_aug.recipes import model_config

    files = [common.REPO / "experiments" / "base.yaml", common.REPO / "experiments" / "systems" / f"{system}.yaml"]
    data: dict = {}
    for path in files:
        data.update((yaml.safe_load(path.read_text()) or {}).get("data") or {})
    return model_config(files, list(flags)), data


def make_module(system: str, seed: int = 0, **overrides):
    """An ``MTLAugModule`` with the system's config, in train mode, ``log``/``log_dict`` stubbed; ``overrides``
    are model settings (flat shorthands such as ``n_mels=32`` or nested keys)."""
    import torch

    from mtl_aug.tasks import MTLAugModule

    # no Trainer here; the lr schedule does not change a step's cost
    flags = ["--model.optimization.scheduler=none", *(f"--model.{k}={v}" for k, v in overrides.items())]
    model_cfg, _ = system_config(system, flags)
    torch.manual_seed(seed)
    module = MTLAugModule.from_config(model_cfg)
    module.log = lambda *a, **k: None  # type: ignore[method-assign]
    module.log_dict = lambda *a, **k: None  # type: ignore[method-assign]
    return module.train()


def make_rows(n: int, seconds: float, sample_rate: int = 16000, labelled: bool = True, seed: int = 0,
              num_classes: int = 4) -> dict:
    """A collated batch (``collate_utterances`` format) of ``n`` full-length random waves."""
    import torch

    g = torch.Generator().manual_seed(seed)
    t = int(seconds * sample_rate)
    label = torch.randint(num_classes, (n,), generator=g) if labelled else torch.full((n,), -1)
    return {"wave": 0.1 * torch.randn(n, t, generator=g), "lengths": torch.full((n,), t), "label": label,
            "key": [f"u{i}" for i in range(n)], "speaker": ["s"] * n}


def make_batch(batch_size: int, seconds: float, unlabelled: bool = False, seed: int = 0) -> dict:
    """``{"labelled": rows[, "unlabelled": rows of the same size]}`` as the training CombinedLoader yields."""
    batch = {"labelled": make_rows(batch_size, seconds, seed=seed)}
    if unlabelled:
        batch["unlabelled"] = make_rows(batch_size, seconds, labelled=False, seed=seed + 1)
    return batch


class TrainStep:
    """One optimisation step of ``module`` on ``batch``: ``training_step`` + backward + ``optimizer.step``."""

    def __init__(self, module, batch: dict) -> None:
        opt = module.configure_optimizers()
        self.module = module
        self.batch = batch
        self.optimizer = opt["optimizer"] if isinstance(opt, dict) else opt

    def __call__(self) -> float:
        out = self.module.training_step(self.batch, 0)
        out["loss"].backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(out["loss"].detach())


def step_for(system: str, batch_size: int, seconds: float, **overrides) -> TrainStep:
    _, data_cfg = system_config(system)
    return TrainStep(make_module(system, **overrides), make_batch(batch_size, seconds, bool(data_cfg.get("use_unlabelled"))))


def measure_training(batch_size: int = 32, seconds: float = 3.0, rounds: int = 7, warmup: int = 2,
                     systems=SYSTEMS, n_threads: int = 1) -> dict:
    """Median step time, labelled utterances per second and the ratio to STL for every system. The glibc
    allocator setting that ``MTLAugModule.on_fit_start`` applies in a CPU fit is applied here too (its
    before/after: :func:`measure_allocator`)."""
    from mtl_aug.allocator import tune_cpu_allocator

    tuned = tune_cpu_allocator()
    steps = {s: step_for(s, batch_size, seconds) for s in systems}
    with common.threads(n_threads):
        res = common.compare(steps, systems[0], rounds, warmup)
    out: dict = {"batch_size": batch_size, "seconds": seconds, "threads": n_threads, "rounds": rounds,
                 "baseline": systems[0], "allocator_tuned": tuned, "systems": {}}
    for s in systems:
        r = res[s]
        rows = batch_size * (2 if "unlabelled" in steps[s].batch else 1)
        out["systems"][s] = {"label": LABELS.get(s, s), **r, "rows_per_step": rows,
                             "labelled_utt_per_s": round(batch_size / r["median_s"], 2),
                             "audio_x_realtime": round(batch_size * seconds / r["median_s"], 1),
                             "throughput_ratio": round(1.0 / r["ratio"], 3)}
    return out


def groupnorm_two_pass(module) -> int:
    """BEFORE of the encoder's ``MaskedGroupNorm`` (its form until the one-pass version was applied):
    masked mean, then masked variance around it, normalise, then the affine weights — about eight
    elementwise passes. Patches the encoder of ``module`` in place; returns the number of norms patched,
    so that ``--candidates`` keeps the before/after of that change measurable."""
    import types

    import torch

    from mtl_aug.encoder import MaskedGroupNorm

    def forward(self, x, mask):
        b, c, t, f = x.shape
        xg = x.reshape(b, self.groups, c // self.groups, t, f)
        m = mask[:, None, None, :, None].to(x.dtype)
        n = (m.sum(dim=(2, 3, 4), keepdim=True) * (c // self.groups) * f).clamp(min=1.0)
        mean = (xg * m).sum(dim=(2, 3, 4), keepdim=True) / n
        var = (((xg - mean) * m) ** 2).sum(dim=(2, 3, 4), keepdim=True) / n
        y = ((xg - mean) / torch.sqrt(var + self.eps)).reshape(b, c, t, f)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    count = 0
    for mod in module.modules():
        if isinstance(mod, MaskedGroupNorm):
            mod.forward = types.MethodType(forward, mod)
            count += 1
    return count


def speed_crop_to_segment(module) -> bool:
    """WHAT-IF for ``mtl_aug/augment.py`` (a behaviour change, not applied): crop speed-perturbed rows back
    to the batch's input length, so a 0.9 factor no longer pads every row of the batch by 11 %."""
    import types

    speed = next((a for a in module.augment.augs if type(a).__name__ == "SpeedPerturb"), None)
    if speed is None:
        return False
    original = speed.on_wave

    def on_wave(self, wave, lengths, generator):
        w, l = original(wave, lengths, generator)
        return w[:, : wave.size(1)], l.clamp(max=wave.size(1))

    speed.on_wave = types.MethodType(on_wave, speed)
    return True


def measure_candidates(batch_size: int = 32, seconds: float = 3.0, rounds: int = 5, warmup: int = 2,
                       compile_: bool = False, channels_last: bool = True) -> dict:
    """Speed-up candidates that are off by default, each against the plain step (1 thread, interleaved):

    * ``channels_last``: the encoder's conv weights (hence activations) in NHWC memory format;
    * ``groupnorm_two_pass``: :func:`groupnorm_two_pass`, the encoder's former norm (the "before" of the
      one-pass masked GroupNorm now in encoder.py), on STL and MTL-AUG;
    * ``speed_crop``: :func:`speed_crop_to_segment` (what the speed-perturbation padding costs MTL-AUG);
    * ``compile`` (``compile_=True``): ``torch.compile`` of the encoder and heads (inductor, CPU); the first
      step's time (compilation) is reported separately.
    """
    import torch

    out: dict = {"system": "mtl_aug", "batch_size": batch_size, "seconds": seconds, "threads": 1}
    fns = {"mtl_aug": step_for("mtl_aug", batch_size, seconds), "stl": step_for("stl", batch_size, seconds)}
    if channels_last:
        cl = step_for("mtl_aug", batch_size, seconds)
        cl.module.encoder.to(memory_format=torch.channels_last)
        fns["mtl_aug+channels_last"] = cl
    gn_stl, gn_mtl = step_for("stl", batch_size, seconds), step_for("mtl_aug", batch_size, seconds)
    if groupnorm_two_pass(gn_stl.module) and groupnorm_two_pass(gn_mtl.module):
        fns["stl+groupnorm_two_pass"], fns["mtl_aug+groupnorm_two_pass"] = gn_stl, gn_mtl
    crop = step_for("mtl_aug", batch_size, seconds)
    if speed_crop_to_segment(crop.module):
        fns["mtl_aug+speed_crop"] = crop
    with common.one_thread():
        if compile_:
            comp = step_for("mtl_aug", batch_size, seconds)
            m = comp.module
            owners = [(m.network, "encoder"), (m.network, "head"), *((t, "head") for t in m.tasks.values()
                                                                        if getattr(t, "head", None) is not None
                                                                        and t is not m.emotion)]
            for owner, name in owners:  # the encoder and every head
                setattr(owner, name, torch.compile(getattr(owner, name)))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    comp()
                    out["compile_first_step_s"] = round(time.perf_counter() - t0, 2)
                    t0 = time.perf_counter()
                    for _ in range(3):  # new speed-perturbed lengths recompile (dynamic shapes after the first)
                        comp()
                    out["compile_next_3_steps_s"] = round(time.perf_counter() - t0, 2)
                fns["mtl_aug+compile"] = comp
            except Exception as e:  # no C++ compiler, unsupported op...: record, do not fail the suite
                out["compile_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        res = common.compare(fns, "mtl_aug", rounds, warmup)
    out["baseline"] = "mtl_aug"
    out["variants"] = res
    return out


def _allocator_child(seconds: float, batch_size: int, rounds: int, tuned: bool) -> dict:
    """In a fresh process: STL and MTL-AUG steps with or without ``tune_cpu_allocator``; step time and minor
    page faults per step (medians)."""
    import resource

    from mtl_aug.allocator import tune_cpu_allocator

    applied = tune_cpu_allocator() if tuned else False
    steps = {s: step_for(s, batch_size, seconds) for s in ("stl", "mtl_aug")}
    out: dict = {"tuned": applied}
    with common.one_thread():
        for st in steps.values():
            st()
            st()
        rows: dict = {s: {"t": [], "faults": []} for s in steps}
        for _ in range(rounds):
            for s, st in steps.items():
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                rows[s]["t"].append(common.timed(st))
                rows[s]["faults"].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    for s, r in rows.items():
        out[s] = {"step_s": round(statistics.median(r["t"]), 4), "faults_per_step": int(statistics.median(r["faults"]))}
    return out


def measure_allocator(seconds: float = 3.0, batch_size: int = 32, rounds: int = 4, repeats: int = 2) -> dict:
    """Before/after of ``tune_cpu_allocator`` (what ``MTLAugModule.on_fit_start`` applies on CPU): fresh child
    processes, alternately without and with it (the setting is process-wide), ``repeats`` of each."""
    import os
    import subprocess

    runs: dict = {"plain": [], "tuned": []}
    for _ in range(repeats):
        for mode in ("plain", "tuned"):
            env = {**os.environ, "MTL_AUG_MALLOC_TUNING": "1" if mode == "tuned" else "0"}
            out = subprocess.run([sys.executable, __file__, "--allocator-child", mode, "--seconds", str(seconds),
                                  "--batch-size", str(batch_size), "--rounds", str(rounds)],
                                 capture_output=True, text=True, env=env, cwd=common.REPO, timeout=1800)
            if out.returncode:
                raise RuntimeError(out.stderr[-2000:])
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    res: dict = {"seconds": seconds, "batch_size": batch_size, "threads": 1, "rounds": rounds, "repeats": repeats,
                 "tuned_applied": all(r["tuned"] for r in runs["tuned"])}
    for s in ("stl", "mtl_aug"):
        plain = statistics.median(r[s]["step_s"] for r in runs["plain"])
        tuned = statistics.median(r[s]["step_s"] for r in runs["tuned"])
        res[s] = {"plain_step_s": round(plain, 4), "tuned_step_s": round(tuned, 4), "speedup": round(plain / tuned, 3),
                  "plain_faults_per_step": int(statistics.median(r[s]["faults_per_step"] for r in runs["plain"])),
                  "tuned_faults_per_step": int(statistics.median(r[s]["faults_per_step"] for r in runs["tuned"]))}
    for mode in ("plain", "tuned"):
        res[f"mtl_over_stl_{mode}"] = round(res["mtl_aug"][f"{mode}_step_s"] / res["stl"][f"{mode}_step_s"], 3)
    return res


def print_training(res: dict) -> None:
    print(f"training step, {res['batch_size']} x {res['seconds']:g} s labelled rows, {res['threads']} thread, "
          f"median of {res['rounds']} (interleaved):")
    for s, r in res["systems"].items():
        print(f"  {r['label']:<22} {r['median_s'] * 1000:8.1f} ms  {r['labelled_utt_per_s']:7.1f} utt/s  "
              f"x{r['ratio']:.2f} STL's step time  (rows/step {r['rows_per_step']})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (code-path check, numbers meaningless)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--candidates", action="store_true", help="also time the off-by-default candidates")
    p.add_argument("--compile", action="store_true", help="with --candidates: torch.compile too (minutes)")
    p.add_argument("--json", default=None)
    p.add_argument("--allocator-child", choices=("plain", "tuned"), default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.allocator_child:  # one side of measure_allocator, in its own process
        print(json.dumps(_allocator_child(a.seconds, a.batch_size, a.rounds, a.allocator_child == "tuned")))
        return 0
    bs, sec, rounds = (4, 0.5, 2) if a.quick else (a.batch_size, a.seconds, a.rounds)
    res = {"load_before": common.load_average(), "training": measure_training(bs, sec, rounds)}
    print_training(res["training"])
    if a.candidates:
        res["candidates"] = measure_candidates(bs, sec, max(2, rounds - 2), compile_=a.compile)
        print(json.dumps(res["candidates"], indent=1))
    res["load_after"] = common.load_average()
    print(f"load average before {res['load_before']} after {res['load_after']}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
