//go:build onnx

package main

import _ "github.com/gomlx/compute-onnx" // registers "onnxruntime" and "onnx" (needs cgo and ORT >= 1.26)
