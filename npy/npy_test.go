package npy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// expectedFile mirrors testdata/expected.json, written by
// scripts/gen-npy-fixtures.py together with the fixtures.
type expectedFile struct {
	NumpyVersion string `json:"numpy_version"`
	OK           map[string]struct {
		DType string   `json:"dtype"`
		Shape []int    `json:"shape"`
		Bits  []uint32 `json:"bits"`
	} `json:"ok"`
	Bad map[string]string `json:"bad"` // file -> substring of the error
}

func loadExpected(t testing.TB) *expectedFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expectedFile
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if len(e.OK) == 0 || len(e.Bad) == 0 {
		t.Fatal("expected.json lists no fixtures")
	}
	return &e
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bitsOf flattens an array into float32 bit patterns (real, imag for
// complex), matching expected.json.
func bitsOf(a *Array) []uint32 {
	var out []uint32
	for _, v := range a.C64 {
		out = append(out, math.Float32bits(real(v)), math.Float32bits(imag(v)))
	}
	for _, v := range a.F32 {
		out = append(out, math.Float32bits(v))
	}
	return out
}

func TestNumpyFixtures(t *testing.T) {
	e := loadExpected(t)
	for name, want := range e.OK {
		t.Run(name, func(t *testing.T) {
			raw := readFixture(t, name)
			a, err := Read(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if a.DType != want.DType {
				t.Errorf("DType = %q, want %q", a.DType, want.DType)
			}
			if !slices.Equal(a.Shape, want.Shape) {
				t.Errorf("Shape = %v, want %v", a.Shape, want.Shape)
			}
			if got := bitsOf(a); !slices.Equal(got, want.Bits) && !(len(got) == 0 && len(want.Bits) == 0) {
				t.Errorf("values differ:\n got  %08x\n want %08x", got, want.Bits)
			}
			if (a.C64 == nil) == (a.F32 == nil) {
				t.Errorf("want exactly one of C64/F32 non-nil, got C64 nil=%v F32 nil=%v", a.C64 == nil, a.F32 == nil)
			}

			// Typed readers: the matching one agrees, the other names the dtype.
			switch want.DType {
			case Complex64:
				c, shape, err := ReadComplex64(bytes.NewReader(raw))
				if err != nil || !slices.Equal(shape, want.Shape) || len(c) != len(a.C64) {
					t.Errorf("ReadComplex64 = len %d, %v, %v", len(c), shape, err)
				}
				_, _, err = ReadFloat32(bytes.NewReader(raw))
				wantErrContains(t, err, "'<c8'", "complex64", "want '<f4'")
			case Float32:
				f, shape, err := ReadFloat32(bytes.NewReader(raw))
				if err != nil || !slices.Equal(shape, want.Shape) || len(f) != len(a.F32) {
					t.Errorf("ReadFloat32 = len %d, %v, %v", len(f), shape, err)
				}
				_, _, err = ReadComplex64(bytes.NewReader(raw))
				wantErrContains(t, err, "'<f4'", "float32", "want '<c8'")
			}
		})
	}
	for name, sub := range e.Bad {
		t.Run(name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(readFixture(t, name)))
			wantErrContains(t, err, sub)
		})
	}
}

