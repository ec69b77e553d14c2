// Package local implements storage.Store on a local directory. It is the
// embedded default store. Writes go to a temporary file in the destination
// directory and are renamed into place, so readers never see half a file.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/heimdall-sdr/trainer/storage"
)

var _ storage.Store = (*Store)(nil)

// Store keeps objects as files under Root; a key "a/b.npy" is Root/a/b.npy.
type Store struct {
	Root string
}

// New returns a store rooted at dir, creating dir if needed.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local: %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("local: create root %s: %w", abs, err)
	}
	return &Store{Root: abs}, nil
}

func (s *Store) String() string { return "local:" + s.Root }

func (s *Store) path(key string) (string, error) {
	clean := path.Clean("/" + key)
	if key == "" || strings.HasSuffix(key, "/") || clean == "/" || clean[1:] != key {
		return "", fmt.Errorf("local: invalid key %q", key)
	}
	return filepath.Join(s.Root, filepath.FromSlash(key)), nil
}

// Get opens the object's file.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local: get %s: %w", key, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("local: get %s: %w", key, err)
	}
	return f, nil
}

// Put writes r to a temporary file beside the destination, syncs it and
// renames (or, with NoOverwrite, links) it into place.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("local: put %s: %w", key, err)
	}
	if opts.NoOverwrite {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("local: put %s: %w", key, storage.ErrExists)
		}
	}
	tmp, _, err := writeTemp(p, contextReader{ctx, r}, size)
	if err != nil {
		return fmt.Errorf("local: put %s: %w", key, err)
	}
	defer os.Remove(tmp) // no-op after a successful rename
	if opts.NoOverwrite {
		// Link fails if the destination appeared meanwhile: no overwrite race.
		if err := os.Link(tmp, p); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("local: put %s: %w", key, storage.ErrExists)
			}
			return fmt.Errorf("local: put %s: %w", key, err)
		}
		return nil
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("local: put %s: %w", key, err)
	}
	return nil
}

// Stat describes the file behind key.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return storage.ObjectInfo{}, fmt.Errorf("local: stat %s: %w", key, storage.ErrNotFound)
	}
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("local: stat %s: %w", key, err)
	}
	if fi.IsDir() {
		return storage.ObjectInfo{}, fmt.Errorf("local: stat %s: %w", key, storage.ErrNotFound)
	}
	return info(key, fi), nil
}

func info(key string, fi fs.FileInfo) storage.ObjectInfo {
	return storage.ObjectInfo{
		Key:     key,
		Size:    fi.Size(),
		ETag:    strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16),
		ModTime: fi.ModTime(),
	}
}

// List walks the directory under the prefix; temporary files are hidden.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.ObjectInfo, error) {
	var out []storage.ObjectInfo
	start := s.Root
	if dir := path.Dir(prefix); prefix != "" && dir != "." {
		start = filepath.Join(s.Root, filepath.FromSlash(dir))
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(s.Root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, info(key, fi))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("local: list %s: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the file; a missing file is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local: delete %s: %w", key, err)
	}
	return nil
}

type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
