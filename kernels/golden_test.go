package kernels

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// goldenCase is one entry of testdata/golden.json, written by
// scripts/gen-golden.py (numpy + scipy).
type goldenCase struct {
	Name       string            `json:"name"`
	SampleRate float64           `json:"sample_rate"`
	NIQ        int               `json:"n_iq"`
	NFFT       int               `json:"n_fft"`
	Hop        int               `json:"hop"`
	NMels      int               `json:"n_mels"`
	FMin       float64           `json:"f_min"`
	FMax       float64           `json:"f_max"`
	Frames     int               `json:"frames"`
	NMFCC      int               `json:"n_mfcc"`
	T          int               `json:"T"`
	Files      map[string]string `json:"files"`
}

func (g goldenCase) config() MelConfig {
	return MelConfig{NFFT: g.NFFT, Hop: g.Hop, NMels: g.NMels, FMin: g.FMin, FMax: g.FMax, Frames: g.Frames, NMFCC: g.NMFCC}
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatalf("golden manifest: %v (regenerate with scripts/gen-golden.py)", err)
	}
	var m struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("golden manifest: %v", err)
	}
	if len(m.Cases) == 0 {
		t.Fatal("golden manifest has no cases")
	}
	return m.Cases
}

func readRaw(t testing.TB, name string, elemSize int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%elemSize != 0 {
		t.Fatalf("%s: %d bytes is not a multiple of %d", name, len(b), elemSize)
	}
	return b
}

func readF64(t testing.TB, name string) []float64 {
	b := readRaw(t, name, 8)
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

func readC64(t testing.TB, name string) []complex64 {
	b := readRaw(t, name, 8)
	out := make([]complex64, len(b)/8)
	for i := range out {
		re := math.Float32frombits(binary.LittleEndian.Uint32(b[8*i:]))
		im := math.Float32frombits(binary.LittleEndian.Uint32(b[8*i+4:]))
		out[i] = complex(re, im)
	}
	return out
}

func maxAbsDiff[E float32 | float64](t *testing.T, what string, got []E, want []float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	var m float64
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(d) {
			t.Fatalf("%s[%d]: got %v want %v", what, i, got[i], want[i])
		}
		m = math.Max(m, d)
	}
	return m
}

// TestGolden checks MelDB, Features and MFCC against scipy's vectors:
// max abs error <= 1e-3 dB on the mel dB, <= 1e-3 on the MFCC and on the
// normalised features.
func TestGolden(t *testing.T) {
	const tolDB, tolMFCC, tolFeat = 1e-3, 1e-3, 1e-3
	for _, g := range loadGolden(t) {
		t.Run(g.Name, func(t *testing.T) {
			iq := readC64(t, g.Files["iq"])
			if len(iq) != g.NIQ {
				t.Fatalf("iq length %d, manifest says %d", len(iq), g.NIQ)
			}
			cfg := g.config()
			e, err := NewExtractor(cfg, g.SampleRate)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Frames(len(iq)); got != g.T {
				t.Fatalf("Frames(%d) = %d, scipy T = %d", len(iq), got, g.T)
			}
			db, T, err := e.MelDB(iq)
			if err != nil {
				t.Fatal(err)
			}
			if T != g.T {
				t.Fatalf("T = %d, scipy T = %d", T, g.T)
			}
			errDB := maxAbsDiff(t, "meldb", db, readF64(t, g.Files["meldb"]))

			feat := make([]float32, cfg.NMels*cfg.Frames)
			if err := e.Features(iq, feat); err != nil {
				t.Fatal(err)
			}
			errFeat := maxAbsDiff(t, "features", feat, readF64(t, g.Files["features"]))

			mfcc := MFCC(db, cfg.NMels, T, cfg.NMFCC)
			errMFCC := maxAbsDiff(t, "mfcc", mfcc, readF64(t, g.Files["mfcc"]))

			t.Logf("T=%d max|err|: mel dB %.3g dB, features %.3g, mfcc %.3g", T, errDB, errFeat, errMFCC)
			if errDB > tolDB {
				t.Errorf("mel dB max abs error %g > %g", errDB, tolDB)
			}
			if errFeat > tolFeat {
				t.Errorf("features max abs error %g > %g", errFeat, tolFeat)
			}
			if errMFCC > tolMFCC {
				t.Errorf("mfcc max abs error %g > %g", errMFCC, tolMFCC)
			}
		})
	}
}
