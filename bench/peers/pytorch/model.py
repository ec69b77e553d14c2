"""LocalizationNet in PyTorch: the benchmark peer of trainer/model.go.

Benchmark-only (bench/peers, `make bench-peers`): the same architecture as
our GoMLX model, built from a run's saved model config, and a reader for our
GoMLX checkpoints so the PyTorch module computes with our trained weights.

Architecture (trainer/model.go, docs/TRAINING.md), NCHW here:
  x [B, R, n_mels, frames]
  joint encoder:  the receivers are the stem's input channels;
  shared encoder: x -> [B*R, 1, n_mels, frames], one backbone with shared
                  weights, pooled features -> [B, R*D] (receiver order).
  stem: conv k x k (stride s, "same" padding, no bias) + BN + ReLU
  stage i: (i > 0: conv3x3 stride 2 + BN + ReLU), depth x basic residual
           block (conv3x3-BN-ReLU-conv3x3-BN, + identity, ReLU)
  global average pool
  mel_profile: + the [R, n_mels] time-averaged input spectra (receiver-major)
  levels L:    + per receiver the time mean, then the time std (population),
               of the lowest L bands -> (Linear -> ReLU) per level_hidden
  two heads: (Linear -> BN1d -> ReLU -> Dropout) per hidden size -> Linear(2)
  positions = head1 * position_scale + centroid (degrees)
  sigma     = clamp(softplus(head2), 0.01, 1.0)
BatchNorm epsilon is GoMLX's default, 1e-3.
"""

from __future__ import annotations

import gzip
import json
import os


import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-3  # GoMLX norm.BatchNorm default epsilon.
SIGMA_MIN, SIGMA_MAX = 0.01, 1.0
OUTPUT_INIT_STD = 0.01

# trainer/config.go presets: widths, depths, stem stride.
PRESETS = {
    "cpu": ([24, 48, 96], [1, 1, 1], 2),
    "tiny": ([96, 192, 384, 768], [1, 1, 4, 1], 2),
    "small": ([96, 192, 384, 768], [1, 1, 12, 1], 2),
    "base": ([128, 256, 512, 1024], [1, 1, 12, 1], 2),
    "large": ([192, 384, 768, 1536], [1, 1, 12, 1], 2),
}


def backbone(cfg: dict) -> tuple[list[int], list[int], int]:
    """ModelConfig.Backbone: the preset's widths/depths/stem stride with overrides."""
    widths, depths, stride = PRESETS[cfg.get("preset") or "cpu"]
    if cfg.get("widths"):
        widths = cfg["widths"]
    if cfg.get("depths"):
        depths = cfg["depths"]
    if cfg.get("stem_stride"):
        stride = cfg["stem_stride"]
    return list(widths), list(depths), stride or 2


def shared_encoder(cfg: dict) -> bool:
    return cfg.get("receiver_encoder", "joint") == "shared"


