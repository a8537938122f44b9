package gcp

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/internal/provider"
	"github.com/identitychain/auth/internal/quote"
)

// The range of the lifetime field: generateAccessToken grants 1s to 1h,
// and up to 12h where the organization policy
// constraints/iam.allowServiceAccountCredentialLifetimeExtension lists the
// service account.
const (
	MinLifetime = time.Second
	MaxLifetime = 12 * time.Hour
	// DefaultLifetime is the lifetime asked for when the annotation sets
	// none, and the longest granted without the organization policy.
	DefaultLifetime = time.Hour
)

// maxDelegates bounds the delegation chain of one annotation.
const maxDelegates = 10

// lifetimeConstraint is the organization policy a lifetime above 1h needs.
const lifetimeConstraint = "constraints/iam.allowServiceAccountCredentialLifetimeExtension"

// impersonateParams are the optional generateAccessToken parameters of an
// annotation, validated and in the form they are sent.
type impersonateParams struct {
	delegates []string // emails, from the source's end of the chain
	lifetime  time.Duration
	scopes    []string // nil: the caller's, or DefaultScopes
}

// params validates the optional fields of conf and returns them as sent.
// Its errors name the field, the limit and the fix.
func (conf *ImpersonateConfig) params() (*impersonateParams, error) {
	p := impersonateParams{lifetime: DefaultLifetime}
	if conf.Delegates != nil {
		if err := checkDelegates(conf.Delegates, conf.GCPServiceAccount); err != nil {
			return nil, err
		}
		p.delegates = conf.Delegates
	}
	if conf.Lifetime != nil {
		d, err := parseLifetime(*conf.Lifetime)
		if err != nil {
			return nil, err
		}
		p.lifetime = d
	}
	if conf.Scopes != nil {
		if err := checkScopes(conf.Scopes); err != nil {
			return nil, err
		}
		p.scopes = conf.Scopes
	}
	if conf.Delegates == nil && conf.Lifetime == nil && conf.Scopes == nil {
		return nil, nil
	}
	return &p, nil
}

func checkDelegates(delegates []string, target string) error {
	switch {
	case len(delegates) == 0:
		return fmt.Errorf("delegates is empty: list the service accounts between the source and " +
			"gcpServiceAccount, or remove the field")
	case len(delegates) > maxDelegates:
		return fmt.Errorf("delegates has %d service accounts: at most %d", len(delegates), maxDelegates)
	}
	for i, d := range delegates {
		if err := ValidateServiceAccountEmail(d); err != nil {
			return fmt.Errorf("delegates[%d] %w", i, err)
		}
		switch {
		case slices.Contains(delegates[:i], d):
			return fmt.Errorf("delegates lists %s twice: a chain passes each service account once", quote.Tenant(d))
		case d == target:
			return fmt.Errorf("delegates lists the target %s: the chain ends at gcpServiceAccount, "+
				"so remove it from delegates", quote.Tenant(d))
		}
	}
	return nil
}

// parseLifetime reads the lifetime field: a duration with a unit, a whole
// number of seconds from MinLifetime to MaxLifetime.
func parseLifetime(text string) (time.Duration, error) {
	d, err := provider.ParseDuration("lifetime", text, "30m", "generateAccessToken")
	switch {
	case err != nil:
		return 0, err
	case d < MinLifetime:
		return 0, fmt.Errorf("lifetime %s is below 1s: set lifetime between 1s and 12h", quote.Tenant(text))
	case d > MaxLifetime:
		return 0, fmt.Errorf("lifetime %s is above 12h, the longest generateAccessToken grants: set lifetime "+
			"between 1s and 12h (above 1h only where the organization policy %s lists the service account)",
			quote.Tenant(text), lifetimeConstraint)
	}
	return d, nil
}

func checkScopes(scopes []string) error {
	if len(scopes) == 0 {
		return fmt.Errorf("scopes is empty: list OAuth scopes such as %s, or remove the field to use the "+
			"controller's", DefaultScopes[0])
	}
	for i, s := range scopes {
		switch {
		case s == "":
			return fmt.Errorf("scopes[%d] is empty: list OAuth scopes such as %s", i, DefaultScopes[0])
		case strings.ContainsFunc(s, unicode.IsSpace):
			return fmt.Errorf("scopes[%d] %s has a space: list one scope per item", i, quote.Tenant(s))
		case slices.Contains(scopes[:i], s):
			return fmt.Errorf("scopes lists %s twice: keep one", quote.Tenant(s))
		}
	}
	return nil
}

// lifetimeText is the lifetime as generateAccessToken takes it: "3600s".
func lifetimeText(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// shortDuration writes d as people do: "2h", "1h30m", "45s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// delegateNames are the delegates as generateAccessToken takes them.
func (p *impersonateParams) delegateNames() []string {
	if p == nil || p.delegates == nil {
		return nil
	}
	names := make([]string, len(p.delegates))
	for i, d := range p.delegates {
		names[i] = "projects/-/serviceAccounts/" + d
	}
	return names
}

func (p *impersonateParams) lifetimeOrDefault() time.Duration {
	if p == nil {
		return DefaultLifetime
	}
	return p.lifetime
}

// parameters describes p for the cache key and for people, in a fixed
// order.
func (p *impersonateParams) parameters() []auth.Parameter {
	if p == nil {
		return nil
	}
	var out []auth.Parameter
	if p.delegates != nil {
		out = append(out, auth.Parameter{Field: "delegates", SentAs: "delegates", Values: p.delegateNames()})
	}
	out = append(out, auth.Parameter{Field: "lifetime", SentAs: "lifetime", Value: lifetimeText(p.lifetime)})
	if p.scopes != nil {
		out = append(out, auth.Parameter{Field: "scopes", SentAs: "scope", Values: p.scopes})
	}
	return out
}

// chainHint says who needs roles/iam.serviceAccountTokenCreator on whom for
// the delegation chain of p to reach target.
func (p *impersonateParams) chainHint(target string) string {
	if p == nil || len(p.delegates) == 0 {
		return fmt.Sprintf("grant the source identity roles/iam.serviceAccountTokenCreator on %s", quote.Tenant(target))
	}
	links := []string{"the source identity on " + quote.Tenant(p.delegates[0])}
	for i := 1; i < len(p.delegates); i++ {
		links = append(links, quote.Tenant(p.delegates[i-1])+" on "+quote.Tenant(p.delegates[i]))
	}
	links = append(links, quote.Tenant(p.delegates[len(p.delegates)-1])+" on "+quote.Tenant(target))
	return "the annotation's delegates make a chain: grant roles/iam.serviceAccountTokenCreator to " +
		strings.Join(links, ", ") + " (Google does not say which link is missing)"
}
