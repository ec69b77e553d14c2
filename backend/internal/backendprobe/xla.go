//go:build cgo && !noxla

package main

import _ "github.com/gomlx/go-xla/compute/xla" // registers "xla" (PJRT plugins; needs cgo)
