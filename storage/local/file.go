package local

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically: to a temporary file in the same
// directory, synced, then renamed over path. Readers see the old file or the
// new one, never a partial one; on error path is untouched and the
// temporary file is removed. This is the one atomic file write of the
// project (run files, checkpoints index, models, plots, tracking records,
// feature cache, downloads); WriteFrom is the same for a stream.
func WriteFile(path string, data []byte) error {
	_, err := WriteFrom(path, bytes.NewReader(data))
	return err
}

// WriteFrom copies r to path atomically, as WriteFile does, and returns the
// number of bytes written.
func WriteFrom(path string, r io.Reader) (int64, error) {
	tmp, n, err := writeTemp(path, r, -1)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	return n, nil
}

// writeTemp copies r into a synced temporary file beside path and returns
// its name; size >= 0 is the byte count r must yield. On error the
// temporary file is removed.
func writeTemp(path string, r io.Reader, size int64) (string, int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return "", 0, err
	}
	tmp := f.Name()
	n, werr := io.Copy(f, r)
	if werr == nil && size >= 0 && n != size {
		werr = fmt.Errorf("wrote %d bytes, expected %d", n, size)
	}
	var serr error
	if werr == nil {
		serr = f.Sync()
	}
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return "", n, err
	}
	return tmp, n, nil
}
