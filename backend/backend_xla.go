//go:build cgo && !noxla

package backend

// Registers the "xla" backend (PJRT plugins loaded with dlopen; needs cgo).
import _ "github.com/gomlx/go-xla/compute/xla"
