package main

import (
	"os"

	"github.com/spf13/cobra"
)

func newConfigCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the resolved configuration (defaults + file + env + --set)",
		Long: `Print the configuration a run would use, after applying the defaults, the
config file, HEIMDALL_* environment variables and --set overrides, with
secrets redacted. Invalid values and unknown keys are reported with their key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			b, err := cfg.YAML()
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(b)
			return err
		},
	}
}
