package s3test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Op classifies an S3 request the proxy sees.
type Op string

// The operations a Rule can target.
const (
	OpGet    Op = "GET"    // GetObject
	OpPut    Op = "PUT"    // single PutObject
	OpPart   Op = "PART"   // UploadPart
	OpUpload Op = "UPLOAD" // create / complete / abort a multipart upload
	OpList   Op = "LIST"   // ListObjects and other bucket GETs
	OpHead   Op = "HEAD"   // StatObject, BucketExists
	OpOther  Op = "OTHER"  // DELETE, MakeBucket, ...
)

// Fault is what the proxy does to a request a Rule picked.
type Fault string

// The faults.
const (
	// Latency delays the request by up to Rule.Delay (uniform), then forwards it.
	Latency Fault = "latency"
	// Reset resets the client's connection (TCP RST) in the middle of the
	// body: after part of a PUT/PART request body was forwarded to the
	// server (which so sees a truncated body), after part of a GET response
	// body, or before any response for other requests.
	Reset Fault = "reset"
	// Truncate forwards a GET but ends the response body early with a clean
	// close (FIN), so the client sees fewer bytes than Content-Length.
	Truncate Fault = "truncate"
	// SlowDown answers 503 SlowDown without forwarding; for a request with a
	// body, after reading part of it (a server answering early).
	SlowDown Fault = "slowdown"
	// Incomplete answers 400 IncompleteBody ("You did not provide the number
	// of bytes specified by the Content-Length HTTP header.") after reading
	// part of the body, as MinIO does when the body it read ended early or
	// its object layer was cancelled or timed out (cmd/object-api-errors.go).
	Incomplete Fault = "incomplete"
	// ShortBody forwards a PUT/PART with its Content-Length but only part of
	// its body, then half-closes the upstream connection: the server sees a
	// body shorter than declared and answers (MinIO: 400 IncompleteBody),
	// and the proxy relays that answer to the client.
	ShortBody Fault = "shortbody"
	// Corrupt forwards a PUT/PART whole but with one byte of its body
	// changed (the same length): corruption on the way, which only a
	// checksum of the body catches.
	Corrupt Fault = "corrupt"
)

// Rule injects Fault into a share Rate of the requests of Ops (all when empty).
type Rule struct {
	Ops   []Op
	Fault Fault
	Rate  float64
	Delay time.Duration // Latency only
}

// Proxy is an HTTP proxy between an S3 client and a server that injects
// faults by rule (Rules), and can go down entirely (Down: connections are
// refused and open ones reset) and come back on the same port (Up).
// It keeps the client's Host header, so V4 signatures stay valid.
type Proxy struct {
	// Endpoint is the proxy's host:port, for s3.Options.Endpoint.
	Endpoint string
	target   string

	mu     sync.Mutex
	rules  []Rule
	rng    *rand.Rand
	counts map[string]int
	ln     net.Listener
	conns  map[net.Conn]struct{}
	srv    *http.Server
	up     *http.Transport
}

// StartProxy starts a proxy to target (host:port) on 127.0.0.1, closed at
// cleanup. It injects nothing until Rules is called.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{
		Endpoint: ln.Addr().String(),
		target:   target,
		rng:      rand.New(rand.NewPCG(1, 1)),
		counts:   map[string]int{},
		conns:    map[net.Conn]struct{}{},
		up:       &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
	p.srv = &http.Server{Handler: p, ConnState: p.track}
	p.serve(ln)
	t.Cleanup(func() {
		p.Down()
		_ = p.srv.Close()
		p.up.CloseIdleConnections()
	})
	return p
}

// Rules replaces the fault rules; the faults are drawn from a stream seeded
// by seed. The first matching rule whose draw hits applies.
func (p *Proxy) Rules(seed uint64, rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = rules
	p.rng = rand.New(rand.NewPCG(seed, 7))
}

// Counts returns how many requests got each fault, keyed "OP fault", and
// each op, keyed "OP".
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// Down stops accepting connections (clients get "connection refused") and
// resets every open one.
func (p *Proxy) Down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for c := range conns {
		reset(c)
	}
}

// Up listens again on the same port after Down.
func (p *Proxy) Up() error {
	ln, err := net.Listen("tcp", p.Endpoint)
	if err != nil {
		return fmt.Errorf("proxy up on %s: %w", p.Endpoint, err)
	}
	p.serve(ln)
	return nil
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() { _ = p.srv.Serve(ln) }()
}

func (p *Proxy) track(c net.Conn, s http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch s {
	case http.StateNew:
		if p.ln == nil { // accepted just before Down
			reset(c)
			return
		}
		p.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(p.conns, c)
	}
}

// reset closes c with a TCP RST.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// classify names the S3 operation of r.
func classify(r *http.Request) Op {
	q := r.URL.Query()
	object := strings.Count(strings.Trim(r.URL.Path, "/"), "/") > 0
	switch r.Method {
	case http.MethodHead:
		return OpHead
	case http.MethodGet:
		if object {
			return OpGet
		}
		return OpList
	case http.MethodPut:
		if !object {
			return OpOther
		}
		if q.Has("partNumber") {
			return OpPart
		}
		return OpPut
	case http.MethodPost:
		if q.Has("uploads") || q.Has("uploadId") {
			return OpUpload
		}
	case http.MethodDelete:
		if q.Has("uploadId") {
			return OpUpload
		}
	}
	return OpOther
}

