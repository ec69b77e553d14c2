package onnx

import (
	"errors"
	"fmt"

	"github.com/heimdall-sdr/trainer/onnx/onnxpb"
)

// opsetSince maps the ai.onnx operators the checker knows to the opset that
// introduced them (all exist in opset 14 and later).
var opsetSince = map[string]int64{
	"Abs": 1, "Add": 1, "And": 1, "ArgMax": 1, "ArgMin": 1, "AveragePool": 1, "BatchNormalization": 1,
	"Cast": 1, "Ceil": 1, "Clip": 1, "Concat": 1, "Constant": 1, "ConstantOfShape": 9, "Conv": 1,
	"ConvTranspose": 1, "Cos": 7, "CumSum": 11, "DepthToSpace": 1, "Div": 1, "Dropout": 1, "Einsum": 12,
	"Elu": 1, "Equal": 1, "Erf": 9, "Exp": 1, "Expand": 8, "Flatten": 1, "Floor": 1, "Gather": 1,
	"GatherElements": 11, "GatherND": 11, "Gemm": 1, "GlobalAveragePool": 1, "GlobalMaxPool": 1,
	"Greater": 1, "HardSigmoid": 1, "Identity": 1, "InstanceNormalization": 1, "LeakyRelu": 1, "Less": 1,
	"Log": 1, "LogSoftmax": 1, "LRN": 1, "MatMul": 1, "Max": 1, "MaxPool": 1, "Mean": 1, "Min": 1,
	"Mod": 10, "Mul": 1, "Neg": 1, "Not": 1, "Or": 1, "Pad": 1, "Pow": 1, "PRelu": 1, "Range": 11,
	"Reciprocal": 1, "ReduceL2": 1, "ReduceMax": 1, "ReduceMean": 1, "ReduceMin": 1, "ReduceProd": 1,
	"ReduceSum": 1, "Relu": 1, "Reshape": 1, "Resize": 10, "Round": 11, "Selu": 1, "Shape": 1,
	"Sigmoid": 1, "Sign": 9, "Sin": 7, "Size": 1, "Slice": 1, "Softmax": 1, "Softplus": 1, "Softsign": 1,
	"SpaceToDepth": 1, "Split": 1, "Sqrt": 1, "Squeeze": 1, "Sub": 1, "Sum": 1, "Tanh": 1, "Tile": 1,
	"TopK": 1, "Transpose": 1, "Trilu": 14, "Unsqueeze": 1, "Where": 9, "Xor": 1,
}

// elemSize is the byte size of the fixed-size tensor element types.
var elemSize = map[onnxpb.TensorProto_DataType]int{
	onnxpb.TensorProto_FLOAT: 4, onnxpb.TensorProto_UINT8: 1, onnxpb.TensorProto_INT8: 1,
	onnxpb.TensorProto_UINT16: 2, onnxpb.TensorProto_INT16: 2, onnxpb.TensorProto_INT32: 4,
	onnxpb.TensorProto_INT64: 8, onnxpb.TensorProto_BOOL: 1, onnxpb.TensorProto_FLOAT16: 2,
	onnxpb.TensorProto_DOUBLE: 8, onnxpb.TensorProto_UINT32: 4, onnxpb.TensorProto_UINT64: 8,
	onnxpb.TensorProto_BFLOAT16: 2,
}

