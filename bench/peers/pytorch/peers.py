"""The PyTorch side of `make bench-peers` (benchmark-only).

  peers.py parity --run RUN_DIR --dump DIR          our outputs vs PyTorch's on the same inputs
  peers.py peak                                     measured float32 matmul FLOP/s
  peers.py train --run RUN_DIR --dump DIR [--stages K] [--mode train|eval]
  peers.py infer --run RUN_DIR --dump DIR --onnx-out FILE [--batches 1,32]
  peers.py flops --run RUN_DIR
  peers.py onnx --files A.onnx,B.onnx [--batch 1] [--rounds 40] [--per 25]
      .onnx files in Python ONNX Runtime (1 intra-op thread, all
      optimisations), interleaved as `peerbench onnx` does from Go
  peers.py device-check --run RUN_DIR --device cuda|cpu [--batch 32] [--steps 30]
      (no dump needed: scripts/gpu-check.sh) the run's checkpoint in PyTorch on
      DEVICE: parity against the same weights in PyTorch on the CPU, AdamW
      training samples/s at --batch, eager inference p50 at --batches

Each prints one JSON object on stdout. DIR is what `peerbench dump` wrote
(train_x/train_y/parity_x .npy, our outputs, meta.json with the centroid).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402


def load_meta(dump):
    with open(os.path.join(dump, "meta.json")) as f:
        return json.load(f)


def pct(xs, p):
    s = sorted(xs)
    i = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[i]


def cmd_parity(a):
    meta = load_meta(a.dump)
    net, rc, path = M.load_run(a.run, meta["centroid"])
    x = torch.from_numpy(np.load(os.path.join(a.dump, "parity_x.npy")))
    with torch.no_grad():
        pos, sig = net(x)
    ours_pos = np.load(os.path.join(a.dump, "parity_pos.npy"))
    ours_sig = np.load(os.path.join(a.dump, "parity_sigma.npy"))
    dp = np.abs(pos.numpy() - ours_pos)
    ds = np.abs(sig.numpy() - ours_sig)
    c = np.array(meta["centroid"], dtype=np.float32)
    # Head output (position - centroid): the error before the float32 add of
    # a ~45-degree constant, whose ulp (3.8e-6) bounds the position error.
    dh = np.abs((pos.numpy() - c) - (ours_pos - c))
    n_params = sum(p.numel() for p in net.parameters())
    return {
        "checkpoint": path,
        "inputs": meta.get("parity_inputs"),
        "n": int(x.shape[0]),
        "positions_max_abs": float(dp.max()),
        "positions_mean_abs": float(dp.mean()),
        "sigma_max_abs": float(ds.max()),
        "sigma_mean_abs": float(ds.mean()),
        "max_abs": float(max(dp.max(), ds.max())),
        "head_offset_max_abs": float(dh.max()),
        "torch_params": n_params,
        "model_config": rc["model"],
        "pass_1e-5": bool(max(dp.max(), ds.max()) < 1e-5),
    }


def cmd_peak(a):
    torch.set_num_threads(a.threads)
    n = a.n
    x, y = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        torch.mm(x, y)
    best = float("inf")
    for _ in range(a.reps):
        t = time.perf_counter()
        torch.mm(x, y)
        best = min(best, time.perf_counter() - t)
    res = {"threads": a.threads, "n": n, "torch_flops_per_s": 2 * n**3 / best}
    xn, yn = x.numpy(), y.numpy()
    xn @ yn
    best = float("inf")
    for _ in range(a.reps):
        t = time.perf_counter()
        xn @ yn
        best = min(best, time.perf_counter() - t)
    res["numpy_flops_per_s"] = 2 * n**3 / best
    res["numpy_threads_env"] = os.environ.get("OPENBLAS_NUM_THREADS", "")
    res["peak_flops_per_s"] = max(res["torch_flops_per_s"], res["numpy_flops_per_s"])
    return res


def cmd_flops(a):
    rc = M.run_config_from_checkpoint(M.read_gomlx_checkpoint(M.best_checkpoint(a.run)))
    return M.flops_per_sample(rc["model"], rc["input_shape"])


def cmd_train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    meta = load_meta(a.dump)
    rc = meta["run_config"]
    cfg = rc["model"]
    if a.stages:
        cfg = M.truncated(cfg, a.stages)
    tc = rc["train"]
    net = M.LocalizationNet(cfg, rc["input_shape"], meta["centroid"])
    x = torch.from_numpy(np.load(os.path.join(a.dump, "train_x.npy")))
    y = torch.from_numpy(np.load(os.path.join(a.dump, "train_y.npy")))
    # AdamW over all parameters (GoMLX Adam().WeightDecay() decays every
    # trainable variable), cosine schedule stepped every step like ours.
    opt = torch.optim.AdamW(net.parameters(), lr=tc["learning_rate"], weight_decay=tc["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1_000_000, eta_min=tc["min_learning_rate"])
    loss_v = 0.0

    def step():
        nonlocal loss_v
        if a.mode == "eval":
            net.eval()
            with torch.inference_mode():
                pos, sig = net(x)
                loss = M.gaussian_nll(y, pos, sig)
        else:
            net.train()
            opt.zero_grad(set_to_none=True)
            pos, sig = net(x)
            loss = M.gaussian_nll(y, pos, sig)
            loss.backward()
            opt.step()
            sched.step()
        loss_v = float(loss.detach())

    t = time.perf_counter()
    step()
    first = time.perf_counter() - t
    for _ in range(max(0, a.warmup - 1)):
        step()
    times = []
    start = time.perf_counter()
    for i in range(a.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
        if i >= 1 and time.perf_counter() - start > a.max_time:
            break
    med = statistics.median(times)
    widths, depths, _ = M.backbone(cfg)
    return {
        "framework": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "mode": a.mode, "batch": int(x.shape[0]), "widths": widths, "depths": depths,
        "receiver_encoder": cfg.get("receiver_encoder", "joint"),
        "params": sum(p.numel() for p in net.parameters()),
        "first_step_s": first, "steps": len(times), "step_times_s": times,
        "median_step_s": med, "samples_per_s": x.shape[0] / med, "last_loss": loss_v,
    }


def time_fn(fn, warmup, iters, max_time):
    for _ in range(warmup):
        fn()
    ts = []
    start = time.perf_counter()
    while len(ts) < iters:
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
        if len(ts) >= 5 and time.perf_counter() - start > max_time:
            break
    ms = [t * 1e3 for t in ts]
    return {"iterations": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "mean_ms": statistics.mean(ms)}


def cmd_infer(a):
    import onnxruntime as ort

    torch.set_num_threads(a.threads)
    meta = load_meta(a.dump)
    net, rc, _ = M.load_run(a.run, meta["centroid"])
    shape = rc["input_shape"]
    rng = np.random.default_rng(1)
    batches = [int(b) for b in a.batches.split(",")]
    # PyTorch's own ONNX export of the same weights (eval mode: BN folded by
    # the exporter), dynamic batch axis.
    dummy = torch.zeros(1, *shape)
    torch.onnx.export(net, (dummy,), a.onnx_out, input_names=["x"], output_names=["positions", "uncertainties"],
                      dynamic_axes={"x": {0: "batch"}, "positions": {0: "batch"}, "uncertainties": {0: "batch"}},
                      opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.ort_threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(a.onnx_out, so, providers=["CPUExecutionProvider"])
    px = np.load(os.path.join(a.dump, "parity_x.npy"))
    o_pos, o_sig = sess.run(None, {"x": px})
    ours_pos = np.load(os.path.join(a.dump, "parity_pos.npy"))
    ours_sig = np.load(os.path.join(a.dump, "parity_sigma.npy"))
    rows = []
    for b in batches:
        x = rng.standard_normal((b, *shape)).astype(np.float32)
        xt = torch.from_numpy(x)

        def eager():
            with torch.inference_mode():
                net(xt)

        rows.append({
            "batch": b,
            "pytorch_eager": time_fn(eager, a.warmup, a.iterations, a.max_time),
            "pytorch_onnx_ort": time_fn(lambda: sess.run(None, {"x": x}), a.warmup, a.iterations, a.max_time),
        })
    return {
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "onnxruntime": ort.__version__, "ort_intra_op_threads": a.ort_threads, "ort_graph_optimization": "all",
        "onnx_export": "torch.onnx.export(dynamo=False, opset 17, eval mode)", "onnx_file": a.onnx_out,
        "onnx_bytes": os.path.getsize(a.onnx_out),
        "torch_onnx_vs_ours_max_abs": float(max(np.abs(o_pos - ours_pos).max(), np.abs(o_sig - ours_sig).max())),
        "rows": rows,
    }


def cmd_onnx(a):
    """Times .onnx files in Python ONNX Runtime, interleaved: a.rounds rounds of
    a.per runs of each file in turn, after 20 warm-up runs each; the same
    schedule, input shape and session options as `peerbench onnx` (Go)."""
    import onnxruntime as ort

    sess = []
    for f in a.files.split(","):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        s = ort.InferenceSession(f, so, providers=["CPUExecutionProvider"])
        sess.append((f, s, s.get_inputs()[0].name))
    shape = [int(v) for v in a.shape.split(",")]
    x = np.random.default_rng(1).standard_normal((a.batch, *shape)).astype(np.float32)
    for _, s, n in sess:
        for _ in range(20):
            s.run(None, {n: x})
    ms = [[] for _ in sess]
    for _ in range(a.rounds):
        for i, (_, s, n) in enumerate(sess):
            for _ in range(a.per):
                t = time.perf_counter()
                s.run(None, {n: x})
                ms[i].append((time.perf_counter() - t) * 1e3)
    rows = [{"file": f, "how": "onnxruntime.InferenceSession.run", "n": len(m), "p50_ms": float(np.percentile(m, 50)), "p10_ms": float(np.percentile(m, 10)),
             "min_ms": min(m), "mean_ms": statistics.mean(m), "batch": a.batch} for (f, _, _), m in zip(sess, ms)]
    return {"runtime": f"onnxruntime {ort.__version__} from Python", "rows": rows}


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def cmd_device_check(a):
    """PyTorch on a.device (cuda, or cpu for the dry run) with the run's
    checkpoint weights; random inputs (the device check trains on random data)."""
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch.cuda.is_available() is false")
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    centroid = (0.0, 0.0)  # the device check's parity compares head outputs only
    net_cpu, rc, path = M.load_run(a.run, centroid)
    shape = rc["input_shape"]
    res = {"torch": torch.__version__, "device": str(dev), "checkpoint": path, "input_shape": shape,
           "preset": rc["model"].get("preset"), "params": sum(p.numel() for p in net_cpu.parameters())}
    if dev.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(dev)
        res["cuda"] = torch.version.cuda
        res["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        res["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
    rng = np.random.default_rng(1)
    # Parity: same weights, PyTorch CPU (float32, the reference bench-peers
    # checks against our native outputs to < 1e-5) vs PyTorch on DEVICE.
    px = torch.from_numpy(rng.standard_normal((a.parity_samples, *shape)).astype(np.float32))
    with torch.no_grad():
        ref_pos, ref_sig = net_cpu(px)
    net = M.load_run(a.run, centroid)[0].to(dev).eval()
    with torch.no_grad():
        pos, sig = net(px.to(dev))
    dp = (pos.cpu() - ref_pos).abs()
    ds = (sig.cpu() - ref_sig).abs()
    res["parity"] = {"reference": "pytorch cpu float32, same checkpoint weights", "samples": a.parity_samples,
                     "positions_max_abs": float(dp.max()), "sigma_max_abs": float(ds.max()),
                     "max_abs": float(max(dp.max(), ds.max())), "mean_abs": float(torch.cat([dp, ds]).mean())}
    # Training: AdamW + cosine, as cmd_train, at a.batch on DEVICE.
    tc = rc["train"]
    tnet = M.LocalizationNet(rc["model"], shape, centroid).to(dev)
    x = torch.from_numpy(rng.standard_normal((a.batch, *shape)).astype(np.float32)).to(dev)
    y = torch.from_numpy(rng.uniform(-1, 1, (a.batch, 2)).astype(np.float32)).to(dev)
    opt = torch.optim.AdamW(tnet.parameters(), lr=tc["learning_rate"], weight_decay=tc["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1_000_000, eta_min=tc["min_learning_rate"])
    tnet.train()

    def step():
        opt.zero_grad(set_to_none=True)
        p, s = tnet(x)
        loss = M.gaussian_nll(y, p, s)
        loss.backward()
        opt.step()
        sched.step()
        return loss

    t = time.perf_counter()
    step()
    _sync(dev)
    first = time.perf_counter() - t
    for _ in range(max(0, a.warmup - 1)):
        step()
    _sync(dev)
    times = []
    start = time.perf_counter()
    for _ in range(a.steps):
        t = time.perf_counter()
        loss = step()
        _sync(dev)
        times.append(time.perf_counter() - t)
        if len(times) >= 2 and time.perf_counter() - start > a.max_time / 3:
            break
    med = statistics.median(times)
    res["train"] = {"optimizer": "AdamW", "batch": a.batch, "steps": len(times), "first_step_s": first,
                    "median_step_ms": med * 1e3, "samples_per_s": a.batch / med, "last_loss": float(loss.detach())}
    # Inference: eager, eval mode, p50 at each batch.
    rows = []
    for b in [int(v) for v in a.batches.split(",")]:
        xb = torch.from_numpy(rng.standard_normal((b, *shape)).astype(np.float32)).to(dev)

        def eager():
            with torch.inference_mode():
                net(xb)
            _sync(dev)

        rows.append({"batch": b, **time_fn(eager, a.warmup, a.iterations, a.max_time / 6)})
    res["latency"] = rows
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("parity", "train", "infer", "flops", "peak", "device-check", "onnx"):
        s = sub.add_parser(name)
        s.add_argument("--run")
        s.add_argument("--dump")
        s.add_argument("--threads", type=int, default=2)
        s.add_argument("--warmup", type=int, default=3)
        s.add_argument("--max-time", type=float, default=120.0)
        if name == "train":
            s.add_argument("--steps", type=int, default=20)
            s.add_argument("--stages", type=int, default=0, help="cut the backbone after K stages")
            s.add_argument("--mode", default="train", choices=["train", "eval"])
        if name == "infer":
            s.add_argument("--batches", default="1,32")
            s.add_argument("--iterations", type=int, default=30)
            s.add_argument("--ort-threads", type=int, default=1)
            s.add_argument("--onnx-out", required=True)
        if name == "device-check":
            s.add_argument("--device", default="cpu", help="cuda or cpu")
            s.add_argument("--batch", type=int, default=32)
            s.add_argument("--steps", type=int, default=30)
            s.add_argument("--batches", default="1,32")
            s.add_argument("--iterations", type=int, default=50)
            s.add_argument("--parity-samples", type=int, default=8)
        if name == "onnx":
            s.add_argument("--files", required=True)
            s.add_argument("--batch", type=int, default=1)
            s.add_argument("--rounds", type=int, default=40)
            s.add_argument("--per", type=int, default=25)
            s.add_argument("--shape", default="7,128,32")
        if name == "peak":
            s.add_argument("--n", type=int, default=2048)
            s.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    res = {"parity": cmd_parity, "train": cmd_train, "infer": cmd_infer, "flops": cmd_flops, "peak": cmd_peak,
           "device-check": cmd_device_check, "onnx": cmd_onnx}[a.cmd](a)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
