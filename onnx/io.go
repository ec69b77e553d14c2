package onnx

import (
	"errors"
	"fmt"
	"github.com/heimdall-sdr/trainer/storage/local"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/heimdall-sdr/trainer/onnx/onnxpb"
)

// ParseModel decodes a serialized model and runs Check on it.
func ParseModel(data []byte) (*onnxpb.ModelProto, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("onnx: %w: empty data", errNotModel)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("onnx: %w (corrupt or truncated protobuf: %v)", errNotModel, err)
	}
	if mp.GetGraph() == nil {
		return nil, fmt.Errorf("onnx: %w: no graph", errNotModel)
	}
	if err := Check(mp); err != nil {
		return nil, err
	}
	return mp, nil
}

// ReadModel reads, decodes and checks the .onnx file at path.
func ReadModel(path string) (*onnxpb.ModelProto, []byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("onnx: model file %s does not exist", path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: read model: %w", err)
	}
	mp, err := ParseModel(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return mp, data, nil
}

// Marshal serializes a model deterministically.
func Marshal(mp *onnxpb.ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("onnx: serialize model: %w", err)
	}
	return b, nil
}

// writeFileAtomic writes data to path atomically (local.WriteFile).
func writeFileAtomic(path string, data []byte) error {
	if err := local.WriteFile(path, data); err != nil {
		return fmt.Errorf("onnx: %w", err)
	}
	return nil
}
