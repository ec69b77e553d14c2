package experiment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
)

// ModelPrefix is where published models live in the models bucket.
const ModelPrefix = "models/localization/"

// Published describes one published model version.
type Published struct {
	Version     string    `json:"version"`      // v{YYYYMMDD_HHMMSS}, UTC
	Key         string    `json:"key"`          // models/localization/{version}.onnx
	MetadataKey string    `json:"metadata_key"` // models/localization/{version}.json
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	Time        time.Time `json:"time"`
	Store       string    `json:"store"`
}

// Publish uploads RUN_DIR/model.onnx to the models store (store.models_bucket)
// as models/localization/v{YYYYMMDD_HHMMSS}.onnx (UTC) with object metadata
// export-date, model-type=localization-net, format=onnx, file-size and
// sha256, re-downloads it to verify the SHA-256, then uploads
// the run's model card, extended with the object's key, size, SHA-256 and
// publish time, beside it as {version}.json. Neither object ever overwrites
// an existing version; the bucket is created if missing (store.create_bucket).
func Publish(ctx context.Context, cfg config.Config, runDir string) (Published, error) {
	return publishAt(ctx, cfg, runDir, time.Now().UTC())
}

func publishAt(ctx context.Context, cfg config.Config, runDir string, now time.Time) (Published, error) {
	modelPath := rundir.Path(runDir, rundir.ModelFile)
	if _, err := os.Stat(modelPath); err != nil {
		return Published{}, fmt.Errorf("publish: %w (export the run's model first)", err)
	}
	card, err := rundir.ReadModelCard(runDir)
	if err != nil {
		return Published{}, fmt.Errorf("publish: %w (the export writes the model card beside the model)", err)
	}
	st, err := OpenModelStore(cfg)
	if err != nil {
		return Published{}, err
	}
	version := "v" + now.Format("20060102_150405")
	p := Published{Version: version, Key: ModelPrefix + version + ".onnx", MetadataKey: ModelPrefix + version + ".json", Time: now, Store: st.String()}
	exportDate := card.ExportDate
	if exportDate == "" {
		exportDate = now.Format(time.RFC3339)
	}
	sum, err := storage.PutVerified(ctx, st, p.Key, modelPath, map[string]string{
		"export-date": exportDate,
		"model-type":  "localization-net",
		"format":      "onnx",
	})
	if err != nil {
		return Published{}, fmt.Errorf("publish %s to %s: %w", modelPath, st, err)
	}
	oi, err := st.Stat(ctx, p.Key)
	if err != nil {
		return Published{}, fmt.Errorf("publish: %w", err)
	}
	p.SHA256, p.Size = sum, oi.Size
	card.SHA256 = sum
	meta := publishedCard{ModelCard: card, ObjectKey: p.Key, Size: p.Size, PublishedAt: now.Format(time.RFC3339)}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return Published{}, fmt.Errorf("publish: %w", err)
	}
	mb = append(mb, '\n')
	err = st.Put(ctx, p.MetadataKey, strings.NewReader(string(mb)), int64(len(mb)),
		storage.PutOptions{ContentType: "application/json", NoOverwrite: true})
	if err != nil {
		return Published{}, fmt.Errorf("publish metadata to %s: %w", st, err)
	}
	return p, nil
}

// publishedCard is the model card as published beside the model: with the
// object's key, size and publish time (and its SHA-256 in the card).
type publishedCard struct {
	*rundir.ModelCard
	ObjectKey   string `json:"object_key"`
	Size        int64  `json:"size"`
	PublishedAt string `json:"published_at"`
}

// ModelVersion is one listed model.
type ModelVersion struct {
	Version string
	Key     string
	Size    int64
	ModTime time.Time
}

// ListModels lists the published versions, oldest first.
func ListModels(ctx context.Context, cfg config.Config) ([]ModelVersion, error) {
	st, err := OpenModelStore(cfg)
	if err != nil {
		return nil, err
	}
	objs, err := st.List(ctx, ModelPrefix+"v")
	if err != nil {
		return nil, fmt.Errorf("list models in %s: %w", st, err)
	}
	var out []ModelVersion
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, ModelPrefix)
		if strings.Contains(name, "/") || !strings.HasSuffix(name, ".onnx") {
			continue
		}
		out = append(out, ModelVersion{Version: strings.TrimSuffix(name, ".onnx"), Key: o.Key, Size: o.Size, ModTime: o.ModTime})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// DownloadModel downloads version ("latest" = the newest) into dir as
// {version}.onnx and {version}.json, writing each file atomically and
// checking the model's SHA-256 and size against its object metadata.
func DownloadModel(ctx context.Context, cfg config.Config, version, dir string) (string, error) {
	st, err := OpenModelStore(cfg)
	if err != nil {
		return "", err
	}
	if version == "latest" {
		vs, err := ListModels(ctx, cfg)
		if err != nil {
			return "", err
		}
		if len(vs) == 0 {
			return "", fmt.Errorf("no models under %s in %s", ModelPrefix, st)
		}
		version = vs[len(vs)-1].Version
	}
	key := ModelPrefix + version + ".onnx"
	oi, err := st.Stat(ctx, key)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", version, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, version+".onnx")
	sum, n, err := download(ctx, st, key, dst)
	if err != nil {
		return "", err
	}
	if want := oi.Metadata["sha256"]; want != "" && want != sum {
		os.Remove(dst)
		return "", fmt.Errorf("model %s: downloaded sha256 %s, published %s", version, sum, want)
	}
	if want := oi.Metadata["file-size"]; want != "" && want != strconv.FormatInt(n, 10) {
		os.Remove(dst)
		return "", fmt.Errorf("model %s: downloaded %d bytes, published %s", version, n, want)
	}
	if _, _, err := download(ctx, st, ModelPrefix+version+".json", filepath.Join(dir, version+".json")); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	return dst, nil
}

// download copies an object to path atomically and returns its SHA-256.
func download(ctx context.Context, st storage.Store, key, path string) (string, int64, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := local.WriteFrom(path, io.TeeReader(rc, h))
	if err != nil {
		return "", n, fmt.Errorf("download %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
