package backend

import (
	"strings"
	"testing"
)

func TestParseNvidiaSMI(t *testing.T) {
	out := "0, NVIDIA H100 80GB HBM3, 81559, 4, 580.159.04\n1, NVIDIA H100 80GB HBM3, 81559, 1200, 580.159.04\n\n"
	gpus, err := parseNvidiaSMI(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 2 || gpus[0].Name != "NVIDIA H100 80GB HBM3" || gpus[0].MemoryTotalMiB != 81559 || gpus[1].MemoryUsedMiB != 1200 || gpus[1].Driver != "580.159.04" {
		t.Errorf("parsed %+v", gpus)
	}
	if _, err := parseNvidiaSMI("0, x, [N/A], 1, d\n"); err == nil {
		t.Error("bad memory field: no error")
	}
	s := DeviceInfo{Devices: []string{"cuda:0"}, GPUs: gpus[:1]}.String()
	if !strings.Contains(s, "GPU 0: NVIDIA H100 80GB HBM3, 81559 MiB memory") {
		t.Errorf("String() = %q", s)
	}
}
