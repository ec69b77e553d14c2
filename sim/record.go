package sim

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// recordSkip are the options a session's simulation record leaves out:
// they say which sessions a run wrote and how, not what they were drawn
// from.
var recordSkip = map[string]bool{"sessions": true, "seed": true, "workers": true, "prefix": true}

// Record returns the options a session was drawn with, by their simulate.*
// keys, without sessions, seed, workers and prefix: what session.json's
// "simulation" holds, so the world (and the oracle that knows it) can be
// rebuilt from the sessions alone (OptionsFromRecord).
func (o Options) Record() map[string]any {
	v := reflect.ValueOf(o)
	t := v.Type()
	m := make(map[string]any, t.NumField())
	for i := range t.NumField() {
		key := t.Field(i).Tag.Get("mapstructure")
		if key == "" || recordSkip[key] {
			continue
		}
		m[key] = v.Field(i).Interface()
	}
	return m
}

// OptionsFromRecord returns the options of a simulation record (Record's
// JSON): the defaults with the record's keys applied. An unknown key or a
// value of the wrong type is an error naming it.
func OptionsFromRecord(rec json.RawMessage) (Options, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec, &m); err != nil {
		return Options{}, fmt.Errorf("sim: simulation record: %w", err)
	}
	o := DefaultOptions()
	v := reflect.ValueOf(&o).Elem()
	t := v.Type()
	field := map[string]int{}
	for i := range t.NumField() {
		field[t.Field(i).Tag.Get("mapstructure")] = i
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var unknown []string
	for _, k := range keys {
		i, ok := field[k]
		if !ok || recordSkip[k] {
			unknown = append(unknown, k)
			continue
		}
		if err := json.Unmarshal(m[k], v.Field(i).Addr().Interface()); err != nil {
			return Options{}, fmt.Errorf("sim: simulation record: %s: %w", k, err)
		}
	}
	if len(unknown) > 0 {
		return Options{}, fmt.Errorf("sim: simulation record: unknown keys %s (written by a newer simulator?)", strings.Join(unknown, ", "))
	}
	return o, nil
}

// SameWorld reports whether sessions drawn with a and b come from the same
// world (the options a World depends on agree).
func SameWorld(a, b Options) bool { return worldKey(a) == worldKey(b) }

// DescribeWorld names the world of o for reports: "terrain (world_seed 1)".
func DescribeWorld(o Options) string {
	return fmt.Sprintf("%s (world_seed %d)", o.World, o.WorldSeed)
}
