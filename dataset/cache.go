package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"

	"github.com/heimdall-sdr/trainer/npy"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
)

// The feature cache keeps one file per session under
// CacheDir/{feature key}/{session id}-{recording hash}.feat. The recording
// hash covers the key, size and ETag of every receiver's IQ object, so a
// re-recorded or re-simulated session misses the cache. Files are written to
// a temporary name and renamed; a checksum guards against corruption, and a
// bad file is treated as a miss and rewritten.

const cacheMagic = "HMDLFEAT1\n"

type cache struct {
	dir string // "" when disabled
}

type cacheEntry struct {
	x          []float32
	power      []float64
	present    []bool
	sampleRate float64
}

func newCache(dir, featureKey string) (*cache, error) {
	if dir == "off" {
		return &cache{}, nil
	}
	d := filepath.Join(dir, featureKey)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, fmt.Errorf("dataset: create feature cache %s: %w", d, err)
	}
	return &cache{dir: d}, nil
}

func (c *cache) key(id string, infos []*storage.ObjectInfo) string {
	h := sha256.New()
	for _, oi := range infos {
		if oi == nil {
			h.Write([]byte("absent\n"))
			continue
		}
		fmt.Fprintf(h, "%s\n%d\n%s\n", oi.Key, oi.Size, oi.ETag)
	}
	return id + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

func (c *cache) path(key string) string { return filepath.Join(c.dir, key+".feat") }

func (c *cache) get(key string, receivers, perCh int) (cacheEntry, bool) {
	if c.dir == "" {
		return cacheEntry{}, false
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return cacheEntry{}, false
	}
	want := len(cacheMagic) + 8 + 8 + 8 + receivers*(1+8) + receivers*perCh*4 + 4
	if len(b) != want || string(b[:len(cacheMagic)]) != cacheMagic {
		return cacheEntry{}, false
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return cacheEntry{}, false
	}
	p := body[len(cacheMagic):]
	if int(binary.LittleEndian.Uint64(p)) != receivers || int(binary.LittleEndian.Uint64(p[8:])) != perCh {
		return cacheEntry{}, false
	}
	e := cacheEntry{sampleRate: math.Float64frombits(binary.LittleEndian.Uint64(p[16:]))}
	p = p[24:]
	for r := 0; r < receivers; r++ {
		e.present = append(e.present, p[r] == 1)
	}
	p = p[receivers:]
	for r := 0; r < receivers; r++ {
		e.power = append(e.power, math.Float64frombits(binary.LittleEndian.Uint64(p[8*r:])))
	}
	p = p[8*receivers:]
	e.x = make([]float32, receivers*perCh)
	for i := range e.x {
		e.x[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return e, true
}

func (c *cache) put(key string, e cacheEntry) error {
	if c.dir == "" {
		return nil
	}
	R := len(e.present)
	var buf bytes.Buffer
	buf.Grow(len(cacheMagic) + 24 + 9*R + 4*len(e.x) + 4)
	buf.WriteString(cacheMagic)
	var w [8]byte
	put64 := func(v uint64) { binary.LittleEndian.PutUint64(w[:], v); buf.Write(w[:]) }
	put64(uint64(R))
	put64(uint64(len(e.x) / R))
	put64(math.Float64bits(e.sampleRate))
	for _, p := range e.present {
		if p {
			buf.WriteByte(1)
		} else {
			buf.WriteByte(0)
		}
	}
	for _, v := range e.power {
		put64(math.Float64bits(v))
	}
	for _, v := range e.x {
		binary.LittleEndian.PutUint32(w[:4], math.Float32bits(v))
		buf.Write(w[:4])
	}
	binary.LittleEndian.PutUint32(w[:4], crc32.ChecksumIEEE(buf.Bytes()))
	buf.Write(w[:4])

	dst := c.path(key)
	return local.WriteFile(dst, buf.Bytes())
}

// readIQ reads one receiver's recording and rejects non-finite samples.
func readIQ(ctx context.Context, st storage.Store, key string) ([]complex64, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return nil, fail("unreadable IQ", "%w", err)
	}
	defer rc.Close()
	iq, shape, err := npy.ReadComplex64(rc)
	if err != nil {
		return nil, fail("corrupt IQ", "%s: %w", key, err)
	}
	if len(shape) != 1 {
		return nil, fail("wrong IQ shape", "%s: shape %v, want 1-D", key, shape)
	}
	if len(iq) == 0 {
		return nil, fail("empty IQ", "%s: no samples", key)
	}
	for i, v := range iq {
		re, im := float64(real(v)), float64(imag(v))
		if math.IsNaN(re) || math.IsNaN(im) || math.IsInf(re, 0) || math.IsInf(im, 0) {
			return nil, fail("non-finite IQ", "%s: sample %d is %v", key, i, v)
		}
	}
	return iq, nil
}
