// Package npy reads and writes NumPy .npy files holding the two element
// types the Heimdall trainer uses: little-endian complex64 ('<c8', IQ
// recordings, usually 1-D) and little-endian float32 ('<f4', features,
// usually 2-D).
//
// # Supported files
//
//   - Format versions 1.0, 2.0 and 3.0 are read (3.0 only differs from 2.0
//     in allowing a UTF-8 header, which never matters for the supported
//     dtypes). Files are always written as version 1.0, byte-for-byte like
//     numpy.save: the header dict is padded with spaces and terminated with
//     '\n' so that the data starts at a multiple of 64 bytes.
//   - dtypes '<c8' and '<f4' only. Big-endian ('>c8', '>f4'), other dtypes
//     ('<f8', '<c16', structured, ...) are rejected with an error naming
//     the dtype.
//   - 1-D and 2-D shapes in C (row-major) order. 0-D (scalar) and >2-D
//     arrays and fortran_order=True files are rejected.
//   - At most [MaxElements] elements; the header is at most [MaxHeaderLen]
//     bytes.
//
// # Reading from a stream
//
// The readers consume exactly the preamble, the header and
// count*itemsize data bytes from the io.Reader and never read past the end
// of the array. Trailing bytes after the data are therefore tolerated (and
// left unread, so several arrays may be concatenated in one stream, as
// numpy.load on an open file also allows). A file whose data section is
// shorter than the header announces is an error that states how many bytes
// were expected and how many were read.
//
// Memory is allocated in proportion to the data actually present. When the
// reader can tell how many bytes it holds (a *bytes.Reader, *bytes.Buffer,
// *strings.Reader or a regular *os.File) and they cover the data, the
// result is allocated exactly once. Otherwise the data is read in chunks of
// at most 1 MiB and the result grows as the chunks arrive, so a corrupt or
// hostile header announcing a huge shape cannot make the reader allocate
// gigabytes before the data is there.
//
// All errors returned by this package are prefixed with "npy: ".
package npy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Element types, as reported in [Array.DType] and [Header.DType].
const (
	Complex64 = "complex64"
	Float32   = "float32"
)

const (
	// MaxElements is the largest element count (product of the shape)
	// accepted when reading or writing.
	MaxElements = 1 << 31
	// MaxHeaderLen is the largest header (the dict text, including
	// padding) accepted when reading. numpy itself refuses headers over
	// 10000 bytes by default; the largest legitimate header for a
	// supported file is far smaller.
	MaxHeaderLen = 1 << 16

	magic = "\x93NUMPY"
	// align is numpy's ARRAY_ALIGN: the total header size is a multiple of it.
	align = 64
	// chunkBytes is the read and write buffer size for data sections; data
	// sections up to this size are also allocated in one go.
	chunkBytes = 1 << 20
)

// Array is a decoded .npy file. Exactly one of C64 and F32 is non-nil,
// according to DType.
type Array struct {
	DType string // Complex64 ("complex64") or Float32 ("float32")
	Shape []int  // 1 or 2 dimensions, C order
	C64   []complex64
	F32   []float32
}

// Len returns the number of elements in the array.
func (a *Array) Len() int {
	if a.DType == Complex64 {
		return len(a.C64)
	}
	return len(a.F32)
}

// Header is the validated header of a supported .npy file.
type Header struct {
	Major, Minor int    // format version, e.g. 1, 0
	Descr        string // numpy dtype string: "<c8" or "<f4"
	DType        string // Complex64 or Float32
	Shape        []int  // 1 or 2 non-negative dimensions
	Count        int    // number of elements (product of Shape)
	ItemSize     int    // bytes per element: 8 or 4
	DataOffset   int    // offset of the data section from the start of the file
}

// DataLen returns the length in bytes of the data section.
func (h *Header) DataLen() int64 { return int64(h.Count) * int64(h.ItemSize) }

