package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/experiment"
	"github.com/heimdall-sdr/trainer/rundir"
)

func newModelsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, download and publish model versions in the models bucket",
		Long: `Published models live in store.models_bucket (default heimdall-models) of the
configured store, as

  models/localization/v{YYYYMMDD_HHMMSS}.onnx   (UTC; object metadata export-date,
                                                model-type, format, file-size, sha256)
  models/localization/v{YYYYMMDD_HHMMSS}.json   (the export's metadata record)

With store.kind local they live under {store.root}/{store.models_bucket}/.`,
	}
	cmd.AddCommand(newModelsListCmd(g), newModelsGetCmd(g), newModelsPublishCmd(g), newModelsPromoteCmd(g))
	return cmd
}

func newModelsListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the published model versions, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			vs, err := experiment.ListModels(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tSIZE\tUPLOADED")
			for _, v := range vs {
				fmt.Fprintf(w, "%s\t%d\t%s\n", v.Version, v.Size, v.ModTime.UTC().Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
}

func newModelsGetCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:     "get VERSION|latest",
		Short:   "Download a model version (.onnx and .json), checking its SHA-256",
		Example: "  heimdall models get latest --out models/\n  heimdall models get v20260101_120000",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			path, err := experiment.DownloadModel(cmd.Context(), cfg, args[0], out)
			if err != nil {
				return err
			}
			fmt.Println(path)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "out", "o", ".", "directory to download into")
	return c
}

func newModelsPublishCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "publish RUN_DIR",
		Short: "Upload RUN_DIR/" + rundir.ModelFile + " and " + rundir.ModelCardFile + " as a new version (never overwrites); tag the run's registered MLflow versions with its key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			p, err := experiment.PublishRun(cmd.Context(), cfg, args[0])
			if err != nil {
				return err
			}
			fmt.Printf("published %s: %s (%d bytes, sha256 %s, verified) and %s in %s\n", p.Version, p.Key, p.Size, p.SHA256, p.MetadataKey, p.Store)
			return nil
		},
	}
}
