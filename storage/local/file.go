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
	f, n, err := createTemp(path, r, size)
	if err != nil {
		return "", n, err
	}
	if err := syncClose(f); err != nil {
		return "", n, err
	}
	return f.Name(), n, nil
}

// createTemp copies r into a new temporary file beside path, not yet
// synced, and returns it open; size >= 0 is the byte count r must yield.
// On error the temporary file is closed and removed.
func createTemp(path string, r io.Reader, size int64) (*os.File, int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, r)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("wrote %d bytes, expected %d", n, size)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, n, err
	}
	return f, n, nil
}

// syncClose syncs and closes the temporary file f; on error it is removed.
func syncClose(f *os.File) error {
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(serr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}
