package trainer

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestHoldOut: the holdout takes the documented share, evenly spaced, and
// every sample lands on exactly one side with its X rows and label intact.
func TestHoldOut(t *testing.T) {
	shape := [3]int{1, 1, 2}
	var s Split
	for i := range 20 {
		s.X = append(s.X, float32(i), float32(-i))
		s.Y = append(s.Y, float32(i), float32(i)+0.5)
		s.IDs = append(s.IDs, string(rune('a'+i)))
	}
	kept, held := holdOut(s, shape, 0.1)
	if held.Len() != 2 || kept.Len() != 18 {
		t.Fatalf("held %d / kept %d of 20 at share 0.1, want 2 / 18", held.Len(), kept.Len())
	}
	if held.IDs[0] != "j" || held.IDs[1] != "t" { // samples 9 and 19
		t.Errorf("held %v, want [j t] (evenly spaced)", held.IDs)
	}
	seen := map[float32]bool{}
	for _, side := range []Split{kept, held} {
		for i := range side.Len() {
			y := side.Y[2*i]
			if side.X[2*i] != y || side.X[2*i+1] != -y || side.Y[2*i+1] != y+0.5 || side.IDs[i] != string(rune('a'+int(y))) {
				t.Errorf("sample %g: X %v Y %v ID %q do not belong together", y, side.X[2*i:2*i+2], side.Y[2*i:2*i+2], side.IDs[i])
			}
			if seen[y] {
				t.Errorf("sample %g on both sides", y)
			}
			seen[y] = true
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d of 20 samples kept or held", len(seen))
	}
}

// TestCalibrationHoldout: with train.calibration_holdout the run trains on
// the rest of the train split (the log and steps per epoch say so) and fits
// a sigma scale other than 1; the config check refuses a holdout without
// calibrate_sigma and a share of 0.5 or more.
func TestCalibrationHoldout(t *testing.T) {
	backend := testBackend(t)
	data := synthData(64, 16)
	tcfg := tinyTrain()
	tcfg.CalibrateSigma, tcfg.CalibrationHoldout = true, 0.25
	dir := filepath.Join(t.TempDir(), "run")
	var log strings.Builder
	s, err := Train(context.Background(), backend, data, tinyModel(), tcfg, RunOptions{RunDir: dir, NoPlots: true, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "16 train samples held out to calibrate sigma") {
		t.Errorf("log does not report the 16-sample holdout:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "48 train / 16 val samples") {
		t.Errorf("log does not report training on the 48 remaining samples:\n%s", log.String())
	}
	if !finite(s.Val.Loss) {
		t.Fatalf("val loss %v", s.Val.Loss)
	}
	m := regexp.MustCompile(`σ scale ([0-9.]+)`).FindAllStringSubmatch(log.String(), -1)
	if len(m) == 0 {
		t.Fatalf("no σ scale in the epoch lines:\n%s", log.String())
	}
	if k, _ := strconv.ParseFloat(m[len(m)-1][1], 64); k <= 0 || k == 1 {
		t.Errorf("last σ scale %s: want a fitted scale (> 0, != 1)", m[len(m)-1][1])
	}
	bad := tinyTrain()
	bad.CalibrationHoldout = 0.1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "calibration_holdout") {
		t.Errorf("Validate without calibrate_sigma: %v, want a calibration_holdout error", err)
	}
	bad.CalibrateSigma, bad.CalibrationHoldout = true, 0.5
	if err := bad.Validate(); err == nil {
		t.Error("Validate accepted calibration_holdout 0.5")
	}
}
