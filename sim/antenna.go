package sim

import "math"

// Antenna is a receiver antenna's horizontal pattern.
type Antenna struct {
	// Kind names the antenna: "vertical", "collinear", "yagi" or "lpda".
	Kind string `json:"kind"`
	// GainDBi is the gain in the direction of maximum radiation.
	GainDBi float64 `json:"gain_dbi"`
	// AzimuthDeg is where a directional antenna points (degrees clockwise
	// from north); unused for omnidirectional ones.
	AzimuthDeg float64 `json:"azimuth_deg"`
	// BeamwidthDeg is the half-power beamwidth of a directional antenna; 0
	// marks an omnidirectional antenna.
	BeamwidthDeg float64 `json:"beamwidth_deg"`
	// FrontToBackDB is the largest attenuation of a directional antenna,
	// reached behind it.
	FrontToBackDB float64 `json:"front_to_back_db"`
}

// Directional reports whether the antenna has a beam.
func (a Antenna) Directional() bool { return a.BeamwidthDeg > 0 }

// GainDB returns the gain (dBi) toward bearing (degrees clockwise from
// north). Directional antennas follow the parabolic pattern of 3GPP TR
// 36.814 Table A.2.1.1-2, G = Gmax - min(12 (θ/θ3dB)², FB), θ the angle off
// boresight.
func (a Antenna) GainDB(bearingDeg float64) float64 {
	if !a.Directional() {
		return a.GainDBi
	}
	th := math.Mod(bearingDeg-a.AzimuthDeg+540, 360) - 180
	r := th / a.BeamwidthDeg
	return a.GainDBi - min(12*r*r, a.FrontToBackDB)
}

// bearingDeg is the initial great-circle bearing from (lat1, lon1) to (lat2,
// lon2), degrees clockwise from north.
func bearingDeg(lat1, lon1, lat2, lon2 float64) float64 {
	p1, p2 := lat1*rad, lat2*rad
	dl := (lon2 - lon1) * rad
	y := math.Sin(dl) * math.Cos(p2)
	x := math.Cos(p1)*math.Sin(p2) - math.Sin(p1)*math.Cos(p2)*math.Cos(dl)
	return math.Mod(math.Atan2(y, x)/rad+360, 360)
}
