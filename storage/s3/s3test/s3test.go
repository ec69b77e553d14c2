// Package s3test gives tests a real MinIO server: the shared one that
// scripts/with-services.sh starts for `make test` (Shared), or a private
// one the test may kill and restart (Start), both through scripts/minio.sh.
//
// Without the server's environment a test skips with a message saying how
// to run it; with HEIMDALL_REQUIRE_SERVICES=1 (set by make test) it fails.
package s3test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/storage/s3"
)

// Environment variables scripts/minio.sh writes.
const (
	EnvEndpoint  = "HEIMDALL_TEST_S3_ENDPOINT"
	EnvAccessKey = "HEIMDALL_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "HEIMDALL_TEST_S3_SECRET_KEY"
	EnvMinioBin  = "HEIMDALL_TEST_S3_MINIO_BIN"
	EnvRequire   = "HEIMDALL_REQUIRE_SERVICES"
)

// Server is a MinIO server the tests can reach.
type Server struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	state     string // private servers only
}

// Options returns client options for bucket on this server, with a fast
// retry policy so tests of failures stay short.
func (s *Server) Options(bucket string) s3.Options {
	return s3.Options{
		Endpoint:     "http://" + s.Endpoint,
		Bucket:       bucket,
		AccessKey:    s.AccessKey,
		SecretKey:    s.SecretKey,
		CreateBucket: true,
		MaxAttempts:  3,
		RetryBase:    50 * time.Millisecond,
		RetryMax:     200 * time.Millisecond,
	}
}

// Unavailable skips the test, or fails it under HEIMDALL_REQUIRE_SERVICES=1.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("MinIO is required (%s=1) but %s", EnvRequire, why)
	}
	t.Skipf("no MinIO server: %s; run `make test`, or scripts/with-services.sh go test ./...", why)
}

// Shared returns the server of scripts/with-services.sh.
func Shared(t testing.TB) *Server {
	t.Helper()
	s := &Server{Endpoint: os.Getenv(EnvEndpoint), AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey)}
	if s.Endpoint == "" || s.AccessKey == "" || s.SecretKey == "" {
		Unavailable(t, EnvEndpoint+"/"+EnvAccessKey+"/"+EnvSecretKey+" are not set")
	}
	return s
}

// Bucket returns a fresh bucket name for one test.
func Bucket(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.ToLower(t.Name())
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, name)
	if len(name) > 40 {
		name = name[:40]
	}
	return strings.Trim("t-"+name, "-") + "-" + hex.EncodeToString(b[:])
}

// Start starts a private server (killed and its data removed at cleanup).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv(EnvMinioBin)
	if bin == "" {
		Unavailable(t, EnvMinioBin+" is not set (the private server needs the built binary)")
	}
	s := &Server{state: filepath.Join(t.TempDir(), "minio")}
	t.Cleanup(func() { _ = s.script("stop") })
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Kill kills the private server with SIGKILL, as a crash would.
func (s *Server) Kill() error {
	pid, err := s.pid()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill minio %d: %w", pid, err)
	}
	for i := 0; i < 500; i++ { // up to 10 s: a loaded machine reaps slowly
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("minio %d still alive after SIGKILL", pid)
}

// Restart starts the private server again on the same port, credentials
// and data (or the first time).
func (s *Server) Restart() error {
	if s.state == "" {
		return fmt.Errorf("s3test: only a private server restarts")
	}
	if err := s.script("start"); err != nil {
		return err
	}
	env, err := readEnv(filepath.Join(s.state, "env"))
	if err != nil {
		return err
	}
	s.Endpoint, s.AccessKey, s.SecretKey = env[EnvEndpoint], env[EnvAccessKey], env[EnvSecretKey]
	return nil
}

func (s *Server) pid() (int, error) {
	env, err := readEnv(filepath.Join(s.state, "env"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(env["HEIMDALL_TEST_S3_PID"])
}

func (s *Server) script(verb string) error {
	cmd := exec.Command("bash", Script(), verb, s.state)
	cmd.Env = append(os.Environ(), "MINIO_BIN="+os.Getenv(EnvMinioBin))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/minio.sh %s: %w\n%s", verb, err, out)
	}
	return nil
}

// Script is the path of scripts/minio.sh.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "minio.sh")
}

func readEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if ok {
			out[k] = v
		}
	}
	return out, nil
}
