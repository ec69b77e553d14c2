// Package local implements storage.Store on a local directory. It is the
// embedded default store. Writes go to a temporary file in the destination
// directory and are renamed into place, so readers never see half a file.
package local

import (
	"bytes"
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

	"golang.org/x/sync/errgroup"

	"github.com/heimdall-sdr/trainer/storage"
)

var (
	_ storage.Store     = (*Store)(nil)
	_ storage.AllPutter = (*Store)(nil)
)

// maxSyncs bounds the concurrent file syncs of one PutAll.
const maxSyncs = 16

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
	return place(tmp, p, key, opts.NoOverwrite)
}

// place renames (or, with noOverwrite, links) the synced temporary file
// tmp to p, the file of key.
func place(tmp, p, key string, noOverwrite bool) error {
	if noOverwrite {
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

// PutAll writes objs as Put does, but syncs them together: it writes every
// temporary file first, then syncs them all concurrently (a sync waits on
// the device, not the CPU, and concurrent syncs share the file system's
// journal commits), and only then renames (or links) them into place in
// order. So every object is durable before any becomes visible, and the
// last one (a session's session.json) appears last. On error nothing is
// renamed unless every file was synced; a failing rename leaves the
// objects before it in place, never the ones after it.
func (s *Store) PutAll(ctx context.Context, objs []storage.Object) error {
	paths := make([]string, len(objs))
	files := make([]*os.File, 0, len(objs))
	closed, renamed := false, 0
	defer func() { // the temporary files not renamed into place
		for i, f := range files {
			if !closed {
				_ = f.Close()
			}
			if i >= renamed {
				_ = os.Remove(f.Name())
			}
		}
	}()
	lastDir := ""
	for i, o := range objs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("local: put %s: %w", o.Key, err)
		}
		p, err := s.path(o.Key)
		if err != nil {
			return err
		}
		paths[i] = p
		if dir := filepath.Dir(p); dir != lastDir {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("local: put %s: %w", o.Key, err)
			}
			lastDir = dir
		}
		if o.Opts.NoOverwrite {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("local: put %s: %w", o.Key, storage.ErrExists)
			}
		}
		f, _, err := createTemp(p, bytes.NewReader(o.Data), int64(len(o.Data)))
		if err != nil {
			return fmt.Errorf("local: put %s: %w", o.Key, err)
		}
		files = append(files, f)
	}
	var g errgroup.Group
	g.SetLimit(maxSyncs)
	for i, f := range files {
		g.Go(func() error {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("local: put %s: %w", objs[i].Key, err)
			}
			return nil
		})
	}
	err := g.Wait()
	for i, f := range files {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("local: put %s: %w", objs[i].Key, cerr)
		}
	}
	closed = true
	if err != nil {
		return err
	}
	for i, f := range files {
		if err := place(f.Name(), paths[i], objs[i].Key, objs[i].Opts.NoOverwrite); err != nil {
			return err
		}
		if objs[i].Opts.NoOverwrite {
			_ = os.Remove(f.Name()) // linked: the temporary name goes
		}
		renamed = i + 1
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
