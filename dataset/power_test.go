package dataset

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

func TestPowerEstimates(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	const sig, noise = 0.1, 0.01 // powers: SNR 10 dB
	iq := make([]complex64, n)
	for i := range iq {
		s := cmplx.Rect(math.Sqrt(sig), 0.3*float64(i))
		w := complex(rng.NormFloat64(), rng.NormFloat64()) * complex(math.Sqrt(noise/2), 0)
		iq[i] = complex64(s + w)
	}
	if got, want := TotalPowerDB(iq), 10*math.Log10(sig+noise); math.Abs(got-want) > 0.1 {
		t.Errorf("TotalPowerDB = %.3f, want %.3f", got, want)
	}
	if got, want := SignalPowerDB(iq), 10*math.Log10(sig); math.Abs(got-want) > 0.1 {
		t.Errorf("SignalPowerDB = %.3f, want %.3f", got, want)
	}
	if !math.IsInf(TotalPowerDB(nil), -1) || !math.IsInf(SignalPowerDB(nil), -1) {
		t.Error("empty recordings must give -Inf")
	}
}
