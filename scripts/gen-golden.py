#!/usr/bin/env python3
"""Write golden vectors for the Go feature kernels (kernels/testdata/).

An independent numpy/scipy implementation of HEIMDALL.md "Features"
(iq_to_mel_spectrogram and compute_mfcc):

  1. x = |iq| (float64)
  2. scipy.signal.stft defaults: periodic Hann of n_fft, boundary='zeros',
     padded=True, noverlap = n_fft - hop, one-sided, scaling='spectrum'
  3. power = |Z|^2, mel = fb @ power, HTK filterbank written from the spec
  4. db = 10 log10(mel + 1e-9)
  5. (db - mean) / max(std, 1e-8), population std, over the whole channel
  6. centre crop to `frames` (start = (T-frames)//2) or np.pad(mode='reflect')
     with left = (frames-T)//2, right = the rest
  MFCC = scipy.fft.dct(db, type=2, norm='ortho', axis=0)[:n_mfcc] on the
  un-normalised dB.

scipy.signal.stft shrinks nperseg to the input length when the signal is
shorter than one window (and then rejects noverlap >= nperseg); the kernels
keep the n_fft window there. For those cases the STFT is scipy.signal.stft on
the explicitly boundary-extended and end-padded signal, cross-checked with
scipy.signal.ShortTimeFFT. Where scipy.signal.stft applies directly, all three
are computed and must agree.

Usage: $(scripts/pyvenv.sh golden scripts/requirements-golden.txt)/bin/python \
           scripts/gen-golden.py [OUTDIR]      (default kernels/testdata)

Output: golden.json (manifest) plus little-endian raw files per case:
  <case>.iq.c64        input IQ, complex64 (interleaved float32 re, im)
  <case>.meldb.f64     mel dB before normalisation, float64 [n_mels x T]
  <case>.features.f64  normalised, cropped/padded, float64 [n_mels x frames]
  <case>.mfcc.f64      MFCC of the mel dB, float64 [n_mfcc x T]
"""

import json
import os
import sys
import warnings

import numpy as np
import scipy
import scipy.fft
import scipy.signal

CASES = [
    # (a) default config at 12.5 kHz, T = 34 -> centre crop.
    dict(name="a_default_12k5_crop", seed=1, sample_rate=12500.0, n_iq=16896,
         n_fft=2048, hop=512, n_mels=128, f_min=0.0, f_max=0.0, frames=32, n_mfcc=13,
         carrier_hz=1000.0, am_hz=440.0),
    # (b) 48 kHz, band-limited filterbank, T = 95 -> centre crop.
    dict(name="b_48k_band_crop", seed=2, sample_rate=48000.0, n_iq=24000,
         n_fft=1024, hop=256, n_mels=64, f_min=100.0, f_max=20000.0, frames=32, n_mfcc=13,
         carrier_hz=-5000.0, am_hz=3000.0),
    # (c) shorter than one window: T = 4 -> reflect pad with repeated reflections.
    dict(name="c_short_12k5_pad", seed=3, sample_rate=12500.0, n_iq=1500,
         n_fft=2048, hop=512, n_mels=128, f_min=0.0, f_max=0.0, frames=32, n_mfcc=13,
         carrier_hz=250.0, am_hz=1200.0),
    # (d) T = 21 < 32 -> single reflect pad (left 5, right 6).
    dict(name="d_48k_reflect", seed=4, sample_rate=48000.0, n_iq=2500,
         n_fft=512, hop=128, n_mels=40, f_min=0.0, f_max=0.0, frames=32, n_mfcc=20,
         carrier_hz=7000.0, am_hz=5000.0),
    # (e) hop == n_fft (no overlap), T = 5 -> pad to 8 frames.
    dict(name="e_8k_hop_eq_nfft", seed=5, sample_rate=8000.0, n_iq=1000,
         n_fft=256, hop=256, n_mels=32, f_min=50.0, f_max=3500.0, frames=8, n_mfcc=13,
         carrier_hz=0.0, am_hz=700.0),
]


def make_iq(c):
    rng = np.random.default_rng(c["seed"])
    n = np.arange(c["n_iq"])
    sr = c["sample_rate"]
    noise = (rng.standard_normal(c["n_iq"]) + 1j * rng.standard_normal(c["n_iq"])) * 0.2
    # An AM tone: |iq| of a bare complex tone is constant, the envelope
    # must carry the tone to show up in the spectrogram of |iq|.
    env = 1.0 + 0.5 * np.cos(2 * np.pi * c["am_hz"] * n / sr)
    carrier = np.exp(2j * np.pi * c["carrier_hz"] * n / sr)
    return (env * carrier + noise).astype(np.complex64)