// Read reads one .npy file of any supported dtype from r.
func Read(r io.Reader) (*Array, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, err
	}
	a := &Array{DType: h.DType, Shape: h.Shape}
	switch h.DType {
	case Complex64:
		a.C64, err = readComplex64Data(r, h)
	default:
		a.F32, err = readFloat32Data(r, h)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// ReadComplex64 reads a '<c8' .npy file from r and returns its elements in
// C order and its shape. A file of another dtype is an error naming it; the
// data of such a file is not read.
func ReadComplex64(r io.Reader) ([]complex64, []int, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, nil, err
	}
	if h.DType != Complex64 {
		return nil, nil, fmt.Errorf("npy: dtype is '%s' (%s), want '<c8' (complex64)", h.Descr, h.DType)
	}
	data, err := readComplex64Data(r, h)
	if err != nil {
		return nil, nil, err
	}
	return data, h.Shape, nil
}

// ReadFloat32 reads a '<f4' .npy file from r and returns its elements in C
// order and its shape. A file of another dtype is an error naming it; the
// data of such a file is not read.
func ReadFloat32(r io.Reader) ([]float32, []int, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, nil, err
	}
	if h.DType != Float32 {
		return nil, nil, fmt.Errorf("npy: dtype is '%s' (%s), want '<f4' (float32)", h.Descr, h.DType)
	}
	data, err := readFloat32Data(r, h)
	if err != nil {
		return nil, nil, err
	}
	return data, h.Shape, nil
}

// ReadHeader reads and validates the preamble and header of a .npy file,
// leaving r positioned at the start of the data section. It returns an
// error for anything this package cannot decode (see the package
// documentation), so a nil error means the data can be read.
func ReadHeader(r io.Reader) (*Header, error) {
	var pre [12]byte
	// Magic string and version.
	if n, err := io.ReadFull(r, pre[:8]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, fmt.Errorf("npy: empty input: %w", io.EOF)
		}
		if m := min(n, len(magic)); string(pre[:m]) != magic[:m] {
			return nil, errors.New("npy: bad magic: not a .npy file")
		}
		return nil, fmt.Errorf("npy: truncated header: got %d of the 8 preamble bytes: %w", n, noEOF(err))
	}
	if string(pre[:6]) != magic {
		return nil, fmt.Errorf("npy: bad magic %q: not a .npy file (want %q)", pre[:6], magic)
	}
	h := &Header{Major: int(pre[6]), Minor: int(pre[7])}
	var lenBytes int
	switch {
	case h.Major == 1 && h.Minor == 0:
		lenBytes = 2
	case (h.Major == 2 || h.Major == 3) && h.Minor == 0:
		lenBytes = 4
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d (want 1.0, 2.0 or 3.0)", h.Major, h.Minor)
	}
	if n, err := io.ReadFull(r, pre[8:8+lenBytes]); err != nil {
		return nil, fmt.Errorf("npy: truncated header: got %d of the %d header-length bytes: %w", n, lenBytes, noEOF(err))
	}
	var hlen uint32
	if lenBytes == 2 {
		hlen = uint32(binary.LittleEndian.Uint16(pre[8:10]))
	} else {
		hlen = binary.LittleEndian.Uint32(pre[8:12])
	}
	if hlen > MaxHeaderLen {
		return nil, fmt.Errorf("npy: header length %d exceeds the limit of %d bytes", hlen, MaxHeaderLen)
	}
	hdr := make([]byte, hlen)
	if n, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("npy: truncated header: header length is %d bytes, got %d: %w", hlen, n, noEOF(err))
	}
	h.DataOffset = 8 + lenBytes + int(hlen)

	d, err := parseHeaderDict(hdr)
	if err != nil {
		return nil, err
	}
	if err := h.validate(d); err != nil {
		return nil, err
	}
	return h, nil
}

