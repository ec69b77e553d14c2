package progress

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	if New(nil, 10, "x", "steps") != nil {
		t.Error("nil writer: want a nil bar")
	}
	var b strings.Builder
	bar := New(&b, 2, "work", "steps")
	_ = bar.Add(2)
	if !strings.Contains(b.String(), "work") || !strings.HasSuffix(b.String(), "\n") {
		t.Errorf("bar output %q: want the description and a final newline", b.String())
	}
}
