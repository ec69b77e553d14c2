package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

// writeFileAtomic writes data to path via a temporary file in the same
// directory, fsync and rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("onnx: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("onnx: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("onnx: write %s: %w", path, err)
	}
	return nil
}
