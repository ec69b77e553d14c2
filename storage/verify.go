package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
)

// PutVerified uploads the file at path under key without overwriting
// (PutOptions.NoOverwrite), with meta plus "sha256" and "file-size" as user
// metadata, then downloads the object again and checks its SHA-256. It
// returns the hex SHA-256. When the read-back differs, the object is deleted
// and an error returned; when the key exists, the error wraps ErrExists.
func PutVerified(ctx context.Context, st Store, key, path string, meta map[string]string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("put verified %s: %w", key, err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("put verified %s: hash %s: %w", key, path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("put verified %s: %w", key, err)
	}
	m := maps.Clone(meta)
	if m == nil {
		m = map[string]string{}
	}
	m["sha256"] = sum
	m["file-size"] = strconv.FormatInt(size, 10)
	if err := st.Put(ctx, key, f, size, PutOptions{Metadata: m, NoOverwrite: true}); err != nil {
		return "", err
	}
	got, n, err := HashObject(ctx, st, key)
	if err != nil {
		return "", fmt.Errorf("put verified %s: read back: %w", key, err)
	}
	if got != sum || n != size {
		derr := st.Delete(ctx, key)
		return "", fmt.Errorf("put verified %s: read back %d bytes with sha256 %s, uploaded %d bytes with sha256 %s (object deleted: %v)",
			key, n, got, size, sum, derr == nil)
	}
	return sum, nil
}

// HashObject reads the object and returns its hex SHA-256 and size.
func HashObject(ctx context.Context, st Store, key string) (string, int64, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
