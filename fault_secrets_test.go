package auth_test

import (
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

// secretSweep collects every error a test produced and every secret the
// fakes handed out during it, and checks when the test ends that no error
// holds a secret, nor anything shaped like one.
type secretSweep struct {
	// mu guards errs and secrets, added to by concurrent subtests.
	mu      sync.Mutex
	errs    []string
	secrets []string
}

var secretShapes = []*regexp.Regexp{
	regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`), // a JWT
	regexp.MustCompile(`(AKIA|ASIA)[A-Z0-9]{16}`),                           // an AWS access key ID
	regexp.MustCompile(`ya29\.[A-Za-z0-9_-]{16,}`),                          // a Google access token
}

func newSecretSweep(t *testing.T) *secretSweep {
	s := &secretSweep{}
	t.Cleanup(func() {
		g := NewWithT(t)
		g.Expect(s.errs).NotTo(BeEmpty(), "the sweep saw no error")
		for _, msg := range s.errs {
			for _, shape := range secretShapes {
				g.Expect(shape.FindString(msg)).To(BeEmpty(), "an error holds something shaped like a secret: %s", msg)
			}
			for _, secret := range s.secrets {
				g.Expect(strings.Contains(msg, secret)).To(BeFalse(), "an error holds a secret the fakes issued: %s", msg)
			}
		}
	})
	return s
}

func (s *secretSweep) addErr(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err.Error())
}

func (s *secretSweep) add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, secret := range secrets {
		if secret != "" {
			s.secrets = append(s.secrets, secret)
		}
	}
}

// TestSecretShapesMatchTheFakes checks the sweep's shapes against what the
// fakes issue, so that a leak is caught even of a secret the test never
// saw, such as the credentials of a bad success.
func TestSecretShapesMatchTheFakes(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	issuer, err := fakes.NewIssuer("https://kubernetes.default.svc.cluster.local")
	g.Expect(err).NotTo(HaveOccurred())
	jwt, err := issuer.Sign("my-app", "my-app", []string{"sts.amazonaws.com"}, time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	sts := fakes.StartAWSSTS(fakes.AWSSTSOptions{})
	t.Cleanup(sts.Close)
	iam := fakes.StartGCPIAMCredentials(fakes.GCPIAMCredentialsOptions{})
	t.Cleanup(iam.Close)
	googleToken, _ := iam.IssueToken(targetGSA)

	for _, secret := range []string{jwt, sts.IssueCredentials(sourceRole).AccessKeyID, googleToken} {
		g.Expect(slices.ContainsFunc(secretShapes, func(shape *regexp.Regexp) bool {
			return shape.FindString("error: "+secret+": end") == secret
		})).To(BeTrue(), "no shape matches the whole of a secret the fakes issue")
	}
}
