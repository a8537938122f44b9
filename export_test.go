package auth

// Exported for the external tests only.

// SourceKey is the cache key of the chain's source credentials.
func (c *Chain) SourceKey(audiences []string) string { return c.sourceKey(audiences) }

// TargetKey is the cache key of the chain's impersonated token.
func (c *Chain) TargetKey(audiences []string) string { return c.targetKey(c.sourceKey(audiences)) }
