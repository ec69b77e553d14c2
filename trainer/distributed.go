package trainer

import (
	"fmt"
	"iter"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/core/tensors/dtensor"
	"github.com/gomlx/gomlx/ml/train"
)

// ValidateDevices checks a run.devices value: "" or "1" (one device, the
// default) or "all" (data parallel over every device the backend reports).
func ValidateDevices(devices string) error {
	switch strings.TrimSpace(devices) {
	case "", "1", "all":
		return nil
	}
	return fmt.Errorf("run.devices: must be \"\", \"1\" or \"all\", got %q", devices)
}

// numTrainDevices resolves run.devices against the backend.
func numTrainDevices(backend compute.Backend, devices string) (int, error) {
	if err := ValidateDevices(devices); err != nil {
		return 0, err
	}
	if strings.TrimSpace(devices) != "all" {
		return 1, nil
	}
	n := backend.NumDevices()
	if n < 1 {
		return 0, fmt.Errorf("run.devices: backend %s reports %d devices", backend.Name(), n)
	}
	return n, nil
}

// shardedDataset serves the same global batches as trainDataset, each split
// along the batch axis into one shard per device (device i gets rows
// [i*B/N, (i+1)*B/N)). train.Loop sees a train.DistributedDataset and runs
// Trainer.DistributedTrainStep, which compiles the (global-batch) step
// graph with XLA's automatic sharding (GSPMD): variables are replicated,
// reductions over the batch (loss mean, BatchNorm statistics, gradients)
// are global, so a step equals the single-device step up to float
// summation order.
type shardedDataset struct {
	*trainDataset
	backend compute.Backend
	devices []compute.DeviceNum
	xSpec   *distributed.ShardingSpec
	ySpec   *distributed.ShardingSpec
}

var _ train.DistributedDataset = (*shardedDataset)(nil)

func newShardedDataset(backend compute.Backend, ds *trainDataset, n int) (*shardedDataset, error) {
	if ds.batch%n != 0 {
		return nil, fmt.Errorf("trainer: train.batch_size: %d is not divisible by the %d devices of run.devices all", ds.batch, n)
	}
	mesh, err := distributed.NewDeviceMesh([]int{n}, []string{"batch"})
	if err != nil {
		return nil, fmt.Errorf("trainer: device mesh: %w", err)
	}
	xSpec, err := distributed.BuildSpec(mesh).S("batch").R().R().R().Done()
	if err != nil {
		return nil, fmt.Errorf("trainer: input sharding: %w", err)
	}
	ySpec, err := distributed.BuildSpec(mesh).S("batch").R().Done()
	if err != nil {
		return nil, fmt.Errorf("trainer: label sharding: %w", err)
	}
	devs := make([]compute.DeviceNum, n)
	for i := range devs {
		devs[i] = compute.DeviceNum(i)
	}
	return &shardedDataset{trainDataset: ds, backend: backend, devices: devs, xSpec: xSpec, ySpec: ySpec}, nil
}

func (d *shardedDataset) Name() string { return "heimdall-train-sharded" }

// Strategy implements train.DistributedDataset.
func (d *shardedDataset) Strategy() distributed.Strategy { return distributed.AutoSharding }

// DeviceAssignment implements train.DistributedDataset.
func (d *shardedDataset) DeviceAssignment() []compute.DeviceNum { return d.devices }

// shard splits a host batch into per-device tensors on their devices.
func (d *shardedDataset) shard(b train.Batch) (train.DistributedBatch, error) {
	defer func() { _ = b.Finalize() }()
	n := len(d.devices)
	per := d.batch / n
	sz := sampleSize(d.shape)
	var out train.DistributedBatch
	split := func(t *tensors.Tensor, rowSize int, spec *distributed.ShardingSpec, dims func() []int) (*dtensor.Tensor, error) {
		flat := tensors.MustCopyFlatData[float32](t)
		shards := make([]*tensors.Tensor, n)
		for i := range n {
			shards[i] = tensors.FromFlatDataAndDimensions(flat[i*per*rowSize:(i+1)*per*rowSize], dims()...)
			if err := shards[i].MaterializeOnDevice(d.backend, false, d.devices[i]); err != nil {
				return nil, fmt.Errorf("trainer: shard %d to device %d: %w", i, d.devices[i], err)
			}
		}
		return dtensor.NewTensor(spec, shards)
	}
	x, err := split(b.Inputs[0], sz, d.xSpec, func() []int { return []int{per, d.shape[0], d.shape[1], d.shape[2]} })
	if err != nil {
		return out, err
	}
	y, err := split(b.Labels[0], 2, d.ySpec, func() []int { return []int{per, 2} })
	if err != nil {
		_ = x.FinalizeAll()
		return out, err
	}
	out.Inputs, out.Labels = []*dtensor.Tensor{x}, []*dtensor.Tensor{y}
	return out, nil
}

// DistributedIter implements train.DistributedDataset: the batches of
// trainDataset.Iter (same order, same prefetching), sharded.
func (d *shardedDataset) DistributedIter() iter.Seq2[train.DistributedBatch, error] {
	return func(yield func(train.DistributedBatch, error) bool) {
		for b, err := range d.trainDataset.Iter() {
			if err != nil {
				yield(train.DistributedBatch{}, err)
				return
			}
			db, err := d.shard(b)
			if err != nil {
				yield(train.DistributedBatch{}, err)
				return
			}
			if !yield(db, nil) {
				return
			}
		}
	}
}
