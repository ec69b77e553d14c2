package experiment

import (
	"path/filepath"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
	"github.com/heimdall-sdr/trainer/storage/s3"
)

// S3Options maps the store section onto the S3 client's options for bucket.
// Empty credentials fall back to AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
// inside s3.New.
func S3Options(st config.Store, bucket string) s3.Options {
	return s3.Options{
		Endpoint:     st.Endpoint,
		Bucket:       bucket,
		Region:       st.Region,
		UseTLS:       st.UseTLS,
		AccessKey:    st.AccessKey,
		SecretKey:    st.SecretKey,
		CreateBucket: st.CreateBucket,
	}
}

// openS3 opens the recordings bucket of an s3 store.
func openS3(cfg config.Config) (storage.Store, error) {
	return s3.New(S3Options(cfg.Store, cfg.Store.Bucket))
}

// OpenModelStore opens the store that published models go to: the
// store.models_bucket bucket for kind s3, or the directory
// {store.root}/{store.models_bucket} for kind local.
func OpenModelStore(cfg config.Config) (storage.Store, error) {
	if cfg.Store.Kind == "s3" {
		return s3.New(S3Options(cfg.Store, cfg.Store.ModelsBucket))
	}
	return local.New(filepath.Join(cfg.Store.Root, cfg.Store.ModelsBucket))
}
