package backend

// What a backend runs on: PJRT's device descriptions and, for CUDA, the GPU
// name, memory and driver from nvidia-smi.

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"
)

// GPUInfo is one GPU as nvidia-smi reports it.
type GPUInfo struct {
	Index          int    `json:"index"`
	Name           string `json:"name"`
	MemoryTotalMiB int    `json:"memory_total_mib"`
	MemoryUsedMiB  int    `json:"memory_used_mib"`
	Driver         string `json:"driver"`
}

// nvidiaSMIQuery is the nvidia-smi query QueryGPUs runs (CSV, no header, no units).
var nvidiaSMIQuery = []string{"--query-gpu=index,name,memory.total,memory.used,driver_version", "--format=csv,noheader,nounits"}

// QueryGPUs lists the GPUs with nvidia-smi (nil and an error without it).
func QueryGPUs() ([]GPUInfo, error) {
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		return nil, fmt.Errorf("nvidia-smi not found: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nvidia-smi", nvidiaSMIQuery...).Output()
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	return parseNvidiaSMI(string(out))
}

// parseNvidiaSMI parses the CSV of nvidiaSMIQuery.
func parseNvidiaSMI(out string) ([]GPUInfo, error) {
	var gpus []GPUInfo
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 5 {
			return gpus, fmt.Errorf("nvidia-smi: unexpected line %q", line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		g := GPUInfo{Name: f[1], Driver: f[4]}
		var errs [3]error
		g.Index, errs[0] = strconv.Atoi(f[0])
		g.MemoryTotalMiB, errs[1] = strconv.Atoi(f[2])
		g.MemoryUsedMiB, errs[2] = strconv.Atoi(f[3])
		if err := errors.Join(errs[:]...); err != nil {
			return gpus, fmt.Errorf("nvidia-smi: line %q: %w", line, err)
		}
		gpus = append(gpus, g)
	}
	return gpus, nil
}

// DeviceInfo is what a backend runs on.
type DeviceInfo struct {
	Backend string   `json:"backend"` // backend.Description()
	Devices []string `json:"devices"` // PJRT device descriptions, one per addressable device.
	// GPUs (CUDA backends only) come from nvidia-smi; GPUError says why they are missing.
	GPUs     []GPUInfo `json:"gpus,omitempty"`
	GPUError string    `json:"gpu_error,omitempty"`
}

// Describe collects the DeviceInfo of b; nvidia-smi is asked when spec
// selects a CUDA plugin or the backend says it runs on CUDA.
func Describe(b compute.Backend, spec string) DeviceInfo {
	info := DeviceInfo{Backend: b.Description()}
	for i := range b.NumDevices() {
		info.Devices = append(info.Devices, b.DeviceDescription(compute.DeviceNum(i)))
	}
	if IsCUDASpec(spec) || strings.Contains(strings.ToLower(b.Description()), "cuda") {
		gpus, err := QueryGPUs()
		info.GPUs = gpus
		if err != nil {
			info.GPUError = err.Error()
		}
	}
	return info
}

// String prints one line per device and GPU.
func (d DeviceInfo) String() string {
	var b strings.Builder
	for i, dev := range d.Devices {
		fmt.Fprintf(&b, "device %d: %s\n", i, dev)
	}
	for _, g := range d.GPUs {
		fmt.Fprintf(&b, "GPU %d: %s, %d MiB memory (%d MiB in use), driver %s\n", g.Index, g.Name, g.MemoryTotalMiB, g.MemoryUsedMiB, g.Driver)
	}
	if d.GPUError != "" {
		fmt.Fprintf(&b, "GPU memory unknown: %s\n", d.GPUError)
	}
	return b.String()
}
