package dataset

import (
	"context"
	"errors"
	"fmt"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/kernels"
	"github.com/heimdall-sdr/trainer/session"
	"github.com/heimdall-sdr/trainer/storage"
)

// SessionInput is one session's model input, computed by the same code as
// the training set (Load).
type SessionInput struct {
	ID string
	// X is [receivers, n_mels, frames] row-major, receivers in geo.Receivers order.
	X []float32
	// Present flags the receivers that recorded (absent ones are zero-filled).
	Present []bool
	// SampleRateHz is the recordings' sample rate.
	SampleRateHz float64
	// Truth is the ground-truth (lat, lon) when session.json has one.
	Truth *[2]float64
	// ApprovalStatus as recorded in session.json.
	ApprovalStatus string
}

// SessionFeatures reads one session (any approval status; a label is not
// required) from st under o.Prefix and computes its model input with the
// training feature pipeline. It does not use the feature cache.
func SessionFeatures(ctx context.Context, st storage.Store, feat kernels.MelConfig, o Options, id string) (*SessionInput, error) {
	if err := feat.Validate(); err != nil {
		return nil, err
	}
	info, err := readInfo(ctx, st, o.Prefix, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("dataset: session %q not found in %s (no %s)", id, st, session.InfoKey(o.Prefix, id))
		}
		return nil, fmt.Errorf("dataset: session %s: %w", id, err)
	}
	in := &SessionInput{ID: id, ApprovalStatus: info.ApprovalStatus}
	if info.Latitude != nil && info.Longitude != nil {
		in.Truth = &[2]float64{*info.Latitude, *info.Longitude}
	} else {
		zero := 0.0
		info.Latitude, info.Longitude = &zero, &zero // loadSession wants a label.
	}
	c := &cache{} // disabled
	l, err := loadSession(ctx, st, o, feat, newExtractors(feat), c, id, info)
	if err != nil {
		return nil, fmt.Errorf("dataset: session %s: %w", id, err)
	}
	in.X, in.Present, in.SampleRateHz = l.x, l.present, l.sr
	if len(in.Present) != len(geo.Receivers) {
		return nil, fmt.Errorf("dataset: session %s: %d receivers, want %d", id, len(in.Present), len(geo.Receivers))
	}
	return in, nil
}
