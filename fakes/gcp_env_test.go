package fakes_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

func TestGCPEnv(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)

	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	m := gcpStartMetadata(t, iam)
	dir := t.TempDir()

	g.Expect(fakes.GCPEnv(dir, m)).To(Equal(map[string]string{
		"GCE_METADATA_HOST":                  m.Host,
		"GOOGLE_APPLICATION_CREDENTIALS":     "",
		"HOME":                               dir,
		"APPDATA":                            dir,
		"CLOUDSDK_CONFIG":                    filepath.Join(dir, "gcloud"),
		"GOOGLE_API_USE_CLIENT_CERTIFICATE":  "false",
		"GOOGLE_API_USE_MTLS_ENDPOINT":       "never",
		"EXPERIMENTAL_GOOGLE_API_USE_S2A":    "false",
		"GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED": "false",
		"GOOGLE_CLOUD_UNIVERSE_DOMAIN":       "",
		"GOOGLE_CLOUD_QUOTA_PROJECT":         "",
	}))
	g.Expect("http://" + m.Host).To(Equal(m.URL))
}

// TestGCPImplementation_DefaultTokenSourceGuards proves a test cannot reach
// credentials of the machine it runs on through GCPImplementation.
func TestGCPImplementation_DefaultTokenSourceGuards(t *testing.T) {
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	m := gcpStartMetadata(t, iam)
	impl := fakes.NewGCPImplementation(nil, iam)

	// A HOME with gcloud application default credentials, like a
	// developer's laptop.
	home := t.TempDir()
	adc := filepath.Join(home, ".config", "gcloud", "application_default_credentials.json")
	if err := os.MkdirAll(filepath.Dir(adc), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adc, []byte(`{"type":"authorized_user"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{
			name:    "no GCE_METADATA_HOST",
			env:     map[string]string{"GCE_METADATA_HOST": "", "GOOGLE_APPLICATION_CREDENTIALS": "", "HOME": t.TempDir()},
			wantErr: "failed to find the fake metadata server: GCE_METADATA_HOST is not set. apply fakes.GCPEnv first",
		},
		{
			name:    "credentials file in GOOGLE_APPLICATION_CREDENTIALS",
			env:     map[string]string{"GCE_METADATA_HOST": m.Host, "GOOGLE_APPLICATION_CREDENTIALS": adc, "HOME": t.TempDir()},
			wantErr: "refusing to use credentials file '" + adc + "' from GOOGLE_APPLICATION_CREDENTIALS: apply fakes.GCPEnv first",
		},
		{
			name:    "gcloud credentials in HOME",
			env:     map[string]string{"GCE_METADATA_HOST": m.Host, "GOOGLE_APPLICATION_CREDENTIALS": "", "HOME": home},
			wantErr: "refusing to use gcloud credentials file '" + adc + "': apply fakes.GCPEnv first",
		},
		{
			name: "GCPEnv",
			env:  fakes.GCPEnv(t.TempDir(), m),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			ts, err := impl.DefaultTokenSource(context.Background(), gcpScopeCloudPlatform)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			tok, err := ts.Token()
			g.Expect(err).NotTo(HaveOccurred())
			who, _ := iam.WhoAmI(tok.AccessToken)
			g.Expect(who).To(Equal(gcpTestControllerSA))
		})
	}
}
