package sim

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Options configure the simulator. The mapstructure tags are the keys of the
// `simulate:` section of the project configuration.
type Options struct {
	// Sessions is how many sessions to generate. Default 2000.
	Sessions int `mapstructure:"sessions"`
	// Seed makes the output reproducible: a given seed always produces the
	// same bytes. Default 1.
	Seed int64 `mapstructure:"seed"`
	// Workers is how many sessions are synthesised at once; 0 means
	// runtime.NumCPU(); four times as many goroutines store them. The output
	// does not depend on it. Default 0.
	Workers int `mapstructure:"workers"`
	// Prefix is the key prefix the sessions are written under. Default "sessions".
	Prefix string `mapstructure:"prefix"`

	// SampleRateHz is the complex sample rate of every recording, as the
	// WebSDR /iq endpoint delivers it. Default 12500.
	SampleRateHz float64 `mapstructure:"sample_rate_hz"`
	// DurationS is the length of every recording in seconds; the sample count
	// is round(DurationS*SampleRateHz). The default 1.36 s gives 17000
	// samples, 35 STFT frames at hop 512 (the features crop 32). Default 1.36.
	DurationS float64 `mapstructure:"duration_s"`
	// CenterFrequencyHz is the frequency the receivers are tuned to (2 m
	// band). Default 145e6.
	CenterFrequencyHz float64 `mapstructure:"center_frequency_hz"`

	// LatMin, LatMax, LonMin, LonMax bound the box, in degrees, in which
	// transmitters are placed uniformly (in degrees). Defaults 44.2, 45.7,
	// 7.0, 9.4: the seven receivers plus a margin of 15-35 km.
	LatMin float64 `mapstructure:"lat_min"`
	// LatMax: see LatMin. Default 45.7.
	LatMax float64 `mapstructure:"lat_max"`
	// LonMin: see LatMin. Default 7.0.
	LonMin float64 `mapstructure:"lon_min"`
	// LonMax: see LatMin. Default 9.4.
	LonMax float64 `mapstructure:"lon_max"`

	// World selects the static world sessions are drawn from: "terrain"
	// (default: a seeded synthetic terrain of the region, free space plus
	// diffraction over each path, receivers with their own gain offsets,
	// noise floors and antennas; see World) or "log_distance" (one
	// log-distance law with independent shadowing, identical receivers: the
	// simulator before the terrain world). Keys marked "log_distance world"
	// or "terrain world" apply to that world only.
	World string `mapstructure:"world"`
	// WorldSeed seeds the world (terrain detail, receiver gain offsets,
	// noise floors, antennas): identical for every session seed. Default 1.
	WorldSeed int64 `mapstructure:"world_seed"`
	// DEMResolutionM is the terrain model's grid spacing, and the sampling
	// step of path profiles (terrain world). Default 500 (the resolution
	// the design asks for; SRTM-3, which the original used, is 90 m).
	DEMResolutionM float64 `mapstructure:"dem_resolution_m"`
	// LossGridM is the spacing of the per-receiver diffraction-loss grids
	// over the transmitter box; losses in between are interpolated
	// (terrain world). Default 1000: 7 receivers x 2 antenna heights x ~33k
	// nodes build in about a second on two cores.
	LossGridM float64 `mapstructure:"loss_grid_m"`
	// EarthKFactor is the effective earth radius factor for the terrain
	// profiles' curvature (terrain world). Default 4/3, the median
	// standard atmosphere (ITU-R P.453, P.452's k50).
	EarthKFactor float64 `mapstructure:"earth_k_factor"`
	// RxAntennaHeightM is every receiver antenna's height above ground
	// (terrain world). Default 15: a mast on a building or tower, the usual
	// WebSDR installation (modelling choice; no site data).
	RxAntennaHeightM float64 `mapstructure:"rx_antenna_height_m"`
	// RxGainSigmaDB is the standard deviation of the receivers' static,
	// uncalibrated gain offsets (terrain world). Default 3: coax loss at
	// 145 MHz (1-4 dB), preamps and SDR gain settings differ by a few dB.
	RxGainSigmaDB float64 `mapstructure:"rx_gain_sigma_db"`
	// RxNoiseSigmaDB is the standard deviation of a receiver's static noise
	// floor about its ITU-R P.372 environment median (local interference)
	// (terrain world). Default 2.
	RxNoiseSigmaDB float64 `mapstructure:"rx_noise_sigma_db"`
	// RxNoiseFigureDB is the receivers' noise figure (terrain world).
	// Default 6: a typical SDR front end without a masthead preamp.
	RxNoiseFigureDB float64 `mapstructure:"rx_noise_figure_db"`
	// DirectionalReceivers is how many receivers (chosen by world_seed)
	// have a directional antenna, Yagi or log-periodic, pointed toward the
	// box (terrain world). Default 2 of 7 (the original simulator gave 25%
	// of receivers directional antennas).
	DirectionalReceivers int `mapstructure:"directional_receivers"`
	// TxPowerMinDBm and TxPowerMaxDBm bound the transmitter power, uniform
	// in dBm per session (terrain world). Defaults 27 (0.5 W, a handheld on
	// low power) and 47 (50 W, a mobile rig), the range of 2 m FM radios.
	TxPowerMinDBm float64 `mapstructure:"tx_power_min_dbm"`
	// TxPowerMaxDBm: see TxPowerMinDBm. Default 47.
	TxPowerMaxDBm float64 `mapstructure:"tx_power_max_dbm"`
	// TxHeightMinM and TxHeightMaxM bound the transmitter antenna's height
	// above ground, uniform per session (terrain world). Defaults 1.5 (a
	// handheld) and 10 (a base station's mast).
	TxHeightMinM float64 `mapstructure:"tx_height_min_m"`
	// TxHeightMaxM: see TxHeightMinM. Default 10.
	TxHeightMaxM float64 `mapstructure:"tx_height_max_m"`
	// EnvironmentLossMinDB and EnvironmentLossMaxDB bound the loss of the
	// transmitter's surroundings (body, vehicle, buildings), uniform per
	// session and common to all its paths (terrain world). Defaults 5 and
	// 15, the original simulator's environment loss.
	EnvironmentLossMinDB float64 `mapstructure:"environment_loss_min_db"`
	// EnvironmentLossMaxDB: see EnvironmentLossMinDB. Default 15.
	EnvironmentLossMaxDB float64 `mapstructure:"environment_loss_max_db"`
	// ResidualShadowingDB is the standard deviation of the log-normal
	// shadowing the terrain model does not resolve (clutter, sub-DEM
	// terrain), per receiver and session (terrain world). Default 3, the
	// residual of issue 14's quick check.
	ResidualShadowingDB float64 `mapstructure:"residual_shadowing_db"`

	// TxPowerDBm is the nominal transmitter power (EIRP) (log_distance
	// world). Default 37 (5 W).
	TxPowerDBm float64 `mapstructure:"tx_power_dbm"`
	// TxPowerJitterDB is the standard deviation of a per-session offset of
	// the transmitter power (different radios and antennas), so the absolute
	// level does not give the distance away (log_distance world). Default 3.
	TxPowerJitterDB float64 `mapstructure:"tx_power_jitter_db"`
	// PathLossExponent is n of the log-distance model (log_distance world).
	// Default 3.0.
	PathLossExponent float64 `mapstructure:"path_loss_exponent"`
	// ReferenceDistanceKm is d0 of the log-distance model. Default 1.
	ReferenceDistanceKm float64 `mapstructure:"reference_distance_km"`
	// ReferenceLossDB is the path loss at d0. Default 75.7 (free space at
	// 1 km and 145 MHz).
	ReferenceLossDB float64 `mapstructure:"reference_loss_db"`
	// ShadowingSigmaDB is the standard deviation of the log-normal
	// shadowing, drawn independently per receiver and session (log_distance
	// world). Default 4.
	ShadowingSigmaDB float64 `mapstructure:"shadowing_sigma_db"`

	// RicianKDB is the Rician K-factor (line-of-sight to scattered power) at
	// the reference distance, in dB; it falls by RicianKSlopeDB per decade of
	// distance, so far receivers see deeper fading. Default 9.
	RicianKDB float64 `mapstructure:"rician_k_db"`
	// RicianKSlopeDB is how many dB the K-factor falls per decade of
	// distance. Default 4.
	RicianKSlopeDB float64 `mapstructure:"rician_k_slope_db"`
	// DopplerMaxHz is the largest maximum Doppler shift of the fading (a
	// moving transmitter); each session draws one uniformly in
	// [0, DopplerMaxHz]. 0 makes the fading static. Default 6.
	DopplerMaxHz float64 `mapstructure:"doppler_max_hz"`

	// NoiseFloorDBm is the receiver noise power in the recorded bandwidth
	// (log_distance world; the terrain world derives each receiver's from
	// ITU-R P.372). Default -120.
	NoiseFloorDBm float64 `mapstructure:"noise_floor_dbm"`
	// NoiseFloorJitterDB is the standard deviation of a per-receiver,
	// per-session offset of the noise floor (local interference). Default 1.
	NoiseFloorJitterDB float64 `mapstructure:"noise_floor_jitter_db"`
	// FullScaleDBm is the received power that maps to amplitude 1.0, the
	// int16 full scale of the WebSDR stream (int16/32767). Default -40, so
	// the noise floor sits about 3 LSB above zero and only a transmitter
	// within about 1.5 km of a receiver clips.
	FullScaleDBm float64 `mapstructure:"full_scale_dbm"`
	// Quantize rounds I and Q to the int16 grid (k/32767) after clipping
	// them to [-1, 1], as the WebSDR stream does. Default true.
	Quantize bool `mapstructure:"quantize"`

	// CarrierOffsetHzMax bounds the transmitter's carrier offset from the
	// tuned frequency: uniform in ±CarrierOffsetHzMax. Default 500.
	CarrierOffsetHzMax float64 `mapstructure:"carrier_offset_hz_max"`
	// FMDeviationHz is the peak FM deviation; each session scales it by a
	// uniform factor in [0.5, 1]. Default 2500 (narrowband FM).
	FMDeviationHz float64 `mapstructure:"fm_deviation_hz"`
	// AudioToneMinHz and AudioToneMaxHz bound the modulating audio tone,
	// drawn uniformly per session. Defaults 300 and 3000.
	AudioToneMinHz float64 `mapstructure:"audio_tone_min_hz"`
	// AudioToneMaxHz: see AudioToneMinHz. Default 3000.
	AudioToneMaxHz float64 `mapstructure:"audio_tone_max_hz"`

	// ApprovedFraction is the probability that a session is "approved"; the
	// rest is split evenly between "pending" and "rejected". Default 0.9.
	ApprovedFraction float64 `mapstructure:"approved_fraction"`
	// MissingReceiverProb is the probability that a receiver did not record
	// a session: its files are absent and session.json's receiver_ids lacks
	// it. A session always keeps at least 3 receivers. Default 0.02.
	MissingReceiverProb float64 `mapstructure:"missing_receiver_prob"`
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		Sessions:             2000,
		Seed:                 1,
		Workers:              0,
		Prefix:               "sessions",
		SampleRateHz:         12500,
		DurationS:            1.36,
		CenterFrequencyHz:    145e6,
		LatMin:               44.2,
		LatMax:               45.7,
		LonMin:               7.0,
		LonMax:               9.4,
		World:                WorldTerrain,
		WorldSeed:            1,
		DEMResolutionM:       500,
		LossGridM:            1000,
		EarthKFactor:         4.0 / 3,
		RxAntennaHeightM:     15,
		RxGainSigmaDB:        3,
		RxNoiseSigmaDB:       2,
		RxNoiseFigureDB:      6,
		DirectionalReceivers: 2,
		TxPowerMinDBm:        27,
		TxPowerMaxDBm:        47,
		TxHeightMinM:         1.5,
		TxHeightMaxM:         10,
		EnvironmentLossMinDB: 5,
		EnvironmentLossMaxDB: 15,
		ResidualShadowingDB:  3,
		TxPowerDBm:           37,
		TxPowerJitterDB:      3,
		PathLossExponent:     3.0,
		ReferenceDistanceKm:  1,
		ReferenceLossDB:      75.7,
		ShadowingSigmaDB:     4,
		RicianKDB:            9,
		RicianKSlopeDB:       4,
		DopplerMaxHz:         6,
		NoiseFloorDBm:        -120,
		NoiseFloorJitterDB:   1,
		FullScaleDBm:         -40,
		Quantize:             true,
		CarrierOffsetHzMax:   500,
		FMDeviationHz:        2500,
		AudioToneMinHz:       300,
		AudioToneMaxHz:       3000,
		ApprovedFraction:     0.9,
		MissingReceiverProb:  0.02,
	}
}

