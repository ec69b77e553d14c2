package trainer

import (
	"math"

	"github.com/gomlx/gomlx/core/graph"
)

// SigmaFloor is the floor applied to sigma inside the loss (HEIMDALL.md).
const SigmaFloor = 1e-6

// GaussianNLLTerms returns the two per-element terms of the Gaussian
// negative log-likelihood, each averaged over batch x 2:
// mse = mean((y - mu)^2 / (2 sigma^2)) and logTerm = mean(ln sigma), with
// sigma floored at SigmaFloor. All arguments are [batch, 2] in degrees; the
// loss is their sum.
func GaussianNLLTerms(labels, mu, sigma *graph.Node) (mse, logTerm *graph.Node) {
	sigma = graph.MaxScalar(sigma, SigmaFloor)
	diff := graph.Sub(labels, mu)
	mse = graph.ReduceAllMean(graph.Div(graph.Square(diff), graph.MulScalar(graph.Square(sigma), 2)))
	logTerm = graph.ReduceAllMean(graph.Log(sigma))
	return mse, logTerm
}

// GaussianNLL is HEIMDALL.md's loss: per element (y - mu)^2 / (2 sigma^2) +
// ln sigma, sigma floored at 1e-6, mean over batch x 2. Arguments are
// [batch, 2] in degrees; it returns a scalar.
func GaussianNLL(labels, mu, sigma *graph.Node) *graph.Node {
	mse, logTerm := GaussianNLLTerms(labels, mu, sigma)
	return graph.Add(mse, logTerm)
}

// lossFn adapts GaussianNLL to train.LossFn: predictions are
// [positions, uncertainties], labels [positions].
func lossFn(labels, predictions []*graph.Node) *graph.Node {
	return GaussianNLL(labels[0], predictions[0], predictions[1])
}

// GaussianNLLGo is the plain-Go reference of GaussianNLL on flat [n, 2]
// slices (float64 accumulation). It returns loss, mse term and log term.
func GaussianNLLGo(y, mu, sigma []float32) (loss, mse, logTerm float64) {
	if len(y) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	for i := range y {
		s := math.Max(float64(sigma[i]), SigmaFloor)
		d := float64(y[i]) - float64(mu[i])
		mse += d * d / (2 * s * s)
		logTerm += math.Log(s)
	}
	n := float64(len(y))
	mse /= n
	logTerm /= n
	return mse + logTerm, mse, logTerm
}