func TestFixtureVersions(t *testing.T) {
	for name, major := range map[string]int{"c64_1d_v1.npy": 1, "f32_2d_v1.npy": 1, "c64_1d_v2.npy": 2, "f32_2d_v2.npy": 2} {
		h, err := ReadHeader(bytes.NewReader(readFixture(t, name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.Major != major || h.Minor != 0 {
			t.Errorf("%s: version %d.%d, want %d.0", name, h.Major, h.Minor, major)
		}
		if h.DataOffset%64 != 0 {
			t.Errorf("%s: data offset %d not a multiple of 64", name, h.DataOffset)
		}
	}
}

// TestWriteMatchesNumpy re-encodes numpy's own v1.0 files and expects the
// identical bytes, header padding included.
func TestWriteMatchesNumpy(t *testing.T) {
	for _, name := range []string{"c64_1d_v1.npy", "f32_2d_v1.npy", "c64_empty.npy"} {
		raw := readFixture(t, name)
		a, err := Read(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var buf bytes.Buffer
		if err := Write(&buf, a); err != nil {
			t.Fatalf("%s: Write: %v", name, err)
		}
		if !bytes.Equal(buf.Bytes(), raw) {
			t.Errorf("%s: written bytes differ from numpy's\n got  %q\n want %q", name, buf.Bytes(), raw)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	c64 := func(n int) []complex64 {
		out := make([]complex64, n)
		for i := range out {
			out[i] = complex(float32(i)*0.37-5, -float32(i)/7)
		}
		return out
	}
	f32 := func(n int) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(math.Sin(float64(i))) * 1e3
		}
		return out
	}
	big := chunkBytes/8*2 + 3 // crosses several read/write chunks
	tests := []struct {
		name      string
		c         []complex64
		f         []float32
		shape     []int
		wantShape []int
	}{
		{name: "c64 1-D default shape", c: c64(16384), wantShape: []int{16384}},
		{name: "c64 1-D explicit", c: c64(5), shape: []int{5}, wantShape: []int{5}},
		{name: "c64 2-D", c: c64(12), shape: []int{3, 4}, wantShape: []int{3, 4}},
		{name: "c64 empty", c: []complex64{}, wantShape: []int{0}},
		{name: "c64 nil", c: nil, wantShape: []int{0}},
		{name: "c64 empty 2-D", c: nil, shape: []int{0, 7}, wantShape: []int{0, 7}},
		{name: "c64 big 1-D", c: c64(big), wantShape: []int{big}},
		{name: "c64 special", c: []complex64{complex(float32(math.NaN()), float32(math.Inf(-1))), complex(float32(math.Copysign(0, -1)), math.MaxFloat32)}, wantShape: []int{2}},
		{name: "f32 1-D", f: f32(7), wantShape: []int{7}},
		{name: "f32 2-D", f: f32(6), shape: []int{2, 3}, wantShape: []int{2, 3}},
		{name: "f32 2-D column", f: f32(6), shape: []int{6, 1}, wantShape: []int{6, 1}},
		{name: "f32 empty", f: []float32{}, wantShape: []int{0}},
		{name: "f32 big 2-D", f: f32(2 * big), shape: []int{2, big}, wantShape: []int{2, big}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			isC := tc.f == nil
			var err error
			if isC {
				err = WriteComplex64(&buf, tc.c, tc.shape...)
			} else {
				err = WriteFloat32(&buf, tc.f, tc.shape...)
			}
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			raw := buf.Bytes()
			h, err := ReadHeader(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("ReadHeader: %v", err)
			}
			if h.DataOffset%64 != 0 || raw[h.DataOffset-1] != '\n' || h.Major != 1 {
				t.Errorf("header: offset %d, last byte %q, version %d", h.DataOffset, raw[h.DataOffset-1], h.Major)
			}
			if int64(len(raw)) != int64(h.DataOffset)+h.DataLen() {
				t.Errorf("file is %d bytes, want %d + %d", len(raw), h.DataOffset, h.DataLen())
			}
			if isC {
				got, shape, err := ReadComplex64(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(shape, tc.wantShape) {
					t.Errorf("shape %v, want %v", shape, tc.wantShape)
				}
				if !sameBits(got, tc.c) {
					t.Errorf("data differs")
				}
			} else {
				got, shape, err := ReadFloat32(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(shape, tc.wantShape) {
					t.Errorf("shape %v, want %v", shape, tc.wantShape)
				}
				if !sameBits(got, tc.f) {
					t.Errorf("data differs")
				}
			}
		})
	}
}

func sameBits[T complex64 | float32](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		switch x := any(a[i]).(type) {
		case float32:
			if math.Float32bits(x) != math.Float32bits(any(b[i]).(float32)) {
				return false
			}
		case complex64:
			y := any(b[i]).(complex64)
			if math.Float32bits(real(x)) != math.Float32bits(real(y)) || math.Float32bits(imag(x)) != math.Float32bits(imag(y)) {
				return false
			}
		}
	}
	return true
}

// TestHeaderAlignment checks numpy's padding rule for many header lengths.
func TestHeaderAlignment(t *testing.T) {
	for _, shape := range [][]int{{0}, {1}, {9}, {10}, {123456}, {1 << 31}, {3, 4}, {1 << 20, 1 << 11}, {0, 0}} {
		for _, descr := range []string{"<c8", "<f4"} {
			h := encodeHeader(descr, shape)
			if len(h)%64 != 0 || h[len(h)-1] != '\n' {
				t.Errorf("%s %v: header len %d, last %q", descr, shape, len(h), h[len(h)-1])
			}
			if got := int(binary.LittleEndian.Uint16(h[8:10])); got != len(h)-10 {
				t.Errorf("%s %v: HEADER_LEN %d, want %d", descr, shape, got, len(h)-10)
			}
			hd, err := ReadHeader(bytes.NewReader(h))
			if err != nil {
				t.Errorf("%s %v: %v", descr, shape, err)
			} else if !slices.Equal(hd.Shape, shape) || hd.Descr != descr {
				t.Errorf("%s %v: read back %s %v", descr, shape, hd.Descr, hd.Shape)
			}
		}
	}
}

// TestTrailingDataTolerated: readers stop right after the data, so extra
// bytes are ignored and concatenated arrays can be read one after another.
func TestTrailingDataTolerated(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteComplex64(&buf, []complex64{1, 2i}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFloat32(&buf, []float32{1, 2, 3, 4}, 2, 2); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("trailing garbage")
	r := bytes.NewReader(buf.Bytes())
	c, _, err := ReadComplex64(r)
	if err != nil || !slices.Equal(c, []complex64{1, 2i}) {
		t.Fatalf("first array: %v, %v", c, err)
	}
	f, shape, err := ReadFloat32(r)
	if err != nil || !slices.Equal(f, []float32{1, 2, 3, 4}) || !slices.Equal(shape, []int{2, 2}) {
		t.Fatalf("second array: %v %v, %v", f, shape, err)
	}
	if _, err := Read(r); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("reading the garbage: got %v, want a non-EOF error", err)
	}
	r = bytes.NewReader(buf.Bytes()[:buf.Len()-len("trailing garbage")])
	n := 0
	for {
		_, err := Read(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("read %d concatenated arrays, want 2", n)
	}
	r = bytes.NewReader(buf.Bytes())
	ReadComplex64(r)
	ReadFloat32(r)
	rest, _ := io.ReadAll(r)
	if string(rest) != "trailing garbage" {
		t.Errorf("reader consumed past the data: rest %q", rest)
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name  string
		err   func() error
		wants []string
	}{
		{"shape mismatch", func() error { return WriteComplex64(io.Discard, make([]complex64, 5), 2, 3) }, []string{"(2, 3)", "6 elements", "5 data"}},
		{"3-D", func() error { return WriteFloat32(io.Discard, make([]float32, 8), 2, 2, 2) }, []string{"(2, 2, 2)", "1 or 2 dimensions"}},
		{"negative", func() error { return WriteFloat32(io.Discard, nil, -1) }, []string{"negative"}},
		{"negative 2-D", func() error { return WriteFloat32(io.Discard, nil, -2, -3) }, []string{"negative"}},
		{"too many", func() error { return WriteFloat32(io.Discard, nil, 1<<20, 1<<20) }, []string{"too many elements"}},
		{"bad dtype", func() error { return Write(io.Discard, &Array{DType: "float64"}) }, []string{"float64"}},
		{"writer error", func() error { return WriteComplex64(failWriter{}, []complex64{1}) }, []string{"write", "disk full"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErrContains(t, tc.err(), tc.wants...)
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// npyFile builds a .npy file with an arbitrary header dict (padded like
// numpy) and data bytes.
func npyFile(major byte, dict string, data []byte) []byte {
	pre := 10
	if major != 1 {
		pre = 12
	}
	total := pre + len(dict) + 1
	pad := (64 - total%64) % 64
	hdr := dict + strings.Repeat(" ", pad) + "\n"
	out := []byte(magic)
	out = append(out, major, 0)
	if major == 1 {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(hdr)))
	} else {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(hdr)))
	}
	out = append(out, hdr...)
	return append(out, data...)
}

// rawFile builds a .npy file with the header text exactly as given (no
// padding or newline added).
func rawFile(major byte, hdr string, data []byte) []byte {
	out := []byte(magic)
	out = append(out, major, 0)
	if major == 1 {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(hdr)))
	} else {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(hdr)))
	}
	out = append(out, hdr...)
	return append(out, data...)
}

func dict(descr, fortran, shape string) string {
	return fmt.Sprintf("{'descr': %s, 'fortran_order': %s, 'shape': %s, }", descr, fortran, shape)
}

func TestReadGoodVariants(t *testing.T) {
	data8 := make([]byte, 8*6)
	for i := range 6 {
		binary.LittleEndian.PutUint32(data8[8*i:], math.Float32bits(float32(i)))
		binary.LittleEndian.PutUint32(data8[8*i+4:], math.Float32bits(-float32(i)))
	}
	tests := []struct {
		name  string
		file  []byte
		shape []int
	}{
		{"numpy style", npyFile(1, dict("'<c8'", "False", "(6,)"), data8), []int{6}},
		{"reordered keys", npyFile(1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<c8'}", data8), []int{2, 3}},
		{"no spaces", npyFile(1, "{'descr':'<c8','fortran_order':False,'shape':(6,)}", data8), []int{6}},
		{"lots of spaces", npyFile(1, "  {  'descr' :  '<c8' ,\t'fortran_order' : False , 'shape' : ( 3 , 2 , ) , }  ", data8), []int{3, 2}},
		{"double quotes", npyFile(1, `{"descr": "<c8", "fortran_order": False, "shape": (6,)}`, data8), []int{6}},
		{"python2 longs", npyFile(1, dict("'<c8'", "False", "(2L, 3L)"), data8), []int{2, 3}},
		{"version 2.0", npyFile(2, dict("'<c8'", "False", "(6,)"), data8), []int{6}},
		{"version 3.0", npyFile(3, dict("'<c8'", "False", "(6,)"), data8), []int{6}},
		{"zero dim", npyFile(1, dict("'<c8'", "False", "(0, 4294967296)"), nil), nil},
		{"unpadded no newline", rawFile(1, "{'descr':'<c8','fortran_order':False,'shape':(6,)}  ", data8), []int{6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(tc.file))
			if tc.shape == nil {
				// Expected to be rejected only because a dimension is over the cap.
				wantErrContains(t, err, "exceeds the limit")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Shape, tc.shape) || a.DType != Complex64 || len(a.C64) != 6 || a.C64[5] != complex(5, -5) {
				t.Errorf("got %s %v %v", a.DType, a.Shape, a.C64)
			}
		})
	}
}

func TestReadBadInput(t *testing.T) {
	v1 := func(d string) []byte { return npyFile(1, d, make([]byte, 64)) }
	tests := []struct {
		name  string
		file  []byte
		wants []string
	}{
		{"empty", nil, []string{"empty input", "EOF"}},
		{"one byte", []byte{0x93}, []string{"truncated header", "1 of the 8"}},
		{"bad magic", []byte("PK\x03\x04 this is a zip file, not npy"), []string{"bad magic"}},
		{"bad magic short", []byte("\x93NUMPx"), []string{"bad magic"}},
		{"bad magic text", []byte("hello world, definitely not npy"), []string{"bad magic", "not a .npy file"}},
		{"version 0", []byte(magic + "\x00\x00\x10\x00"), []string{"unsupported format version 0.0"}},
		{"version 4", []byte(magic + "\x04\x00\x10\x00\x00\x00"), []string{"unsupported format version 4.0"}},
		{"version 1.1", []byte(magic + "\x01\x01\x10\x00"), []string{"unsupported format version 1.1"}},
		{"truncated header len", []byte(magic + "\x02\x00\x10\x00"), []string{"truncated header", "header-length"}},
		{"truncated header", []byte(magic + "\x01\x00\x76\x00{'descr': '<c8'"), []string{"truncated header", "118 bytes", "got 15"}},
		{"huge header", []byte(magic + "\x02\x00\xff\xff\xff\xff{"), []string{"header length 4294967295 exceeds"}},
		{"f8", v1(dict("'<f8'", "False", "(4,)")), []string{"unsupported dtype '<f8'", "'<c8' complex64", "'<f4' float32"}},
		{"c16", v1(dict("'<c16'", "False", "(4,)")), []string{"unsupported dtype '<c16'"}},
		{"int8", v1(dict("'|i1'", "False", "(4,)")), []string{"unsupported dtype '|i1'"}},
		{"native f4", v1(dict("'=f4'", "False", "(4,)")), []string{"unsupported dtype '=f4'"}},
		{"big-endian c8", v1(dict("'>c8'", "False", "(4,)")), []string{"big-endian", "'>c8'"}},
		{"big-endian f4", v1(dict("'>f4'", "False", "(4,)")), []string{"big-endian", "'>f4'"}},
		{"big-endian f8", v1(dict("'>f8'", "False", "(4,)")), []string{"unsupported dtype '>f8'", "big-endian"}},
		{"structured", v1("{'descr': [('re', '<f4'), ('im', '<f4')], 'fortran_order': False, 'shape': (4,), }"), []string{"structured"}},
		{"fortran", v1(dict("'<f4'", "True", "(2, 2)")), []string{"fortran_order"}},
		{"3-D", v1(dict("'<f4'", "False", "(2, 2, 2)")), []string{"(2, 2, 2)", "3 dimensions"}},
		{"0-D", v1(dict("'<f4'", "False", "()")), []string{"0-dimensional"}},
		{"negative", v1(dict("'<f4'", "False", "(-4,)")), []string{"negative dimension"}},
		{"negative 2-D", v1(dict("'<f4'", "False", "(-1, -4)")), []string{"negative dimension"}},
		{"int64 overflow", v1(dict("'<f4'", "False", "(99999999999999999999,)")), []string{"99999999999999999999", "overflows"}},
		{"dim over cap", v1(dict("'<f4'", "False", "(2147483649,)")), []string{"exceeds the limit"}},
		{"product over cap", v1(dict("'<c8'", "False", "(65536, 65536)")), []string{"too many elements"}},
		{"product overflow", v1(dict("'<c8'", "False", "(4294967296, 4294967296)")), []string{"exceeds the limit"}},
		{"not a dict", v1("['descr', '<f4']"), []string{"malformed header", "expected '{'"}},
		{"missing shape", v1("{'descr': '<f4', 'fortran_order': False}"), []string{"malformed header", "missing key 'shape'"}},
		{"missing descr", v1("{'fortran_order': False, 'shape': (4,)}"), []string{"missing key 'descr'"}},
		{"missing fortran", v1("{'descr': '<f4', 'shape': (4,)}"), []string{"missing key 'fortran_order'"}},
		{"extra key", v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}"), []string{"unexpected key \"x\""}},
		{"duplicate key", v1("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}"), []string{"duplicate key \"descr\""}},
		{"unquoted key", v1("{descr: '<f4', 'fortran_order': False, 'shape': (4,)}"), []string{"expected a quoted key"}},
		{"missing colon", v1("{'descr' '<f4', 'fortran_order': False, 'shape': (4,)}"), []string{"expected ':'"}},
		{"missing comma", v1("{'descr': '<f4' 'fortran_order': False, 'shape': (4,)}"), []string{"expected ',' or '}'"}},
		{"unterminated dict", v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), "), []string{"malformed header"}},
		{"unterminated string", v1("{'descr: '<f4'}"), []string{"malformed header"}},
		{"descr not string", v1(dict("4", "False", "(4,)")), []string{"descr must be a quoted string"}},
		{"bad bool", v1(dict("'<f4'", "false", "(4,)")), []string{"True or False"}},
		{"bool prefix", v1(dict("'<f4'", "Falsey", "(4,)")), []string{"True or False"}},
		{"shape list", v1(dict("'<f4'", "False", "[4]")), []string{"shape must be a tuple"}},
		{"shape int", v1(dict("'<f4'", "False", "4")), []string{"shape must be a tuple"}},
		{"shape paren int", v1(dict("'<f4'", "False", "(4)")), []string{"trailing comma"}},
		{"shape float", v1(dict("'<f4'", "False", "(4.0,)")), []string{"expected ',' or ')'"}},
		{"shape missing comma", v1(dict("'<f4'", "False", "(2 2)")), []string{"expected ',' or ')'"}},
		{"shape double comma", v1(dict("'<f4'", "False", "(2,,)")), []string{"expected an integer"}},
		{"shape hex", v1(dict("'<f4'", "False", "(0x10,)")), []string{"expected an integer"}},
		{"shape unterminated", v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4,"), []string{"malformed header"}},
		{"garbage after dict", v1(dict("'<f4'", "False", "(4,)") + " x"), []string{"unexpected data after the header dict"}},
		{"NUL in header", v1(dict("'<f4'", "False", "(4,)") + "\x00"), []string{"unexpected data after"}},
		{"truncated data c64", npyFile(1, dict("'<c8'", "False", "(10,)"), make([]byte, 79)), []string{"truncated data", "(10,)", "needs 80 bytes, got 79"}},
		{"truncated data f32 2-D", npyFile(2, dict("'<f4'", "False", "(3, 4)"), make([]byte, 5)), []string{"truncated data", "(3, 4)", "needs 48 bytes, got 5"}},
		{"no data", npyFile(1, dict("'<f4'", "False", "(1,)"), nil), []string{"truncated data", "needs 4 bytes, got 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(tc.file))
			if a != nil {
				t.Errorf("got non-nil array with error %v", err)
			}
			wantErrContains(t, err, tc.wants...)
			// The typed readers must fail the same way.
			_, _, err2 := ReadComplex64(bytes.NewReader(tc.file))
			_, _, err3 := ReadFloat32(bytes.NewReader(tc.file))
			if err2 == nil || err3 == nil {
				t.Errorf("typed readers accepted bad input: %v, %v", err2, err3)
			}
		})
	}
}

// TestHugeShapeSmallAllocation: a header announcing the maximum element
// count with almost no data must fail without allocating the full size.
func TestHugeShapeSmallAllocation(t *testing.T) {
	file := npyFile(1, dict("'<c8'", "False", "(2147483648,)"), make([]byte, 100))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Read(bytes.NewReader(file))
	runtime.ReadMemStats(&after)
	wantErrContains(t, err, "truncated data", "needs 17179869184 bytes, got 100")
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*chunkBytes {
		t.Errorf("allocated %d bytes for a 100-byte data section", alloc)
	}
}

type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestReaderErrorPropagated(t *testing.T) {
	raw := readFixture(t, "c64_1d_v1.npy")
	boom := errors.New("boom")
	for _, n := range []int{0, 4, 9, 50, 200} {
		_, err := Read(&errReader{r: bytes.NewReader(raw[:n]), err: boom})
		if !errors.Is(err, boom) && n != 0 && n != 4 {
			t.Errorf("prefix %d: error %v does not wrap the reader's error", n, err)
		}
		if err == nil || !strings.HasPrefix(err.Error(), "npy: ") {
			t.Errorf("prefix %d: error %v", n, err)
		}
	}
}

// TestTruncatedEveryLength cuts valid files at every length: never a panic,
// always an error.
func TestTruncatedEveryLength(t *testing.T) {
	for _, name := range []string{"c64_1d_v1.npy", "f32_2d_v2.npy"} {
		raw := readFixture(t, name)
		if _, err := Read(bytes.NewReader(raw)); err != nil {
			t.Fatalf("%s: full file: %v", name, err)
		}
		for n := range len(raw) {
			_, err := Read(bytes.NewReader(raw[:n]))
			if err == nil {
				t.Fatalf("%s cut to %d bytes: no error", name, n)
			}
			if !strings.HasPrefix(err.Error(), "npy: ") {
				t.Fatalf("%s cut to %d bytes: error without prefix: %v", name, n, err)
			}
			if n >= 10 && !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("%s cut to %d bytes: error does not say truncated: %v", name, n, err)
			}
		}
	}
}

