#!/usr/bin/env python3
"""Generate the .npy test fixtures for the Go package npy/.

Usage (from the repository root):

    python3 -m venv /tmp/npyvenv && /tmp/npyvenv/bin/pip install numpy==2.4.6
    /tmp/npyvenv/bin/python scripts/gen-npy-fixtures.py

Writes small files into npy/testdata/ plus npy/testdata/expected.json, which
records for every fixture its dtype string, shape and the values as raw IEEE-754
float32 bit patterns (so NaN/Inf/-0 compare exactly). The Go tests read the
fixtures and compare against expected.json; files whose dtype/layout is not
supported by the Go reader are listed with the error substring the reader must
report.
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "npy", "testdata")


def f32_bits(a):
    """Flatten (C order) to a list of uint32 bit patterns of the float32 parts."""
    a = np.ascontiguousarray(a)
    if a.dtype.kind == "c":
        a = a.astype("<c8").view("<f4")
    return [int(x) for x in a.astype("<f4").view("<u4").ravel()]


def save(name, a, version=None):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        if version is None:
            np.save(f, a)
        else:
            np.lib.format.write_array(f, a, version=version)
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {"numpy_version": np.__version__, "ok": {}, "bad": {}}

    # complex64 1-D, v1.0 header (numpy's default).
    k = np.arange(16, dtype=np.float32)
    c = (k * 0.5 - 1j * k * 0.25).astype(np.complex64)
    c[3] = np.complex64(complex(np.float32(0.1), np.float32(-1e-30)))
    c[5] = np.complex64(complex(np.inf, -np.inf))
    c[7] = np.complex64(complex(-0.0, 3.4028235e38))
    save("c64_1d_v1.npy", c)
    expected["ok"]["c64_1d_v1.npy"] = {"dtype": "complex64", "shape": [16], "bits": f32_bits(c)}

    # complex64 1-D, forced v2.0 header.
    c2 = (np.arange(8, dtype=np.float32) + 1j * np.arange(8, 0, -1, dtype=np.float32)).astype(np.complex64)
    save("c64_1d_v2.npy", c2, version=(2, 0))
    expected["ok"]["c64_1d_v2.npy"] = {"dtype": "complex64", "shape": [8], "bits": f32_bits(c2)}

    # float32 2-D, v1.0 header.
    f = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 3.0
    f = f.astype(np.float32)
    f[2, 3] = np.float32(np.nan)
    save("f32_2d_v1.npy", f)
    expected["ok"]["f32_2d_v1.npy"] = {"dtype": "float32", "shape": [3, 4], "bits": f32_bits(f)}

    # float32 2-D, forced v2.0 header.
    f2 = np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5)
    save("f32_2d_v2.npy", f2, version=(2, 0))
    expected["ok"]["f32_2d_v2.npy"] = {"dtype": "float32", "shape": [2, 5], "bits": f32_bits(f2)}

    # Empty complex64 1-D.
    e = np.zeros(0, dtype=np.complex64)
    save("c64_empty.npy", e)
    expected["ok"]["c64_empty.npy"] = {"dtype": "complex64", "shape": [0], "bits": []}

    # Unsupported inputs.
    save("c64_bigendian.npy", c2.astype(">c8"))
    expected["bad"]["c64_bigendian.npy"] = "big-endian"
    save("f32_bigendian.npy", f2.astype(">f4"))
    expected["bad"]["f32_bigendian.npy"] = "big-endian"
    save("f32_fortran.npy", np.asfortranarray(f2))
    expected["bad"]["f32_fortran.npy"] = "fortran_order"
    save("f64_1d.npy", np.arange(4, dtype="<f8"))
    expected["bad"]["f64_1d.npy"] = "'<f8'"
    save("f32_3d.npy", np.zeros((2, 1, 2), dtype="<f4"))
    expected["bad"]["f32_3d.npy"] = "3 dimensions"

    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
