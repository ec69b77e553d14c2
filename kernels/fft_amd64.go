//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

// haveAVX2 selects radix4AVX2 for the radix-4 stages of span >= 4 (AVX2 and
// FMA, every x86-64 CPU since 2013-2015). Build with -tags purego for the
// portable loops only. A variable so that tests can run both.
var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// radix4AVX2 is one radix-4 stage (fft_amd64.s). re and im point at m
// values, m = groups·4s; tw at the stage's twiddles in rfftPower.tv (blocks
// of 4 butterflies: w1r[4] w1i[4] w2r[4] w2i[4]).
//
//go:noescape
func radix4AVX2(re, im, tw *float64, groups, s int)
