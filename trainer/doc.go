// Package trainer holds LocalizationNet (the GoMLX model function), its
// Gaussian negative log-likelihood loss, the evaluation metrics (degrees,
// kilometres, calibration) and the training run: GoMLX train.Trainer and
// train.Loop with hooks for evaluation, early stopping, checkpoints,
// metrics.jsonl, progress and plots; data feeding (batches, prefetch), the
// data-parallel step over several devices (run.devices: all), and
// inference with a saved run (LoadModel, Predict).
//
// Inputs are float32 log-mel spectrograms shaped [batch, receivers, n_mels,
// frames]; outputs are positions [batch, 2] (lat, lon degrees) and
// uncertainties [batch, 2] (sigma in degrees, clamped to [0.01, 1.0]).
//
// Entry points: Train runs (or resumes) a training run in a run directory
// on a compute.Backend it is given; LoadModel and Predict run inference
// with the weights a run saved. Which backend, and where its plugin is,
// is not decided here: package backend opens it (backend.Open), and the
// GPU device check is package devicecheck.
// Graph-building functions panic on shape errors (GoMLX style); everything
// else returns errors.
package trainer
