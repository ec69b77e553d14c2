package session

import "testing"

func TestKeys(t *testing.T) {
	if got := IQKey("sessions", "s0001", 3); got != "sessions/s0001/websdr_3.npy" {
		t.Errorf("IQKey = %q", got)
	}
	if got := MetaKey("sessions/", "s0001", 7); got != "sessions/s0001/websdr_7_metadata.json" {
		t.Errorf("MetaKey = %q", got)
	}
	for key, want := range map[string]string{
		"sessions/s0001/session.json":     "s0001",
		"sessions/s0001/websdr_1.npy":     "",
		"sessions/a/b/session.json":       "",
		"other/s0001/session.json":        "",
		"sessions/s0001/session.json.tmp": "",
	} {
		if got := IDFromInfoKey("sessions", key); got != want {
			t.Errorf("IDFromInfoKey(%q) = %q, want %q", key, got, want)
		}
	}
}
