package geo

import (
	"math"
	"testing"
)

func TestHaversineKm(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tol              float64
	}{
		{"same point", 45, 7, 45, 7, 0, 1e-9},
		{"one degree of latitude", 45, 7, 46, 7, 111.195, 0.01},
		{"Torino to Genova", 45.044, 7.672, 44.395, 8.956, 124.5, 0.5},
		{"quarter meridian", 0, 0, 90, 0, math.Pi / 2 * EarthRadiusKm, 1e-6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := HaversineKm(tc.lat1, tc.lon1, tc.lat2, tc.lon2)
			if math.Abs(got-tc.want) > tc.tol {
				t.Fatalf("HaversineKm = %.4f km, want %.4f ± %g", got, tc.want, tc.tol)
			}
		})
	}
}

func TestReceiversTable(t *testing.T) {
	if len(Receivers) != 7 {
		t.Fatalf("want 7 receivers, got %d", len(Receivers))
	}
	for i, r := range Receivers {
		if r.ID != i+1 {
			t.Errorf("receiver %d has id %d; the table must be in id order", i, r.ID)
		}
	}
}