// NumSamples is the sample count of every recording.
func (o Options) NumSamples() int {
	return int(math.Round(o.DurationS * o.SampleRateHz))
}

// Validate reports every invalid option, naming its configuration key.
func (o Options) Validate() error {
	var errs []error
	bad := func(key, msg string) {
		errs = append(errs, fmt.Errorf("simulate.%s: %s", key, msg))
	}
	finite := func(key string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad(key, "must be a finite number")
			return false
		}
		return true
	}
	if o.Sessions <= 0 {
		bad("sessions", "must be > 0")
	}
	if o.Sessions > 999999 {
		bad("sessions", "must be <= 999999 (session ids have 6 digits)")
	}
	if o.Workers < 0 {
		bad("workers", "must be >= 0 (0 = one per CPU)")
	}
	if strings.TrimSpace(o.Prefix) == "" || strings.HasPrefix(o.Prefix, "/") {
		bad("prefix", "must be a non-empty relative key prefix")
	}
	if finite("sample_rate_hz", o.SampleRateHz) && o.SampleRateHz <= 0 {
		bad("sample_rate_hz", "must be > 0")
	}
	if finite("duration_s", o.DurationS) && o.DurationS <= 0 {
		bad("duration_s", "must be > 0")
	} else if o.SampleRateHz > 0 && o.NumSamples() < 2 {
		bad("duration_s", "gives fewer than 2 samples at sample_rate_hz")
	}
	if finite("center_frequency_hz", o.CenterFrequencyHz) && o.CenterFrequencyHz <= 0 {
		bad("center_frequency_hz", "must be > 0")
	}
	latOK := finite("lat_min", o.LatMin) && finite("lat_max", o.LatMax)
	if latOK && (o.LatMin < -90 || o.LatMax > 90) {
		bad("lat_min", "latitudes must lie in [-90, 90]")
	}
	if latOK && o.LatMin >= o.LatMax {
		bad("lat_min", fmt.Sprintf("must be < simulate.lat_max (%g >= %g)", o.LatMin, o.LatMax))
	}
	lonOK := finite("lon_min", o.LonMin) && finite("lon_max", o.LonMax)
	if lonOK && (o.LonMin < -180 || o.LonMax > 180) {
		bad("lon_min", "longitudes must lie in [-180, 180]")
	}
	if lonOK && o.LonMin >= o.LonMax {
		bad("lon_min", fmt.Sprintf("must be < simulate.lon_max (%g >= %g)", o.LonMin, o.LonMax))
	}
	finite("tx_power_dbm", o.TxPowerDBm)
	finite("reference_loss_db", o.ReferenceLossDB)
	finite("rician_k_db", o.RicianKDB)
	finite("rician_k_slope_db", o.RicianKSlopeDB)
	finite("noise_floor_dbm", o.NoiseFloorDBm)
	finite("full_scale_dbm", o.FullScaleDBm)
	for _, nn := range []struct {
		key string
		v   float64
	}{
		{"tx_power_jitter_db", o.TxPowerJitterDB},
		{"shadowing_sigma_db", o.ShadowingSigmaDB},
		{"noise_floor_jitter_db", o.NoiseFloorJitterDB},
		{"doppler_max_hz", o.DopplerMaxHz},
		{"carrier_offset_hz_max", o.CarrierOffsetHzMax},
		{"fm_deviation_hz", o.FMDeviationHz},
		{"rx_gain_sigma_db", o.RxGainSigmaDB},
		{"rx_noise_sigma_db", o.RxNoiseSigmaDB},
		{"rx_noise_figure_db", o.RxNoiseFigureDB},
		{"environment_loss_min_db", o.EnvironmentLossMinDB},
		{"residual_shadowing_db", o.ResidualShadowingDB},
	} {
		if finite(nn.key, nn.v) && nn.v < 0 {
			bad(nn.key, "must be >= 0")
		}
	}
	switch o.World {
	case WorldTerrain, WorldLogDistance:
	default:
		bad("world", fmt.Sprintf("must be %q or %q, got %q", WorldTerrain, WorldLogDistance, o.World))
	}
	for _, pos := range []struct {
		key string
		v   float64
	}{
		{"dem_resolution_m", o.DEMResolutionM},
		{"loss_grid_m", o.LossGridM},
		{"earth_k_factor", o.EarthKFactor},
		{"rx_antenna_height_m", o.RxAntennaHeightM},
		{"tx_height_min_m", o.TxHeightMinM},
	} {
		if finite(pos.key, pos.v) && pos.v <= 0 {
			bad(pos.key, "must be > 0")
		}
	}
	if o.DEMResolutionM > 500 {
		bad("dem_resolution_m", "must be <= 500 (coarser terrain loses the valleys)")
	}
	if o.DEMResolutionM > 0 && o.LossGridM > 0 && o.LossGridM < o.DEMResolutionM/4 {
		bad("loss_grid_m", "must be >= dem_resolution_m/4")
	}
	if o.DirectionalReceivers < 0 {
		bad("directional_receivers", "must be >= 0")
	}
	if finite("tx_power_min_dbm", o.TxPowerMinDBm) && finite("tx_power_max_dbm", o.TxPowerMaxDBm) && o.TxPowerMaxDBm < o.TxPowerMinDBm {
		bad("tx_power_max_dbm", "must be >= simulate.tx_power_min_dbm")
	}
	if finite("tx_height_max_m", o.TxHeightMaxM) && o.TxHeightMaxM < o.TxHeightMinM {
		bad("tx_height_max_m", "must be >= simulate.tx_height_min_m")
	}
	if finite("environment_loss_max_db", o.EnvironmentLossMaxDB) && o.EnvironmentLossMaxDB < o.EnvironmentLossMinDB {
		bad("environment_loss_max_db", "must be >= simulate.environment_loss_min_db")
	}
	if finite("path_loss_exponent", o.PathLossExponent) && o.PathLossExponent <= 0 {
		bad("path_loss_exponent", "must be > 0")
	}
	if finite("reference_distance_km", o.ReferenceDistanceKm) && o.ReferenceDistanceKm <= 0 {
		bad("reference_distance_km", "must be > 0")
	}
	nyq := o.SampleRateHz / 2
	if finite("audio_tone_min_hz", o.AudioToneMinHz) && o.AudioToneMinHz <= 0 {
		bad("audio_tone_min_hz", "must be > 0")
	}
	if finite("audio_tone_max_hz", o.AudioToneMaxHz) && o.AudioToneMaxHz < o.AudioToneMinHz {
		bad("audio_tone_max_hz", "must be >= simulate.audio_tone_min_hz")
	}
	if o.SampleRateHz > 0 && o.AudioToneMaxHz >= nyq {
		bad("audio_tone_max_hz", fmt.Sprintf("must be below the Nyquist frequency %g Hz", nyq))
	}
	if o.SampleRateHz > 0 && o.CarrierOffsetHzMax+o.FMDeviationHz >= nyq {
		bad("carrier_offset_hz_max", fmt.Sprintf("plus simulate.fm_deviation_hz must be below the Nyquist frequency %g Hz", nyq))
	}
	if finite("approved_fraction", o.ApprovedFraction) && (o.ApprovedFraction < 0 || o.ApprovedFraction > 1) {
		bad("approved_fraction", "must be in [0, 1]")
	}
	if finite("missing_receiver_prob", o.MissingReceiverProb) && (o.MissingReceiverProb < 0 || o.MissingReceiverProb >= 1) {
		bad("missing_receiver_prob", "must be in [0, 1)")
	}
	return errors.Join(errs...)
}
