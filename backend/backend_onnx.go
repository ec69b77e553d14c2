//go:build onnx

package backend

// Registers the "onnx"/"onnxruntime" backend (ONNX Runtime >= 1.26 loaded with
// dlopen from $ONNXRUNTIME_SHARED_LIBRARY_PATH; needs cgo).
import _ "github.com/gomlx/compute-onnx"