def frames_after_padding(n, n_fft, hop):
    ext = n + 2 * (n_fft // 2)                       # boundary='zeros'
    nadd = (-(ext - n_fft) % hop) % n_fft            # padded=True (scipy's rule)
    return ext + nadd, 1 + (ext + nadd - n_fft) // hop, nadd


def stft_power(x, c):
    n_fft, hop, sr = c["n_fft"], c["hop"], c["sample_rate"]
    total, T, nadd = frames_after_padding(len(x), n_fft, hop)

    # Explicit padding, then scipy.signal.stft without its own extension.
    xp = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft // 2 + nadd)])
    assert len(xp) == total
    _, _, Zp = scipy.signal.stft(xp, fs=sr, window="hann", nperseg=n_fft,
                                 noverlap=n_fft - hop, boundary=None, padded=False)
    # ShortTimeFFT: slice p is centred on sample p*hop, as boundary='zeros'.
    win = scipy.signal.get_window("hann", n_fft)     # periodic
    sft = scipy.signal.ShortTimeFFT(win, hop, fs=sr, fft_mode="onesided",
                                    scale_to="magnitude")
    Zs = sft.stft(x, p0=0, p1=T)
    Pp, Ps = np.abs(Zp) ** 2, np.abs(Zs) ** 2
    assert Pp.shape == (n_fft // 2 + 1, T), (Pp.shape, T)
    assert np.allclose(Pp, Ps, rtol=1e-9, atol=1e-18), "ShortTimeFFT disagrees"

    if len(x) >= n_fft:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, _, Z = scipy.signal.stft(x, fs=sr, window="hann", nperseg=n_fft,
                                        noverlap=n_fft - hop)  # all other defaults
        P = np.abs(Z) ** 2
        assert P.shape == Pp.shape, (P.shape, Pp.shape)
        assert np.allclose(P, Pp, rtol=1e-9, atol=1e-18), "stft defaults disagree"
        return P, "scipy.signal.stft"
    return Pp, "scipy.signal.stft(explicit padding)+ShortTimeFFT"


def htk_filterbank(n_mels, n_fft, sr, f_min, f_max):
    if f_max == 0:
        f_max = sr / 2

    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

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


def crop_or_pad(db, frames):
    T = db.shape[1]
    if T >= frames:
        s = (T - frames) // 2
        return db[:, s:s + frames]
    left = (frames - T) // 2
    return np.pad(db, ((0, 0), (left, frames - T - left)), mode="reflect")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "kernels", "testdata")
    os.makedirs(out, exist_ok=True)
    manifest = dict(
        generator="scripts/gen-golden.py",
        numpy=np.__version__, scipy=scipy.__version__,
        format="little-endian raw: .c64 complex64 interleaved, .f64 float64 row-major",
        cases=[])
    for c in CASES:
        iq = make_iq(c)
        x = np.abs(iq.astype(np.complex128))
        P, how = stft_power(x, c)
        fb = htk_filterbank(c["n_mels"], c["n_fft"], c["sample_rate"], c["f_min"], c["f_max"])
        db = 10.0 * np.log10(fb @ P + 1e-9)
        T = db.shape[1]
        norm = (db - db.mean()) / max(db.std(), 1e-8)
        feat = crop_or_pad(norm, c["frames"])
        mfcc = scipy.fft.dct(db, type=2, norm="ortho", axis=0)[: c["n_mfcc"]]
        files = {}
        for key, arr, dt in (("iq", iq, "<c8"), ("meldb", db, "<f8"),
                             ("features", feat, "<f8"), ("mfcc", mfcc, "<f8")):
            ext = "c64" if dt == "<c8" else "f64"
            fn = f"{c['name']}.{key}.{ext}"
            np.ascontiguousarray(arr, dtype=dt).tofile(os.path.join(out, fn))
            files[key] = fn
        entry = dict(c)
        entry.update(T=T, stft=how, files=files)
        manifest["cases"].append(entry)
        print(f"{c['name']}: n_iq={c['n_iq']} T={T} ({how})", file=sys.stderr)
    with open(os.path.join(out, "golden.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
