package config

import "github.com/heimdall-sdr/trainer/redact"

// Redacted is what a secret is printed, saved and logged as.
const Redacted = redact.Redacted

// RedactURL is redact.URL: s with the user-info of a URL (user:password@)
// replaced by REDACTED@.
func RedactURL(s string) string { return redact.URL(s) }
