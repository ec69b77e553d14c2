#!/usr/bin/env python3
"""The scipy reference of the feature kernels, timed: sessions/s on one core.

The same spec as kernels/ (HEIMDALL.md "Features") and the golden-vector
generator scripts/gen-golden.py, written the plain numpy/scipy way: per
receiver channel x = |iq| (float64), scipy.signal.stft(x, window='hann',
nperseg=n_fft, noverlap=n_fft-hop) with its defaults, power |Z|^2, the dense
HTK filterbank (computed once, like kernels.NewExtractor) times the power,
10 log10(mel + 1e-9), normalised over the channel, centre-cropped to the
frames. One session is 7 channels x 16896 IQ samples at 12.5 kHz with the
default config, as BenchmarkFeaturesSession in kernels/kernels_test.go.

Run it with one thread for BLAS (OPENBLAS_NUM_THREADS=1 etc.; scipy.fft is
single-threaded by default) so that it is per core, like `go test -bench
FeaturesSession -cpu 1`. scripts/bench-features.sh runs both, interleaved.

Usage: python features.py [--seconds S] [--repeats R]
Prints one JSON object: sessions_per_s (wall clock) and sessions_per_cpu_s
(per second of this process's CPU time, time.process_time: the per-core
figure on a shared machine), medians over repeats, numpy/scipy versions.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import scipy
import scipy.signal


SR, NIQ, CH = 12500.0, 16896, 7
NFFT, HOP, NMELS, FRAMES = 2048, 512, 128, 32


def htk_filterbank(n_mels, n_fft, sr, f_min=0.0, f_max=0.0):
    # As scripts/gen-golden.py.
    if f_max == 0:
        f_max = sr / 2
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    pts = hz(np.linspace(mel(f_min), mel(f_max), n_mels + 2))
    f = np.arange(n_fft // 2 + 1) * sr / n_fft
    fb = np.zeros((n_mels, f.size))
    for m in range(n_mels):
        left, center, right = pts[m], pts[m + 1], pts[m + 2]
        rise = (f >= left) & (f <= center)
        fall = (f > center) & (f <= right)
        fb[m, rise] = (f[rise] - left) / (center - left) if center > left else 1.0
        if right > center:
            fb[m, fall] = (right - f[fall]) / (right - center)
    return fb


def features(iq, fb):
    x = np.abs(iq.astype(np.complex128))
    _, _, Z = scipy.signal.stft(x, fs=SR, window="hann", nperseg=NFFT, noverlap=NFFT - HOP)
    db = 10.0 * np.log10(fb @ (np.abs(Z) ** 2) + 1e-9)
    norm = (db - db.mean()) / max(db.std(), 1e-8)
    s = (norm.shape[1] - FRAMES) // 2
    return norm[:, s:s + FRAMES].astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    sess = [((rng.standard_normal(NIQ) + 1j * rng.standard_normal(NIQ)) * 0.3).astype(np.complex64) for _ in range(CH)]
    fb = htk_filterbank(NMELS, NFFT, SR)
    out = features(sess[0], fb)
    assert out.shape == (NMELS, FRAMES), out.shape
    for _ in range(3):
        for iq in sess:
            features(iq, fb)
    per, per_cpu = [], []
    for _ in range(a.repeats):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            for iq in sess:
                features(iq, fb)
            n += 1
            el = time.perf_counter() - t0
            if el >= a.seconds and n >= 3:
                break
        per.append(el / n)
        per_cpu.append((time.process_time() - c0) / n)
    med, med_cpu = statistics.median(per), statistics.median(per_cpu)
    json.dump({"impl": "scipy.signal.stft + numpy", "sessions_per_s": 1 / med, "seconds_per_session": med,
               "sessions_per_cpu_s": 1 / med_cpu, "cpu_seconds_per_session": med_cpu,
               "repeats_s_per_session": per, "numpy": np.__version__, "scipy": scipy.__version__,
               "session": f"{CH} x {NIQ} IQ at {SR:g} Hz, n_fft {NFFT}, hop {HOP}, {NMELS} mels, {FRAMES} frames"},
              sys.stdout)
    print()


if __name__ == "__main__":
    main()
