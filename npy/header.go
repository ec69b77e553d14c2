package npy

import (
	"fmt"
	"strconv"
)

// headerDict is the parsed header dictionary of a .npy file.
type headerDict struct {
	descr        string
	fortranOrder bool
	shape        []int64
}

// maxDims bounds the number of dimensions the parser collects; anything
// larger than 2 is rejected later anyway, this only bounds work and
// allocation on garbage input.
const maxDims = 64

// parseHeaderDict parses the Python literal dict numpy writes as the .npy
// header, e.g.
//
//	{'descr': '<c8', 'fortran_order': False, 'shape': (16384,), }
//
// Keys may come in any order, whitespace is free, trailing commas are
// allowed in the dict and the shape tuple, strings may use either quote,
// and Python 2 long suffixes ("3L") are accepted in the shape. Exactly the
// three keys descr, fortran_order and shape must be present (like numpy).
// Trailing whitespace (numpy's padding and '\n') is allowed after the dict,
// anything else is not.
func parseHeaderDict(b []byte) (*headerDict, error) {
	p := &parser{b: b}
	d := &headerDict{}
	var seen [3]bool

	p.skipSpace()
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	for {
		p.skipSpace()
		if p.peek() == '}' {
			p.pos++
			break
		}
		keyPos := p.pos
		key, err := p.parseString()
		if err != nil {
			return nil, p.errorf(keyPos, "expected a quoted key or '}'")
		}
		p.skipSpace()
		if err := p.expect(':'); err != nil {
			return nil, err
		}
		p.skipSpace()
		var idx int
		switch key {
		case "descr":
			idx = 0
			if p.peek() == '[' || p.peek() == '{' {
				return nil, fmt.Errorf("npy: structured dtypes not supported (want '<c8' complex64 or '<f4' float32)")
			}
			vpos := p.pos
			if d.descr, err = p.parseString(); err != nil {
				return nil, p.errorf(vpos, "descr must be a quoted string")
			}
		case "fortran_order":
			idx = 1
			if d.fortranOrder, err = p.parseBool(); err != nil {
				return nil, err
			}
		case "shape":
			idx = 2
			if d.shape, err = p.parseShape(); err != nil {
				return nil, err
			}
		default:
			return nil, p.errorf(keyPos, "unexpected key %q (want only 'descr', 'fortran_order', 'shape')", key)
		}
		if seen[idx] {
			return nil, p.errorf(keyPos, "duplicate key %q", key)
		}
		seen[idx] = true
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
		default:
			return nil, p.errorf(p.pos, "expected ',' or '}' after the value of %q", key)
		}
	}
	p.skipSpace()
	if p.pos != len(p.b) {
		return nil, p.errorf(p.pos, "unexpected data after the header dict")
	}
	for i, k := range [...]string{"descr", "fortran_order", "shape"} {
		if !seen[i] {
			return nil, fmt.Errorf("npy: malformed header: missing key '%s' in %s", k, quoteHeader(b))
		}
	}
	return d, nil
}

type parser struct {
	b   []byte
	pos int
}

// peek returns the current byte, or 0 at the end of input.
func (p *parser) peek() byte {
	if p.pos < len(p.b) {
		return p.b[p.pos]
	}
	return 0
}

func (p *parser) skipSpace() {
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) expect(c byte) error {
	if p.peek() != c {
		return p.errorf(p.pos, "expected '%c'", c)
	}
	p.pos++
	return nil
}

// parseString parses a '...' or "..." literal without escapes (none occur
// in valid headers of supported files).
func (p *parser) parseString() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.errorf(p.pos, "expected a quoted string")
	}
	start := p.pos + 1
	for i := start; i < len(p.b); i++ {
		switch p.b[i] {
		case q:
			p.pos = i + 1
			return string(p.b[start:i]), nil
		case '\\', '\n':
			return "", p.errorf(i, "unsupported character in string")
		}
	}
	return "", p.errorf(p.pos, "unterminated string")
}

func (p *parser) parseBool() (bool, error) {
	rest := p.b[p.pos:]
	switch {
	case hasWord(rest, "True"):
		p.pos += 4
		return true, nil
	case hasWord(rest, "False"):
		p.pos += 5
		return false, nil
	}
	return false, p.errorf(p.pos, "fortran_order must be True or False")
}

// hasWord reports whether b starts with the identifier w not followed by
// another identifier character.
func hasWord(b []byte, w string) bool {
	if len(b) < len(w) || string(b[:len(w)]) != w {
		return false
	}
	return len(b) == len(w) || !isIdent(b[len(w)])
}

func isIdent(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// parseShape parses a tuple of integers: (), (n,), (n, m), ... A single
// element without a trailing comma is a parenthesised int in Python, not a
// tuple, and is rejected as numpy does.
func (p *parser) parseShape() ([]int64, error) {
	start := p.pos
	if p.peek() != '(' {
		return nil, p.errorf(p.pos, "shape must be a tuple like (n,) or (n, m)")
	}
	p.pos++
	shape := []int64{}
	trailingComma := false
	for {
		p.skipSpace()
		if p.peek() == ')' {
			p.pos++
			break
		}
		if len(shape) > 0 && !trailingComma {
			return nil, p.errorf(p.pos, "expected ',' or ')' in shape")
		}
		if len(shape) >= maxDims {
			return nil, p.errorf(start, "shape has more than %d dimensions", maxDims)
		}
		v, err := p.parseInt()
		if err != nil {
			return nil, err
		}
		shape = append(shape, v)
		p.skipSpace()
		trailingComma = p.peek() == ','
		if trailingComma {
			p.pos++
		}
	}
	if len(shape) == 1 && !trailingComma {
		return nil, p.errorf(start, "shape must be a tuple; a 1-tuple needs a trailing comma like (n,)")
	}
	return shape, nil
}

// parseInt parses a decimal integer with an optional sign and an optional
// Python 2 long suffix 'L'.
func (p *parser) parseInt() (int64, error) {
	start := p.pos
	i := p.pos
	if i < len(p.b) && (p.b[i] == '-' || p.b[i] == '+') {
		i++
	}
	digits := i
	for i < len(p.b) && '0' <= p.b[i] && p.b[i] <= '9' {
		i++
	}
	if i == digits {
		return 0, p.errorf(start, "expected an integer in shape")
	}
	text := string(p.b[start:i])
	if i < len(p.b) && (p.b[i] == 'L' || p.b[i] == 'l') {
		i++
	}
	if i < len(p.b) && isIdent(p.b[i]) {
		return 0, p.errorf(start, "expected an integer in shape")
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, p.errorf(start, "shape dimension %s overflows", text)
	}
	p.pos = i
	return v, nil
}

func (p *parser) errorf(pos int, format string, args ...any) error {
	return fmt.Errorf("npy: malformed header at byte %d: %s in %s", pos, fmt.Sprintf(format, args...), quoteHeader(p.b))
}

// quoteHeader quotes the header for error messages, trimmed of numpy's
// padding and shortened if long.
func quoteHeader(b []byte) string {
	end := len(b)
	for end > 0 && (b[end-1] == ' ' || b[end-1] == '\n') {
		end--
	}
	b = b[:end]
	const max = 120
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
