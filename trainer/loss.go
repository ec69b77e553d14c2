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

// BetaNLL is the beta-NLL training objective (Seitzer et al., ICLR 2022,
// "On the pitfalls of heteroscedastic uncertainty estimation"): the
// per-element Gaussian NLL weighted by stop_gradient(sigma^(2 beta)), mean
// over batch x 2. beta 0 is GaussianNLL; beta 1 gives the mean the gradient
// of (y - mu)^2 / 2 (no 1/sigma^2 down-weighting of hard samples), while
// sigma still gets an NLL-shaped gradient. Its value is not the NLL; the
// trainer logs and selects on GaussianNLL.
func BetaNLL(labels, mu, sigma *graph.Node, beta float64) *graph.Node {
	if beta == 0 {
		return GaussianNLL(labels, mu, sigma)
	}
	s := graph.MaxScalar(sigma, SigmaFloor)
	diff := graph.Sub(labels, mu)
	nll := graph.Add(graph.Div(graph.Square(diff), graph.MulScalar(graph.Square(s), 2)), graph.Log(s))
	w := graph.StopGradient(graph.Pow(s, graph.Scalar(s.Graph(), s.DType(), 2*beta)))
	return graph.ReduceAllMean(graph.Mul(w, nll))
}

// newLossFn returns the train.LossFn for tcfg (predictions are [positions,
// uncertainties], labels [positions]): GaussianNLL, or BetaNLL when
// train.beta_nll > 0.
func newLossFn(tcfg TrainConfig) func(labels, predictions []*graph.Node) *graph.Node {
	return func(labels, predictions []*graph.Node) *graph.Node {
		return BetaNLL(labels[0], predictions[0], predictions[1], tcfg.BetaNLL)
	}
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
