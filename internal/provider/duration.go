package provider

import (
	"fmt"
	"strconv"
	"time"

	"github.com/identitychain/auth/internal/quote"
)

// ParseDuration reads a duration field of an annotation: a Go duration
// with a unit ("15m", "1h30m") and a whole number of seconds, as the
// clouds' APIs take. example is a duration the errors suggest, such as
// "15m"; api names who takes seconds, for the error about fractions.
func ParseDuration(field, text, example, api string) (time.Duration, error) {
	if text == "" {
		return 0, fmt.Errorf("%s is empty: set a duration such as '%s' or '1h', or remove the field", field, example)
	}
	if _, err := strconv.ParseFloat(text, 64); err == nil {
		return 0, fmt.Errorf("%s %s has no unit: write '%ss' or use minutes or hours, such as '1h'",
			field, quote.Tenant(text), quote.Clean(text, 32))
	}
	d, err := time.ParseDuration(text)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s %s is not a duration: write one with a unit, such as '%s' or '1h'",
			field, quote.Tenant(text), example)
	case d%time.Second != 0:
		return 0, fmt.Errorf("%s %s is not a whole number of seconds: %s takes seconds", field, quote.Tenant(text), api)
	}
	return d, nil
}