func wantErrContains(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", subs)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "npy: ") {
		t.Errorf("error %q lacks the \"npy: \" prefix", msg)
	}
	for _, s := range subs {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
}

func FuzzRead(f *testing.F) {
	e := loadExpected(f)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range e.OK {
			if !yield(n) {
				return
			}
		}
		for n := range e.Bad {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		f.Add(readFixture(f, n))
	}
	f.Add(npyFile(1, "{'shape':(2,1),'descr':'<f4','fortran_order':False}", make([]byte, 8)))
	f.Add(npyFile(1, dict("'<c8'", "False", "(2147483648,)"), make([]byte, 16)))
	f.Add([]byte(magic + "\x02\x00"))

	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		a, err := Read(r)
		if err != nil {
			if a != nil {
				t.Fatal("non-nil array with error")
			}
			if !strings.HasPrefix(err.Error(), "npy: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		n := 1
		for _, d := range a.Shape {
			n *= d
		}
		if len(a.Shape) < 1 || len(a.Shape) > 2 || n != a.Len() {
			t.Fatalf("shape %v does not match %d elements", a.Shape, a.Len())
		}
		itemSize := 4
		if a.DType == Complex64 {
			itemSize = 8
		}
		consumed := len(b) - r.Len()
		if consumed < itemSize*n+10 {
			t.Fatalf("consumed %d bytes for %d elements", consumed, n)
		}
		// Writing it back and reading again must give the same bits.
		var buf bytes.Buffer
		if err := Write(&buf, a); err != nil {
			t.Fatalf("write back: %v", err)
		}
		first := bytes.Clone(buf.Bytes())
		a2, err := Read(&buf)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if a2.DType != a.DType || !slices.Equal(a2.Shape, a.Shape) || !slices.Equal(bitsOf(a2), bitsOf(a)) {
			t.Fatalf("round trip changed the array")
		}
		// Re-encoding is a fixed point.
		var buf2 bytes.Buffer
		if err := Write(&buf2, a2); err != nil {
			t.Fatalf("second write: %v", err)
		}
		if !bytes.Equal(buf2.Bytes(), first) {
			t.Fatalf("second write differs from the first")
		}
	})
}