// Check is the structural checker run on every export. It verifies: the IR
// version and the default-domain opset are set; every value is defined
// exactly once (graph input, initializer or node output) and before it is
// used (nodes in topological order); the graph outputs are produced;
// initializer data sizes match their dims; inputs, outputs and initializers
// have their types set; node op types are known ai.onnx operators available
// at the model's opset. Errors name the node or value.
func Check(mp *onnxpb.ModelProto) error {
	if mp == nil {
		return errors.New("onnx: check: nil model")
	}
	if mp.GetIrVersion() <= 0 {
		return errors.New("onnx: check: ir_version is not set")
	}
	var opset int64
	for _, o := range mp.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			opset = o.GetVersion()
		}
	}
	if opset <= 0 {
		return errors.New("onnx: check: no opset_import for the default (ai.onnx) domain")
	}
	g := mp.GetGraph()
	if g == nil {
		return errors.New("onnx: check: model has no graph")
	}
	if len(g.GetOutput()) == 0 {
		return errors.New("onnx: check: graph has no outputs")
	}
	defined := map[string]string{} // value -> what defined it.
	define := func(name, by string) error {
		if name == "" {
			return fmt.Errorf("onnx: check: %s defines a value with an empty name", by)
		}
		if prev, ok := defined[name]; ok {
			return fmt.Errorf("onnx: check: value %q is defined twice: by %s and by %s", name, prev, by)
		}
		defined[name] = by
		return nil
	}
	for _, in := range g.GetInput() {
		if err := checkValueInfo(in, "graph input"); err != nil {
			return err
		}
		if err := define(in.GetName(), "graph input"); err != nil {
			return err
		}
	}
	for _, t := range g.GetInitializer() {
		if err := checkTensor(t); err != nil {
			return err
		}
		if _, isInput := defined[t.GetName()]; isInput && defined[t.GetName()] == "graph input" {
			continue // an initializer may provide a graph input's default.
		}
		if err := define(t.GetName(), "initializer"); err != nil {
			return err
		}
	}
	for i, n := range g.GetNode() {
		label := fmt.Sprintf("node %d %q (%s)", i, n.GetName(), n.GetOpType())
		if n.GetOpType() == "" {
			return fmt.Errorf("onnx: check: %s has no op_type", label)
		}
		if d := n.GetDomain(); d == "" || d == "ai.onnx" {
			since, ok := opsetSince[n.GetOpType()]
			if !ok {
				return fmt.Errorf("onnx: check: %s: unknown operator %q for the ai.onnx domain", label, n.GetOpType())
			}
			if since > opset {
				return fmt.Errorf("onnx: check: %s: operator %s needs opset %d, model imports %d", label, n.GetOpType(), since, opset)
			}
		}
		for _, a := range n.GetAttribute() {
			if a.GetName() == "" || a.GetType() == 0 {
				return fmt.Errorf("onnx: check: %s: attribute %q has no name or type", label, a.GetName())
			}
		}
		for _, in := range n.GetInput() {
			if in == "" {
				continue // optional input left out.
			}
			if _, ok := defined[in]; !ok {
				return fmt.Errorf("onnx: check: %s: input %q is not defined before use (not a graph input, initializer or earlier node output)", label, in)
			}
		}
		if len(n.GetOutput()) == 0 {
			return fmt.Errorf("onnx: check: %s has no outputs", label)
		}
		for _, out := range n.GetOutput() {
			if out == "" {
				continue
			}
			if err := define(out, label); err != nil {
				return err
			}
		}
	}
	for _, out := range g.GetOutput() {
		if err := checkValueInfo(out, "graph output"); err != nil {
			return err
		}
		if _, ok := defined[out.GetName()]; !ok {
			return fmt.Errorf("onnx: check: graph output %q is not produced by any node", out.GetName())
		}
	}
	return nil
}

func checkValueInfo(v *onnxpb.ValueInfoProto, what string) error {
	t := v.GetType().GetTensorType()
	if t == nil || t.GetElemType() == 0 {
		return fmt.Errorf("onnx: check: %s %q has no tensor element type", what, v.GetName())
	}
	if t.GetShape() == nil {
		return fmt.Errorf("onnx: check: %s %q has no shape", what, v.GetName())
	}
	for i, d := range t.GetShape().GetDim() {
		if d.GetDimParam() == "" && d.GetDimValue() <= 0 {
			return fmt.Errorf("onnx: check: %s %q: dimension %d is neither a positive size nor a named dimension", what, v.GetName(), i)
		}
	}
	return nil
}

func checkTensor(t *onnxpb.TensorProto) error {
	name := t.GetName()
	dt := onnxpb.TensorProto_DataType(t.GetDataType())
	if dt == onnxpb.TensorProto_UNDEFINED {
		return fmt.Errorf("onnx: check: initializer %q has no data_type", name)
	}
	n := 1
	for _, d := range t.GetDims() {
		if d < 0 {
			return fmt.Errorf("onnx: check: initializer %q has a negative dimension %v", name, t.GetDims())
		}
		n *= int(d)
	}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil // sizes live elsewhere.
	}
	if raw := t.GetRawData(); raw != nil {
		size, ok := elemSize[dt]
		if !ok {
			return fmt.Errorf("onnx: check: initializer %q: raw_data for element type %s", name, dt)
		}
		if len(raw) != n*size {
			return fmt.Errorf("onnx: check: initializer %q: raw_data has %d bytes, dims %v of %s need %d", name, len(raw), t.GetDims(), dt, n*size)
		}
		return nil
	}
	var got int
	switch dt {
	case onnxpb.TensorProto_FLOAT:
		got = len(t.GetFloatData())
	case onnxpb.TensorProto_DOUBLE:
		got = len(t.GetDoubleData())
	case onnxpb.TensorProto_INT64:
		got = len(t.GetInt64Data())
	case onnxpb.TensorProto_UINT64, onnxpb.TensorProto_UINT32:
		got = len(t.GetUint64Data())
	case onnxpb.TensorProto_STRING:
		got = len(t.GetStringData())
	default:
		got = len(t.GetInt32Data())
	}
	if got != n {
		return fmt.Errorf("onnx: check: initializer %q holds %d values, dims %v need %d", name, got, t.GetDims(), n)
	}
	return nil
}
