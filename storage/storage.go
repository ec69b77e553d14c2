// Package storage defines the object store that holds recordings, caches
// and models. Implementations live in subpackages named after what they
// wrap: storage/local (a directory, the embedded default) and storage/s3.
package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when a key does not exist.
var ErrNotFound = errors.New("not found")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ETag    string // content identity: S3 ETag, or size+mtime for local files
	ModTime time.Time
	// Metadata holds user metadata (S3 x-amz-meta-*); local stores keep none.
	Metadata map[string]string
}

// PutOptions are optional settings of Put; the zero value is a plain put.
type PutOptions struct {
	ContentType string            // default application/octet-stream
	Metadata    map[string]string // user metadata, where the store supports it
	// NoOverwrite makes Put fail with ErrExists when the key already exists.
	NoOverwrite bool
}

// ErrUnavailable is wrapped by errors that mean the store itself could not
// be reached (after retries), as opposed to a problem with one object.
// Callers that skip bad objects must stop on it instead.
var ErrUnavailable = errors.New("store unavailable")

// ErrExists is returned (wrapped) by Put with NoOverwrite when the key exists.
var ErrExists = errors.New("already exists")

// Store is a flat key/value object store with '/'-separated keys.
// Every implementation makes a put visible only when complete.
type Store interface {
	// Get opens the object for reading; the caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Put stores size bytes from r under key (size -1 when unknown).
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error
	// Stat describes the object without reading it.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String names the store for messages (e.g. "local:/data", "s3://bucket").
	String() string
}

// ReadAll reads a whole object.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Object is one object of a PutAll.
type Object struct {
	Key  string
	Data []byte
	Opts PutOptions
}

// AllPutter is implemented by stores that write a group of objects more
// cheaply together than one Put after another (storage/local syncs a
// group's files together). PutAll has PutAll's guarantees below.
type AllPutter interface {
	PutAll(ctx context.Context, objs []Object) error
}

// PutAll stores objs in order, through s.PutAll where s is an AllPutter
// and one Put after another otherwise. Each object becomes visible only
// after every object before it is complete (and, in a store that syncs,
// durable), so the last object marks the group complete: a reader that
// sees it sees the whole group. On error a prefix of objs may be visible,
// never the last object. The error names the object that failed.
func PutAll(ctx context.Context, s Store, objs []Object) error {
	if ap, ok := s.(AllPutter); ok {
		return ap.PutAll(ctx, objs)
	}
	for _, o := range objs {
		if err := s.Put(ctx, o.Key, bytes.NewReader(o.Data), int64(len(o.Data)), o.Opts); err != nil {
			return err
		}
	}
	return nil
}
