// Package configs embeds the shipped experiment configurations, so the
// binary runs with configs/default.yaml when no --config file is given.
package configs

import "embed"

// FS holds default.yaml, smoke.yaml and gpu.yaml.
//
//go:embed *.yaml
var FS embed.FS
