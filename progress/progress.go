// Package progress builds the terminal progress bars of the long jobs
// (simulate, features, training, bench): one look (count, rate, ETA,
// throttled redraws, a newline when done) for all of them.
package progress

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// New returns a bar of total steps written to w, described by desc; unit
// names the steps in the rate ("sessions/s"; "" shows no rate). A nil w
// gives a nil bar: callers check for nil before using it.
func New(w io.Writer, total int64, desc, unit string) *progressbar.ProgressBar {
	if w == nil {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200 * time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	}
	if unit != "" {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit))
	}
	return progressbar.NewOptions64(total, opts...)
}
