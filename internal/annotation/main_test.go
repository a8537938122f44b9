package annotation

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig has every kind of field Decode supports and the fields
// MaxValueBytes is sized for.
type testConfig struct {
	RoleARN           string            `json:"roleARN"`
	UseServiceAccount *bool             `json:"useServiceAccount,omitempty"`
	ExternalID        string            `json:"externalID,omitempty"`
	SessionTags       []testTag         `json:"sessionTags,omitempty"`
	SessionPolicy     string            `json:"sessionPolicy,omitempty"`
	PolicyARNs        []string          `json:"policyARNs,omitempty"`
	Delegates         []string          `json:"delegates,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	DurationSeconds   int32             `json:"durationSeconds,omitempty"`
	Transitive        bool              `json:"transitive,omitempty"`
	Source            *testSource       `json:"source,omitempty"`
}

type testTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type testSource struct {
	RoleARN string `json:"roleARN"`
}
