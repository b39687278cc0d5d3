"""The benchmarks' targets and their markdown report (``experiments/results/bench.md``)."""

from __future__ import annotations

def fmt(x, spec: str = ".3f", missing: str = "–") -> str:
    return missing if x is None else format(x, spec)


# -- targets and the markdown report -----------------------------------------------------------------------
TARGETS = {
    "mtl_step_ratio": "MTL-AUG training step time <= 1.5 x STL's (same labelled batch)",
    "data_wait_share": "loader wait < 5 % of step time (default num_workers, real fit)",
    "inference_rtf": "inference RTF <= 0.01 on one thread (10 s utterance, eager PyTorch)",
    "cv_minutes": "one EMODB-2s LOSO run (10 folds, 1 seed) < 20 min",
    "warm_cache_speedup": "warm waveform cache noticeably faster than cold (data setup of all folds, >= 2x)",
}


def evaluate_targets(res: dict) -> dict:
    """``{name: {"target", "value", "met", "note"}}`` for the targets whose measurement is present."""
    out: dict = {}
    tr = (res.get("training") or {}).get("systems", {})
    if "mtl_aug" in tr:
        v = tr["mtl_aug"]["ratio"]
        out["mtl_step_ratio"] = {"value": v, "met": v <= 1.5,
                                 "note": f"x{v:.2f} (1 thread, median of per-round ratios; ratio of medians "
                                         f"x{tr['mtl_aug'].get('ratio_of_medians', v):.2f})"}
    dw = res.get("data_wait") or {}
    default = str(res.get("default_num_workers", 0))
    if default in dw and dw[default].get("wait_share_all") is not None:
        v = dw[default]["wait_share_all"]
        out["data_wait_share"] = {"value": v, "met": v < 0.05, "note": f"{100 * v:.2f} % (num_workers={default})"}
    inf = res.get("inference") or {}
    if "eager" in inf:
        v = inf["eager"]["rtf"]
        out["inference_rtf"] = {"value": v, "met": v <= 0.01, "note": f"RTF {v:.4f}"}
    cv = res.get("cv") or {}  # the latest cv run: make bench-cv runs the default settings of `make cv`
    if cv.get("minutes_10_folds") is not None:
        v = cv["minutes_10_folds"]
        est = "estimate: " if cv.get("estimated") else ""
        out["cv_minutes"] = {"value": v, "met": v < 20, "note": f"{est}{v:.1f} min"
                             + (f" ({cv.get('folds_run')} fold(s) run, x {cv.get('n_folds_total')} / "
                                f"{cv.get('folds_run')})" if cv.get("estimated") else "")
                             + f", jobs {cv.get('jobs', 1)}, torch threads {cv.get('threads', 'default')}"
                             + (f"; {cv['minutes_10_folds_at_max_epochs']:.1f} min if every fold ran "
                                f"{cv.get('max_epochs')} epochs" if cv.get("minutes_10_folds_at_max_epochs") else "")}
    setup = cv.get("data_setup") or {}
    if setup.get("cold_s") and setup.get("warm_s"):
        v = round(setup["cold_s"] / setup["warm_s"], 1)
        out["warm_cache_speedup"] = {"value": v, "met": v >= 2.0,
                                     "note": f"{setup['cold_s']:.1f} s cold vs {setup['warm_s']:.1f} s warm (x{v})"}
    for k in out:
        out[k]["target"] = TARGETS[k]
    return out


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(res: dict) -> str:
    prov = res.get("provenance") or {}
    m = prov.get("machine") or {}
    git = prov.get("git") or {}
    L = ["# Benchmarks", "",
         f"`make bench` ({res.get('mode', 'full')} mode) on {prov.get('date', '?')}, commit "
         f"`{git.get('commit', '?')[:12]}`{' (uncommitted changes)' if git.get('dirty') else ''}.", "",
         f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('ram_gb', '?')} GB RAM, "
         f"{'GPU ' + m['gpu'] if m.get('gpu') else 'no GPU'}; torch {m.get('torch', '?')}, python {m.get('python', '?')}; "
         f"load average at start {m.get('load_average', '?')} (1/5/15 min).", "",
         *(["**Quick mode: tiny sizes and the synthetic corpus; it checks the code paths, its numbers (and the "
            "targets below) mean nothing.**", ""] if res.get("mode") == "quick" else []),
         "The machine is shared: absolute times move with its load (recorded per section below); the ratios "
         "(median over interleaved rounds of each round's ratio) are the robust figures. Step comparisons run "
         "on one torch thread.", ""]
    targets = evaluate_targets(res)
    if targets:
        L += ["## Targets", "", _table(["target", "measured", "met"],
                                        [[t["target"], t["note"], ("yes" + (f" ({t['met_note']})" if t.get("met_note") else "")) if t["met"]
                                          else "**no**"] for t in targets.values()]), ""]
    tr = res.get("training")
    if tr:
        L += ["## Training throughput", "",
              f"Real `MTLAugModule.training_step` + backward + optimizer step, configs' hparams, "
              f"{tr['batch_size']} labelled x {tr['seconds']:g} s rows per step, {tr['threads']} thread, median of "
              f"{tr['rounds']} interleaved rounds.", "",
              _table(["system", "step (ms)", "q1–q3 (ms)", "labelled utt/s", "x real time", "step / STL's",
                      "throughput / STL's", "rows/step"],
                     [[r["label"], f"{1000 * r['median_s']:.0f}", f"{1000 * r['q1_s']:.0f}–{1000 * r['q3_s']:.0f}",
                       f"{r['labelled_utt_per_s']:.1f}", f"{r['audio_x_realtime']:.0f}", f"{r['ratio']:.2f}",
                       f"{r['throughput_ratio']:.2f}", r["rows_per_step"]] for r in tr["systems"].values()]), ""]
    al = res.get("allocator")
    if al:
        L += ["## Allocator setting of CPU fits (before/after)", "",
              "`MTLAugModule.on_fit_start` lets glibc keep freed memory (`tune_cpu_allocator`; "
              "`MTL_AUG_MALLOC_TUNING=0` opts out). Fresh child processes alternately without and with it, "
              "1 thread, medians:", "",
              _table(["batch", "system", "step without (ms)", "step with (ms)", "speed-up", "page faults/step without",
                      "with", "MTL-AUG / STL without → with"],
                     [[f"{a['batch_size']} x {a['seconds']:g} s", s, f"{1000 * a[s]['plain_step_s']:.0f}",
                       f"{1000 * a[s]['tuned_step_s']:.0f}", f"x{a[s]['speedup']:.2f}", a[s]["plain_faults_per_step"],
                       a[s]["tuned_faults_per_step"],
                       f"{a['mtl_over_stl_plain']:.2f} → {a['mtl_over_stl_tuned']:.2f}" if s == "mtl_aug" else ""]
                      for a in al for s in ("stl", "mtl_aug")]), ""]
    dw = res.get("data_wait")
    if dw:
        first = next(iter(dw.values()))
        L += ["## Loader wait in a real fit", "",
              f"`lightning.Trainer.fit` through the `train` CLI on {first['corpus']} fold {first['fold']} "
              f"({first['system']}, batch {first['batch_size']}, {first['epochs']} epoch(s), {first['threads']} torch "
              "thread(s)); wait = batch end → next batch start (includes Lightning's per-batch bookkeeping), "
              "compute = batch start → end. Default `num_workers`: "
              f"{res.get('default_num_workers', 0)}.", "",
              _table(["num_workers", "wait share (all)", "after 1st epoch", "steady (not 1st batch)",
                      "median wait (ms)", "1st batch wait (ms)", "median compute (ms)", "fit (s)"],
                     [[k, _pct(v.get("wait_share_all")), _pct(v.get("wait_share_after_first_epoch")),
                       _pct(v.get("wait_share_steady")), fmt(v.get("median_wait_ms"), ".1f"),
                       fmt(v.get("median_first_batch_wait_ms"), ".1f"), fmt(v.get("median_compute_ms"), ".0f"),
                       fmt(v.get("fit_s"), ".1f")] for k, v in dw.items()]), ""]
        dt = res.get("data_wait_default_threads")
        if dt:
            L += [f"Same fit, num_workers={dt['num_workers']}, at torch's default {dt['threads']} threads: wait share "
                  f"{_pct(dt.get('wait_share_all'))} (median compute {fmt(dt.get('median_compute_ms'), '.0f')} ms, "
                  f"median wait {fmt(dt.get('median_wait_ms'), '.1f')} ms).", ""]
    fa = res.get("frontend_augment")
    if fa:
        L += ["## Front end and augmentation", "",
              f"Batched on CPU, {fa['batch_size']} x {fa['seconds']:g} s, {fa['threads']} thread, no autograd; "
              "x real time = seconds of audio per second.", "",
              _table(["stage", "ms per batch", "x real time", "time / front end's", "what"],
                     [[k, f"{1000 * v['median_s']:.1f}", f"{v['x_realtime']:.0f}", f"{v['ratio']:.2f}",
                       fa.get("notes", {}).get(k, "")] for k, v in fa["parts"].items()]), ""]
        sp = fa.get("speedups") or {}
        if sp:
            L += ["Before/after of the committed changes (live, same run): "
                  + "; ".join(f"{k} x{v:.2f} faster" for k, v in sp.items()) + ".", ""]
    sv = res.get("speed_variants")
    if sv:
        L += ["Speed perturbation of a whole batch (random factor per row from "
              f"{sv['factors']}), three implementations with the same output"
              f"{'' if sv.get('same_output', True) else ' (**outputs differ**)'}:", "",
              _table(["variant", "ms per batch", "x real time", "time / policy's"],
                     [[k, f"{1000 * v['median_s']:.1f}", f"{v['x_realtime']:.0f}", f"{v['ratio']:.2f}"]
                      for k, v in sv["variants"].items()]), ""]
    inf = res.get("inference")
    if inf:
        rows = [[k, f"{1000 * inf[k]['median_s']:.1f}", f"{inf[k]['rtf']:.4f}"]
                for k in ("eager", "eager_windowed", "torchscript", "onnxruntime") if k in inf]
        L += ["## Inference", "", f"`benchmarks/bench_inference.py`'s `measure_rtf`: a {inf.get('seconds', 10):g} s "
              f"utterance, 1 thread, median of {inf.get('repeats', '?')}, untrained default-size model (same compute).",
              "", _table(["backend", "ms", "RTF"], rows), ""]
    rss = res.get("peak_rss")
    if rss:
        L += ["## Peak memory of a training run", "",
              _table(["system", "peak RSS (MB)", "wall (s)", "exit", "command"],
                     [[k, fmt(v.get("peak_rss_mb"), ".0f"), fmt(v.get("wall_s"), ".0f"), v.get("exit_code"),
                       f"`{v.get('command', '')}`"] for k, v in rss.items()]), ""]
        base = res.get("rss_baselines")
        if base:
            L += ["Baselines (child processes that only import): "
                  + "; ".join(f"`{k}` {v['peak_rss_mb']:.0f} MB" for k, v in base.items()) + ".", ""]
    cand = res.get("candidates")
    if cand:
        notes = {"stl": "STL, for the ratios", "mtl_aug+channels_last": "encoder conv weights/activations NHWC",
                 "stl+groupnorm_two_pass": "BEFORE: the encoder's former two-pass masked GroupNorm (now one-pass)",
                 "mtl_aug+groupnorm_two_pass": "same, MTL-AUG",
                 "mtl_aug+speed_crop": "WHAT-IF: speed-perturbed rows cropped to the input length (no 11 % padding)",
                 "mtl_aug+compile": "torch.compile of encoder and heads"}
        L += ["## Speed-up candidates (off by default)", "",
              f"Step of each variant, {cand['batch_size']} x {cand['seconds']:g} s, 1 thread, interleaved medians; "
              "ratios to the plain MTL-AUG step"
              + (f"; torch.compile's first step (compilation) took {cand['compile_first_step_s']} s, the next 3 "
                 f"{cand.get('compile_next_3_steps_s')} s" if "compile_first_step_s" in cand else "")
              + (f"; torch.compile failed: {cand['compile_error']}" if "compile_error" in cand else "") + ".", "",
              _table(["variant", "step (ms)", "step / MTL-AUG's", "what"],
                     [[k, f"{1000 * v['median_s']:.0f}", f"{v['ratio']:.2f}", notes.get(k, "")]
                      for k, v in cand["variants"].items()]), ""]
    cv = res.get("cv")
    if cv:
        L += ["## Cross-validation wall time (`make bench-cv`)", "",
              f"`{cv.get('command', '')}` with an empty waveform cache, torch threads: "
              f"{cv.get('threads', 'torch default')}, measured {cv.get('date', '?')} at commit "
              f"`{(cv.get('git') or {}).get('commit', '?')[:12]}` (load {cv.get('load_before', '?')} → "
              f"{cv.get('load_after', '?')}).", ""]
        rows = [["folds run", ", ".join(cv.get("folds", [])) or "all"],
                ["wall time of the folds run", f"{fmt(cv.get('wall_s'), '.0f')} s"],
                ["per fold (median)", f"{fmt(cv.get('per_fold_s'), '.0f')} s"],
                ["10-fold run", f"{fmt(cv.get('minutes_10_folds'), '.1f')} min"
                 + (" (**estimate**: per-fold time x 10)" if cv.get("estimated") else "")]]
        if cv.get("per_epoch_s"):
            rows += [["seconds per epoch", f"{cv['per_epoch_s']:.1f} s"],
                     [f"10-fold run if every fold ran {cv.get('max_epochs')} epochs (no early stop)",
                      f"{fmt(cv.get('minutes_10_folds_at_max_epochs'), '.1f')} min (estimate)"]]
        if cv.get("cpu_s"):
            rows.append(["CPU time of the cv process (user + system)", f"{cv['cpu_s']:.0f} s"])
        if cv.get("peak_rss_mb"):
            rows.append(["peak RSS of the cv process", f"{cv['peak_rss_mb']:.0f} MB"])
        if cv.get("epochs"):
            rows.append(["epochs per fold (early stopping)", ", ".join(str(e) for e in cv["epochs"])])
        setup = cv.get("data_setup") or {}
        if setup:
            rows += [[f"data setup of all {setup.get('folds', '?')} folds, empty cache", f"{fmt(setup.get('cold_s'), '.1f')} s"],
                     ["same, warm cache", f"{fmt(setup.get('warm_s'), '.1f')} s"],
                     ["same, no cache (decode every time)", f"{fmt(setup.get('nocache_s'), '.1f')} s"]]
        L += [_table(["", ""], rows), ""]
    runs = res.get("cv_runs") or {}
    if len(runs) > 1:
        L += ["All recorded cv runs (latest per thread setting):", "",
              _table(["threads", "date", "commit", "folds", "epochs", "s per epoch", "per fold (s)", "10 folds (min)",
                      "at max epochs (min)", "load before"],
                     [[r.get("threads"), r.get("date", "?")[:16], (r.get("git") or {}).get("commit", "?")[:8],
                       ",".join(r.get("folds", [])), ",".join(str(e) for e in r.get("epochs", [])),
                       fmt(r.get("per_epoch_s") or _per_epoch(r), ".1f"), fmt(r.get("per_fold_s"), ".0f"),
                       fmt(r.get("minutes_10_folds"), ".1f") + (" (est.)" if r.get("estimated") else ""),
                       fmt(r.get("minutes_10_folds_at_max_epochs"), ".1f"), r.get("load_before")]
                      for r in runs.values()]), ""]
    secs = res.get("sections")
    if secs:
        L += ["## Sections", "", _table(["section", "wall (s)", "load before", "load after"],
                                        [[k, v.get("wall_s"), v.get("load_before"), v.get("load_after")]
                                         for k, v in secs.items()]), ""]
    L += ["History of speed changes (before/after): `experiments/results/bench_history.md`.", ""]
    return "\n".join(L)


def _per_epoch(r: dict) -> float | None:
    rows = r.get("fold_results") or []
    e = sum(x.get("epochs") or 0 for x in rows)
    return sum(x.get("seconds") or 0 for x in rows) / e if e else None


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"
