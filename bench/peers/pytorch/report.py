"""Assembles the `make bench-peers` report (Markdown + JSON) from the JSON
files scripts/bench-peers.sh wrote into OUT. Standard library only.

  report.py OUT_DIR   -> OUT_DIR/report.json, OUT_DIR/report.md (also printed)
"""

from __future__ import annotations

import json
import statistics
import os
import sys


def load(out, name):
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def fmt_ms(s):
    return f"{s * 1e3:.1f}"


def main():
    out = sys.argv[1]
    env = load(out, "env.json") or {}
    parity = load(out, "parity.json")
    flops = load(out, "flops.json")
    peak = load(out, "peak.json")
    hb = load(out, "heimdall-bench.json")
    pinf = load(out, "pytorch-infer.json")
    runs = {}
    for f in sorted(os.listdir(out)):
        if f.startswith("train-") and f.endswith(".json"):
            runs[f[len("train-"):-len(".json")]] = load(out, f)

    pk = peak["peak_flops_per_s"] if peak else None
    tf = flops["train"] if flops else None
    ff = flops["forward"] if flops else None
    rep = {"env": env, "parity": parity, "flops_per_sample": flops, "peak": peak, "train": runs,
           "ours_inference": hb, "pytorch_inference": pinf}
    md = []
    md.append("# Peer benchmark: LocalizationNet in GoMLX vs PyTorch (CPU)\n")
    md.append(f"- date: {env.get('date', '?')}; command: `{env.get('command', 'make bench-peers')}`")
    md.append(f"- machine: {env.get('cpu', '?')}, {env.get('cores', '?')} cores; load average before/after: "
              f"{env.get('load_before', '?')} / {env.get('load_after', '?')}"
              + (" — **the machine was shared with other work during the run**: absolute times are noisy; "
                 "ratios of figures measured side by side in this run stay meaningful" if env.get("shared") else ""))
    md.append(f"- run: `{env.get('run_dir', '?')}`; checkpoint: `{os.path.basename(parity['checkpoint']) if parity else '?'}`; "
              f"model: {json.dumps(parity['model_config']) if parity else '?'}; input {env.get('input_shape', '?')}")
    md.append(f"- software: Go {env.get('go', '?')}, GoMLX XLA CPU PJRT plugin, ONNX Runtime {env.get('ort', '?')} (Go and Python); "
              f"PyTorch {pinf['torch'] if pinf else '?'} (CPU, {env.get('threads', 2)} threads, OMP_WAIT_POLICY={env.get('omp_wait_policy', 'default')}: "
              "with OpenMP's default busy-waiting, PyTorch at 2 threads on this shared machine ran ~100x slower, 300 ms instead of 3 ms at batch 1)")
    if pk:
        md.append(f"- measured peak: {pk / 1e9:.1f} GFLOP/s float32 (best of torch.mm / numpy matmul "
                  f"{peak['n']}x{peak['n']}, {peak['threads']} threads)")
    if flops:
        parts = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in flops["parts_forward"].items())
        md.append(f"- model FLOPs per sample (analytic, 2 x conv/dense MACs): forward {ff / 1e6:.1f} M ({parts}); "
                  f"training step ~3 x forward = {tf / 1e6:.1f} M")
    md.append("")

    if parity:
        md.append("## Parity: the same network\n")
        md.append(f"PyTorch LocalizationNet built from the checkpoint's saved config, our GoMLX checkpoint's weights "
                  f"loaded (HWIO -> OIHW kernels, Dense transposed, BN running stats), vs our native model "
                  f"(`trainer.LoadModel` + `Predict`) on {parity['n']} inputs ({parity['inputs']}); "
                  f"{parity['torch_params']:,} trainable parameters on both sides.\n")
        md.append("| output | max abs diff | mean abs diff |")
        md.append("|---|---|---|")
        md.append(f"| positions (deg) | {parity['positions_max_abs']:.3g} | {parity['positions_mean_abs']:.3g} |")
        md.append(f"| sigma (deg) | {parity['sigma_max_abs']:.3g} | {parity['sigma_mean_abs']:.3g} |")
        md.append(f"\nMax abs difference **{parity['max_abs']:.3g}** (< 1e-5: {'yes' if parity['pass_1e-5'] else 'NO'}). "
                  "Positions are ~45 and ~8 degrees: one float32 ulp at 45 is 3.8e-6, so a position difference of "
                  "3.8e-6 is one rounding of the final `+ centroid`.")
        if pinf:
            md.append(f"PyTorch's own ONNX export of these weights, in ONNX Runtime, vs our native model: "
                      f"max abs {pinf['torch_onnx_vs_ours_max_abs']:.3g}.")
        md.append("")

    def trow(label, r, base=None):
        if not r:
            return f"| {label} | not measured | | | | |"
        sps = r["samples_per_s"]
        share = f"{100 * sps * tf / pk:.1f}%" if (tf and pk) else "?"
        ratio = f"{sps / base:.2f}" if base else "1.00"
        return (f"| {label} | {fmt_ms(r['median_step_s'])} | {sps:.1f} | {ratio} | "
                f"{sps * tf / 1e9:.2f} | {share} |" if tf else f"| {label} | {fmt_ms(r['median_step_s'])} | {sps:.1f} | {ratio} | ? | ? |")

    pt = runs.get("pytorch")
    base = pt["samples_per_s"] if pt else None
    md.append("## Training throughput (batch 32, AdamW lr 1e-3 wd 1e-5, same input batch)\n")
    md.append("Median over the timed steps after warm-up (first step = compile / first allocation excluded). "
              "GFLOP/s = samples/s x analytic training FLOPs per sample.\n")
    md.append("| framework / backend | ms per step (median) | samples/s | ours / PyTorch | GFLOP/s | share of peak |")
    md.append("|---|---|---|---|---|---|")
    md.append(trow("PyTorch eager (CPU, 2 threads)", pt))
    md.append(trow("ours: GoMLX XLA CPU", runs.get("xla"), base))
    if runs.get("go"):
        md.append(trow(f"ours: GoMLX pure Go ({runs['go']['steps']} steps)", runs.get("go"), base))
    else:
        md.append("| ours: GoMLX pure Go | not measured (~15 s/step, docs/BACKENDS.md) | | | | |")
    md.append("| ours: GoMLX ONNX Runtime backend | not supported for training (`IsFinite` not implemented; docs/BACKENDS.md) | | | | |")
    for k in ("pytorch", "xla", "go"):
        if runs.get(k):
            r = runs[k]
            md.append(f"\n{k}: {r['steps']} timed steps, first step {r['first_step_s']:.2f} s, "
                      f"step times {min(r['step_times_s']) * 1e3:.0f}-{max(r['step_times_s']) * 1e3:.0f} ms, last loss {r['last_loss']:.4f}.")
    md.append("")

    if hb and pinf:
        md.append("## Inference latency\n")
        md.append(f"Random inputs; ours via `heimdall bench` (native = GoMLX XLA CPU, ours-ONNX = our exported model in "
                  f"ONNX Runtime from Go, {hb['machine'].get('ort_intra_op_threads')} intra-op thread, graph optimisation "
                  f"{hb['machine'].get('ort_graph_optimization')}); PyTorch eager ({pinf['torch_threads']} threads, "
                  f"inference_mode); PyTorch's `torch.onnx.export` in Python ONNX Runtime {pinf['onnxruntime']} "
                  f"({pinf['ort_intra_op_threads']} intra-op thread, all optimisations). "
                  "Ratio = p50 / ours-ONNX p50 (> 1: slower than ours-ONNX).\n")
        md.append("| batch | path | p50 ms | p95 ms | ratio to ours-ONNX |")
        md.append("|---|---|---|---|---|")
        for prow in pinf["rows"]:
            b = prow["batch"]
            hrow = next((r for r in hb["rows"] if r["batch"] == b), None)
            if not hrow:
                continue
            ref = hrow["onnxruntime"]["p50_ms"]
            for label, lat in (("ours-native (GoMLX XLA)", hrow["native"]), ("ours-ONNX (ORT from Go)", hrow["onnxruntime"]),
                               ("PyTorch eager", prow["pytorch_eager"]), ("PyTorch ONNX export (ORT, Python)", prow["pytorch_onnx_ort"])):
                md.append(f"| {b} | {label} | {lat['p50_ms']:.2f} | {lat['p95_ms']:.2f} | {lat['p50_ms'] / ref:.2f} |")
        md.append("")

    # ONNX batch 1 side by side: each process times both exports interleaved;
    # the Go and Python processes alternate.
    onnx_rounds = []
    for r in range(1, 100):
        g, p_ = load(out, f"onnx-b1-go-{r}.json"), load(out, f"onnx-b1-py-{r}.json")
        if not g or not p_:
            break
        onnx_rounds.append({"go": g, "python": p_})
    rep["onnx_b1_side_by_side"] = onnx_rounds
    if onnx_rounds:
        def med(side, idx, key):
            return statistics.median(rd[side]["rows"][idx][key] for rd in onnx_rounds)
        ours_go, torch_py = med("go", 0, "p50_ms"), med("python", 1, "p50_ms")
        rep["onnx_b1_ratio"] = torch_py / ours_go
        md.append("## ONNX batch 1, side by side\n")
        md.append(f"{len(onnx_rounds)} rounds; in each, `peerbench onnx` (ONNX Runtime from Go) and then `peers.py onnx` "
                  "(ONNX Runtime from Python) each time our export and PyTorch's `torch.onnx.export` interleaved "
                  f"(10 x 20 runs of each, after warm-up; {onnx_rounds[0]['go']['runtime']}; 1 intra-op thread, all "
                  "optimisations, random input). Figures: median over rounds of each round's p50 (p10). "
                  "Our export from Go runs through `onnx.Session`, the product's call path.\n")
        md.append("| model | from Go p50 (p10) ms | from Python p50 (p10) ms |")
        md.append("|---|---|---|")
        for i, label in ((0, "ours (heimdall export)"), (1, "PyTorch torch.onnx.export")):
            md.append(f"| {label} | {med('go', i, 'p50_ms'):.3f} ({med('go', i, 'p10_ms'):.3f}) | "
                      f"{med('python', i, 'p50_ms'):.3f} ({med('python', i, 'p10_ms'):.3f}) |")
        md.append(f"\n**ours-ONNX (Go) / PyTorch-ONNX (Python) at batch 1: {ours_go:.3f} ms vs {torch_py:.3f} ms, "
                  f"speed ratio {torch_py / ours_go:.2f}x** (> 1: ours is faster). Same runtime, graph only: "
                  f"Go {med('go', 1, 'p50_ms') / med('go', 0, 'p50_ms'):.2f}x, Python "
                  f"{med('python', 1, 'p50_ms') / med('python', 0, 'p50_ms'):.2f}x.\n")

    feat = load(out, "features.json")
    rep["features"] = feat
    if feat:
        md.append("## Features per core: ours vs scipy\n")
        md.append(f"One session = {feat['session']}. Ours: {feat['ours']}; reference: {feat['scipy']}; "
                  f"{len(feat['rounds'])} alternating rounds (`scripts/bench-features.sh`), load average "
                  f"{feat['load_before']} / {feat['load_after']}.\n")
        md.append("| round | ours sessions/s (per CPU-s) | scipy sessions/s (per CPU-s) | ours / scipy wall (CPU) |")
        md.append("|---|---|---|---|")
        for i, r in enumerate(feat["rounds"], 1):
            md.append(f"| {i} | {r['ours_sessions_per_s']:.1f} ({r.get('ours_sessions_per_cpu_s', float('nan')):.1f}) | "
                      f"{r['scipy_sessions_per_s']:.1f} ({r.get('scipy_sessions_per_cpu_s', float('nan')):.1f}) | "
                      f"{r['ratio_wall']:.2f} ({r.get('ratio_cpu', float('nan')):.2f}) |")
        md.append(f"\n**Features ours / scipy per core: {feat['ratio_median']:.2f}x** (median of the rounds, "
                  f"{feat.get('ratio_basis', 'wall clock')}: sessions per second of each process's own CPU time; "
                  f"wall clock: {feat['ratio_wall_median']:.2f}x).\n")

    # Profile: forward-only vs full step, and the backbone cut after each stage.
    md.append("## Where the time goes (training step profile)\n")
    md.append("Method: sub-graph timing on the same batch, both frameworks side by side. (1) *forward only* = the eval "
              "step (inference-mode forward + loss; ours `train.Trainer.EvalStep`, PyTorch `inference_mode`); "
              "backward + optimizer = full step - forward. (2) the full training step of the model with the backbone "
              "cut after stage k (heads unchanged in shape but for their input width): the increments are the cost "
              "of each stage (its convs, BN, ReLU, their gradients and their AdamW update). XLA CPU fuses the whole "
              "step into one executable, so per-HLO-op timing is not available from GoMLX/PJRT here; these "
              "differences are the practical per-part profile.\n")
    md.append("| part | analytic train GFLOP per step | ours XLA ms | PyTorch ms | ours / PyTorch time |")
    md.append("|---|---|---|---|---|")
    ev_x, ev_p = runs.get("xla-eval"), runs.get("pytorch-eval")
    full_x, full_p = runs.get("xla"), runs.get("pytorch")
    batch = (full_p or full_x or {}).get("batch", 32)

    def line(label, gflop, tx, tp):
        ratio = f"{tx / tp:.2f}" if (tx and tp) else "?"
        g = f"{gflop:.2f}" if gflop is not None else ""
        return f"| {label} | {g} | {tx * 1e3 if tx else float('nan'):.1f} | {tp * 1e3 if tp else float('nan'):.1f} | {ratio} |"

    if ev_x and ev_p and full_x and full_p:
        md.append(line("forward only (eval step)", ff * batch / 1e9 if ff else None, ev_x["median_step_s"], ev_p["median_step_s"]))
        md.append(line("backward + optimizer (full - forward)", 2 * ff * batch / 1e9 if ff else None,
                       full_x["median_step_s"] - ev_x["median_step_s"], full_p["median_step_s"] - ev_p["median_step_s"]))
    prev_x = prev_p = 0.0
    parts = list(flops["parts_forward"].items()) if flops else []
    k = 1
    while runs.get(f"xla-stages{k}") or k == 1:
        rx = runs.get(f"xla-stages{k}")
        rp = runs.get(f"pytorch-stages{k}")
        if not rx or not rp:
            break
        g = None
        if flops:
            g = 3 * batch * sum(v for name, v in parts if name == f"stage{k - 1}" or (k == 1 and name == "stem")) / 1e9
        label = f"stem + stage0 (+ heads): cut after stage 0" if k == 1 else f"stage{k - 1} (increment)"
        md.append(line(label, g, rx["median_step_s"] - prev_x, rp["median_step_s"] - prev_p))
        prev_x, prev_p = rx["median_step_s"], rp["median_step_s"]
        k += 1
    if full_x and full_p and k > 1:
        g = 3 * batch * flops["parts_forward"].get(f"stage{k - 1}", 0) / 1e9 if flops else None
        md.append(line(f"stage{k - 1} (increment, to the full model)", g, full_x["median_step_s"] - prev_x, full_p["median_step_s"] - prev_p))
    if full_x and full_p:
        md.append(line("full training step", tf * batch / 1e9 if tf else None, full_x["median_step_s"], full_p["median_step_s"]))
        slower = full_x["median_step_s"] > full_p["median_step_s"]
        md.append("\n" + ("We are slower than PyTorch on the training step: the rows above with ours/PyTorch > 1 are where the time goes."
                          if slower else "We are not slower than PyTorch eager on the training step in this run; the rows with "
                          "the largest ours/PyTorch ratio are still where our step spends the most relative time."))
    md.append("\nNotes: both sides backpropagate through BatchNorm's batch mean/variance (GoMLX's own `norm.BatchNorm` "
              "stops that gradient; `trainer/model.go` recomputes the training-mode output with it, as PyTorch does), "
              "so the two training steps do the same work. Each timing is one process; see the JSON for all step times.")
    text = "\n".join(md) + "\n"
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(rep, f, indent=1)
        f.write("\n")
    print(text)


if __name__ == "__main__":
    main()
