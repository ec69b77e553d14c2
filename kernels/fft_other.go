//go:build !amd64 || purego

package kernels

// haveAVX2 is false without the amd64 assembly: power runs its portable
// loops.
var haveAVX2 = false

func radix4AVX2(re, im, tw *float64, groups, s int) {
	panic("kernels: radix4AVX2 without its assembly")
}