func BenchmarkReadComplex64(b *testing.B) {
	data := make([]complex64, 1<<20)
	for i := range data {
		data[i] = complex(float32(i), -float32(i))
	}
	var buf bytes.Buffer
	if err := WriteComplex64(&buf, data); err != nil {
		b.Fatal(err)
	}
	raw := buf.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := ReadComplex64(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteComplex64(b *testing.B) {
	data := make([]complex64, 1<<20)
	b.SetBytes(int64(len(data)) * 8)
	for b.Loop() {
		if err := WriteComplex64(io.Discard, data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadFromFile reads through an *os.File (the exact-allocation path)
// and through a plain io.Reader (the chunked path) and gets the same data.
func TestReadFromFile(t *testing.T) {
	data := make([]complex64, chunkBytes/8+100)
	for i := range data {
		data[i] = complex(float32(i), 1)
	}
	path := filepath.Join(t.TempDir(), "iq.npy")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteComplex64(fh, data); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	fh, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if rem, ok := remaining(fh); !ok || rem != int64(len(data))*8+128 {
		t.Errorf("remaining(file) = %d, %v", rem, ok)
	}
	got, _, err := ReadComplex64(fh)
	if err != nil || !slices.Equal(got, data) || cap(got) != len(data) {
		t.Fatalf("from file: len %d cap %d err %v", len(got), cap(got), err)
	}
	raw, _ := os.ReadFile(path)
	got, _, err = ReadComplex64(io.MultiReader(bytes.NewReader(raw)))
	if err != nil || !slices.Equal(got, data) {
		t.Fatalf("from plain reader: len %d err %v", len(got), err)
	}
}
