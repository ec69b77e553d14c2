//go:build !unix

package kernels

import "time"

// processCPU is not measured outside unix: the CPU-time metric is omitted.
func processCPU() (time.Duration, bool) { return 0, false }
