package tracking

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// RegisteredModel is an MLflow registered model.
type RegisteredModel struct {
	Name    string `json:"name"`
	Tags    []Tag  `json:"tags"`
	Aliases []struct {
		Alias   string `json:"alias"`
		Version string `json:"version"`
	} `json:"aliases"`
}

// ModelVersion is a version of a registered model.
type ModelVersion struct {
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	Source       string   `json:"source"`
	RunID        string   `json:"run_id"`
	CurrentStage string   `json:"current_stage"`
	Status       string   `json:"status"`
	Description  string   `json:"description"`
	Tags         []Tag    `json:"tags"`
	Aliases      []string `json:"aliases"`
}

// Model version stages (deprecated by MLflow in favour of aliases, still served).
const (
	StageStaging    = "Staging"
	StageProduction = "Production"
)

// GetRegisteredModel returns a registered model; a missing one is an
// *APIError with Code CodeNotFound.
func (c *Client) GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error) {
	var out struct {
		Model RegisteredModel `json:"registered_model"`
	}
	if err := c.call(ctx, http.MethodGet, "registered-models/get", map[string]string{"name": name}, &out); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// EnsureRegisteredModel creates the registered model name with tags unless
// it exists.
func (c *Client) EnsureRegisteredModel(ctx context.Context, name, description string, tags []Tag) error {
	_, err := c.GetRegisteredModel(ctx, name)
	if err == nil {
		return nil
	}
	if !IsCode(err, CodeNotFound) {
		return err
	}
	in := map[string]any{"name": name, "tags": tags}
	if description != "" {
		in["description"] = description
	}
	err = c.call(ctx, http.MethodPost, "registered-models/create", in, nil)
	if IsCode(err, CodeAlreadyExists) {
		return nil
	}
	return err
}

// CreateModelVersionRequest is the body of model-versions/create.
type CreateModelVersionRequest struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	RunID       string `json:"run_id,omitempty"`
	Description string `json:"description,omitempty"`
	Tags        []Tag  `json:"tags,omitempty"`
}

// CreateModelVersion registers a new version of a registered model.
func (c *Client) CreateModelVersion(ctx context.Context, r CreateModelVersionRequest) (*ModelVersion, error) {
	var out struct {
		MV ModelVersion `json:"model_version"`
	}
	if err := c.call(ctx, http.MethodPost, "model-versions/create", r, &out); err != nil {
		return nil, err
	}
	return &out.MV, nil
}

// GetModelVersion returns one version of a registered model.
func (c *Client) GetModelVersion(ctx context.Context, name, version string) (*ModelVersion, error) {
	var out struct {
		MV ModelVersion `json:"model_version"`
	}
	if err := c.call(ctx, http.MethodGet, "model-versions/get", map[string]string{"name": name, "version": version}, &out); err != nil {
		return nil, err
	}
	return &out.MV, nil
}

// SearchModelVersions returns the versions of the registered model name
// that the run runID created (runID "" = all versions).
func (c *Client) SearchModelVersions(ctx context.Context, name, runID string) ([]ModelVersion, error) {
	filter := fmt.Sprintf("name='%s'", strings.ReplaceAll(name, "'", `\'`))
	if runID != "" {
		filter += fmt.Sprintf(" and run_id='%s'", runID)
	}
	var all []ModelVersion
	token := ""
	for {
		in := map[string]any{"filter": filter, "max_results": 1000}
		if token != "" {
			in["page_token"] = token
		}
		var out struct {
			MVs  []ModelVersion `json:"model_versions"`
			Next string         `json:"next_page_token"`
		}
		if err := c.call(ctx, http.MethodGet, "model-versions/search", in, &out); err != nil {
			return nil, err
		}
		all = append(all, out.MVs...)
		if out.Next == "" {
			return all, nil
		}
		token = out.Next
	}
}

// TransitionStage moves a model version to stage (Staging, Production,
// Archived, None); archiveExisting archives the versions already in it.
func (c *Client) TransitionStage(ctx context.Context, name, version, stage string, archiveExisting bool) (*ModelVersion, error) {
	var out struct {
		MV ModelVersion `json:"model_version"`
	}
	in := map[string]any{"name": name, "version": version, "stage": stage, "archive_existing_versions": archiveExisting}
	if err := c.call(ctx, http.MethodPost, "model-versions/transition-stage", in, &out); err != nil {
		return nil, err
	}
	return &out.MV, nil
}

// SetAlias points alias of the registered model name at version.
func (c *Client) SetAlias(ctx context.Context, name, alias, version string) error {
	return c.call(ctx, http.MethodPost, "registered-models/alias", map[string]string{"name": name, "alias": alias, "version": version}, nil)
}

// ModelVersionByAlias returns the version alias points at.
func (c *Client) ModelVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error) {
	var out struct {
		MV ModelVersion `json:"model_version"`
	}
	if err := c.call(ctx, http.MethodGet, "registered-models/alias", map[string]string{"name": name, "alias": alias}, &out); err != nil {
		return nil, err
	}
	return &out.MV, nil
}

// SetModelVersionTag sets a tag on a model version.
func (c *Client) SetModelVersionTag(ctx context.Context, name, version, key, value string) error {
	return c.call(ctx, http.MethodPost, "model-versions/set-tag", map[string]string{"name": name, "version": version, "key": key, "value": value}, nil)
}

// Promote moves version of the registered model name to stage, archiving
// the versions already there, and points alias at it (alias "" = the
// stage's name in lower case, e.g. "production"). It returns the version
// as the server then reports it.
func Promote(ctx context.Context, c *Client, name, version, stage, alias string) (*ModelVersion, error) {
	if name == "" || version == "" || stage == "" {
		return nil, fmt.Errorf("mlflow: promote: model name, version and stage are required (got %q, %q, %q)", name, version, stage)
	}
	if alias == "" {
		alias = strings.ToLower(stage)
	}
	if _, err := c.GetModelVersion(ctx, name, version); err != nil {
		return nil, fmt.Errorf("mlflow: promote %s version %s: %w", name, version, err)
	}
	if _, err := c.TransitionStage(ctx, name, version, stage, true); err != nil {
		return nil, fmt.Errorf("mlflow: promote %s version %s to %s: %w", name, version, stage, err)
	}
	if err := c.SetAlias(ctx, name, alias, version); err != nil {
		return nil, fmt.Errorf("mlflow: promote %s version %s: alias %s: %w", name, version, alias, err)
	}
	return c.GetModelVersion(ctx, name, version)
}