func (p *Proxy) pick(op Op) (Rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[string(op)]++
	for _, r := range p.rules {
		if len(r.Ops) > 0 && !hasOp(r.Ops, op) {
			continue
		}
		if p.rng.Float64() < r.Rate {
			p.counts[string(op)+" "+string(r.Fault)]++
			if r.Fault == Latency {
				r.Delay = time.Duration(p.rng.Float64() * float64(r.Delay))
			}
			return r, true
		}
	}
	return Rule{}, false
}

func (p *Proxy) fraction() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return 0.1 + 0.8*p.rng.Float64()
}

func hasOp(ops []Op, op Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// ServeHTTP applies a fault, or forwards r to the target.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := classify(r)
	rule, hit := p.pick(op)
	if hit {
		switch rule.Fault {
		case Latency:
			time.Sleep(rule.Delay)
		case SlowDown:
			p.answer(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return
		case Incomplete:
			p.answer(w, r, http.StatusBadRequest, "IncompleteBody",
				"You did not provide the number of bytes specified by the Content-Length HTTP header.")
			return
		case ShortBody:
			if r.ContentLength > 0 && (op == OpPut || op == OpPart) {
				p.shortBody(w, r)
				return
			}
		case Corrupt:
			if r.ContentLength > 0 && (op == OpPut || op == OpPart) {
				at := int64(p.fraction() * float64(r.ContentLength))
				p.forward(w, r, &flipReader{r: r.Body, at: at}, -1)
				return
			}
		case Reset:
			if r.ContentLength > 0 && (op == OpPut || op == OpPart) {
				cut := int64(p.fraction() * float64(r.ContentLength))
				p.forward(w, r, &cutReader{r: r.Body, left: cut}, -1) // the server sees a truncated body
				p.hijackReset(w)
				return
			}
			if op != OpGet {
				p.hijackReset(w)
				return
			}
		}
	}
	cut := int64(-1)
	if hit && op == OpGet && (rule.Fault == Reset || rule.Fault == Truncate) {
		cut = 0 // decided once the size is known
	}
	n := p.forward(w, r, r.Body, cut)
	if n >= 0 {
		if rule.Fault == Reset {
			p.hijackReset(w)
		} else {
			p.hijackClose(w)
		}
	}
}

// forward sends r to the target with body and copies the response. With
// cut >= 0 it copies only a part of a GET response body and returns how
// much; otherwise it returns -1. A failed upstream request (a cut request
// body) is answered with nothing: the caller resets the connection.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, body io.Reader, cut int64) int64 {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = "http"
	out.URL.Host = p.target
	out.Host = r.Host
	out.Header.Del("Connection")
	if r.ContentLength == 0 {
		out.Body = nil
	} else {
		out.Body = io.NopCloser(body)
	}
	resp, err := p.up.RoundTrip(out)
	if err != nil {
		if _, ok := body.(*cutReader); !ok {
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		}
		return -1
	}
	defer resp.Body.Close()
	if _, ok := body.(*cutReader); ok {
		return -1
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if cut < 0 || resp.ContentLength <= 0 || resp.StatusCode/100 != 2 {
		_, _ = io.Copy(w, resp.Body)
		return -1
	}
	n, _ := io.CopyN(w, resp.Body, int64(p.fraction()*float64(resp.ContentLength)))
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	return n
}

// answer reads part of r's body and answers an S3 error.
func (p *Proxy) answer(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if r.ContentLength > 0 {
		_, _ = io.CopyN(io.Discard, r.Body, int64(p.fraction()*float64(r.ContentLength)))
	}
	w.Header().Set("Content-Type", "application/xml")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
	}
}

// shortBody sends r upstream with only part of its body on a raw
// connection, half-closes it and relays the server's answer.
func (p *Proxy) shortBody(w http.ResponseWriter, r *http.Request) {
	conn, err := net.Dial("tcp", p.target)
	if err != nil {
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer conn.Close()
	out := r.Clone(r.Context())
	out.URL.Scheme = "http"
	out.URL.Host = p.target
	out.Host = r.Host
	out.Header.Set("Connection", "close")
	cut := int64(p.fraction() * float64(r.ContentLength))
	out.Body = io.NopCloser(io.LimitReader(r.Body, cut))
	_ = out.Write(conn) // fails with "ContentLength=N with Body length M" once the part is written
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), out)
	if err != nil {
		p.hijackReset(w)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Connection", "close") // the rest of the client's body is not read
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *Proxy) hijackReset(w http.ResponseWriter) {
	if c := hijack(w); c != nil {
		reset(c)
	}
}

func (p *Proxy) hijackClose(w http.ResponseWriter) {
	if c := hijack(w); c != nil {
		_ = c.Close()
	}
}

func hijack(w http.ResponseWriter) net.Conn {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return nil
	}
	return c
}

// cutReader returns an error after left bytes.
type cutReader struct {
	r    io.Reader
	left int64
}

var errCut = errors.New("proxy: body cut")

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// flipReader passes r through with the byte at offset at inverted.
type flipReader struct {
	r   io.Reader
	at  int64
	off int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if i := f.at - f.off; i >= 0 && i < int64(n) {
		p[i] ^= 0xff
	}
	f.off += int64(n)
	return n, err
}