// noEOF turns the io.EOF of a short read into io.ErrUnexpectedEOF, since
// any short read in this package means the file is truncated.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// validate checks the parsed header dict and fills in h.
func (h *Header) validate(d *headerDict) error {
	h.Descr = d.descr
	switch d.descr {
	case "<c8":
		h.DType, h.ItemSize = Complex64, 8
	case "<f4":
		h.DType, h.ItemSize = Float32, 4
	case ">c8", ">f4":
		return fmt.Errorf("npy: big-endian dtype '%s' not supported (want little-endian '<c8' complex64 or '<f4' float32; convert with a.astype('<%s'))", d.descr, d.descr[1:])
	default:
		extra := ""
		if strings.HasPrefix(d.descr, ">") {
			extra = ", big-endian"
		}
		return fmt.Errorf("npy: unsupported dtype '%s'%s (want '<c8' complex64 or '<f4' float32)", d.descr, extra)
	}
	if d.fortranOrder {
		return errors.New("npy: fortran_order=True (column-major) arrays not supported; save with np.ascontiguousarray(a)")
	}
	switch len(d.shape) {
	case 1, 2:
	case 0:
		return errors.New("npy: 0-dimensional (scalar) arrays not supported (want 1 or 2 dimensions)")
	default:
		return fmt.Errorf("npy: shape %s has %d dimensions, only 1 or 2 supported", fmtShape(d.shape), len(d.shape))
	}
	count, err := checkShape(d.shape)
	if err != nil {
		return err
	}
	h.Count = count
	h.Shape = make([]int, len(d.shape))
	for i, v := range d.shape {
		h.Shape[i] = int(v)
	}
	return nil
}

// checkShape validates non-negative dimensions and returns the element
// count, which must not exceed MaxElements.
func checkShape(shape []int64) (int, error) {
	for _, v := range shape {
		if v < 0 {
			return 0, fmt.Errorf("npy: shape %s has a negative dimension", fmtShape(shape))
		}
		if v > MaxElements {
			return 0, fmt.Errorf("npy: shape %s: dimension %d exceeds the limit of %d elements", fmtShape(shape), v, int64(MaxElements))
		}
	}
	count := int64(1)
	for _, v := range shape {
		// Each factor is <= 2^31 and count <= 2^31 before multiplying:
		// the product cannot overflow int64.
		count *= v
		if count > MaxElements && !slices.Contains(shape, 0) {
			return 0, fmt.Errorf("npy: shape %s has too many elements (limit %d)", fmtShape(shape), int64(MaxElements))
		}
		if count > MaxElements {
			return 0, nil // a later dimension is 0
		}
	}
	if count > int64(math.MaxInt/8) {
		return 0, fmt.Errorf("npy: shape %s too large for this platform", fmtShape(shape))
	}
	return int(count), nil
}

func fmtShape[T int | int64](shape []T) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, v := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(int64(v), 10))
	}
	if len(shape) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// readData reads h.Count elements of h.ItemSize bytes from r, decoding each
// chunk with decode into dst[i:]. It allocates at most the data received
// (plus slice growth slack), never the full announced size up front unless
// that is small.
func readData[T any](r io.Reader, h *Header, decode func(dst []T, src []byte)) ([]T, error) {
	total := h.DataLen()
	chunkElems := chunkBytes / h.ItemSize
	initial := min(h.Count, chunkElems)
	if rem, ok := remaining(r); ok && rem >= total {
		initial = h.Count // the data is there: allocate it exactly, once
	}
	out := make([]T, 0, initial)
	buf := make([]byte, min(total, int64(chunkElems*h.ItemSize)))
	var got int64
	for len(out) < h.Count {
		m := min(h.Count-len(out), chunkElems)
		b := buf[:m*h.ItemSize]
		n, err := io.ReadFull(r, b)
		got += int64(n)
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, fmt.Errorf("npy: truncated data: shape %s of %s needs %d bytes, got %d", fmtShape(h.Shape), h.DType, total, got)
			}
			return nil, fmt.Errorf("npy: reading data: %w", err)
		}
		start := len(out)
		out = slices.Grow(out, m)[:start+m]
		decode(out[start:], b)
	}
	return out, nil
}

// remaining reports how many bytes r still holds, for readers that know:
// in-memory readers with a Len method (bytes.Reader, bytes.Buffer,
// strings.Reader) and regular files (Stat and Seek, like *os.File).
func remaining(r io.Reader) (int64, bool) {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len()), true
	case interface {
		io.Seeker
		Stat() (fs.FileInfo, error)
	}:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, false
		}
		return fi.Size() - pos, true
	}
	return 0, false
}

func readComplex64Data(r io.Reader, h *Header) ([]complex64, error) {
	return readData(r, h, decodeComplex64)
}

func readFloat32Data(r io.Reader, h *Header) ([]float32, error) {
	return readData(r, h, decodeFloat32)
}