class ConvBN(nn.Module):
    """conv (no bias, GoMLX PadSame) + BN [+ ReLU]."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, relu: bool = True):
        super().__init__()
        # GoMLX PadSame: (k-1)//2 before, k//2 after, whatever the stride.
        self.pad = ((k - 1) // 2, k // 2)
        sym = self.pad[0] == self.pad[1]
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=self.pad[0] if sym else 0, bias=False)
        self.explicit_pad = None if sym else (self.pad[0], self.pad[1], self.pad[0], self.pad[1])
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.relu = relu

    def forward(self, x):
        if self.explicit_pad is not None:
            x = F.pad(x, self.explicit_pad)
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a = ConvBN(c, c, 3, 1)
        self.b = ConvBN(c, c, 3, 1, relu=False)

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + x)


class Head(nn.Module):
    def __init__(self, din: int, hidden: list[int], dropout: list[float]):
        super().__init__()
        self.hidden = nn.ModuleList()
        for h, p in zip(hidden, dropout):
            self.hidden.append(nn.ModuleDict({
                "dense": nn.Linear(din, h),
                "bn": nn.BatchNorm1d(h, eps=BN_EPS),
                "drop": nn.Dropout(p),
            }))
            din = h
        self.out = nn.Linear(din, 2)
        nn.init.normal_(self.out.weight, std=OUTPUT_INIT_STD)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        for layer in self.hidden:
            x = layer["drop"](F.relu(layer["bn"](layer["dense"](x))))
        return self.out(x)


class LocalizationNet(nn.Module):
    def __init__(self, cfg: dict, input_shape, centroid=(0.0, 0.0)):
        super().__init__()
        self.cfg = dict(cfg)
        receivers, mels, frames = input_shape
        self.input_shape = (receivers, mels, frames)
        widths, depths, stride = backbone(cfg)
        self.shared = shared_encoder(cfg)
        cin = 1 if self.shared else receivers
        self.stem = ConvBN(cin, widths[0], cfg.get("stem_kernel") or 3, stride)
        self.stages = nn.ModuleList()
        for s, w in enumerate(widths):
            stage = nn.Module()
            stage.down = ConvBN(widths[s - 1], w, 3, 2) if s > 0 else None
            stage.blocks = nn.ModuleList(Block(w) for _ in range(depths[s]))
            self.stages.append(stage)
        d = widths[-1] * (receivers if self.shared else 1)
        self.mel_profile = bool(cfg.get("mel_profile", False))
        if self.mel_profile:
            d += receivers * mels
        self.levels = int(cfg.get("levels") or 0)
        self.level_encoder = nn.ModuleList()
        if self.levels:
            din = receivers * 2 * self.levels
            # Go's json omits an empty level_hidden: absent means no hidden layer.
            for hid in cfg.get("level_hidden") or []:
                self.level_encoder.append(nn.Linear(din, hid))
                din = hid
            d += din
        hidden, drop = cfg.get("head_hidden", [128, 64]), cfg.get("head_dropout", [0.3, 0.2])
        self.position_head = Head(d, hidden, drop)
        self.uncertainty_head = Head(d, hidden, drop)
        if cfg.get("normalize_positions", True):
            scale, off = float(cfg.get("position_scale") or 1.0), centroid
        else:
            scale, off = 1.0, (0.0, 0.0)
        self.scale = scale
        # float32 like the Go graph's constant.
        self.register_buffer("offset", torch.tensor([off], dtype=torch.float32), persistent=False)
        # trainer.SigmaScaleVariable: inference-only sigma calibration factor (1 unless fitted).
        self.register_buffer("sigma_scale", torch.ones(()), persistent=False)

    def forward(self, x):
        b, r, m, f = x.shape
        h = x.reshape(b * r, 1, m, f) if self.shared else x
        h = self.stem(h)
        for stage in self.stages:
            if stage.down is not None:
                h = stage.down(h)
            for blk in stage.blocks:
                h = blk(h)
        feats = h.mean(dim=(2, 3))
        if self.shared:
            feats = feats.reshape(b, -1)
        if self.mel_profile:
            # [B, R, n_mels] time-averaged spectra, receiver-major, after the pooled features.
            feats = torch.cat([feats, x.mean(dim=3).reshape(b, r * m)], dim=1)
        if self.levels:
            lv = level_features(x, self.levels)
            for layer in self.level_encoder:
                lv = F.relu(layer(lv))
            feats = torch.cat([feats, lv], dim=1)
        pos = self.position_head(feats) * self.scale + self.offset
        sigma = F.softplus(self.uncertainty_head(feats))
        if not self.training:
            sigma = sigma * self.sigma_scale
        sigma = torch.clamp(sigma, SIGMA_MIN, SIGMA_MAX)
        return pos, sigma


def level_features(x, bands: int):
    """trainer.LevelFeatures: [B, R*2*bands], per receiver the lowest bands'
    time means then their time standard deviations, sqrt(max(E[x^2]-E[x]^2, 0))."""
    b, r = x.shape[0], x.shape[1]
    low = x[:, :, :bands, :]
    mean = low.mean(dim=3)
    std = torch.sqrt(torch.clamp((low * low).mean(dim=3) - mean * mean, min=0.0))
    return torch.cat([mean, std], dim=2).reshape(b, r * 2 * bands)


def gaussian_nll(y, mu, sigma):
    """trainer.GaussianNLL: mean((y-mu)^2/(2 s^2) + ln s), s floored at 1e-6."""
    s = torch.clamp(sigma, min=1e-6)
    return ((y - mu) ** 2 / (2 * s * s)).mean() + torch.log(s).mean()


# ---------------------------------------------------------------- checkpoint


def read_gomlx_checkpoint(json_path: str) -> dict[str, np.ndarray]:
    """Reads a GoMLX checkpoint (checkpoint-*.json + .bin) into name -> array.

    The .json lists Variables (ParameterName "var:/scope/name", Dimensions,
    DType, Pos, Length); the .bin is "gomlx_checkpointss" + len byte + "gzip"
    + a gzip stream of the raw little-endian tensors at those offsets (an
    uncompressed legacy .bin has no header).
    """
    with open(json_path) as f:
        meta = json.load(f)
    with open(json_path[: -len(".json")] + ".bin", "rb") as f:
        raw = f.read()
    head = b"gomlx_checkpointss"
    if raw.startswith(head):
        n = raw[len(head)]
        comp = raw[len(head) + 1: len(head) + 1 + n].decode()
        if comp != "gzip":
            raise ValueError(f"{json_path}: unsupported compression {comp!r}")
        raw = gzip.decompress(raw[len(head) + 1 + n:])
    dtypes = {"Float32": "<f4", "Float64": "<f8", "Int64": "<i8", "Int32": "<i4", "Uint64": "<u8"}
    out = {}
    for v in meta["Variables"]:
        name = v["ParameterName"].removeprefix("var:")
        dt = dtypes.get(v["DType"])
        if dt is None:
            continue
        a = np.frombuffer(raw, dtype=dt, count=v["Length"] // np.dtype(dt).itemsize, offset=v["Pos"])
        out[name] = a.reshape(v["Dimensions"] or ())
    params = {p["Key"]: p["Value"] for p in meta.get("Params", [])}
    out["__params__"] = params
    return out


def best_checkpoint(run_dir: str) -> str:
    """The JSON path of the run's best checkpoint (checkpoints/index.json), as trainer.LoadModel picks it."""
    ck = os.path.join(run_dir, "checkpoints")
    with open(os.path.join(ck, "index.json")) as f:
        ix = json.load(f)
    entry = ix.get("best") or ix["checkpoints"][-1]
    return os.path.join(ck, entry["name"] + ".json")


