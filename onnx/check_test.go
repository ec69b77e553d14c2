package onnx

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/heimdall-sdr/trainer/onnx/onnxpb"
)

// smallModel is y = Relu(x * w + b), valid.
func smallModel() *onnxpb.ModelProto {
	b := newGraphBuilder("small")
	b.names["x"] = true
	w := b.initializer("w", []int64{2}, []float32{1, 2})
	bias := b.initializer("b", []int64{2}, []float32{0.5, -0.5})
	h := b.node("Mul", "mul", []string{"x", w})
	h = b.node("Add", "add", []string{h, bias})
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{Name: proto.String("relu"), OpType: proto.String("Relu"), Input: []string{h}, Output: []string{"y"}})
	b.g.Input = []*onnxpb.ValueInfoProto{tensorValueInfo("x", "batch", -1, 2)}
	b.g.Output = []*onnxpb.ValueInfoProto{tensorValueInfo("y", "batch", -1, 2)}
	return &onnxpb.ModelProto{IrVersion: proto.Int64(IRVersion), Graph: b.g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}}}
}

func TestCheckAcceptsValid(t *testing.T) {
	if err := Check(smallModel()); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRejectsBroken(t *testing.T) {
	cases := []struct {
		name   string
		breakf func(m *onnxpb.ModelProto)
		want   string
	}{
		{"undefined input", func(m *onnxpb.ModelProto) { m.Graph.Node[1].Input[1] = "nowhere" }, `node 1 "add" (Add): input "nowhere" is not defined`},
		{"used before defined", func(m *onnxpb.ModelProto) {
			m.Graph.Node[0], m.Graph.Node[1] = m.Graph.Node[1], m.Graph.Node[0]
		}, `input "mul" is not defined before use`},
		{"truncated initializer", func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].RawData = m.Graph.Initializer[0].RawData[:5]
		}, `initializer "w": raw_data has 5 bytes`},
		{"duplicate definition", func(m *onnxpb.ModelProto) { m.Graph.Node[1].Output[0] = "mul" }, `value "mul" is defined twice`},
		{"output not produced", func(m *onnxpb.ModelProto) { m.Graph.Output[0].Name = proto.String("z") }, `graph output "z" is not produced`},
		{"unknown op", func(m *onnxpb.ModelProto) { m.Graph.Node[2].OpType = proto.String("Frobnicate") }, `node 2 "relu" (Frobnicate): unknown operator`},
		{"op newer than opset", func(m *onnxpb.ModelProto) {
			m.OpsetImport[0].Version = proto.Int64(8)
			m.Graph.Node[0].OpType = proto.String("Erf")
		}, "needs opset 9"},
		{"no ir version", func(m *onnxpb.ModelProto) { m.IrVersion = nil }, "ir_version"},
		{"no opset", func(m *onnxpb.ModelProto) { m.OpsetImport = nil }, "opset_import"},
		{"untyped input", func(m *onnxpb.ModelProto) { m.Graph.Input[0].Type = nil }, `graph input "x" has no tensor element type`},
		{"untyped initializer", func(m *onnxpb.ModelProto) { m.Graph.Initializer[1].DataType = nil }, `initializer "b" has no data_type`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := smallModel()
			c.breakf(m)
			err := Check(m)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want error containing %q, got %v", c.want, err)
			}
			t.Log(err)
		})
	}
}

func TestParseRejectsTruncatedFile(t *testing.T) {
	dir, _ := tinyRun(t)
	_ = dir
	b, err := Marshal(smallModel())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseModel(b[:len(b)/2]); err == nil {
		t.Fatal("truncated model accepted")
	}
}