// decodeComplex64 decodes len(dst) little-endian complex64 values from src.
func decodeComplex64(dst []complex64, src []byte) {
	src = src[:8*len(dst)]
	for i := range dst {
		b := src[8*i : 8*i+8]
		dst[i] = complex(
			math.Float32frombits(binary.LittleEndian.Uint32(b[0:4])),
			math.Float32frombits(binary.LittleEndian.Uint32(b[4:8])))
	}
}

// decodeFloat32 decodes len(dst) little-endian float32 values from src.
func decodeFloat32(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i : 4*i+4]))
	}
}

// WriteComplex64 writes data as a '<c8' .npy file (format 1.0) to w. shape
// defaults to the 1-D shape (len(data),); otherwise it must have 1 or 2
// non-negative dimensions whose product is len(data), in C order.
func WriteComplex64(w io.Writer, data []complex64, shape ...int) error {
	return writeArray(w, "<c8", data, shape, func(dst []byte, src []complex64) {
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[8*i:], math.Float32bits(real(v)))
			binary.LittleEndian.PutUint32(dst[8*i+4:], math.Float32bits(imag(v)))
		}
	})
}

// WriteFloat32 writes data as a '<f4' .npy file (format 1.0) to w. shape
// defaults to the 1-D shape (len(data),); otherwise it must have 1 or 2
// non-negative dimensions whose product is len(data), in C order.
func WriteFloat32(w io.Writer, data []float32, shape ...int) error {
	return writeArray(w, "<f4", data, shape, func(dst []byte, src []float32) {
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	})
}

// Write writes a as a .npy file to w, using a.DType and a.Shape (a nil
// Shape means 1-D).
func Write(w io.Writer, a *Array) error {
	switch a.DType {
	case Complex64:
		return WriteComplex64(w, a.C64, a.Shape...)
	case Float32:
		return WriteFloat32(w, a.F32, a.Shape...)
	}
	return fmt.Errorf("npy: cannot write dtype %q (want %q or %q)", a.DType, Complex64, Float32)
}

func writeArray[T any](w io.Writer, descr string, data []T, shape []int, encode func(dst []byte, src []T)) error {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	if len(shape) > 2 {
		return fmt.Errorf("npy: cannot write shape %s: only 1 or 2 dimensions supported", fmtShape(shape))
	}
	s64 := make([]int64, len(shape))
	for i, v := range shape {
		s64[i] = int64(v)
	}
	count, err := checkShape(s64)
	if err != nil {
		return fmt.Errorf("npy: cannot write: %s", strings.TrimPrefix(err.Error(), "npy: "))
	}
	if count != len(data) {
		return fmt.Errorf("npy: cannot write shape %s (%d elements) with %d data elements", fmtShape(shape), count, len(data))
	}
	itemSize := 8
	if descr == "<f4" {
		itemSize = 4
	}

	hdr := encodeHeader(descr, shape)
	chunkElems := chunkBytes / itemSize
	buf := make([]byte, 0, min(len(hdr)+len(data)*itemSize, chunkBytes))
	buf = append(buf, hdr...)
	for len(data) > 0 || len(buf) > 0 {
		m := min(len(data), chunkElems, (cap(buf)-len(buf))/itemSize)
		n := len(buf)
		buf = buf[:n+m*itemSize]
		encode(buf[n:], data[:m])
		data = data[m:]
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("npy: write: %w", err)
		}
		buf = buf[:0]
	}
	return nil
}

// encodeHeader returns the complete version 1.0 preamble and header (magic,
// version, header length, dict, padding and '\n') for an array with the
// given numpy dtype string and C-order shape, exactly as numpy.save writes
// it: the returned length is a multiple of 64.
func encodeHeader(descr string, shape []int) []byte {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, fmtShape(shape))
	// preamble (10) + dict + padding + '\n' must be a multiple of align.
	total := 10 + len(dict) + 1
	pad := (align - total%align) % align
	out := make([]byte, 0, total+pad)
	out = append(out, magic...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(dict)+pad+1))
	out = append(out, dict...)
	for range pad {
		out = append(out, ' ')
	}
	return append(out, '\n')
}