def run_config_from_checkpoint(ckpt: dict) -> dict:
    return json.loads(ckpt["__params__"]["heimdall_run_config"])


def _set(param: torch.Tensor, value: np.ndarray, name: str):
    if tuple(param.shape) != tuple(value.shape):
        raise ValueError(f"{name}: shape {tuple(value.shape)} does not fit {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.array(value, dtype=np.float32, copy=True)))


def load_gomlx_weights(net: LocalizationNet, ckpt: dict, scope: str = "/localization_net") -> list[str]:
    """Copies our checkpoint's variables into net; returns the names used.

    Conv kernels are HWIO in GoMLX (channels-last), OIHW in PyTorch; Dense
    weights are [in, out] vs Linear's [out, in]. Every trainable variable and
    BN statistic under scope must be used exactly once.
    """
    used = []

    def get(name):
        full = scope + "/" + name
        if full not in ckpt:
            raise KeyError(f"checkpoint has no {full}")
        used.append(full)
        return ckpt[full]

    def conv_bn(mod: ConvBN, prefix: str):
        _set(mod.conv.weight, get(prefix + "/conv/weights").transpose(3, 2, 0, 1), prefix + " conv")
        bn(mod.bn, prefix)

    def bn(mod, prefix):
        p = prefix + "/batch_normalization/"
        _set(mod.weight, get(p + "scale"), p + "scale")
        _set(mod.bias, get(p + "offset"), p + "offset")
        _set(mod.running_mean, get(p + "mean"), p + "mean")
        _set(mod.running_var, get(p + "variance"), p + "variance")
        used.append(scope + "/" + p + "avg_weight")  # GoMLX's running-average weight: no PyTorch counterpart.

    def dense(mod: nn.Linear, prefix):
        _set(mod.weight, get(prefix + "/dense/weights").T, prefix + " weights")
        _set(mod.bias, get(prefix + "/dense/biases"), prefix + " biases")

    conv_bn(net.stem, "stem")
    for s, stage in enumerate(net.stages):
        if stage.down is not None:
            conv_bn(stage.down, f"stage{s}/down")
        for b, blk in enumerate(stage.blocks):
            conv_bn(blk.a, f"stage{s}/block{b}/a")
            conv_bn(blk.b, f"stage{s}/block{b}/b")
    for i, layer in enumerate(net.level_encoder):
        dense(layer, f"level_encoder/hidden{i}")
    for hname in ("position_head", "uncertainty_head"):
        head = getattr(net, hname)
        for i, layer in enumerate(head.hidden):
            dense(layer["dense"], f"{hname}/hidden{i}")
            bn(layer["bn"], f"{hname}/hidden{i}")
        dense(head.out, f"{hname}/out")
    k = scope + "/sigma_calibration/scale"
    if k in ckpt:
        net.sigma_scale.copy_(torch.as_tensor(ckpt[k], dtype=torch.float32).reshape(()))
        used.append(k)
    left = [k for k in ckpt if k.startswith(scope + "/") and k not in used]
    if left:
        raise ValueError(f"checkpoint variables not used by the PyTorch model: {left}")
    return used


def load_run(run_dir: str, centroid) -> tuple[LocalizationNet, dict, str]:
    """Builds the PyTorch LocalizationNet of a run's best checkpoint (its own
    saved config) with its weights; returns (net in eval mode, run config, checkpoint path)."""
    path = best_checkpoint(run_dir)
    ckpt = read_gomlx_checkpoint(path)
    rc = run_config_from_checkpoint(ckpt)
    net = LocalizationNet(rc["model"], rc["input_shape"], centroid)
    load_gomlx_weights(net, ckpt)
    return net.eval(), rc, path


# ---------------------------------------------------------------- FLOPs


def flops_per_sample(cfg: dict, input_shape) -> dict:
    """Analytic forward FLOPs per sample: 2 x MACs of convs and dense layers
    (BN, ReLU, pooling, adds not counted). Per backbone part, for the profile."""
    receivers, mels, frames = input_shape
    widths, depths, stride = backbone(cfg)
    k = cfg.get("stem_kernel") or 3
    enc = receivers if shared_encoder(cfg) else 1  # backbone passes per sample
    cin = 1 if shared_encoder(cfg) else receivers

    def out(n, s):
        return (n + s - 1) // s

    parts = {}
    h, w = out(mels, stride), out(frames, stride)
    parts["stem"] = 2 * enc * h * w * k * k * cin * widths[0]
    for s, c in enumerate(widths):
        f = 0
        if s > 0:
            h, w = out(h, 2), out(w, 2)
            f += 2 * enc * h * w * 9 * widths[s - 1] * c
        f += depths[s] * 2 * (2 * enc * h * w * 9 * c * c)
        parts[f"stage{s}"] = f
    d = widths[-1] * (receivers if shared_encoder(cfg) else 1)
    if cfg.get("mel_profile"):
        d += receivers * mels
    if cfg.get("levels"):
        din = receivers * 2 * cfg["levels"]
        for hid in cfg.get("level_hidden") or []:
            hf_l = 2 * din * hid
            parts["level_encoder"] = parts.get("level_encoder", 0) + hf_l
            din = hid
        d += din
    hf = 0
    for hid in cfg.get("head_hidden", [128, 64]):
        hf += 2 * d * hid
        d = hid
    hf += 2 * d * 2
    parts["heads"] = 2 * hf
    total = sum(parts.values())
    return {"forward": total, "train": 3 * total, "parts_forward": parts}


def truncated(cfg: dict, n_stages: int) -> dict:
    """The config with the backbone cut after n_stages (sub-graph timing)."""
    widths, depths, _ = backbone(cfg)
    c = dict(cfg)
    c["widths"], c["depths"] = widths[:n_stages], depths[:n_stages]
    return c



