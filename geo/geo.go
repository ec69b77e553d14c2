// Package geo holds the Heimdall receiver network and great-circle geometry.
package geo

import "math"

// EarthRadiusKm is the mean Earth radius used for haversine distances.
const EarthRadiusKm = 6371.0088

// Receiver is one WebSDR station of the network.
type Receiver struct {
	ID   int     `json:"receiver_id"`
	Name string  `json:"receiver_name"`
	Lat  float64 `json:"latitude"`
	Lon  float64 `json:"longitude"`
}

// Receivers are the seven WebSDRs of the Heimdall network (NW Italy), in
// receiver-id order; this order is also the channel order of the model input.
var Receivers = []Receiver{
	{1, "Aquila di Giaveno", 45.02, 7.29},
	{2, "Montanaro", 45.234, 7.857},
	{3, "Torino", 45.044, 7.672},
	{4, "Coazze", 45.03, 7.27},
	{5, "Passo del Giovi", 44.561, 8.956},
	{6, "Genova", 44.395, 8.956},
	{7, "Milano-Baggio", 45.478, 9.123},
}

// HaversineKm returns the great-circle distance in kilometres between two
// points given in degrees.
func HaversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * EarthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

// KmPerDegree returns how many kilometres one degree of latitude and one
// degree of longitude span at latitude lat (spherical Earth).
func KmPerDegree(lat float64) (kmPerDegLat, kmPerDegLon float64) {
	kmPerDegLat = EarthRadiusKm * math.Pi / 180
	return kmPerDegLat, kmPerDegLat * math.Cos(lat*math.Pi/180)
}

// Centroid returns the mean latitude and longitude of the receivers.
func Centroid(rs []Receiver) (lat, lon float64) {
	for _, r := range rs {
		lat += r.Lat
		lon += r.Lon
	}
	n := float64(len(rs))
	return lat / n, lon / n
}
