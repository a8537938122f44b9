package fakes

import "path/filepath"

// GCPEnv returns the environment that points the Google libraries at m and
// away from anything on the machine, for t.Setenv or os.Setenv. dir is a
// scratch directory the caller owns (t.TempDir()); nothing is created in it.
//
//   - GCE_METADATA_HOST=m.Host: cloud.google.com/go/compute/metadata sends
//     every request there over plain http, and OnGCE answers true without
//     probing 169.254.169.254 (but see Metadata on its process-wide cache).
//   - GOOGLE_APPLICATION_CREDENTIALS="": a key file would win over the
//     metadata server in google.DefaultTokenSource.
//   - HOME and APPDATA=dir: the well-known gcloud credentials file
//     ($HOME/.config/gcloud/application_default_credentials.json) would win
//     too, and the client-certificate config lives next to it.
//   - CLOUDSDK_CONFIG=dir/gcloud: gcloud's own configuration directory,
//     missing and hence empty.
//   - GOOGLE_API_USE_CLIENT_CERTIFICATE=false, GOOGLE_API_USE_MTLS_ENDPOINT=never,
//     EXPERIMENTAL_GOOGLE_API_USE_S2A=false: otherwise google.golang.org/api
//     may switch a client to an mTLS or S2A endpoint the fakes do not serve.
//   - GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED=false: the lookup it enables calls
//     real Google. It must be "false", not empty: the library rejects "".
//   - GOOGLE_CLOUD_UNIVERSE_DOMAIN="" and GOOGLE_CLOUD_QUOTA_PROJECT="": a
//     foreign universe makes clients refuse googleapis.com credentials, and a
//     quota project adds a header the fakes do not expect.
func GCPEnv(dir string, m *GCPMetadata) map[string]string {
	return map[string]string{
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
	}
}
