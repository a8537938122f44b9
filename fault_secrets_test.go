package auth_test

import (
	"regexp"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
)

// secretSweep collects every error a test produced and every secret the
// fakes handed out during it, and checks when the test ends that no error
// holds a secret, nor anything shaped like one.
type secretSweep struct {
	// mu guards errs and secrets, added to by parallel subtests.
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
