package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/heimdall-sdr/trainer/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// graphBuilder accumulates nodes and initializers of one ONNX graph with
// unique value names.
type graphBuilder struct {
	g     *onnxpb.GraphProto
	names map[string]bool
}

func newGraphBuilder(name string) *graphBuilder {
	return &graphBuilder{g: &onnxpb.GraphProto{Name: proto.String(name)}, names: map[string]bool{}}
}

// unique returns name, or name_N when it is taken, and reserves it.
func (b *graphBuilder) unique(name string) string {
	n := name
	for i := 1; b.names[n]; i++ {
		n = fmt.Sprintf("%s_%d", name, i)
	}
	b.names[n] = true
	return n
}

// initializer adds a float32 constant tensor (little-endian raw data).
func (b *graphBuilder) initializer(name string, dims []int64, data []float32) string {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	if n != len(data) {
		panic(fmt.Errorf("onnx: initializer %s: %d values for dims %v", name, len(data), dims))
	}
	name = b.unique(name)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{
		Name:     proto.String(name),
		Dims:     dims,
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
		RawData:  raw,
	})
	return name
}

// int64Initializer adds a 1-D int64 constant tensor (e.g. a Reshape target
// shape).
func (b *graphBuilder) int64Initializer(name string, data ...int64) string {
	name = b.unique(name)
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{
		Name:     proto.String(name),
		Dims:     []int64{int64(len(data))},
		DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
		RawData:  raw,
	})
	return name
}

// node adds one node with a single output named after out and returns the
// output's name.
func (b *graphBuilder) node(op, out string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out = b.unique(out)
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{
		Name:      proto.String(out),
		OpType:    proto.String(op),
		Input:     inputs,
		Output:    []string{out},
		Attribute: attrs,
	})
	return out
}

func attrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// tensorValueInfo describes a float32 tensor; a dim <= 0 is the symbolic
// dimension dynName.
func tensorValueInfo(name, dynName string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		if d <= 0 {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: dynName}
		} else {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    shape,
		}}},
	}
}
