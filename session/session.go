// Package session defines the stored layout of one recording session: the
// object keys and the JSON documents beside the IQ recordings. It is the
// contract between the simulator (and the real acquisition) and the dataset.
//
// Layout under a prefix (default "sessions/"), as in the Heimdall raw-IQ bucket:
//
//	sessions/{session_id}/session.json
//	sessions/{session_id}/websdr_{receiver_id}.npy            complex64, 1-D
//	sessions/{session_id}/websdr_{receiver_id}_metadata.json
package session

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"
)

// Approval statuses. Only Approved sessions are used for training.
const (
	Approved = "approved"
	Pending  = "pending"
	Rejected = "rejected"
)

// Info is session.json: ground truth and approval of one session.
type Info struct {
	SessionID      string    `json:"session_id"`
	Latitude       float64   `json:"latitude"`  // ground-truth transmitter latitude, degrees
	Longitude      float64   `json:"longitude"` // ground-truth transmitter longitude, degrees
	FrequencyHz    float64   `json:"frequency_hz"`
	ApprovalStatus string    `json:"approval_status"`
	Timestamp      time.Time `json:"timestamp"`
	ReceiverIDs    []int     `json:"receiver_ids"` // receivers that recorded the session
	// Source says where the session came from ("simulated", "websdr").
	Source string `json:"source,omitempty"`
	// Simulation is, for simulated sessions, the simulator options the
	// session was drawn with (simulate.* keys, without sessions, seed,
	// workers and prefix; sim.Options.Record), so the world it came from
	// can be rebuilt; recordings have none.
	Simulation json.RawMessage `json:"simulation,omitempty"`
}

// ReceiverMeta is websdr_{id}_metadata.json beside each recording.
type ReceiverMeta struct {
	ReceiverID      int       `json:"receiver_id"`
	ReceiverName    string    `json:"receiver_name"`
	Latitude        float64   `json:"latitude"`
	Longitude       float64   `json:"longitude"`
	SampleRateHz    float64   `json:"sample_rate_hz"`
	CenterFrequency float64   `json:"center_frequency_hz"`
	Timestamp       time.Time `json:"timestamp"`
	NumSamples      int       `json:"num_samples"`
	DType           string    `json:"dtype"` // "complex64"
}

// InfoKey is the key of session.json.
func InfoKey(prefix, sessionID string) string {
	return path.Join(prefix, sessionID, "session.json")
}

// IQKey is the key of one receiver's IQ recording.
func IQKey(prefix, sessionID string, receiverID int) string {
	return path.Join(prefix, sessionID, fmt.Sprintf("websdr_%d.npy", receiverID))
}

// MetaKey is the key of one receiver's metadata document.
func MetaKey(prefix, sessionID string, receiverID int) string {
	return path.Join(prefix, sessionID, fmt.Sprintf("websdr_%d_metadata.json", receiverID))
}

// IDFromInfoKey returns the session id of a session.json key, or "" when key
// is not one.
func IDFromInfoKey(prefix, key string) string {
	rest := strings.TrimPrefix(key, strings.TrimSuffix(prefix, "/")+"/")
	if rest == key || !strings.HasSuffix(rest, "/session.json") {
		return ""
	}
	id := strings.TrimSuffix(rest, "/session.json")
	if id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}
